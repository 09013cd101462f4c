//! The project's own config fixtures (`tests/fixtures/config/`): one file using every
//! directive, released-version forms, and one invalid file per validation error, each saying in
//! its first line (`# expect: ...`) what the diagnostics must contain.
//!
//! Relative paths inside the fixtures are relative to the crate directory, where cargo runs
//! tests (upstream resolves includes against the working directory).

use std::path::{Path, PathBuf};
use std::process::Command;

use odyssey::config::{self, keywords};
use proptest::prelude::*;

const DIR: &str = "tests/fixtures/config";

fn fixture(name: &str) -> PathBuf {
    Path::new(DIR).join(name)
}

fn messages(diags: &[config::Diagnostic]) -> String {
    diags.iter().map(|d| d.to_string() + "\n").collect()
}

#[test]
fn every_keyword_is_used_by_a_fixture() {
    let mut words = String::new();
    for dir in [fixture(""), fixture("invalid")] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "conf") {
                words += &std::fs::read_to_string(path).unwrap();
            }
        }
    }
    let used: Vec<&str> = words
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<&str> = keywords::KEYWORDS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !used.contains(k))
        .collect();
    assert!(missing.is_empty(), "keywords no fixture uses: {missing:?}");
}

#[test]
fn all_keywords_loads_with_typed_values() {
    let (c, warnings) =
        config::load(&fixture("all_keywords.conf")).unwrap_or_else(|e| panic!("{}", messages(&e)));
    let w = messages(&warnings);
    for deprecated in [
        "graceful_die_on_errors",
        "log_stats_general_prom",
        "catchup_checks",
        "load_module",
        "ldapurl",
    ] {
        assert!(
            w.contains(&format!("option '{deprecated}'")),
            "no warning for {deprecated}:\n{w}"
        );
    }
    assert_eq!(c.global.promhttp_server_port, Some(7777));
    assert!(w.contains("'log_route_stats_prom' does not apply"), "{w}");
    assert_eq!(c.global.workers, config::global::Workers::Auto);
    assert_eq!(
        c.global.keepalive.interval,
        std::time::Duration::from_secs(75)
    );
    assert_eq!(c.soft_oom.as_ref().map(|s| s.limit), Some(2 << 30));
    assert_eq!(c.listen[0].storages, ["pg"]);
    assert_eq!(c.storages[0].endpoints.len(), 2);
    assert!(c.storages[0].watchdog.is_some());
    assert_eq!(c.hba.as_ref().map(Vec::len), Some(5));
    assert!(
        c.rules
            .iter()
            .any(|r| r.key.db == config::rule::Name::Named("included".into()))
    );
    let cert = c
        .rules
        .iter()
        .find(|r| r.key.user == config::rule::Name::Named("u".into()))
        .unwrap();
    assert_eq!(
        cert.options,
        [("statement_timeout".to_string(), "0".to_string())]
    );
    assert_eq!(cert.quantiles, [0.99, 0.95, 0.5]);
    assert_eq!(cert.pool.timeout, None);
    let console = c.rules.iter().find(|r| r.storage == "console").unwrap();
    assert_eq!(console.role, config::rule::Role::Admin);
}

#[test]
fn released_version_forms_are_accepted_with_warnings() {
    let (c, warnings) = config::load(&fixture("alias_drop_options.conf"))
        .unwrap_or_else(|e| panic!("{}", messages(&e)));
    let w = messages(&warnings);
    assert!(w.contains("single-quoted string"), "{w}");
    assert!(w.contains("missing 'port'; using 6432"), "{w}");
    assert!(
        w.contains("duplicate option 'pool_size', the last one wins"),
        "{w}"
    );
    assert!(w.contains("write yes or no"), "{w}");
    assert_eq!(c.listen[0].port, 6432);
    assert_eq!(c.rules[0].pool.size, 2);
    assert!(c.rules[0].log_debug);
    assert!(!c.conn_drop.enabled);
}

#[test]
fn each_invalid_fixture_fails_with_its_message() {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(fixture("invalid"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    entries.sort();
    assert!(
        entries.len() >= 100,
        "only {} invalid fixtures",
        entries.len()
    );
    let mut failures = Vec::new();
    for path in &entries {
        let text = std::fs::read_to_string(path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("# expect: line");
        match config::load(path) {
            Ok(_) => failures.push(format!("{}: loaded", path.display())),
            Err(diags) if !messages(&diags).contains(expect) => failures.push(format!(
                "{}: wanted {expect:?}, got:\n{}",
                path.display(),
                messages(&diags)
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn test_flag_reports_and_sets_exit_code() {
    let run = |path: PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_odyssey"))
            .arg("--test")
            .arg(path)
            .output()
            .unwrap()
    };
    let ok = run(fixture("all_keywords.conf"));
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "config is valid\n");
    let bad = run(fixture("invalid/pool_unknown.conf"));
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.starts_with("tests/fixtures/config/invalid/pool_unknown.conf:"),
        "{err}"
    );
    let unknown = Command::new(env!("CARGO_BIN_EXE_odyssey"))
        .arg("--what")
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("Try `odyssey --help' for more information.")
    );
    let version = Command::new(env!("CARGO_BIN_EXE_odyssey"))
        .arg("-V")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("odyssey "));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the text, reading it ends in a config or diagnostics, never a panic.
    #[test]
    fn loading_never_panics(text in "[ -~\\t\\n{}\"'#é]{0,300}") {
        let _ = config::load_str("fuzz.conf", &text);
    }

    /// Near-valid texts: a real config with bytes swapped in.
    #[test]
    fn mutated_configs_never_panic(pos in 0usize..400, junk in "[ -~\\n]{1,4}") {
        let base = std::fs::read_to_string(fixture("alias_drop_options.conf")).unwrap();
        let mut cut = pos.min(base.len());
        while !base.is_char_boundary(cut) { cut -= 1; }
        let text = format!("{}{}{}", &base[..cut], junk, &base[cut..]);
        let _ = config::load_str("fuzz.conf", &text);
    }
}
