//! The keyword table: every directive name odyssey.conf knows, whether it is still in force,
//! the bare words that may stand as values, and "did you mean" hints for typos.
//!
//! Defaults are not here: each section's typed struct carries the upstream default in its
//! `Default` impl, next to the field it belongs to.

/// Whether a keyword still does something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Parsed and used (or, where the spec says so, parsed and shown).
    Current,
    /// Still in upstream's keyword list but ignored there: we warn and ignore.
    Deprecated,
    /// Known only to released versions (≤ 1.5.2): we warn and ignore.
    Removed,
}

use Status::{Current as C, Deprecated as D, Removed as R};

/// Every directive, in the order of the spec's tables.
#[rustfmt::skip]
pub const KEYWORDS: &[(&str, Status)] = &[
    // top level
    ("include", C), ("daemonize", C), ("sequential_routing", C), ("priority", C),
    ("pid_file", C), ("unix_socket_dir", C), ("unix_socket_mode", C), ("locks_dir", C),
    ("external_auth_socket_path", C), ("availability_zone", C), ("log_file", C),
    ("log_format", C), ("log_to_stdout", C), ("log_syslog", C), ("log_syslog_ident", C),
    ("log_syslog_facility", C), ("log_debug", C), ("log_config", C), ("log_session", C),
    ("log_query", C), ("log_stats", C), ("log_async", C), ("log_queue_depth", C),
    ("log_general_stats_prom", C), ("log_route_stats_prom", C), ("promhttp_server_port", C),
    ("stats_interval", C), ("workers", C), ("resolvers", C), ("readahead", C),
    ("cache_coroutine", C), ("cache_msg_gc_size", C), ("coroutine_stack_size", C),
    ("system_coroutine_stack_size", C), ("nodelay", C), ("disable_nolinger", C),
    ("keepalive", C), ("keepalive_keep_interval", C), ("keepalive_probes", C),
    ("keepalive_usr_timeout", C), ("backend_connect_timeout_ms", C), ("cancel_timeout_ms", C),
    ("cancel_queue_timeout_ms", C), ("cancel_max_inflight", C), ("client_max", C),
    ("client_max_routing", C), ("server_login_retry", C), ("max_sigterms_to_die", C),
    ("graceful_shutdown_timeout_ms", C), ("enable_online_restart", C),
    ("bindwith_reuseport", C), ("enable_host_watcher", C), ("smart_search_path_enquoting", C),
    ("cpu_affinity", C), ("hba_file", C), ("virtual_processing", C),
    ("virtual_transaction", C), ("dns_cache_ttl", C), ("group_checker_interval", C),
    ("graceful_die_on_errors", D), ("pipeline", D), ("cache", D), ("cache_chunk", D),
    ("packet_read_size", D), ("packet_write_queue", D), ("log_stats_general_prom", D),
    ("load_module", R),
    // top-level sections and their items
    ("conn_drop_options", C), ("online_restart_drop_options", C), ("drop_enabled", C),
    ("rate", C), ("interval_ms", C), ("soft_oom", C), ("limit", C), ("process", C),
    ("check_interval_ms", C), ("drop", C), ("signal", C), ("max_rate", C),
    ("query_parsing", C), ("mode", C), ("mem_limit", C), ("shared_pool", C),
    ("ldap_endpoint", C), ("ldapserver", C), ("ldapport", C), ("ldapscheme", C),
    ("ldaptls", C), ("ldapcafile", C),
    ("ldapbasedn", C), ("ldapbinddn", C), ("ldapbindpasswd", C), ("ldapsearchattribute", C),
    ("ldapsearchfilter", C), ("ldapprefix", C), ("ldapsuffix", C), ("ldapscope", C),
    ("ldapurl", R),
    // listen
    ("listen", C), ("host", C), ("port", C), ("backlog", C), ("tls", C), ("tls_ca_file", C),
    ("tls_key_file", C), ("tls_cert_file", C), ("tls_protocols", C),
    ("client_login_timeout", C), ("target_session_attrs", C), ("balancing_method", C),
    ("catchup_timeout", C), ("compression", D),
    // storage
    ("storage", C), ("type", C), ("server_max_routing", C),
    ("endpoints_status_poll_interval", C), ("balancing", C), ("method", C), ("az_aware", C),
    ("show_notice_messages", C), ("watchdog", C), ("watchdog_lag_query", C),
    ("watchdog_lag_interval", C), ("weights", R), ("time_weight", R), ("conn_weight", R),
    // rules
    ("database", C), ("user", C), ("group", C), ("authentication", C), ("password", C),
    ("auth_common_name", C), ("auth_query", C), ("auth_query_db", C), ("auth_query_user", C),
    ("auth_pam_service", C), ("auth_module", C), ("enable_mdb_iamproxy_auth", C),
    ("mdb_iamproxy_socket_path", C), ("password_passthrough", C), ("ldap_endpoint_name", C),
    ("ldap_storage_credentials_attr", C), ("ldap_storage_credentials", C),
    ("ldap_storage_username", C), ("ldap_storage_password", C), ("role", C),
    ("storage_db", C), ("storage_user", C), ("storage_password", C), ("pool", C),
    ("pool_routing", C), ("pool_size", C), ("min_pool_size", C), ("pool_timeout", C),
    ("pool_ttl", C), ("server_lifetime", C), ("pool_discard", C), ("pool_smart_discard", C),
    ("pool_discard_query", C), ("pool_cancel", C), ("pool_rollback", C),
    ("pool_reset_timeout_ms", C), ("pool_reserve_prepared_statement", C),
    ("pool_prepared_statements_max", C),
    ("pool_pin_on_listen", C), ("pool_attach_check", C), ("pool_acquire_fail_fast", C),
    ("pool_notice_after_waiting_ms", C), ("pool_client_idle_timeout", C),
    ("pool_idle_in_transaction_timeout", C), ("client_fwd_error", C), ("client_show_id", C),
    ("application_name_add_host", C), ("reserve_session_server_connection", C),
    ("server_drop_on_cached_plan_error", C), ("maintain_params", C), ("quantiles", C),
    ("options", C), ("backend_startup_options", C), ("group_query", C),
    ("group_query_user", C), ("group_query_db", C), ("catchup_checks", D),
    ("ldap_pool_size", D), ("ldap_pool_timeout", D), ("ldap_pool_ttl", D),
];

/// Bare words that are values, never directives: booleans, selectors, modes, and (leniently)
/// the role names that were keywords in released versions.
#[rustfmt::skip]
pub const VALUE_WORDS: &[&str] = &[
    "yes", "no", "on", "off", "true", "false", "default", "local", "hostssl", "hostnossl",
    "disabled", "minimal", "full", "admin", "stat", "notallow",
];

/// The status of `name`, or `None` when it is no directive at all.
pub fn lookup(name: &str) -> Option<Status> {
    KEYWORDS.iter().find(|(k, _)| *k == name).map(|&(_, s)| s)
}

/// Whether the bare word `w`, standing after the directive `head` and its values so far, is one
/// more value rather than the start of the next directive. `host` is a value only in a rule
/// selector (`user "u" host { ... }`); elsewhere it is the listen/storage directive.
pub fn is_value_word(head: &str, w: &str) -> bool {
    if w == "host" {
        return head == "user" || head == "group";
    }
    VALUE_WORDS.contains(&w) || (w.starts_with("SIG") && lookup(w).is_none())
}

/// The known directive closest to `name` (edit distance at most 2), for a "did you mean" hint.
pub fn suggest(name: &str) -> Option<&'static str> {
    KEYWORDS
        .iter()
        .filter(|(_, s)| *s == Status::Current)
        .map(|&(k, _)| (distance(name, k), k))
        .filter(|&(d, _)| d <= 2)
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (keywords are ASCII).
fn distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let next = (row[j + 1] + 1).min(row[j] + 1).min(prev + cost);
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_and_statuses() {
        assert_eq!(suggest("pool_sise"), Some("pool_size"));
        assert_eq!(suggest("zzzzzzzz"), None);
        assert_eq!(lookup("catchup_checks"), Some(Status::Deprecated));
        assert_eq!(lookup("load_module"), Some(Status::Removed));
        assert_eq!(lookup("nope"), None);
    }

    #[test]
    fn host_is_a_value_only_in_selectors() {
        assert!(is_value_word("user", "host"));
        assert!(!is_value_word("port", "host"));
        assert!(is_value_word("signal", "SIGTERM"));
        assert!(!is_value_word("tls", "disable"));
    }

    #[test]
    fn keywords_are_unique() {
        let mut names: Vec<_> = KEYWORDS.iter().map(|(k, _)| *k).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYWORDS.len());
    }
}
