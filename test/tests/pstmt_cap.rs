//! `pool_prepared_statements_max`: a server keeps at most that many of the pooler's prepared
//! statements; the least recently used are deallocated (at the end of a transaction), and a
//! client using them again gets them prepared again, transparently.

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect};

#[test]
fn servers_keep_at_most_the_cap_and_evicted_statements_still_work() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rules = r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 1
		pool_reserve_prepared_statement yes
		pool_prepared_statements_max 3
	}
}
"#;
    let pooler = Pooler::start(&config(cluster.port(), rules)).expect("pooler");
    let mut client = connect(&ConnParams::tcp(pooler.port(), "postgres")).expect("connect");
    let stmts: Vec<_> = (0..8)
        .map(|i| {
            client
                .prepare(&format!("SELECT {i}::int + $1::int"))
                .expect("prepare")
        })
        .collect();
    let mut most = 0i64;
    for round in 0..4i32 {
        for (i, s) in stmts.iter().enumerate() {
            let v: i32 = client.query_one(s, &[&round]).expect("run").get(0);
            assert_eq!(v, i as i32 + round);
            // The one server, seen from inside a transaction of this client.
            let n: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'odyssey_%'",
                    &[],
                )
                .expect("count")
                .get(0);
            most = most.max(n);
        }
    }
    // The cap, plus the statement that pushed one out before the transaction ended.
    assert!(
        most <= 4,
        "the server held {most} statements with a cap of 3"
    );
    assert!(most >= 3, "statements were not kept at all ({most})");
}
