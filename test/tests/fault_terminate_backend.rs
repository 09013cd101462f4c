//! `pg_terminate_backend` of every server the pooler holds, while its clients are idle and
//! while they are in a query.
//!
//! Transaction pool, idle: the servers sit in the pool, so the next query of every client
//! works on a fresh server. Session pool, idle: each client owns its server, so its next query
//! gets a clear error (PostgreSQL's 57P01, the pooler's 08006, or the connection closed), never
//! a hang or a wrong answer. In a query, in either mode: the error comes at once. Afterwards new
//! clients are served.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pg::error::SqlState;
use odyssey_test::pg::{Client, Error};
use odyssey_test::{Cluster, Pooler, cluster_and_pooler, connect, wait_for};

const CLIENTS: usize = 4;
/// How long an error may take to reach a client whose server was terminated in a query.
const ERROR_WITHIN: Duration = Duration::from_secs(2);

fn start(mode: &str) -> (Cluster, Pooler) {
    cluster_and_pooler(&format!(
        r#"
database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "{mode}"
		pool_size {CLIENTS}
		pool_timeout 10000
	}}
}}
"#
    ))
}

/// The backends serving the pooler (every client backend on `postgres` but psql's own).
const POOLED: &str = "FROM pg_stat_activity WHERE backend_type = 'client backend' \
                      AND datname = 'postgres' AND pid <> pg_backend_pid()";

/// Terminates every pooled server and waits until PostgreSQL has none left; how many it had.
fn terminate_all(cluster: &Cluster) -> usize {
    let sql = format!("SELECT count(pg_terminate_backend(pid)) {POOLED}");
    let killed: usize = cluster
        .psql("postgres", "postgres", &sql)
        .unwrap()
        .parse()
        .unwrap();
    let gone = wait_for(Duration::from_secs(5), || {
        cluster
            .psql("postgres", "postgres", &format!("SELECT count(*) {POOLED}"))
            .is_ok_and(|n| n == "0")
    });
    assert!(gone, "terminated servers still there");
    killed
}

fn clients(pooler: &Pooler) -> Vec<Client> {
    (0..CLIENTS)
        .map(|_| {
            let mut c = connect(&pooler.params("postgres")).expect("connect");
            assert_eq!(answer(&mut c).ok(), Some(42));
            c
        })
        .collect()
}

fn answer(client: &mut Client) -> Result<i32, Error> {
    client.query_one("SELECT 41 + 1", &[]).map(|r| r.get(0))
}

/// PostgreSQL's FATAL 57P01, the pooler's 08006, or a closed (or reset) connection.
fn is_clear_server_loss(err: &Error) -> bool {
    let io = std::error::Error::source(err).is_some_and(|e| e.is::<std::io::Error>());
    err.is_closed()
        || io
        || err.code() == Some(&SqlState::ADMIN_SHUTDOWN)
        || err.code() == Some(&SqlState::CONNECTION_FAILURE)
}

/// New clients are served after the terminations.
fn new_clients_work(pooler: &Pooler) {
    for mut c in clients(pooler) {
        assert_eq!(answer(&mut c).ok(), Some(42));
    }
}

#[test]
fn transaction_pool_idle_clients_go_on_on_fresh_servers() {
    let (cluster, pooler) = start("transaction");
    let mut clients = clients(&pooler);
    // Transactions open at once hold a server each: all of them go idle into the pool.
    for c in clients.iter_mut() {
        c.batch_execute("BEGIN; SELECT 1").unwrap();
    }
    for c in clients.iter_mut() {
        c.batch_execute("COMMIT").unwrap();
    }
    let killed = terminate_all(&cluster);
    assert_eq!(killed, CLIENTS);
    for (n, c) in clients.iter_mut().enumerate() {
        let got = answer(c);
        assert_eq!(
            got.as_ref().ok(),
            Some(&42),
            "client {n}: {got:?}\n{}",
            pooler.log()
        );
    }
    eprintln!("{killed} idle servers terminated; {CLIENTS} of {CLIENTS} next queries worked");
}

#[test]
fn session_pool_idle_clients_get_a_clear_error() {
    let (cluster, pooler) = start("session");
    let mut clients = clients(&pooler);
    assert_eq!(terminate_all(&cluster), CLIENTS);
    for (n, c) in clients.iter_mut().enumerate() {
        let began = Instant::now();
        let err = answer(c).expect_err("a query on a terminated server succeeded");
        assert!(is_clear_server_loss(&err), "client {n}: {err:?}");
        assert!(
            began.elapsed() < ERROR_WITHIN,
            "client {n}: error after {:?}",
            began.elapsed()
        );
    }
    new_clients_work(&pooler);
}

/// Every client runs a long query; every server is terminated under it.
fn terminated_in_a_query(mode: &str) {
    let (cluster, pooler) = start(mode);
    let sleepers: Vec<_> = clients(&pooler)
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                let r = c.simple_query("SELECT pg_sleep(30)");
                (Instant::now(), r.map(drop))
            })
        })
        .collect();
    let running = wait_for(Duration::from_secs(5), || {
        let sql = format!("SELECT count(*) {POOLED} AND query LIKE 'SELECT pg_sleep%'");
        cluster
            .psql("postgres", "postgres", &sql)
            .is_ok_and(|n| n == CLIENTS.to_string())
    });
    assert!(running, "the sleeps did not start\n{}", pooler.log());
    let killed_at = Instant::now();
    assert_eq!(terminate_all(&cluster), CLIENTS);
    let mut slowest = Duration::ZERO;
    for (n, s) in sleepers.into_iter().enumerate() {
        let (ended, result) = s.join().unwrap();
        let err = result.expect_err("a terminated query succeeded");
        assert!(is_clear_server_loss(&err), "{mode} client {n}: {err:?}");
        slowest = slowest.max(ended.saturating_duration_since(killed_at));
    }
    assert!(
        slowest < ERROR_WITHIN,
        "{mode}: an error came after {slowest:?}"
    );
    new_clients_work(&pooler);
    eprintln!("{mode}: {CLIENTS} servers terminated in a query; slowest error {slowest:?}");
}

#[test]
fn transaction_pool_clients_in_a_query_get_a_clear_error() {
    terminated_in_a_query("transaction");
}

#[test]
fn session_pool_clients_in_a_query_get_a_clear_error() {
    terminated_in_a_query("session");
}
