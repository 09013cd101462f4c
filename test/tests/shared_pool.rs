//! `shared_pool`: the routes of every rule that names one share its `pool_size` — the
//! servers of all its users together stay under the cap, an idle server of one user gives way
//! to another user's client, and a server given back while another route's client waits goes
//! to that client (closed, and a new one opened as its user).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{AuthMethod, Cluster, ClusterOptions, Pooler, connect, wait_for};

const RULES: &str = r#"
shared_pool "sp" {
	pool_size 2
}
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		shared_pool "sp"
		pool_timeout 1000
	}
}
"#;

/// Backends per user that the pooler opened, as PostgreSQL counts them.
fn backends(cluster: &Cluster, user: &str) -> u32 {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}' AND backend_type = 'client backend'"
    );
    let out = cluster.psql("postgres", "postgres", &sql).expect("psql");
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("count: {out:?}"))
}

fn start() -> (Cluster, Pooler) {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    for user in ["alice", "bob"] {
        cluster.add_user(user, "", AuthMethod::Trust).unwrap();
    }
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    (cluster, pooler)
}

#[test]
fn a_shared_pool_caps_the_servers_of_all_its_routes() {
    let (cluster, pooler) = start();
    assert!(
        !pooler.log().contains("shared_pool 'sp'"),
        "a warning about the shared pool:\n{}",
        pooler.log()
    );
    let mut alice = connect(&pooler.params("alice")).expect("alice");
    let mut bob = connect(&pooler.params("bob")).expect("bob");
    alice.batch_execute("BEGIN; SELECT 1").unwrap();
    bob.batch_execute("BEGIN; SELECT 1").unwrap();
    // Both servers of the shared pool are busy: a third client, of either user, waits out
    // its pool_timeout.
    let mut third = connect(&pooler.params("alice")).expect("third client");
    let err = third
        .simple_query("SELECT 1")
        .expect_err("a third server beyond the shared pool's size");
    assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err}");
    assert_eq!(backends(&cluster, "alice") + backends(&cluster, "bob"), 2);
    alice.batch_execute("COMMIT").unwrap();
    bob.batch_execute("COMMIT").unwrap();
}

#[test]
fn an_idle_server_of_one_user_gives_way_to_another() {
    let (cluster, pooler) = start();
    // Alice fills the shared pool with two servers, then leaves them idle.
    let mut a1 = connect(&pooler.params("alice")).expect("alice 1");
    let mut a2 = connect(&pooler.params("alice")).expect("alice 2");
    a1.batch_execute("BEGIN; SELECT 1").unwrap();
    a2.batch_execute("BEGIN; SELECT 1").unwrap();
    a1.batch_execute("COMMIT").unwrap();
    a2.batch_execute("COMMIT").unwrap();
    assert_eq!(backends(&cluster, "alice"), 2);
    // Bob needs one: an idle server of alice's is closed for his.
    let mut bob = connect(&pooler.params("bob")).expect("bob");
    let started = Instant::now();
    let who = bob
        .simple_query("SELECT current_user")
        .expect("bob's query");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "bob waited for his pool_timeout"
    );
    assert!(format!("{who:?}").contains("bob"), "{who:?}");
    assert!(
        wait_for(Duration::from_secs(5), || backends(&cluster, "alice") == 1),
        "alice's idle server was not closed: {}",
        backends(&cluster, "alice")
    );
    assert_eq!(backends(&cluster, "bob"), 1);
}

#[test]
fn a_server_given_back_goes_to_another_routes_waiter() {
    let (cluster, pooler) = start();
    let mut a1 = connect(&pooler.params("alice")).expect("alice 1");
    let mut a2 = connect(&pooler.params("alice")).expect("alice 2");
    a1.batch_execute("BEGIN; SELECT 1").unwrap();
    a2.batch_execute("BEGIN; SELECT 1").unwrap();
    let params = pooler.params("bob");
    let waiter = thread::spawn(move || {
        let mut bob = connect(&params).expect("bob");
        bob.simple_query("SELECT current_user")
            .map(|rows| format!("{rows:?}"))
    });
    // Bob waits (both servers are alice's and busy) until alice commits.
    thread::sleep(Duration::from_millis(300));
    assert!(!waiter.is_finished(), "bob did not wait");
    a1.batch_execute("COMMIT").unwrap();
    let who = waiter.join().unwrap().expect("bob got a server");
    assert!(who.contains("bob"), "{who}");
    assert!(
        wait_for(Duration::from_secs(5), || backends(&cluster, "alice") == 1),
        "alice's server was not closed for bob: {}",
        backends(&cluster, "alice")
    );
    assert_eq!(backends(&cluster, "bob"), 1);
    a2.batch_execute("COMMIT").unwrap();
}

/// Both users' pgbench runs (6 clients each) go through, and PostgreSQL never sees more than
/// the shared pool's 2 servers of theirs.
#[test]
fn two_users_under_load_stay_within_the_shared_pool() {
    let (cluster, pooler) = start();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let params = cluster.superuser_params();
        thread::spawn(move || {
            let mut pg = connect(&params).expect("direct connection");
            let mut most = 0i64;
            while !stop.load(Ordering::Acquire) {
                let row = pg
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename IN ('alice', 'bob')",
                        &[],
                    )
                    .expect("count");
                most = most.max(row.get::<_, i64>(0));
                thread::sleep(Duration::from_millis(20));
            }
            most
        })
    };
    let script = pooler.dir().join("tx.sql");
    std::fs::write(&script, "BEGIN;\nSELECT current_user;\nCOMMIT;\n").unwrap();
    let runs: Vec<_> = ["alice", "bob"]
        .into_iter()
        .map(|user| {
            let params = pooler.params(user);
            let script = script.to_string_lossy().into_owned();
            thread::spawn(move || {
                let args = ["-n", "-c", "6", "-j", "2", "-T", "3", "-f", &script];
                odyssey_test::pgbench(&params, &args, Duration::from_secs(30))
            })
        })
        .collect();
    for run in runs {
        let out = run.join().unwrap().expect("pgbench");
        let summary = odyssey_test::PgbenchSummary::parse(&out.stdout)
            .unwrap_or_else(|| panic!("no report: {}{}", out.stdout, out.stderr));
        assert!(summary.processed > 0 && summary.failed == 0, "{summary:?}");
    }
    stop.store(true, Ordering::Release);
    let most = sampler.join().unwrap();
    assert!(most <= 2, "{most} servers for a shared pool of 2");
}
