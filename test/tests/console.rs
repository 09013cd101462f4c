//! The admin console (spec §5) against a real PostgreSQL: every SHOW command's columns match
//! upstream's (test/fixtures/console_columns.txt, from upstream's sources/console.c) over the
//! extended protocol, and psql reads them over the simple one; counters move by exactly the
//! queries a test runs; PAUSE holds a client until RESUME; KILL_CLIENT ends the named client
//! only; RELOAD applies a changed config; roles limit what a console user may do.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pg::SimpleQueryMessage;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect, psql, wait_for};

const RULES: &str = r#"
storage "local" {
	type "local"
}

database "console" {
	user "admin" {
		authentication "none"
		role "admin"
		storage "local"
		pool "session"
		quantiles "0.5,0.99"
	}
	user "viewer" {
		authentication "none"
		role "stat"
		storage "local"
		pool "session"
	}
	user "nobody" {
		authentication "none"
		role "notallow"
		storage "local"
		pool "session"
	}
}

database default {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		storage_user "postgres"
		pool "transaction"
		pool_size 4
	}
}
"#;

fn start() -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    (cluster, pooler)
}

fn console(pooler: &Pooler, user: &str) -> postgres::Client {
    connect(&ConnParams::tcp(pooler.port(), user).dbname("console")).expect("console login")
}

/// Rows of a console command over the simple protocol, as text.
fn rows(c: &mut postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    c.simple_query(sql)
        .expect(sql)
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

fn expected_columns() -> Vec<(String, Vec<(String, String)>)> {
    let text = include_str!("../fixtures/console_columns.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, cols) = l.split_once(' ').expect("name and columns");
            let cols = cols
                .split(',')
                .map(|c| {
                    let (n, t) = c.rsplit_once(':').expect("name:type");
                    (n.to_string(), t.to_string())
                })
                .collect();
            (name.to_string(), cols)
        })
        .collect()
}

#[test]
fn every_show_has_upstreams_columns_over_both_protocols() {
    let (cluster, pooler) = start();
    // A route with a server, so that row-per-route commands have rows.
    let mut app = connect(&ConnParams::tcp(pooler.port(), "app")).expect("app");
    app.simple_query("select 1").expect("query");
    let mut c = console(&pooler, "admin");
    for (command, columns) in expected_columns() {
        let sql = format!("SHOW {command}");
        let statement = c.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let got: Vec<(String, String)> = statement
            .columns()
            .iter()
            .map(|col| (col.name().to_string(), col.type_().name().to_string()))
            .collect();
        assert_eq!(got, columns, "{sql}");
        // The same through psql (simple protocol), lower case and with a `;`.
        let out = psql(
            &ConnParams::tcp(pooler.port(), "admin").dbname("console"),
            &format!("show {};", command.to_lowercase()),
            Duration::from_secs(10),
        )
        .expect("psql");
        assert!(out.success(), "{sql}: {}", out.combined());
    }
    let pools = rows(&mut c, "SHOW POOLS");
    assert!(
        pools.iter().any(|r| r[0].as_deref() == Some("postgres")
            && r[1].as_deref() == Some("app")
            && r[11].as_deref() == Some("transaction")),
        "{pools:?}"
    );
    let extended = rows(&mut c, "show pools_extended");
    assert_eq!(extended.last().unwrap()[0].as_deref(), Some("aggregated"));
    drop(cluster);
}

fn stats_row(c: &mut postgres::Client) -> Vec<u64> {
    let rows = rows(c, "SHOW STATS");
    let row = rows
        .iter()
        .find(|r| r[0].as_deref() == Some("postgres"))
        .cloned()
        .unwrap_or_default();
    row.iter()
        .skip(1)
        .map(|v| v.as_deref().unwrap_or("0").parse().expect("number"))
        .collect()
}

#[test]
fn counters_move_by_exactly_the_queries_run() {
    let (_cluster, pooler) = start();
    let mut app = connect(&ConnParams::tcp(pooler.port(), "app")).expect("app");
    app.simple_query("select 1").expect("warm up");
    let mut c = console(&pooler, "viewer");
    let before = stats_row(&mut c);
    for i in 0..7 {
        app.simple_query(&format!("select {i}")).expect("query");
    }
    app.simple_query("begin; select 1; select 2; commit")
        .expect("transaction");
    let after = stats_row(&mut c);
    // total_xact_count, total_query_count: 7 single-statement transactions, then one
    // multi-statement query string that is one more query and one more transaction.
    assert_eq!(after[0] - before[0], 8, "transactions {before:?} {after:?}");
    assert_eq!(after[1] - before[1], 8, "queries");
    assert!(after[3] > before[3], "bytes received");
    assert!(after[4] > before[4], "bytes sent");
    assert!(after[6] > before[6], "query time");

    // Prepared statements: the client's Parse messages are counted; a statement a server has
    // already is reused.
    for i in 0..3 {
        let row = app
            .query_one("select $1::int + 1", &[&i])
            .expect("prepared query");
        assert_eq!(row.get::<_, i32>(0), i + 1);
    }
    let parsed = stats_row(&mut c);
    assert_eq!(parsed[16] - after[16], 3, "total_parse_count");
    assert!(
        parsed[17] - after[17] >= 2,
        "total_parse_count_reuse {parsed:?}"
    );

    // A cancel is counted on the route of the client it was for.
    let token = app.cancel_token();
    let sleeper = thread::spawn(move || app.simple_query("select pg_sleep(30)").is_err());
    thread::sleep(Duration::from_millis(500));
    token.cancel_query(postgres::NoTls).expect("cancel");
    assert!(
        sleeper.join().expect("sleeper"),
        "the query must be cancelled"
    );
    assert!(wait_for(Duration::from_secs(5), || stats_row(&mut c)[18]
        - parsed[18]
        == 1));
}

#[test]
fn pause_holds_a_client_until_resume() {
    let (_cluster, pooler) = start();
    let params = ConnParams::tcp(pooler.port(), "app");
    let mut app = connect(&params).expect("app");
    app.simple_query("select 1").expect("warm up");
    let mut admin = console(&pooler, "admin");
    admin.simple_query("PAUSE").expect("pause");
    assert_eq!(
        rows(&mut admin, "show is_paused")[0][0].as_deref(),
        Some("t")
    );
    let started = Instant::now();
    let worker = thread::spawn(move || {
        app.simple_query("select 42").expect("query after resume");
        Instant::now()
    });
    thread::sleep(Duration::from_millis(500));
    assert!(!worker.is_finished(), "a paused client must wait");
    let resumed = Instant::now();
    admin.simple_query("RESUME").expect("resume");
    let done = worker.join().expect("client thread");
    assert!(done >= resumed && done - started >= Duration::from_millis(500));
    assert_eq!(
        rows(&mut admin, "show is_paused")[0][0].as_deref(),
        Some("f")
    );
}

#[test]
fn kill_client_ends_the_named_client_only() {
    let (_cluster, pooler) = start();
    let mut alice = connect(&ConnParams::tcp(pooler.port(), "alice")).expect("alice");
    let mut bob = connect(&ConnParams::tcp(pooler.port(), "bob")).expect("bob");
    alice.simple_query("select 1").expect("alice");
    let mut admin = console(&pooler, "admin");
    let clients = rows(&mut admin, "SHOW CLIENTS");
    let alice_id = clients
        .iter()
        .find(|r| r[1].as_deref() == Some("alice"))
        .and_then(|r| r[13].clone())
        .expect("alice listed");
    assert!(clients.iter().any(|r| r[1].as_deref() == Some("admin")));
    admin
        .simple_query(&format!("KILL_CLIENT {alice_id}"))
        .expect("kill");
    assert!(
        wait_for(Duration::from_secs(5), || alice
            .simple_query("select 1")
            .is_err()),
        "alice must be disconnected"
    );
    bob.simple_query("select 1").expect("bob goes on");
    assert!(pooler.wait_log(&format!("client {alice_id} killed"), Duration::from_secs(5)));
    assert!(wait_for(Duration::from_secs(5), || {
        let errors = rows(&mut admin, "SHOW ERRORS");
        errors
            .iter()
            .any(|r| r[0].as_deref() == Some("OD_ECLIENT_KILLED") && r[1].as_deref() == Some("1"))
    }));
}

#[test]
fn reload_from_the_console_applies_a_changed_route() {
    let (cluster, pooler) = start();
    let added = RULES.replace(
        "database default {",
        "database \"extra\" {\n\tuser \"x\" {\n\t\tauthentication \"none\"\n\t\tstorage \"postgres_server\"\n\
         \t\tstorage_db \"postgres\"\n\t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t\tpool_size 7\n\t}\n}\n\
         database default {",
    );
    pooler
        .rewrite_config(&config(cluster.port(), &added))
        .expect("rewrite");
    let mut admin = console(&pooler, "admin");
    admin.simple_query("RELOAD").expect("reload");
    let mut x = connect(&ConnParams::tcp(pooler.port(), "x").dbname("extra")).expect("x");
    x.simple_query("select 1").expect("query on the new route");
    let dbs = rows(&mut admin, "SHOW DATABASES");
    assert!(
        dbs.iter()
            .any(|r| r[3].as_deref() == Some("extra") && r[5].as_deref() == Some("7")),
        "{dbs:?}"
    );
}

#[test]
fn roles_and_bad_commands() {
    let (_cluster, pooler) = start();
    let mut viewer = console(&pooler, "viewer");
    let err = viewer
        .simple_query("RELOAD")
        .expect_err("stat may not reload");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    let err = viewer.simple_query("SHOW NONSENSE").expect_err("unknown");
    assert_eq!(err.code().map(|c| c.code()), Some("42601"), "{err}");
    let message = err.as_db_error().map(|e| e.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("console command error: SHOW NONSENSE")),
        "{message:?}"
    );
    // The session goes on after errors.
    assert_eq!(rows(&mut viewer, "show version").len(), 1);
    let mut nobody = console(&pooler, "nobody");
    let err = nobody.simple_query("SHOW POOLS").expect_err("notallow");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));
    let err = viewer
        .simple_query("select 1")
        .expect_err("not a console command");
    assert_eq!(err.code().map(|c| c.code()), Some("42601"));
}
