//! `conn_drop_options` (issue 14, spec §2.2, §12): a draining process — the old process of
//! an online restart, or any graceful shutdown — drops its clients that sit between
//! transactions at `rate` per `interval_ms` on each worker, not all at once; with
//! `drop_enabled no` (here through the alias `online_restart_drop_options`) it drops none,
//! and the old process of an online restart stays until its last client leaves.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pooler::config;
use odyssey_test::process::{self, Signal};
use odyssey_test::raw::RawConn;
use odyssey_test::{Cluster, ClusterOptions, Pooler};

const RULES: &str = r#"
workers 1
enable_online_restart yes
graceful_shutdown_timeout_ms 15000
@DROP@
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		storage_user "postgres"
		pool "transaction"
	}
}
"#;

const INTERVAL: Duration = Duration::from_millis(600);

fn start(policy: &str) -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rules = RULES.replace("@DROP@", policy);
    let pooler = Pooler::start(&config(cluster.port(), &rules)).expect("pooler");
    (cluster, pooler)
}

/// A raw client logged in through the pooler, idle at its first ReadyForQuery (in
/// transaction pooling it holds no server).
fn login(pooler: &Pooler) -> RawConn {
    let mut conn = RawConn::connect(pooler.port(), Duration::from_secs(15)).unwrap();
    conn.startup(&[("user", "app"), ("database", "postgres")])
        .unwrap();
    let login = conn.until_ready().unwrap();
    assert_eq!(login.last().map(|m| m.tag), Some(b'Z'), "{login:?}");
    conn
}

/// Waits (up to the read timeout) for the shutdown FATAL; returns when it came.
fn dropped_at(mut conn: RawConn) -> Result<Instant, String> {
    match conn.recv() {
        Ok(Some(m)) => match m.error() {
            Some((code, _)) if code == "08006" => Ok(Instant::now()),
            other => Err(format!("not the shutdown FATAL: {other:?}")),
        },
        other => Err(format!("no FATAL: {other:?}")),
    }
}

#[test]
fn the_drain_drops_idle_clients_at_the_configured_rate() {
    let policy = "conn_drop_options {\n\tdrop_enabled yes\n\trate 1\n\tinterval_ms 600\n}";
    let (_cluster, mut pooler) = start(policy);
    let clients: Vec<RawConn> = (0..4).map(|_| login(&pooler)).collect();
    let waiting: Vec<_> = clients
        .into_iter()
        .map(|c| thread::spawn(move || dropped_at(c)))
        .collect();
    pooler.signal(Signal::Term).unwrap();
    let mut times: Vec<Instant> = waiting
        .into_iter()
        .map(|w| {
            w.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("{e}\n{}", pooler.log()))
        })
        .collect();
    times.sort();
    // One per interval: each drop waits for the previous one to age out of the window.
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= INTERVAL - Duration::from_millis(150),
            "dropped {gap:?} apart, faster than rate 1 per {INTERVAL:?}"
        );
    }
    let status = pooler.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{status:?}\n{}", pooler.log());
}

#[test]
fn with_drop_disabled_the_old_process_waits_for_its_clients() {
    let (_cluster, pooler) = start("online_restart_drop_options {\n\tdrop_enabled no\n}");
    let old = pooler.pid();
    let mut idle = login(&pooler);
    let new = pooler
        .restart_online(old)
        .unwrap_or_else(|| panic!("no new process\n{}", pooler.log()));
    let _stop_new = process::Stopper(Some(new));
    let mut served = login(&pooler);
    served.send(&[b'X', 0, 0, 0, 4]).unwrap();
    // The idle client is neither dropped nor told anything, and the old process stays.
    thread::sleep(Duration::from_millis(1500));
    assert!(process::alive(old), "{}", pooler.log());
    // Once the client leaves, the old process is done.
    idle.send(&[b'X', 0, 0, 0, 4]).unwrap();
    drop(idle);
    assert!(
        process::wait_gone(&[old], Duration::from_secs(10)),
        "the old process outlives its last client\n{}",
        pooler.log()
    );
    assert!(process::alive(new));
}
