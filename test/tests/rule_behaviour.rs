//! Directives that were read at runtime with no test of their own: `client_show_id`,
//! `client_fwd_error`, `pool_discard_query`, `server_lifetime`, `log_stats` with
//! `stats_interval`. Each test states its config inline and checks what the client or the
//! server sees.

use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::raw::RawConn;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect, wait_for};

/// A raw login; the error the pooler answers with, if any.
fn login_error(pooler: &Pooler, user: &str, database: &str) -> Option<(String, String)> {
    let mut conn = RawConn::connect(pooler.port(), Duration::from_secs(5)).expect("connect");
    conn.startup(&[("user", user), ("database", database)])
        .expect("startup");
    while let Ok(Some(m)) = conn.recv() {
        if let Some(e) = m.error() {
            return Some(e);
        }
        if m.tag == b'Z' {
            return None;
        }
    }
    None
}

#[test]
fn client_show_id_and_client_fwd_error_shape_the_errors_a_client_sees() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
database "blocked_quiet" {
	user default {
		authentication "block"
		client_show_id no
		storage "postgres_server"
		pool "session"
	}
}
database "blocked_loud" {
	user default {
		authentication "block"
		storage "postgres_server"
		pool "session"
	}
}
database "gone_fwd" {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "no_such_database"
		client_fwd_error yes
		pool "session"
	}
}
database "gone" {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "no_such_database"
		pool "session"
	}
}
"#,
    ))
    .expect("pooler");
    let (_, quiet) = login_error(&pooler, "postgres", "blocked_quiet").expect("refused");
    assert!(quiet.starts_with("odyssey: user blocked"), "{quiet}");
    let (_, loud) = login_error(&pooler, "postgres", "blocked_loud").expect("refused");
    assert!(
        loud.starts_with("odyssey: c") && loud.contains(": user blocked"),
        "the id is shown by default: {loud}"
    );
    let (code, fwd) = login_error(&pooler, "postgres", "gone_fwd").expect("refused");
    assert_eq!(code, "3D000", "PostgreSQL's own error is forwarded: {fwd}");
    assert!(fwd.contains("no_such_database"), "{fwd}");
    let (code, plain) = login_error(&pooler, "postgres", "gone").expect("refused");
    assert_eq!(code, "08006", "{plain}");
    assert!(
        plain.contains("failed to get remote server connection"),
        "{plain}"
    );
}

#[test]
fn pool_discard_query_runs_when_a_client_leaves() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .psql("postgres", "postgres", "CREATE TABLE discards (n int)")
        .expect("table");
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
		pool_discard no
		pool_discard_query "INSERT INTO discards VALUES (1)"
	}
}
"#,
    ))
    .expect("pooler");
    for _ in 0..2 {
        let mut client = connect(&ConnParams::tcp(pooler.port(), "postgres")).expect("connect");
        client.simple_query("SELECT 1").expect("query");
    }
    let count = || {
        cluster
            .psql("postgres", "postgres", "SELECT count(*) FROM discards")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    assert!(
        wait_for(Duration::from_secs(10), || count() == "2"),
        "discard query runs: {}\n{}",
        count(),
        pooler.log()
    );
}

#[test]
fn server_lifetime_closes_idle_servers_past_it() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 1
		server_lifetime 1
	}
}
"#,
    ))
    .expect("pooler");
    let mut client = connect(&ConnParams::tcp(pooler.port(), "postgres")).expect("connect");
    let pid = |c: &mut odyssey_test::pg::Client| -> i32 {
        c.query_one("SELECT pg_backend_pid()", &[])
            .expect("pid")
            .get(0)
    };
    let first = pid(&mut client);
    assert!(
        wait_for(Duration::from_secs(10), || pid(&mut client) != first),
        "the server outlived server_lifetime\n{}",
        pooler.log()
    );
}

#[test]
fn log_stats_writes_a_line_every_stats_interval() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
log_stats yes
stats_interval 1
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
	}
}
"#,
    ))
    .expect("pooler");
    let mut client = connect(&ConnParams::tcp(pooler.port(), "postgres")).expect("connect");
    client.simple_query("SELECT 1").expect("query");
    assert!(
        pooler.wait_log("(stats)", Duration::from_secs(10)),
        "no stats line\n{}",
        pooler.log()
    );
}

#[test]
fn pool_smart_discard_resets_without_dropping_prepared_statements() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    // Two routes with one server each: a client leaves a SQL prepared statement (state the
    // pooler must reset); with the smart discard it survives the reset (DISCARD ALL would
    // drop it), and the session's settings do not.
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
database "postgres" {
	user "postgres" {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 1
		pool_discard no
		pool_smart_discard yes
		pool_reserve_prepared_statement yes
	}
	user default {
		authentication "none"
		storage "postgres_server"
		storage_user "postgres"
		pool "transaction"
		pool_size 1
		pool_discard no
	}
}
"#,
    ))
    .expect("pooler");
    // With pool_reserve_prepared_statement the pooler maps the client's SQL PREPARE to a
    // statement of its own (`odyssey_…`); without it, `kept` reaches the server as written.
    let after_reset = |user: &str, kept: &str| {
        let params = ConnParams::tcp(pooler.port(), user);
        let mut first = connect(&params).expect("connect");
        first
            .batch_execute("PREPARE kept AS SELECT 1")
            .expect("prepare");
        first.batch_execute("SET work_mem = '7MB'").expect("set");
        drop(first);
        let mut second = connect(&params).expect("connect again");
        let row = second
            .query_one(
                "SELECT (SELECT count(*) FROM pg_prepared_statements \
                 WHERE name = $1 OR statement LIKE $1), current_setting('work_mem')",
                &[&kept],
            )
            .expect("look");
        (row.get::<_, i64>(0), row.get::<_, String>(1))
    };
    let (kept, work_mem) = after_reset("postgres", "PREPARE odyssey% AS SELECT 1");
    assert_eq!(
        kept,
        1,
        "the smart discard keeps prepared statements\n{}",
        pooler.log()
    );
    assert_ne!(work_mem, "7MB", "but resets settings");
    let (kept, _) = after_reset("someone", "kept");
    assert_eq!(kept, 0, "DISCARD ALL drops it (the test tests something)");
}

#[test]
fn max_sigterms_to_die_ends_a_draining_pooler_at_once() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let mut pooler = Pooler::start(&config(
        cluster.port(),
        r#"
max_sigterms_to_die 2
graceful_shutdown_timeout_ms 60000
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#,
    ))
    .expect("pooler");
    // A client in a long query keeps the graceful drain waiting.
    let params = ConnParams::tcp(pooler.port(), "postgres");
    let busy = std::thread::spawn(move || {
        let mut client = connect(&params).expect("connect");
        let _ = client.simple_query("SELECT pg_sleep(30)");
    });
    assert!(wait_for(Duration::from_secs(10), || {
        cluster
            .psql(
                "postgres",
                "postgres",
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'",
            )
            .is_ok_and(|s| s.trim() == "1")
    }));
    pooler.signal(odyssey_test::Signal::Term).expect("SIGTERM");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        pooler.wait_exit(Duration::from_millis(500)).is_none(),
        "the first one drains"
    );
    pooler.signal(odyssey_test::Signal::Term).expect("SIGTERM");
    let status = pooler.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| !s.success()),
        "the second SIGTERM ends it: {status:?}\n{}",
        pooler.log()
    );
    drop(busy);
}
