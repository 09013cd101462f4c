//! `query_parsing { mode ... }` (spec §2): `minimal` (the default) lets the pooler look at
//! simple queries — a DEALLOCATE of a statement the pooler mapped is answered by the pooler,
//! a bare BEGIN is deferred under `virtual_transaction` — while `disabled` passes every query
//! to the server as written (so that DEALLOCATE reaches PostgreSQL, which never heard the
//! client's name, and BEGIN holds a server at once).

use odyssey_test::pooler::config;
use odyssey_test::raw::RawConn;
use odyssey_test::tx::{bodiless, raw_login, simple_query, tags};
use odyssey_test::{Cluster, ClusterOptions, Pooler};

fn rules(mode: &str) -> String {
    format!(
        r#"
virtual_transaction yes
query_parsing {{
	mode {mode}
}}

database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 1
		pool_reserve_prepared_statement yes
	}}
}}
"#
    )
}

/// Prepares `name` (a protocol-level named statement), then DEALLOCATEs it by SQL; the
/// SQLSTATE of the DEALLOCATE, if it failed.
fn prepare_then_deallocate(conn: &mut RawConn, name: &str) -> Option<String> {
    let mut out = Vec::new();
    kiwi::frontend::Parse {
        name: name.as_bytes(),
        query: b"SELECT 1",
        param_types: Vec::new(),
    }
    .encode(&mut out);
    bodiless(&mut out, b'S');
    conn.send(&out).expect("send Parse");
    let reply = conn.until_ready().expect("ParseComplete");
    assert_eq!(tags(&reply), "1Z", "Parse");
    let reply = simple_query(conn, &format!("DEALLOCATE {name}")).expect("DEALLOCATE");
    reply.iter().find_map(|m| m.error()).map(|(code, _)| code)
}

/// The backends in a transaction other than the one asking, seen directly.
fn backends_in_transaction(cluster: &Cluster) -> String {
    cluster
        .psql(
            "postgres",
            "postgres",
            "SELECT count(*) FROM pg_stat_activity \
             WHERE state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
        )
        .expect("pg_stat_activity")
}

#[test]
fn minimal_mode_intercepts_and_disabled_passes_everything() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    for (mode, intercepted) in [("minimal", true), ("disabled", false)] {
        let pooler = Pooler::start(&config(cluster.port(), &rules(mode))).expect("pooler");
        let mut conn = raw_login(pooler.port()).expect("login");

        let code = prepare_then_deallocate(&mut conn, "mine");
        if intercepted {
            assert_eq!(
                code, None,
                "{mode}: the pooler answers DEALLOCATE of its names"
            );
        } else {
            assert_eq!(
                code.as_deref(),
                Some("26000"),
                "{mode}: DEALLOCATE must reach PostgreSQL, which does not know the name"
            );
        }

        let begin = simple_query(&mut conn, "BEGIN").expect("BEGIN");
        assert_eq!(tags(&begin), "CZ", "{mode}: BEGIN");
        let held = backends_in_transaction(&cluster);
        let want = if intercepted { "0" } else { "1" };
        assert_eq!(
            held, want,
            "{mode}: servers in a transaction after a bare BEGIN"
        );
        simple_query(&mut conn, "ROLLBACK").expect("ROLLBACK");
    }
}
