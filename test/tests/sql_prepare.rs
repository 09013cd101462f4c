//! SQL `PREPARE` / `EXECUTE` / `DEALLOCATE` in transaction pooling (issue 18): a client's
//! statement names are its own, mapped to statements of the pooler's on whichever server the
//! client gets; a server that lacks one is given it in the same Query as the EXECUTE.
//!
//! Config: `pool "transaction"`, `pool_size 2`, `pool_reserve_prepared_statement yes`. To
//! land a client on the server that lacks its statement, two other clients hold servers in
//! open transactions in turn (the pool has no other choice to make).

use std::process::Command;
use std::time::Duration;

use odyssey_test::command;
use odyssey_test::drivers::python;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect};
use postgres::{Client, SimpleQueryMessage};

const RULES: &str = r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		storage_user "postgres"
		pool "transaction"
		pool_size 2
		pool_reserve_prepared_statement yes
	}
}
"#;

/// The first row's values of the last result of `sql`.
fn row(c: &mut Client, sql: &str) -> Vec<String> {
    let messages = c.simple_query(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .next_back()
        .unwrap_or_default()
}

fn pid(c: &mut Client) -> String {
    row(c, "select pg_backend_pid()")[0].clone()
}

/// The SQLSTATE `sql` fails with.
fn sqlstate(c: &mut Client, sql: &str) -> String {
    let e = c.simple_query(sql).expect_err(sql);
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

#[test]
fn sql_prepared_statements_follow_their_client_across_servers() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    let params = ConnParams::tcp(pooler.port(), "app");
    let mut a = connect(&params).expect("client a");
    let mut b1 = connect(&params).expect("client b1");
    let mut b2 = connect(&params).expect("client b2");

    // b1 holds one server; a prepares on the other, P.
    b1.simple_query("begin").expect("begin");
    let q = pid(&mut b1);
    a.simple_query("PREPARE plus(int) AS select $1 + 1, pg_backend_pid()::text")
        .expect("prepare");
    let first = row(&mut a, "EXECUTE plus(1)");
    assert_eq!(first[0], "2");
    let p = first[1].clone();
    assert_ne!(p, q, "b1 holds {q}");
    // b2 takes P; b1 lets Q go: a's next transaction can only run on Q, which never saw
    // the statement.
    b2.simple_query("begin").expect("begin");
    assert_eq!(pid(&mut b2), p);
    b1.simple_query("commit").expect("commit");
    let second = row(&mut a, "EXECUTE plus(41)");
    assert_eq!(second, vec!["42".to_string(), q.clone()]);
    // Inside a transaction too, and once more on P.
    b2.simple_query("commit").expect("commit");
    a.simple_query("begin").expect("begin");
    assert_eq!(row(&mut a, "execute PLUS (9)")[0], "10");
    a.simple_query("commit").expect("commit");

    // The name is a's alone: b1 may use it for another statement, and sees none of a's
    // names on any server.
    b1.simple_query("PREPARE plus AS select 'b1'")
        .expect("b1 prepares");
    assert_eq!(row(&mut b1, "EXECUTE plus")[0], "b1");
    assert_eq!(row(&mut a, "EXECUTE plus(0)")[0], "1");
    b2.simple_query("begin").expect("begin");
    let names = row(
        &mut b2,
        "select count(*) filter (where name = 'plus') from pg_prepared_statements",
    );
    assert_eq!(names[0], "0", "a client's name never reaches a server");
    b2.simple_query("commit").expect("commit");

    // PostgreSQL's errors, PostgreSQL's semantics.
    assert_eq!(sqlstate(&mut a, "PREPARE plus AS select 2"), "42P05");
    assert_eq!(
        sqlstate(&mut a, "PREPARE broken AS select nothing_here"),
        "42703"
    );
    a.simple_query("PREPARE broken AS select 'fixed'")
        .expect("a failed PREPARE made no name");
    assert_eq!(row(&mut a, "EXECUTE broken")[0], "fixed");
    a.simple_query("DEALLOCATE plus").expect("deallocate");
    assert_eq!(sqlstate(&mut a, "EXECUTE plus(1)"), "26000");
    a.simple_query("DEALLOCATE ALL").expect("deallocate all");
    assert_eq!(sqlstate(&mut a, "EXECUTE broken"), "26000");
    // In a failed transaction, PREPARE fails as PostgreSQL's does.
    a.simple_query("begin").expect("begin");
    assert_eq!(sqlstate(&mut a, "select 1/0"), "22012");
    assert_eq!(sqlstate(&mut a, "PREPARE late AS select 1"), "25P02");
    a.simple_query("rollback").expect("rollback");
    a.simple_query("PREPARE late AS select 'late'")
        .expect("prepared after the failed transaction");
    assert_eq!(row(&mut a, "EXECUTE late")[0], "late");

    let log = pooler.log();
    assert!(!log.contains("panic"), "{log}");
}

/// psql and psycopg (simple-query mode) with SQL PREPARE through a pool of 2 while other
/// clients hold servers: every EXECUTE returns the right value.
#[test]
fn psql_and_psycopg_run_sql_prepare_in_transaction_pooling() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    let port = pooler.port().to_string();

    let script = "PREPARE sq(int) AS select $1 * $1;\n\
                  EXECUTE sq(7);\n\
                  begin;\nEXECUTE sq(8);\ncommit;\n\
                  DEALLOCATE sq;\n";
    let mut psql = Command::new("psql");
    psql.args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "app",
            "-d",
            "postgres",
        ])
        .args(["-c", script]);
    let out = command::run(psql, "psql", Duration::from_secs(30)).expect("psql");
    assert!(out.success(), "{}", out.combined());
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["49", "64"]
    );

    // Four psycopg clients, each with its own statement under one shared name, 50
    // transactions each, on two servers.
    let program = r#"
import sys, threading, psycopg
port = sys.argv[1]
errors = []
def client(n):
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="app", dbname="postgres",
                             autocommit=True, cursor_factory=psycopg.ClientCursor,
                             connect_timeout=10) as c:
            c.execute(f"PREPARE mine(int) AS select $1 + {n * 1000}")
            for i in range(50):
                if i % 3 == 0:
                    with c.transaction():
                        got = c.execute(f"EXECUTE mine({i})").fetchone()[0]
                else:
                    got = c.execute(f"EXECUTE mine({i})").fetchone()[0]
                if got != i + n * 1000:
                    errors.append(f"client {n}: {got} for {i}")
    except Exception as e:
        errors.append(f"client {n}: {e!r}")
threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join(60)
if errors or any(t.is_alive() for t in threads):
    print("\n".join(errors) or "a client hung"); sys.exit(1)
print("ok")
"#;
    let mut py = Command::new(python());
    py.args(["-c", program, &port]);
    let out = command::run(py, "psycopg", Duration::from_secs(90)).expect("psycopg");
    assert!(out.success(), "{}", out.combined());
    assert_eq!(out.stdout.trim(), "ok");
}
