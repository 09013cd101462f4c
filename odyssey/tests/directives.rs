//! The keyword walk (issue 15): every directive the config grammar accepts either acts — read
//! at runtime, with a test that names it — or is in `config::support::UNSUPPORTED`, which warns
//! at load and in `--test`. A new keyword that is in neither list fails here, so parsing a
//! directive and silently ignoring it cannot come back.

use std::path::Path;

use odyssey::config::keywords::{KEYWORDS, Status};
use odyssey::config::support::{UNSUPPORTED, Unsupported};

/// Read at runtime, and the file of a test that sets it (checked to name it).
#[rustfmt::skip]
const READ: &[(&str, &str)] = &[
    ("query_parsing", "test/tests/query_parsing.rs"),
    ("mode", "test/tests/query_parsing.rs"),
    ("ldaptls", "test/tests/ldap_tls.rs"),
    ("ldapcafile", "test/tests/ldap_tls.rs"),
    ("resolvers", "test/tests/config_behaviour.rs"),
    ("pool_reset_timeout_ms", "test/tests/config_behaviour.rs"),
    ("include", "test/tests/config_behaviour.rs"),
    ("log_syslog_facility", "test/tests/config_behaviour.rs"),
    ("pool_smart_discard", "test/tests/rule_behaviour.rs"),
    ("max_sigterms_to_die", "test/tests/rule_behaviour.rs"),
    ("client_show_id", "test/tests/rule_behaviour.rs"),
    ("client_fwd_error", "test/tests/rule_behaviour.rs"),
    ("pool_discard_query", "test/tests/rule_behaviour.rs"),
    ("server_lifetime", "test/tests/rule_behaviour.rs"),
    ("log_stats", "test/tests/rule_behaviour.rs"),
    ("stats_interval", "test/tests/rule_behaviour.rs"),
    ("virtual_transaction", "test/tests/tx_virtual.rs"),
    ("client_login_timeout", "test/tests/client_max_routing.rs"),
    ("log_config", "test/tests/log_config.rs"),
    ("role", "test/tests/console.rs"),
    ("enable_online_restart", "test/tests/online_restart.rs"),
    ("conn_drop_options", "test/tests/conn_drop.rs"),
    ("online_restart_drop_options", "test/tests/conn_drop.rs"),
    ("drop_enabled", "test/tests/conn_drop.rs"),
    ("rate", "test/tests/conn_drop.rs"),
    ("interval_ms", "test/tests/conn_drop.rs"),
    ("soft_oom", "test/tests/soft_oom.rs"),
    ("limit", "test/tests/soft_oom.rs"),
    ("process", "test/tests/soft_oom.rs"),
    ("check_interval_ms", "test/tests/soft_oom.rs"),
    ("drop", "test/tests/soft_oom.rs"),
    ("signal", "test/tests/soft_oom.rs"),
    ("max_rate", "test/tests/soft_oom.rs"),
    ("target_session_attrs", "test/tests/ha.rs"),
    ("watchdog", "test/tests/ha.rs"),
    ("balancing_method", "test/tests/ha.rs"),
    ("watchdog_lag_query", "test/tests/ha.rs"),
    ("catchup_timeout", "test/tests/ha.rs"),
    ("endpoints_status_poll_interval", "test/tests/ha.rs"),
    ("balancing", "test/tests/ha.rs"),
    ("az_aware", "test/tests/ha.rs"),
    ("availability_zone", "test/tests/ha.rs"),
    ("promhttp_server_port", "test/tests/metrics.rs"),
    ("quantiles", "test/tests/console.rs"),
    ("min_pool_size", "test/tests/min_pool_size.rs"),
    ("pool_acquire_fail_fast", "odyssey/src/config/tests.rs"),
    ("pool_notice_after_waiting_ms", "test/tests/pool_notice.rs"),
    ("client_max_routing", "test/tests/client_max_routing.rs"),
    ("server_login_retry", "test/tests/server_login_retry.rs"),
    ("cancel_max_inflight", "test/tests/cancel_limits.rs"),
    ("cancel_queue_timeout_ms", "test/tests/cancel_limits.rs"),
    ("cancel_timeout_ms", "test/tests/cancel_limits.rs"),
    ("shared_pool", "test/tests/shared_pool.rs"),
    ("server_max_routing", "test/tests/server_max_routing.rs"),
    ("show_notice_messages", "test/tests/host_notice.rs"),
    ("server_drop_on_cached_plan_error", "test/tests/server_fate.rs"),
    ("pool_attach_check", "test/tests/server_fate.rs"),
    ("pool_pin_on_listen", "test/tests/server_fate.rs"),
    ("priority", "test/tests/process_settings.rs"),
    ("cpu_affinity", "test/tests/process_settings.rs"),
    ("enable_host_watcher", "test/tests/host_watcher.rs"),
    ("virtual_processing", "test/tests/ha.rs"),
    ("backlog", "test/tests/listen_binding.rs"),
    ("unix_socket_mode", "test/tests/listen_binding.rs"),
    ("backend_connect_timeout_ms", "test/tests/backend_connect_timeout.rs"),
    ("hba_file", "test/tests/hba.rs"),
    ("tls", "test/tests/tls.rs"),
    ("tls_ca_file", "test/tests/tls.rs"),
    ("tls_cert_file", "test/tests/tls.rs"),
    ("tls_key_file", "test/tests/tls.rs"),
    ("tls_protocols", "test/tests/tls_protocols.rs"),
    ("daemonize", "test/src/pooler.rs"),
    ("sequential_routing", "odyssey/src/rules/tests.rs"),
    ("pid_file", "test/tests/harness.rs"),
    ("unix_socket_dir", "test/tests/harness.rs"),
    ("log_file", "test/tests/harness.rs"),
    ("log_format", "test/tests/logging.rs"),
    ("log_to_stdout", "test/src/pooler.rs"),
    ("log_syslog", "test/tests/logging.rs"),
    ("log_syslog_ident", "test/tests/logging.rs"),
    ("log_debug", "test/tests/rule_params.rs"),
    ("log_session", "test/tests/rule_params.rs"),
    ("log_query", "test/tests/rule_params.rs"),
    ("workers", "test/tests/pstmt.rs"),
    ("disable_nolinger", "test/tests/pool_limits.rs"),
    ("keepalive", "test/tests/rule_params.rs"),
    ("keepalive_keep_interval", "test/tests/rule_params.rs"),
    ("keepalive_probes", "test/tests/rule_params.rs"),
    ("client_max", "test/tests/pool_limits.rs"),
    ("graceful_shutdown_timeout_ms", "test/tests/setup_failure.rs"),
    ("smart_search_path_enquoting", "test/tests/tx_isolation.rs"),
    ("listen", "test/tests/harness.rs"),
    ("host", "test/tests/harness.rs"),
    ("port", "test/tests/harness.rs"),
    ("storage", "test/tests/auth.rs"),
    ("type", "test/tests/setup_failure.rs"),
    ("method", "test/tests/auth.rs"),
    ("database", "test/tests/auth.rs"),
    ("user", "test/tests/auth.rs"),
    ("authentication", "test/tests/auth.rs"),
    ("password", "test/tests/auth.rs"),
    ("auth_common_name", "odyssey/tests/client_auth.rs"),
    ("password_passthrough", "odyssey/tests/backend_auth.rs"),
    ("storage_db", "test/tests/rule_params.rs"),
    ("storage_user", "test/tests/auth.rs"),
    ("storage_password", "test/tests/auth.rs"),
    ("pool", "test/tests/auth.rs"),
    ("pool_routing", "odyssey/src/rules/tests.rs"),
    ("pool_size", "test/tests/copy.rs"),
    ("pool_timeout", "test/tests/pool_limits.rs"),
    ("pool_ttl", "test/tests/pool_limits.rs"),
    ("pool_discard", "test/src/tx.rs"),
    ("pool_cancel", "test/src/tx.rs"),
    ("pool_rollback", "test/src/tx.rs"),
    ("pool_reserve_prepared_statement", "test/tests/pstmt_cap.rs"),
    ("pool_prepared_statements_max", "test/tests/pstmt_cap.rs"),
    ("pool_client_idle_timeout", "test/tests/tx_timeouts.rs"),
    ("pool_idle_in_transaction_timeout", "test/tests/tx_timeouts.rs"),
    ("application_name_add_host", "test/tests/rule_params.rs"),
    ("maintain_params", "test/tests/rule_params.rs"),
    ("options", "test/tests/rule_params.rs"),
    ("backend_startup_options", "test/tests/rule_params.rs"),
    ("auth_query", "test/tests/auth_query.rs"),
    ("auth_query_db", "test/tests/auth_query.rs"),
    ("auth_query_user", "test/tests/auth_query.rs"),
    ("group", "test/tests/group.rs"),
    ("group_query", "test/tests/group.rs"),
    ("group_query_user", "test/tests/group.rs"),
    ("group_query_db", "test/tests/group.rs"),
    ("group_checker_interval", "test/tests/group.rs"),
    ("external_auth_socket_path", "test/tests/external_auth.rs"),
    ("auth_pam_service", "test/tests/pam.rs"),
    ("dns_cache_ttl", "test/tests/hostname_rules.rs"),
    ("ldap_endpoint", "test/tests/ldap.rs"),
    ("ldap_storage_password", "test/tests/ldap.rs"),
    ("ldap_storage_username", "test/tests/ldap.rs"),
    ("ldap_storage_credentials", "test/tests/ldap.rs"),
    ("ldap_storage_credentials_attr", "test/tests/ldap.rs"),
    ("ldap_endpoint_name", "test/tests/ldap.rs"),
    ("ldapserver", "test/tests/ldap.rs"),
    ("ldapport", "test/tests/ldap.rs"),
    ("ldapscheme", "test/tests/ldap.rs"),
    ("ldapbasedn", "test/tests/ldap.rs"),
    ("ldapbinddn", "test/tests/ldap.rs"),
    ("ldapbindpasswd", "test/tests/ldap.rs"),
    ("ldapsearchattribute", "test/tests/ldap.rs"),
    ("ldapsearchfilter", "test/tests/ldap.rs"),
    ("ldapprefix", "test/tests/ldap.rs"),
    ("ldapsuffix", "test/tests/ldap.rs"),
    ("nodelay", "test/tests/socket_options.rs"),
    ("keepalive_usr_timeout", "test/tests/socket_options.rs"),
    ("bindwith_reuseport", "test/tests/socket_options.rs"),
    ("coroutine_stack_size", "test/tests/coroutine_stacks.rs"),
    ("cache_coroutine", "test/tests/coroutine_stacks.rs"),
    ("log_async", "test/tests/log_queue.rs"),
    ("log_queue_depth", "test/tests/log_queue.rs"),
];

/// Read at runtime, but no behaviour test sets it yet (only config-loading tests, or none):
/// the debt the next tests pay. Empty, and to stay so.
#[rustfmt::skip]
const READ_UNTESTED: &[&str] = &[];

/// Warned about by their own readers in `config`.
const WARNED_BY_READER: &[&str] = &[];

/// Directives that stand only inside a section `UNSUPPORTED` warns about at its head
/// (none now).
#[rustfmt::skip]
const INSIDE_WARNED_SECTION: &[&str] = &[
];

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds the crate")
}

/// Whether `text` has `word` as a whole word (an escaped `\t` or `\n` before it counts as a
/// separator, as in configs written inside string literals).
fn names(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let head = &text[..i];
        let escaped = head.ends_with("\\t") || head.ends_with("\\n");
        let before = if escaped {
            None
        } else {
            head.chars().next_back()
        };
        let after = text[i + word.len()..].chars().next();
        let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !part(before) && !part(after)
    })
}

#[test]
fn every_keyword_acts_or_warns() {
    let mut missing = Vec::new();
    for &(keyword, status) in KEYWORDS {
        if status != Status::Current {
            // Deprecated and removed keywords warn in the parser ("... is ignored").
            continue;
        }
        let known = READ.iter().any(|(k, _)| *k == keyword)
            || READ_UNTESTED.contains(&keyword)
            || INSIDE_WARNED_SECTION.contains(&keyword)
            || WARNED_BY_READER.contains(&keyword)
            || UNSUPPORTED.iter().any(|(_, k, _)| *k == keyword);
        if !known {
            missing.push(keyword);
        }
    }
    assert!(
        missing.is_empty(),
        "neither read at runtime nor warned about: {missing:?}"
    );
}

#[test]
fn the_named_tests_name_their_keyword() {
    for (keyword, file) in READ {
        let text = std::fs::read_to_string(workspace().join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(names(&text, keyword), "{file} does not name {keyword}");
    }
}

#[test]
fn the_lists_name_real_keywords_once() {
    let current = |k: &str| {
        KEYWORDS
            .iter()
            .any(|(n, s)| *n == k && *s == Status::Current)
    };
    let mut all: Vec<&str> = READ.iter().map(|(k, _)| *k).collect();
    all.extend(READ_UNTESTED);
    all.extend(INSIDE_WARNED_SECTION);
    all.extend(WARNED_BY_READER);
    for k in &all {
        assert!(current(k), "{k} is no current keyword");
    }
    let mut sorted = all.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), all.len(), "a keyword is in two lists");
    for (section, k, _) in UNSUPPORTED {
        assert!(current(k), "{section} {k} is no current keyword");
    }
}

/// A config with directives of each kind: one warning each, at its line, saying which kind.
#[test]
fn unsupported_directives_warn_at_their_line() {
    let text = "log_format \"%m\\n\"\n\
        cache_msg_gc_size 1\n\
        query_parsing { mode minimal mem_limit 1 }\n\
        listen {\n\thost \"*\"\n\tport 6432\n}\n\
        storage \"pg\" {\n\ttype \"remote\"\n\thost \"localhost\"\n\tserver_max_routing 4\n}\n\
        database default {\n\tuser default {\n\t\tauthentication \"none\"\n\
        \t\tstorage \"pg\"\n\t\tpool \"session\"\n\t\treserve_session_server_connection yes\n\
        \t\toptions {\n\t\t\t\"search_path\" \"x\"\n\t\t\t\"temp_buffers\" \"1MB\"\n\t\t}\n\t}\n}\n";
    let (_, warnings) = odyssey::config::load_str("w.conf", text).expect("loads");
    let lines: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    let has = |prefix: &str, what: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(prefix) && l.contains(what))
    };
    assert!(
        has("w.conf:2:", "'cache_msg_gc_size' does not apply"),
        "{lines:#?}"
    );
    assert!(has("w.conf:3:", "'mem_limit' does not apply"), "{lines:#?}");
    assert!(
        has(
            "w.conf:18:",
            "'reserve_session_server_connection' does not apply"
        ),
        "{lines:#?}"
    );
    assert!(
        has("w.conf:21:", "'temp_buffers' is not a tracked parameter"),
        "{lines:#?}"
    );
    // server_max_routing (line 11) acts: no warning.
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(matches!(
        odyssey::config::support::lookup("global", "cache_msg_gc_size"),
        Some(Unsupported::NotApplicable(_))
    ));
}
