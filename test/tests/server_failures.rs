//! Servers that die under the pooler: a terminated backend and a restarted PostgreSQL.

use odyssey_test::pg::error::SqlState;
use odyssey_test::{Cluster, Pooler, cluster_and_pooler, connect};

const RULES: &str = r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
		pool_size 4
	}
}
"#;

fn start() -> (Cluster, Pooler) {
    cluster_and_pooler(RULES)
}

fn one(pooler: &Pooler) -> i32 {
    let mut client = connect(&pooler.params("postgres"))
        .unwrap_or_else(|e| panic!("connect: {e}\n{}", pooler.log()));
    client
        .query_one("SELECT 1", &[])
        .unwrap_or_else(|e| panic!("query: {e}\n{}", pooler.log()))
        .get(0)
}

#[test]
fn terminated_backend_fails_the_client_and_new_clients_work() {
    let (cluster, pooler) = start();
    let mut client = connect(&pooler.params("postgres")).unwrap();
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let killed = cluster
        .psql(
            "postgres",
            "postgres",
            &format!("SELECT pg_terminate_backend({pid})"),
        )
        .unwrap();
    assert_eq!(killed, "t");
    let err = client
        .simple_query("SELECT 1")
        .expect_err("a query on a terminated backend succeeded");
    // PostgreSQL's FATAL 57P01, the pooler's 08006, or a closed (or, with SO_LINGER 0,
    // reset) connection: never a result.
    let io = std::error::Error::source(&err).is_some_and(|e| e.is::<std::io::Error>());
    assert!(
        err.is_closed()
            || io
            || err.code() == Some(&SqlState::ADMIN_SHUTDOWN)
            || err.code() == Some(&SqlState::CONNECTION_FAILURE),
        "{err:?}"
    );
    assert_eq!(one(&pooler), 1);
}

#[test]
fn restarted_postgres_serves_new_clients() {
    let (mut cluster, pooler) = start();
    // Leave idle servers in the pool.
    for _ in 0..2 {
        assert_eq!(one(&pooler), 1);
    }
    cluster.restart().expect("restart postgres");
    for _ in 0..3 {
        assert_eq!(one(&pooler), 1);
    }
}
