//! Directives this build accepts but does not act on, each with its reason. Every one of them
//! found in a config gets a one-line warning at its `file:line:column`, at load, on reload and
//! in `--test`, so no directive is parsed and then silently ignored. `tests/directives.rs` walks
//! every keyword of the grammar against this table and the list of directives read at runtime.

use super::convert::Reader;
use super::model::{Arg, Item, Value};

/// Why a directive has no effect here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// It belongs to upstream's C machinery and cannot apply to this implementation.
    NotApplicable(&'static str),
    /// It could act here and will; the reason names the work it waits for.
    NotYet(&'static str),
}

use Unsupported::{NotApplicable as NA, NotYet as NY};

/// `(section, directive, why)`. Sections: `global`, `listen`, `storage`, `ldap_endpoint`,
/// `rule` (user and group blocks), `database` (its children), `query_parsing`. A whole section that is not
/// implemented is named once, at its head; what it contains is not listed.
#[rustfmt::skip]
pub const UNSUPPORTED: &[(&str, &str, Unsupported)] = &[
    // The C runtime's knobs.
    ("global", "cache_msg_gc_size", NA("machinarium keeps no message cache")),
    ("global", "system_coroutine_stack_size", NA("no separate stacks for system coroutines; coroutine_stack_size sizes all")),
    ("global", "locks_dir", NA("unused by upstream HEAD too")),
    ("rule", "reserve_session_server_connection", NA("no effect in upstream either")),
    // Process and runtime.
    ("global", "readahead", NA("read buffers start at 4 KiB and grow to 64 KiB as reads fill them, and are freed while idle; there is no fixed-size buffer to set")),
    // Operations (issue 14).
    // Console and stats (issue 11).
    ("global", "log_general_stats_prom", NA("/metrics on promhttp_server_port always serves the general metrics")),
    ("global", "log_route_stats_prom", NA("/metrics on promhttp_server_port always serves the per-route metrics")),
    // Authentication (issue 12).
    ("rule", "auth_module", NA("no C module interface; a rule that names a module is refused at load")),
    ("rule", "enable_mdb_iamproxy_auth", NA("Yandex Cloud's IAM proxy; turning it on is refused at load")),
    ("rule", "mdb_iamproxy_socket_path", NA("Yandex Cloud's IAM proxy")),
    ("query_parsing", "mem_limit", NA("no parse arena: queries are looked at where they lie in the read buffer")),
    ("ldap_endpoint", "ldapscope", NA("the search is always of the subtree, as upstream")),
    // High availability (issue 13).
    ("rule", "watchdog_lag_interval", NA("upstream only prints it too; polls follow endpoints_status_poll_interval")),
];

/// Why `name` in `section` has no effect, if it has none.
pub fn lookup(section: &str, name: &str) -> Option<Unsupported> {
    UNSUPPORTED
        .iter()
        .find(|(s, n, _)| *s == section && *n == name)
        .map(|&(_, _, why)| why)
}

/// Warns about every unsupported directive in the top-level `items` (includes expanded).
pub fn check(r: &mut Reader, items: &[Item]) {
    section(r, "global", items);
    for item in items {
        let inner = item.block.iter().flat_map(|b| &b.items);
        match item.name() {
            "listen" => section(r, "listen", inner),
            "storage" => section(r, "storage", inner),
            "ldap_endpoint" => section(r, "ldap_endpoint", inner),
            "query_parsing" => section(r, "query_parsing", inner),
            "database" => {
                for child in inner {
                    warn(r, "database", child);
                    let rule = child.block.iter().flat_map(|b| &b.items);
                    section(r, "rule", rule.clone());
                    for options in rule.filter(|it| it.name() == "options") {
                        untracked_options(r, options);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Rule `options { }` take effect only for tracked parameters (spec §2, as upstream); each
/// other name is said to be ignored.
fn untracked_options(r: &mut Reader, item: &Item) {
    let strings: Vec<&Arg> = item
        .block
        .iter()
        .flat_map(|b| &b.items)
        .flat_map(|it| std::iter::once(&it.head).chain(&it.args))
        .collect();
    for pair in strings.chunks_exact(2) {
        if let Value::Str(key, _) = &pair[0].value
            && !kiwi::var::TRACKED
                .iter()
                .any(|t| t.eq_ignore_ascii_case(key))
        {
            r.warn(
                &pair[0].pos,
                format!("options: '{key}' is not a tracked parameter; ignored, as upstream"),
            );
        }
    }
}

fn section<'i>(r: &mut Reader, name: &str, items: impl IntoIterator<Item = &'i Item>) {
    for item in items {
        warn(r, name, item);
    }
}

fn warn(r: &mut Reader, section: &str, item: &Item) {
    let name = item.name();
    match lookup(section, name) {
        Some(NA(why)) => r.warn(
            item.pos(),
            format!("'{name}' does not apply to this implementation ({why}); ignored"),
        ),
        Some(NY(why)) => r.warn(
            item.pos(),
            format!("'{name}' is not implemented yet ({why}); ignored"),
        ),
        None => {}
    }
}
