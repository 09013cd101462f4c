//! PostgreSQL going away under the pooler: restarted (`pg_ctl restart -m fast`) while clients
//! loop on transactions, and stopped outright.
//!
//! A restart may fail the transactions that were running while it happened, but no others:
//! once PostgreSQL is back, every client's next transaction works — the pooler never hands
//! out a server that died in the restart (a "stale server"). A stopped PostgreSQL gives a
//! client a clear error within `backend_connect_timeout_ms`, never a hang, and the pool
//! recovers as soon as it is back.
//!
//! Config: `pool "transaction"`, `pool_size 4` (fewer servers than the 10 clients, so servers
//! are shared and idle ones sit in the pool during the restart), `backend_connect_timeout_ms`
//! 2000.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::looping::{self, start_clients};
use odyssey_test::pg::Client;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect, wait_for};

const CLIENTS: usize = 10;
const CONNECT_TIMEOUT_MS: u64 = 2000;
/// How long a client keeps looping after the restart (its next transactions must all work).
/// More than a second: a transaction that failed during the restart may take that long to
/// end, as the pooler gives a client a second to read its FATAL and close.
const AFTER: Duration = Duration::from_millis(2000);

fn rules() -> String {
    format!(
        r#"backend_connect_timeout_ms {CONNECT_TIMEOUT_MS}
database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 4
		pool_timeout 10000
	}}
}}
"#
    )
}

fn start() -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    let pooler = Pooler::start(&config(cluster.port(), &rules())).expect("start odyssey");
    (cluster, pooler)
}

/// One transaction, checked.
fn transaction(client: &mut Client) -> Result<(), String> {
    let rows = client
        .simple_query("BEGIN; SELECT 41 + 1; COMMIT")
        .map_err(|e| format!("{e:?}"))?;
    let answered = rows.iter().any(|m| match m {
        odyssey_test::pg::SimpleQueryMessage::Row(r) => r.get(0) == Some("42"),
        _ => false,
    });
    answered.then_some(()).ok_or_else(|| "no row".to_string())
}

#[test]
fn restart_fails_only_transactions_during_it_and_every_client_recovers() {
    let (mut cluster, pooler) = start();
    // Every client runs (and fills the pool) before the restart, however loaded the machine.
    let params = pooler.params("postgres");
    let (all_ran, stop, clients) =
        start_clients(CLIENTS, &params, transaction, Duration::from_secs(10));
    assert!(
        all_ran,
        "not every client ran a transaction\n{}",
        pooler.log()
    );
    thread::sleep(Duration::from_millis(100));
    let restart_began = Instant::now();
    cluster.restart().expect("restart postgres");
    let restart_ended = Instant::now();
    thread::sleep(AFTER);
    stop.store(true, Ordering::Relaxed);
    let traces: Vec<looping::Trace> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    let mut failed_during = 0;
    for (n, trace) in traces.iter().enumerate() {
        // A transaction still running when the restart began may fail: only the ones that
        // ended before it must have worked.
        assert!(
            trace.worked_before(restart_began),
            "client {n} failed before the restart; its last runs: {:?}\n{}",
            trace.last_runs(restart_began),
            pooler.log()
        );
        failed_during += trace.failed_between(restart_began, restart_ended);
        let after = trace.begun_after(restart_ended);
        assert!(
            !after.is_empty(),
            "client {n} ran nothing after the restart; its last runs: {:?}\n{}",
            trace.last_runs(restart_began),
            pooler.log()
        );
        for run in after {
            assert!(
                run.result.is_ok(),
                "client {n}: transaction {:?} after the restart failed: {:?}\n{}",
                run.began.duration_since(restart_ended),
                run.result,
                pooler.log()
            );
        }
    }
    let total: usize = traces.iter().map(|t| t.runs.len()).sum();
    eprintln!(
        "restart took {:?}; {total} transactions, {failed_during} failed during it, 0 after",
        restart_ended - restart_began
    );
}

#[test]
fn stopped_postgres_fails_logins_on_time_and_the_pool_recovers() {
    let (mut cluster, pooler) = start();
    let params = pooler.params("postgres");
    let mut warm = connect(&params).expect("connect");
    transaction(&mut warm).expect("transaction before the stop");
    cluster.stop().expect("stop postgres");

    // A connected client (idle, transaction pool) and a new one both fail, on time: in
    // transaction pooling the login needs no server, the first transaction does.
    for (what, mut attempt) in [
        (
            "connected client",
            Box::new(move || transaction(&mut warm)) as Box<dyn FnMut() -> Result<(), String>>,
        ),
        (
            "new client",
            Box::new(|| {
                let mut client = connect(&params).map_err(|e| format!("{e:?}"))?;
                transaction(&mut client)
            }),
        ),
    ] {
        let began = Instant::now();
        let err = attempt().expect_err("a transaction without PostgreSQL succeeded");
        let took = began.elapsed();
        assert!(
            took < Duration::from_millis(CONNECT_TIMEOUT_MS + 1000),
            "{what}: error after {took:?}: {err}"
        );
        assert!(
            err.contains("08006") || err.contains("08001") || err.contains("Closed"),
            "{what}: unclear error: {err}"
        );
        eprintln!("{what}: error after {took:?}");
    }

    cluster.restart().expect("start postgres again");
    let back = Instant::now();
    let recovered = wait_for(Duration::from_secs(5), || {
        connect(&params).is_ok_and(|mut c| transaction(&mut c).is_ok())
    });
    assert!(recovered, "no recovery within 5 s\n{}", pooler.log());
    eprintln!("recovered {:?} after PostgreSQL was back", back.elapsed());
}
