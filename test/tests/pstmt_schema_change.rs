//! A table altered while statements on it are cached on servers: a use on a server fails as
//! PostgreSQL fails it ("cached plan must not change result type"), and a driver prepares the
//! statement again, as drivers do. The same text maps to the same server-side statement, so
//! the pooler must drop the server's stale copy — otherwise the new statement would run the old
//! plan and fail for ever.

use odyssey_test::pstmt::{self, Mode};
use odyssey_test::{ConnParams, connect};

#[test]
fn altered_table_recovers_after_one_error_per_server() {
    let (cluster, pooler) = pstmt::start(
        Mode::Transaction,
        2,
        "CREATE TABLE t (a int); INSERT INTO t VALUES (1);",
    );
    let params = ConnParams::tcp(pooler.port(), "postgres");
    let mut client = connect(&params).expect("connect through the pooler");
    let stmt = client.prepare("SELECT * FROM t").expect("prepare");
    assert_eq!(client.query(&stmt, &[]).expect("first run").len(), 1);

    cluster
        .psql(
            "postgres",
            "postgres",
            "ALTER TABLE t ADD COLUMN b int DEFAULT 7",
        )
        .expect("alter table");

    // Each server that cached the old plan fails once; the client then prepares again (a
    // new statement object, the same text) and that works.
    let mut stmt = stmt;
    let mut errors = 0;
    let mut recovered = false;
    for _ in 0..(pstmt::POOL_SIZE as usize * 2 + 2) {
        match client.query(&stmt, &[]) {
            Ok(rows) => {
                assert_eq!(rows.len(), 1);
                assert_eq!(rows[0].len(), 2, "the new plan has the new column");
                recovered = true;
                break;
            }
            Err(e) => {
                let msg = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| e.to_string());
                assert!(
                    msg.contains("cached plan must not change result type"),
                    "unexpected error: {msg}"
                );
                errors += 1;
                stmt = client.prepare("SELECT * FROM t").expect("prepare again");
            }
        }
    }
    assert!(
        recovered,
        "the statement never worked again after {errors} errors\n{}",
        pstmt::log_tail(&pooler)
    );
    // The idle pool is LIFO: the client's server is the one with the stale plan.
    assert!(
        errors >= 1,
        "the stale plan was never hit: the test did not test anything"
    );
    for _ in 0..10 {
        let rows = client.query(&stmt, &[]).expect("runs after recovery");
        assert_eq!(rows[0].len(), 2);
    }
}
