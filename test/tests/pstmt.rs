//! Named prepared statements through the pooler, from pgbench (`-M prepared`) and the Rust
//! `postgres` client (`prepare` once per connection, then `query` in many transactions).
//!
//! Config (`odyssey_test::pstmt`): `pool "transaction"`, `pool_size 4`,
//! `pool_reserve_prepared_statement yes`, so the clients (50 pgbench clients, 20 Rust
//! connections) share 4 servers and a statement prepared on one server is executed in
//! transactions that land on the others. The
//! session-mode variants (a server per client) prove the workloads themselves right; the
//! transaction-mode ones are ignored until the pooler keeps prepared statements across
//! servers (issue 6).
//!
//! Drivers other than these two: `pstmt_drivers.rs`.

use std::thread;
use std::time::Duration;

use odyssey_test::pstmt::{self, Mode};
use odyssey_test::{Cluster, ClusterOptions, PgbenchSummary, connect, pgbench};

const PGBENCH_CLIENTS: u32 = 50;

/// `pgbench -M prepared -c 50 -j 2 -T 15` through the pooler: no failed transaction.
fn pgbench_prepared(mode: Mode) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    let init = pgbench(
        &cluster.params("postgres"),
        &["-i", "-q", "-s", "1"],
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(init.success(), "pgbench -i: {}", init.combined());
    let pooler = pstmt::start_pooler(mode, PGBENCH_CLIENTS, &cluster);

    let clients = PGBENCH_CLIENTS.to_string();
    let args = ["-M", "prepared", "-c", &clients, "-j", "2", "-T", "15"];
    let out = pgbench(&pooler.params("postgres"), &args, Duration::from_secs(60)).unwrap();
    assert!(
        out.success(),
        "pgbench -M prepared, {mode:?} pooling: {}
{}",
        out.combined(),
        pstmt::log_tail(&pooler)
    );
    let summary = PgbenchSummary::parse(&out.stdout).expect(&out.stdout);
    assert!(summary.processed > 0, "{}", out.stdout);
    assert_eq!(summary.failed, 0, "{}", out.stdout);
    println!(
        "pgbench -M prepared -c {clients} -j 2 -T 15, {mode:?} pooling: {} transactions, {:.0} tps",
        summary.processed, summary.tps
    );
    pstmt::assert_pool_bounded(mode, &cluster);
}

#[test]
fn pgbench_prepared_session_pool() {
    pgbench_prepared(Mode::Session);
}

#[test]
fn pgbench_prepared_transaction_pool() {
    pgbench_prepared(Mode::Transaction);
}

const RUST_CLIENTS: u32 = 20;
const RUST_TXS: i32 = 200;

/// The value client `c` writes in its transaction `n`.
fn value(c: i32, n: i32) -> i64 {
    i64::from(c) * 100_000 + i64::from(n)
}

/// An error with the server's message and SQLSTATE when it has them (plain Display says
/// only "db error").
fn describe(e: &odyssey_test::pg::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// One connection: its statements prepared once, then `RUST_TXS` transactions (every 10th
/// rolled back) and a statement outside a transaction after each; its (rows, sum).
fn rust_client(port: u16, c: i32, check_server: bool) -> Result<(i64, i64), String> {
    let params = odyssey_test::ConnParams::tcp(port, "postgres");
    let mut client = connect(&params).map_err(|e| format!("client {c} connect: {e}"))?;
    let err = |what: &'static str, n: i32| {
        move |e: odyssey_test::pg::Error| format!("client {c} tx {n} {what}: {}", describe(&e))
    };
    let ins = client
        .prepare("INSERT INTO ledger (client, n, v) VALUES ($1, $2, $3) RETURNING v")
        .map_err(err("prepare INSERT", -1))?;
    let upd = client
        .prepare("UPDATE counter SET total = total + $2 WHERE client = $1 RETURNING total")
        .map_err(err("prepare UPDATE", -1))?;
    let cnt = client
        .prepare("SELECT count(*), coalesce(sum(v), 0)::bigint FROM ledger WHERE client = $1")
        .map_err(err("prepare SELECT count", -1))?;
    let add = client
        .prepare("SELECT $1::int + $2::int")
        .map_err(err("prepare SELECT add", -1))?;
    let mismatch = |what: &str, n: i32, got: String, want: String| {
        Err(format!("client {c} tx {n} {what}: got {got}, want {want}"))
    };
    let (mut total, mut rows, mut sum) = (0i64, 0i64, 0i64);
    for n in 0..RUST_TXS {
        let v = value(c, n);
        let mut tx = client.transaction().map_err(err("BEGIN", n))?;
        let got: i64 = tx
            .query_one(&ins, &[&c, &n, &v])
            .map_err(err("INSERT", n))?
            .get(0);
        if got != v {
            return mismatch("INSERT RETURNING", n, got.to_string(), v.to_string());
        }
        let got: i64 = tx
            .query_one(&upd, &[&c, &v])
            .map_err(err("UPDATE", n))?
            .get(0);
        if got != total + v {
            return mismatch(
                "UPDATE RETURNING",
                n,
                got.to_string(),
                (total + v).to_string(),
            );
        }
        let row = tx.query_one(&cnt, &[&c]).map_err(err("SELECT count", n))?;
        let got: (i64, i64) = (row.get(0), row.get(1));
        if got != (rows + 1, sum + v) {
            return mismatch(
                "count/sum",
                n,
                format!("{got:?}"),
                format!("{:?}", (rows + 1, sum + v)),
            );
        }
        if n % 10 == 9 {
            tx.rollback().map_err(err("ROLLBACK", n))?;
        } else {
            tx.commit().map_err(err("COMMIT", n))?;
            (total, rows, sum) = (total + v, rows + 1, sum + v);
        }
        let got: i32 = client
            .query_one(&add, &[&c, &n])
            .map_err(err("SELECT add", n))?
            .get(0);
        if got != c + n {
            return mismatch("SELECT add", n, got.to_string(), (c + n).to_string());
        }
    }
    let row = client
        .query_one(&cnt, &[&c])
        .map_err(err("final count", RUST_TXS))?;
    let got: (i64, i64) = (row.get(0), row.get(1));
    if got != (rows, sum) {
        return mismatch(
            "final count/sum",
            RUST_TXS,
            format!("{got:?}"),
            format!("{:?}", (rows, sum)),
        );
    }
    if check_server {
        // Session pooling: this client's server holds the four statements it prepared.
        let held = client
            .simple_query("SELECT count(*) FROM pg_prepared_statements")
            .map_err(err("pg_prepared_statements", RUST_TXS))?;
        let held = held.iter().find_map(|m| match m {
            odyssey_test::pg::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        });
        if held
            .as_deref()
            .and_then(|h| h.parse::<i64>().ok())
            .unwrap_or(0)
            < 4
        {
            return Err(format!(
                "client {c}: its server holds {held:?} prepared statements, want >= 4"
            ));
        }
    }
    Ok((rows, sum))
}

/// `RUST_CLIENTS` connections, each on its own thread, through a pooler in `mode`.
fn rust_prepared(mode: Mode) {
    let schema = format!(
        "CREATE TABLE ledger (client int NOT NULL, n int NOT NULL, v bigint NOT NULL); \
         CREATE TABLE counter (client int PRIMARY KEY, total bigint NOT NULL); \
         INSERT INTO counter SELECT g, 0 FROM generate_series(0, {}) g",
        RUST_CLIENTS - 1
    );
    let (cluster, pooler) = pstmt::start(mode, RUST_CLIENTS, &schema);
    let port = pooler.port();
    let check_server = mode == Mode::Session;
    let workers: Vec<_> = (0..RUST_CLIENTS as i32)
        .map(|c| thread::spawn(move || rust_client(port, c, check_server)))
        .collect();
    let (mut totals, mut errors) = (Vec::new(), Vec::new());
    for worker in workers {
        match worker.join() {
            Ok(Ok(t)) => totals.push(t),
            Ok(Err(e)) => errors.push(e),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    assert!(
        errors.is_empty(),
        "{} of {RUST_CLIENTS} clients failed in {mode:?} pooling: {errors:#?}\n{}",
        errors.len(),
        pstmt::log_tail(&pooler)
    );
    let rows: i64 = totals.iter().map(|t| t.0).sum();
    let sum: i64 = totals.iter().map(|t| t.1).sum();
    let got = cluster
        .psql(
            "postgres",
            "postgres",
            "SELECT count(*) || ' ' || sum(v) || ' ' || (SELECT sum(total) FROM counter) FROM ledger",
        )
        .unwrap();
    assert_eq!(got, format!("{rows} {sum} {sum}"));
    pstmt::assert_pool_bounded(mode, &cluster);
}

#[test]
fn rust_client_prepared_statements_session_pool() {
    rust_prepared(Mode::Session);
}

#[test]
fn rust_client_prepared_statements_transaction_pool() {
    rust_prepared(Mode::Transaction);
}
