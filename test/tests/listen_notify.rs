//! LISTEN/NOTIFY in transaction pooling: a client's LISTEN registers it with the route's
//! listener connection, never with a pooled server; notifications reach it while it is idle,
//! with their payload; LISTEN in a transaction takes effect at COMMIT and not after
//! ROLLBACK; UNLISTEN and disconnecting stop delivery, and the listener connection closes
//! when nobody listens.
//!
//! Config: `pool "transaction"`, `pool_size 1` — the listening client and the notifying one
//! share the one pooled server, so a LISTEN left on it would show.

use std::time::Duration;

use odyssey_test::pg::Client;
use odyssey_test::pg::Notification;
use odyssey_test::pg::fallible_iterator::FallibleIterator;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect, wait_for};

const RULES: &str = r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 1
		pool_timeout 5000
	}
}
"#;

fn start() -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    (cluster, pooler)
}

/// The notifications that reach `client` (which sends nothing meanwhile): up to `want` of
/// them within `wait`, and any that follow within 200 ms.
fn received(client: &mut Client, want: usize, wait: Duration) -> Vec<Notification> {
    let mut notifications = client.notifications();
    let mut out = Vec::new();
    {
        let mut it = notifications.timeout_iter(wait);
        while out.len() < want {
            match it.next() {
                Ok(Some(n)) => out.push(n),
                _ => return out,
            }
        }
    }
    let mut more = notifications.timeout_iter(Duration::from_millis(200));
    while let Ok(Some(n)) = more.next() {
        out.push(n);
    }
    out
}

fn texts(ns: &[Notification]) -> Vec<(String, String)> {
    ns.iter()
        .map(|n| (n.channel().to_string(), n.payload().to_string()))
        .collect()
}

/// Client backends PostgreSQL has now (the pooled server, the listener, ...).
fn backends(cluster: &Cluster) -> usize {
    let out = cluster
        .psql(
            "postgres",
            "postgres",
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND pid <> pg_backend_pid()",
        )
        .unwrap();
    out.trim().parse().unwrap()
}

#[test]
fn an_idle_listener_gets_notifications_and_no_pooled_server_listens() {
    let (_cluster, pooler) = start();
    let params = pooler.params("postgres");
    let mut listener = connect(&params).unwrap();
    let mut notifier = connect(&params).unwrap();
    listener.batch_execute("LISTEN jobs").unwrap();

    // The pooled server (the only one) carries no LISTEN, for anyone.
    for c in [&mut listener, &mut notifier] {
        let n: i64 = c
            .query_one("SELECT count(*) FROM pg_listening_channels()", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "a pooled server listens");
    }

    notifier.batch_execute("NOTIFY jobs, 'first'").unwrap();
    notifier
        .batch_execute("SELECT pg_notify('jobs', 'second'); SELECT pg_notify('other', 'x')")
        .unwrap();
    let got = received(&mut listener, 2, Duration::from_secs(5));
    assert_eq!(
        texts(&got),
        [
            ("jobs".into(), "first".into()),
            ("jobs".into(), "second".into())
        ],
        "{}",
        pooler.log()
    );

    listener.batch_execute("UNLISTEN jobs").unwrap();
    notifier.batch_execute("NOTIFY jobs, 'third'").unwrap();
    assert!(received(&mut listener, 1, Duration::from_millis(300)).is_empty());
}

#[test]
fn listen_in_a_transaction_takes_effect_at_commit_only() {
    let (_cluster, pooler) = start();
    let params = pooler.params("postgres");
    let mut listener = connect(&params).unwrap();
    let mut notifier = connect(&params).unwrap();

    listener
        .batch_execute("BEGIN; SELECT 1")
        .and_then(|()| listener.batch_execute("LISTEN rolled"))
        .and_then(|()| listener.batch_execute("ROLLBACK"))
        .unwrap();
    listener.batch_execute("BEGIN").unwrap();
    listener.batch_execute("LISTEN kept").unwrap();
    // Not listening before the COMMIT (the pool has one server: the notifier waits for it).
    listener.batch_execute("COMMIT").unwrap();
    notifier
        .batch_execute("NOTIFY rolled, 'no'; NOTIFY kept, 'yes'")
        .unwrap();
    let got = received(&mut listener, 1, Duration::from_secs(5));
    assert_eq!(
        texts(&got),
        [("kept".into(), "yes".into())],
        "{}",
        pooler.log()
    );
}

#[test]
fn two_listeners_share_one_listener_connection_which_closes_when_they_leave() {
    let (cluster, pooler) = start();
    let params = pooler.params("postgres");
    let mut a = connect(&params).unwrap();
    let mut b = connect(&params).unwrap();
    let mut notifier = connect(&params).unwrap();
    notifier.batch_execute("SELECT 1").unwrap(); // the pooled server is open
    let pooled = backends(&cluster);
    a.batch_execute("LISTEN news").unwrap();
    b.batch_execute("LISTEN \"News\"").unwrap();
    b.batch_execute("LISTEN news").unwrap();
    assert_eq!(backends(&cluster), pooled + 1, "one listener connection");

    notifier.batch_execute("NOTIFY news, 'n1'").unwrap();
    notifier
        .batch_execute("SELECT pg_notify('News', 'N1')")
        .unwrap();
    let (ga, gb) = (
        received(&mut a, 1, Duration::from_secs(5)),
        received(&mut b, 2, Duration::from_secs(5)),
    );
    assert_eq!(texts(&ga), [("news".into(), "n1".into())]);
    let mut tb = texts(&gb);
    tb.sort();
    assert_eq!(
        tb,
        [("News".into(), "N1".into()), ("news".into(), "n1".into())]
    );

    drop(a);
    b.batch_execute("UNLISTEN *").unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || backends(&cluster) == pooled),
        "the listener connection stays open with nobody listening\n{}",
        pooler.log()
    );
    // Listening again opens it again.
    b.batch_execute("LISTEN news").unwrap();
    notifier.batch_execute("NOTIFY news, 'again'").unwrap();
    assert_eq!(
        texts(&received(&mut b, 1, Duration::from_secs(5))),
        [("news".into(), "again".into())]
    );
}
