//! Simple and extended queries relayed through the pooler in session mode, and an error that
//! leaves the session usable.

use std::time::Duration;

use odyssey_test::pg::error::SqlState;
use odyssey_test::{Cluster, Pooler, cluster_and_pooler, connect, psql};

const TIMEOUT: Duration = Duration::from_secs(20);

fn start() -> (Cluster, Pooler) {
    cluster_and_pooler(
        r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
		pool_size 4
	}
}
"#,
    )
}

#[test]
fn simple_and_extended_queries_are_relayed() {
    let (_cluster, pooler) = start();

    // psql: simple query protocol, several statements and rows.
    let out = psql(
        &pooler.params("postgres"),
        "SELECT g, g * g FROM generate_series(1, 3) g",
        TIMEOUT,
    )
    .unwrap();
    assert!(out.success(), "{}\n{}", out.combined(), pooler.log());
    assert_eq!(out.stdout, "1|1\n2|4\n3|9\n");

    let mut client = connect(&pooler.params("postgres")).expect("connect through the pooler");
    // Simple query protocol.
    let rows = client.simple_query("SELECT 'a' || 'b'; SELECT 42").unwrap();
    let values: Vec<String> = rows
        .iter()
        .filter_map(|m| match m {
            odyssey_test::pg::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert_eq!(values, ["ab", "42"]);

    // Extended protocol: a named prepared statement run twice with binary parameters.
    let stmt = client
        .prepare("SELECT $1::int8 + $2::int8, $3::text")
        .unwrap();
    for (a, b) in [(1i64, 2i64), (40, 2)] {
        let row = client.query_one(&stmt, &[&a, &b, &"txt"]).unwrap();
        assert_eq!(row.get::<_, i64>(0), a + b);
        assert_eq!(row.get::<_, &str>(1), "txt");
    }
    // Unnamed statement with many rows.
    let rows = client
        .query("SELECT g FROM generate_series(1, $1::int4) g", &[&1000i32])
        .unwrap();
    assert_eq!(rows.len(), 1000);
    assert_eq!(rows[999].get::<_, i32>(0), 1000);
}

/// Regression: about one run in four hung: a stale part of a parked group (both streams
/// readable in one poll batch) withdrew the newer park of the other stream (fixed in
/// machinarium::net::park_any): the next request was forwarded, PostgreSQL answered, and the
/// answer stayed unread in the pooler's server socket while every worker sat in epoll_wait.
#[test]
fn an_error_leaves_the_session_usable() {
    let (_cluster, pooler) = start();
    let mut client = connect(&pooler.params("postgres")).expect("connect through the pooler");
    let stmt = client
        .prepare("SELECT $1::int8 + $2::int8, $3::text")
        .unwrap();
    // An error in either protocol leaves the session usable, with its state intact.
    client
        .batch_execute("SET application_name = 'kept'")
        .unwrap();
    let err = client.simple_query("SELECT 1 / 0").unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO), "{err}");
    let err = client
        .query_one("SELECT 1 / $1::int4", &[&0i32])
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::DIVISION_BY_ZERO), "{err}");
    let row = client
        .query_one("SELECT current_setting('application_name')", &[])
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "kept");
    let row = client.query_one(&stmt, &[&5i64, &6i64, &"x"]).unwrap();
    assert_eq!(row.get::<_, i64>(0), 11);

    // A failed transaction is rolled back and the next one works.
    client.batch_execute("BEGIN").unwrap();
    let err = client
        .batch_execute("SELECT * FROM no_such_table")
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
    let err = client.batch_execute("SELECT 1").unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    client.batch_execute("ROLLBACK").unwrap();
    assert_eq!(
        client.query_one("SELECT 7", &[]).unwrap().get::<_, i32>(0),
        7
    );
}
