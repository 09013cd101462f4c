//! What a rule says about the parameters and socket of its clients reaches PostgreSQL:
//! `backend_startup_options { }` (the server's StartupMessage), `options { }` (forced client
//! parameters, deployed), `application_name_add_host` (` - ip:port` appended),
//! `maintain_params no` (nothing deployed), rule `keepalive` (re-set on the client socket), rule
//! `log_query`/`log_debug` (that rule's clients only) and
//! `log_session no` (no server-connection lines either). Regression: each was parsed and
//! ignored (issue 15).

use std::process::Command;
use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::raw::RawConn;
use odyssey_test::tx::{first_values, simple_query};
use odyssey_test::{Cluster, ClusterOptions, Pooler};

/// One rule per database name, each served by the cluster's `postgres` database.
const RULES: &str = r#"
database "startup_opts" {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		pool "session"
		backend_startup_options {
			"temp_buffers" "16MB"
		}
	}
}

database "forced" {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		pool "session"
		options {
			"search_path" "forced_schema"
			"work_mem" "5555kB"
			"temp_buffers" "24MB"
		}
	}
}

database "addhost" {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		pool "session"
		application_name_add_host yes
	}
}

database "nomaintain" {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		pool "session"
		maintain_params no
	}
}

database "maintain" {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		pool "session"
	}
}

database "logs" {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		pool "session"
		log_query yes
		log_debug yes
	}
}

database "keepalive" {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		pool "session"
		keepalive 3000
		keepalive_keep_interval 10
		keepalive_probes 2
	}
}
"#;

fn start() -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    (cluster, pooler)
}

/// Logs in to `database` with extra startup `params`.
fn login(pooler: &Pooler, database: &str, params: &[(&str, &str)]) -> RawConn {
    let mut conn = RawConn::connect(pooler.port(), Duration::from_secs(10)).expect("connect");
    let mut startup = vec![("user", "postgres"), ("database", database)];
    startup.extend_from_slice(params);
    conn.startup(&startup).expect("startup");
    let messages = conn.until_ready().expect("login");
    if let Some(e) = messages.iter().find_map(|m| m.error()) {
        panic!("login to {database} failed: {e:?}\n{}", pooler.log());
    }
    conn
}

/// The single value `sql` returns.
fn one(conn: &mut RawConn, pooler: &Pooler, sql: &str) -> String {
    let messages = simple_query(conn, sql).expect("query");
    if let Some(e) = messages.iter().find_map(|m| m.error()) {
        panic!("{sql}: {e:?}\n{}", pooler.log());
    }
    first_values(&messages).pop().expect("a row")
}

#[test]
fn backend_startup_options_reach_the_startup_packet() {
    let (_cluster, pooler) = start();
    let mut conn = login(&pooler, "startup_opts", &[]);
    // temp_buffers is not a tracked parameter: only the startup packet can have set it.
    assert_eq!(one(&mut conn, &pooler, "SHOW temp_buffers"), "16MB");
}

#[test]
fn options_override_tracked_client_parameters() {
    let (_cluster, pooler) = start();
    let mut conn = login(&pooler, "forced", &[("search_path", "client_schema")]);
    assert_eq!(one(&mut conn, &pooler, "SHOW search_path"), "forced_schema");
    assert_eq!(one(&mut conn, &pooler, "SHOW work_mem"), "5555kB");
    // Untracked names take no effect (spec §2: only the tracked list).
    assert_eq!(one(&mut conn, &pooler, "SHOW temp_buffers"), "8MB");
}

#[test]
fn application_name_add_host_appends_the_client_address() {
    let (_cluster, pooler) = start();
    let mut conn = login(&pooler, "addhost", &[("application_name", "myapp")]);
    let name = one(&mut conn, &pooler, "SHOW application_name");
    assert!(name.starts_with("myapp - 127.0.0.1:"), "{name}");
    let port: u16 = name["myapp - 127.0.0.1:".len()..].parse().expect("a port");
    assert!(port > 0);
    // Without an application_name: "unknown", as upstream.
    let mut conn = login(&pooler, "addhost", &[]);
    let name = one(&mut conn, &pooler, "SHOW application_name");
    assert!(name.starts_with("unknown - 127.0.0.1:"), "{name}");
    // Another rule leaves it alone.
    let mut conn = login(&pooler, "maintain", &[("application_name", "myapp")]);
    assert_eq!(one(&mut conn, &pooler, "SHOW application_name"), "myapp");
}

#[test]
fn maintain_params_no_deploys_nothing() {
    let (_cluster, pooler) = start();
    let mut conn = login(&pooler, "nomaintain", &[("application_name", "myapp")]);
    // The server got user and database only; nothing was SET.
    assert_eq!(one(&mut conn, &pooler, "SHOW application_name"), "");
    let mut conn = login(&pooler, "maintain", &[("application_name", "myapp")]);
    assert_eq!(one(&mut conn, &pooler, "SHOW application_name"), "myapp");
}

/// The keepalive timer `ss` shows for the pooler's side of a client connection from
/// `client_port`.
fn keepalive_timer(pooler_port: u16, client_port: u16) -> Option<String> {
    let out = Command::new("ss")
        .args(["-tno", "state", "established"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| {
            let addrs: Vec<&str> = l
                .split_whitespace()
                .filter(|w| w.starts_with("127.0.0.1:"))
                .collect();
            addrs
                == [
                    format!("127.0.0.1:{pooler_port}"),
                    format!("127.0.0.1:{client_port}"),
                ]
        })
        .and_then(|l| l.split("timer:(").nth(1))
        .map(|t| t.split(')').next().unwrap_or_default().to_string())
}

#[test]
fn rule_keepalive_is_set_on_the_client_socket() {
    let (_cluster, pooler) = start();
    let conn = login(&pooler, "keepalive", &[]);
    let local = conn.local_port();
    // Global keepalive is 15 s; the rule's 3000 s shows as a timer of about 50 minutes.
    let timer = keepalive_timer(pooler.port(), local).expect("ss shows the connection");
    assert!(timer.starts_with("keepalive,"), "{timer}");
    assert!(
        timer.contains("min") && !timer.contains("119min"),
        "{timer}"
    );
    let other = login(&pooler, "maintain", &[]);
    let timer = keepalive_timer(pooler.port(), other.local_port()).expect("ss");
    assert!(
        timer.starts_with("keepalive,") && timer.contains("sec"),
        "{timer}"
    );
}

#[test]
fn log_session_no_also_silences_server_connections() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let template = config(cluster.port(), RULES).replace("log_session yes", "log_session no");
    let pooler = Pooler::start(&template).expect("pooler");
    let mut conn = login(&pooler, "maintain", &[]);
    assert_eq!(one(&mut conn, &pooler, "SELECT 1"), "1");
    drop(conn);
    let log = pooler.log();
    assert!(!log.contains("new server connection"), "{log}");
    assert!(!log.contains("new client connection"), "{log}");
}

#[test]
fn rule_log_query_and_log_debug_cover_that_rules_clients() {
    let (_cluster, pooler) = start();
    let mut conn = login(&pooler, "logs", &[("application_name", "logged_app")]);
    assert_eq!(
        one(&mut conn, &pooler, "SELECT 'logged_marker'"),
        "logged_marker"
    );
    let mut quiet = login(&pooler, "maintain", &[("application_name", "quiet_app")]);
    assert_eq!(
        one(&mut quiet, &pooler, "SELECT 'quiet_marker'"),
        "quiet_marker"
    );
    drop((conn, quiet));
    let log = pooler.log();
    assert!(
        log.lines()
            .any(|l| l.contains("(query) SELECT 'logged_marker'")),
        "{log}"
    );
    assert!(!log.contains("quiet_marker"), "{log}");
    // The deploy of application_name is a debug line: shown for the log_debug rule only.
    assert!(
        log.lines()
            .any(|l| l.contains(" debug ") && l.contains("(deploy)") && l.contains("logged_app")),
        "{log}"
    );
    assert!(!log.contains("quiet_app"), "{log}");
}
