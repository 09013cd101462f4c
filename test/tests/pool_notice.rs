//! `pool_notice_after_waiting_ms`: a client kept waiting for a server is told so with a
//! NOTICE `waiting for free backend connection`, then `waiting took N ms` when it gets one
//! (upstream's words, `sources/router.c`).

use std::thread;
use std::time::Duration;

use kiwi::backend::ErrorFields;
use odyssey_test::pooler::config;
use odyssey_test::raw::RawConn;
use odyssey_test::{Cluster, ClusterOptions, Pooler, connect};

#[test]
fn a_long_wait_for_a_server_is_told_with_notices() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(
        cluster.port(),
        r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 1
		pool_timeout 10000
		pool_notice_after_waiting_ms 200
	}
}
"#,
    ))
    .expect("pooler");
    let mut holder = connect(&pooler.params("postgres")).expect("holder");
    holder.batch_execute("BEGIN; SELECT 1").unwrap();

    let mut waiter = RawConn::connect(pooler.port(), Duration::from_secs(10)).unwrap();
    waiter
        .startup(&[("user", "postgres"), ("database", "postgres")])
        .unwrap();
    waiter.until_ready().expect("login");
    waiter.send(&query("SELECT 1")).unwrap();

    let release = thread::spawn(move || {
        thread::sleep(Duration::from_millis(700));
        holder.batch_execute("COMMIT").unwrap();
        holder
    });
    let messages = waiter.until_ready().expect("answer");
    let _holder = release.join().unwrap();
    let notices: Vec<String> = messages
        .iter()
        .filter(|m| m.tag == b'N')
        .map(|m| {
            let f = ErrorFields::decode(&m.body).unwrap();
            String::from_utf8_lossy(f.message().unwrap_or_default()).into_owned()
        })
        .collect();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert_eq!(notices[0], "waiting for free backend connection");
    let ms: u64 = notices[1]
        .strip_prefix("waiting took ")
        .and_then(|s| s.strip_suffix(" ms"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("second notice: {:?}", notices[1]));
    assert!((500..5000).contains(&ms), "waited {ms} ms");
    assert!(
        messages.iter().any(|m| m.tag == b'D'),
        "the query ran after the wait"
    );
}

fn query(sql: &str) -> Vec<u8> {
    let mut out = Vec::new();
    kiwi::frontend::Query {
        sql: sql.as_bytes(),
    }
    .encode(&mut out);
    out
}
