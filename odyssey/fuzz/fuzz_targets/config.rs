//! Fuzz target `config`: odyssey.conf text through the whole load (lexer, nom parser, section
//! readers, validation), then the rule order and the `log_config` dump of what loaded.
//!
//! Files named by `include` and `hba_file` are never read from disk: they fail to open, which
//! is a diagnostic like any other. Nothing may panic, and every error carries a line inside
//! the text.
#![no_main]

use std::io;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use odyssey::config::{self, Severity};
use odyssey::rules::RuleTable;

const NAME: &str = "fuzz.conf";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let read = |path: &Path| match path == Path::new(NAME) {
        true => Ok(text.to_owned()),
        false => Err(io::Error::from(io::ErrorKind::NotFound)),
    };
    let lines = text.lines().count().max(1) as u32;
    match config::load_with(Path::new(NAME), &read) {
        Ok((config, _warnings)) => {
            let _ = RuleTable::new(&config).ordered().len();
            let _ = (config::dump::globals(&config), config::dump::rules(&config));
        }
        Err(diagnostics) => {
            assert!(diagnostics.iter().any(|d| d.severity == Severity::Error));
            for d in diagnostics.iter().filter(|d| &*d.file == NAME) {
                assert!(d.line <= lines + 1, "{d:?} beyond {lines} lines");
            }
        }
    }
});
