//! `log_config`: the config as the pooler understood it, line by line for the log (upstream's
//! `od_config_print` and `od_rules_print`, with our own wording where our model differs).
//! Passwords are never printed.

use super::auth::AuthMethod;
use super::pool::PoolMode;
use super::rule::{ConnType, Rule};
use super::{Config, Storage, StorageType};

/// The global options: `(context, line)` pairs, context "config".
pub fn globals(config: &Config) -> Vec<(&'static str, String)> {
    let g = &config.global;
    let yes = |b: bool| if b { "yes" } else { "no" };
    let mut lines = vec![
        format!("daemonize               {}", yes(g.daemonize)),
        format!("sequential_routing      {}", yes(g.sequential_routing)),
        format!("log_debug               {}", yes(g.log.debug)),
        format!("log_config              {}", yes(g.log.config)),
        format!("log_session             {}", yes(g.log.session)),
        format!("log_query               {}", yes(g.log.query)),
        format!("log_stats               {}", yes(g.log.stats)),
        format!("log_to_stdout           {}", yes(g.log.to_stdout)),
        format!("log_syslog              {}", yes(g.log.syslog)),
        format!("stats_interval          {}", g.stats_interval.as_secs()),
        format!("nodelay                 {}", yes(g.nodelay)),
        format!("keepalive               {}", g.keepalive.idle.as_secs()),
        format!("keepalive_keep_interval {}", g.keepalive.interval.as_secs()),
        format!("keepalive_probes        {}", g.keepalive.probes),
        format!("keepalive_usr_timeout   {}", g.keepalive.usr_timeout_ms),
        format!("client_max_routing      {}", g.client_max_routing),
        format!("workers                 {:?}", g.workers),
        format!("resolvers               {}", g.resolvers),
        format!(
            "backend_connect_timeout_ms {}",
            g.backend_connect_timeout.as_millis()
        ),
        format!("cancel_timeout_ms       {}", g.cancel_timeout.as_millis()),
        format!("virtual_transaction     {}", yes(g.virtual_transaction)),
        format!(
            "smart_search_path_enquoting {}",
            yes(g.smart_search_path_enquoting)
        ),
    ];
    if let Some(max) = g.client_max {
        lines.push(format!("client_max              {max}"));
    }
    for (name, value) in [
        ("pid_file               ", &g.pid_file),
        ("unix_socket_dir        ", &g.unix_socket_dir),
        ("log_file               ", &g.log.file),
        ("hba_file               ", &g.hba_file),
    ] {
        if let Some(v) = value {
            lines.push(format!("{name} {v}"));
        }
    }
    lines.into_iter().map(|l| ("config", l)).collect()
}

/// The storages and rules: `(context, line)` pairs, contexts "storage" and "rules".
pub fn rules(config: &Config) -> Vec<(&'static str, String)> {
    let mut lines = vec![("config", "storages".to_string())];
    for storage in &config.storages {
        lines.extend(
            describe_storage(storage)
                .into_iter()
                .map(|l| ("storage", l)),
        );
    }
    for rule in &config.rules {
        lines.extend(describe_rule(rule).into_iter().map(|l| ("rules", l)));
    }
    lines
}

fn describe_storage(s: &Storage) -> Vec<String> {
    let kind = match s.kind {
        StorageType::Remote => "remote",
        StorageType::Local => "local",
    };
    let mut lines = vec![
        format!("storage {}", s.name),
        format!("  storage types           {kind}"),
        format!("  port          {}", s.port),
    ];
    for (i, ep) in s.endpoints.iter().enumerate() {
        let port = ep.port.map_or(String::new(), |p| format!(":{p}"));
        lines.push(format!("  endpoint[{i}] {}{port}", ep.host));
    }
    lines
}

fn describe_rule(r: &Rule) -> Vec<String> {
    let k = &r.key;
    let conn = match k.conn_type {
        ConnType::Default => "all",
        ConnType::Host => "host",
        ConnType::HostSsl => "hostssl",
        ConnType::HostNoSsl => "hostnossl",
        ConnType::Local => "local",
    };
    let auth = r.auth.method.map_or("(none set)", AuthMethod::name);
    let pool = match r.pool.mode.unwrap_or(PoolMode::Session) {
        PoolMode::Session => "session",
        PoolMode::Transaction => "transaction",
        PoolMode::Statement => "statement",
    };
    let seconds = |t: Option<std::time::Duration>| t.map_or(0, |t| t.as_millis());
    vec![
        format!("<{}.{} {} {conn}>", k.db, k.user, k.address),
        format!("  authentication                    {auth}"),
        format!("  pool                              {pool}"),
        format!("  pool size                         {}", r.pool.size),
        format!("  min pool size                     {}", r.pool.min_size),
        format!(
            "  pool timeout                      {}",
            seconds(r.pool.timeout)
        ),
        format!(
            "  pool ttl                          {}",
            seconds(r.pool.ttl)
        ),
        format!("  pool discard                      {}", r.pool.discard),
        format!("  pool cancel                       {}", r.pool.cancel),
        format!("  pool rollback                     {}", r.pool.rollback),
        format!(
            "  client max                        {}",
            r.client_max.map_or("not set".into(), |m| m.to_string())
        ),
        format!("  storage                           {}", r.storage),
        format!(
            "  storage_db                        {}",
            r.storage_db.as_deref().unwrap_or("(the client's)")
        ),
        format!(
            "  storage_user                      {}",
            r.storage_user.as_deref().unwrap_or("(the client's)")
        ),
        format!("  log_debug                         {}", r.log_debug),
        format!("  log_query                         {}", r.log_query),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_and_globals_are_described_without_passwords() {
        let text = r#"
log_format "%p %t %l %m\n"
storage "pg" {
	type "remote"
	host "127.0.0.1"
	port 5432
}
database "db" {
	user "u" {
		authentication "md5"
		password "hunter2secret"
		storage "pg"
		pool "transaction"
		pool_size 7
	}
}
listen {
	host "127.0.0.1"
	port 6432
}
"#;
        let (config, _) =
            crate::config::load_with(std::path::Path::new("/t.conf"), &|_| Ok(text.to_string()))
                .expect("a valid config");
        let all: Vec<String> = globals(&config)
            .into_iter()
            .chain(rules(&config))
            .map(|(_, l)| l)
            .collect();
        let joined = all.join("\n");
        assert!(joined.contains("<db.u "), "{joined}");
        assert!(joined.contains("pool                              transaction"));
        assert!(joined.contains("pool size                         7"));
        assert!(joined.contains("authentication                    md5"));
        assert!(joined.contains("endpoint[0] 127.0.0.1"));
        assert!(!joined.contains("hunter2secret"), "a password was printed");
    }
}
