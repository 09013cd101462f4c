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

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pg::Client;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect, wait_for};

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

/// What one looping client saw: when each transaction started and how it ended.
struct Trace {
    runs: Vec<(Instant, Result<(), String>)>,
}

/// Loops transactions until `stop`, reconnecting when the pooler closed the connection.
fn client_loop(params: ConnParams, stop: Arc<AtomicBool>) -> Trace {
    let mut trace = Trace { runs: Vec::new() };
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::Relaxed) {
        let at = Instant::now();
        let result = match client.as_mut() {
            Some(c) => transaction(c),
            None => connect(&params)
                .map_err(|e| format!("connect: {e:?}"))
                .and_then(|mut c| transaction(&mut c).map(|()| client = Some(c))),
        };
        if result.is_err() {
            client = None;
            thread::sleep(Duration::from_millis(10));
        }
        trace.runs.push((at, result));
    }
    trace
}

/// The last few runs of `trace`, timed from `origin`, for failure messages.
fn last_runs(trace: &Trace, origin: Instant) -> Vec<(i128, &Result<(), String>)> {
    let skip = trace.runs.len().saturating_sub(5);
    let ms = |at: Instant| at.duration_since(origin).as_millis() as i128;
    trace.runs[skip..]
        .iter()
        .map(|(at, r)| (ms(*at), r))
        .collect()
}

#[test]
fn restart_fails_only_transactions_during_it_and_every_client_recovers() {
    let (mut cluster, pooler) = start();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (params, stop) = (pooler.params("postgres"), stop.clone());
            thread::spawn(move || client_loop(params, stop))
        })
        .collect();
    thread::sleep(Duration::from_millis(300)); // let every client run and fill the pool
    let restart_began = Instant::now();
    cluster.restart().expect("restart postgres");
    let restart_ended = Instant::now();
    thread::sleep(AFTER);
    stop.store(true, Ordering::Relaxed);
    let traces: Vec<Trace> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    let mut failed_during = 0;
    for (n, trace) in traces.iter().enumerate() {
        let before = trace.runs.iter().filter(|(at, _)| *at < restart_began);
        assert!(
            before.clone().count() > 0 && before.clone().all(|(_, r)| r.is_ok()),
            "client {n} failed before the restart\n{}",
            pooler.log()
        );
        failed_during += trace
            .runs
            .iter()
            .filter(|(at, r)| *at >= restart_began && *at < restart_ended && r.is_err())
            .count();
        let after: Vec<_> = trace
            .runs
            .iter()
            .filter(|(at, _)| *at >= restart_ended)
            .collect();
        assert!(
            !after.is_empty(),
            "client {n} ran nothing after the restart; its last runs: {:?}\n{}",
            last_runs(trace, restart_began),
            pooler.log()
        );
        for (at, r) in after {
            assert!(
                r.is_ok(),
                "client {n}: transaction {:?} after the restart failed: {r:?}\n{}",
                at.duration_since(restart_ended),
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
