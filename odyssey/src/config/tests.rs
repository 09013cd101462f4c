//! Tests of loading whole configs: includes, defaults, diagnostics order.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::*;

const MINIMAL: &str = "log_format \"%m\\n\"\nlisten {\n\thost \"*\"\n\tport 6432\n}\n\
    storage \"pg\" {\n\ttype \"remote\"\n\thost \"localhost\"\n}\n";
const RULE: &str = "database default {\n\tuser default {\n\t\tauthentication \"none\"\n\t\tstorage \"pg\"\n\t\tpool \"transaction\"\n\t}\n}\n";

fn with_files(files: &[(&str, &str)], top: &str) -> Result<Loaded, Vec<Diagnostic>> {
    let map: HashMap<String, String> = files
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let read = move |p: &Path| -> io::Result<String> {
        map.get(&p.display().to_string())
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    };
    load_with(Path::new(top), &read)
}

#[test]
fn includes_splice_files_in_place() {
    let top = format!("include \"parts/rules.conf\"\n{MINIMAL}");
    let (c, warnings) = with_files(
        &[("main.conf", &top), ("parts/rules.conf", RULE)],
        "main.conf",
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.rules.len(), 1);
    assert_eq!(&*c.rules[0].key.pos.file, "parts/rules.conf");
}

#[test]
fn a_missing_include_is_named() {
    let top = format!("include \"/no/such.conf\"\n{MINIMAL}{RULE}");
    let errors = with_files(&[("main.conf", &top)], "main.conf").unwrap_err();
    assert_eq!(
        errors[0].to_string().lines().next().unwrap(),
        "main.conf:1:1: can't open include file '/no/such.conf': entity not found"
    );
}

#[test]
fn defaults_are_upstream_heads() {
    let (c, _) = load_str("m.conf", &format!("{MINIMAL}{RULE}")).unwrap();
    let g = &c.global;
    assert_eq!(
        (g.coroutine_stack_size, g.cache_coroutine, g.cancel_timeout),
        (16, 1024, Duration::from_secs(1))
    );
    assert_eq!(g.keepalive.idle, Duration::from_secs(15));
    assert!(g.log.session && g.log.stats && !g.log.debug && g.virtual_transaction);
    let r = &c.rules[0];
    assert!(r.client_show_id && r.server_drop_on_cached_plan_error);
    assert_eq!(r.pool.server_lifetime, Some(Duration::from_secs(3600)));
    // transaction pool with default pool_discard and prepared statements: smart discard
    assert!(r.pool.reserve_prepared_statement && r.pool.smart_discard && !r.pool.discard);
    assert_eq!(c.query_parsing.mode, sections::QueryParsingMode::Minimal);
    assert!(c.conn_drop.enabled);
}

#[test]
fn errors_come_before_warnings_and_name_their_place() {
    let text = format!("{MINIMAL}{RULE}daemonize yes\ndaemonize maybe\n");
    let diags = load_str("d.conf", &text).unwrap_err();
    assert_eq!(
        diags[0].to_string(),
        "d.conf:18:11: expected yes or no for daemonize, found word 'maybe'"
    );
    assert_eq!(diags[1].severity, Severity::Warning);
}

#[test]
fn fragments_parse_without_whole_config_checks() {
    assert!(parse_fragment("f.conf", RULE).is_ok());
    assert!(parse_fragment("f.conf", "pool_size 1").is_err());
}

#[test]
fn acquire_fail_fast_is_warned_about_only_with_several_hosts() {
    let rule = RULE.replace(
        "pool \"transaction\"",
        "pool \"transaction\"\n\t\tpool_acquire_fail_fast yes",
    );
    let (_, one) = load_str("m.conf", &format!("{MINIMAL}{rule}")).unwrap();
    assert!(one.is_empty(), "{one:?}");
    let two_hosts = MINIMAL.replace("host \"localhost\"", "host \"h1,h2\"");
    let (_, two) = load_str("m.conf", &format!("{two_hosts}{rule}")).unwrap();
    assert!(
        two.iter().any(|w| w
            .to_string()
            .contains("pool_acquire_fail_fast has no effect")),
        "{two:?}"
    );
}

#[test]
fn a_small_coroutine_stack_is_warned_about_at_its_line() {
    let (_, ok) = load_str(
        "s.conf",
        &format!("{MINIMAL}coroutine_stack_size 16\n{RULE}"),
    )
    .unwrap();
    assert!(
        ok.iter().all(|w| !w.to_string().contains("stack")),
        "{ok:?}"
    );
    let (c, small) = load_str(
        "s.conf",
        &format!("{MINIMAL}coroutine_stack_size 8\n{RULE}"),
    )
    .unwrap();
    assert_eq!(c.global.coroutine_stack_size, 8);
    let lines: Vec<String> = small.iter().map(|w| w.to_string()).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("s.conf:10:1:") && l.contains("below the recommended minimum")),
        "{lines:?}"
    );
}
