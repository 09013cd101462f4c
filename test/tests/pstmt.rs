//! Named prepared statements through the pooler, from pgbench (`-M prepared`) and the Rust
//! `postgres` client (`prepare` once per connection, then `query` in many transactions).
//!
//! Config: `pool "transaction"`, `pool_size 4`, `pool_reserve_prepared_statement yes`, so
//! the clients (50 pgbench clients, 20 Rust connections) share 4 servers and a statement
//! prepared on one server is executed in transactions that land on the others. The
//! session-mode variants (a server per client) prove the workloads themselves right; the
//! transaction-mode ones are ignored until the pooler keeps prepared statements across
//! servers (issue 6).
//!
//! Drivers other than these two: `pstmt_drivers.rs`.

use std::thread;
use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, PgbenchSummary, Pooler, connect, pgbench};

const POOL_SIZE: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Session,
    Transaction,
}

/// The pooler's rules: in session mode a server for each of `clients` (and a few spare).
fn rules(mode: Mode, clients: u32) -> String {
    let pool = match mode {
        Mode::Transaction => format!(
            "pool \"transaction\"\n\t\tpool_size {POOL_SIZE}\n\
             \t\tpool_reserve_prepared_statement yes"
        ),
        Mode::Session => format!("pool \"session\"\n\t\tpool_size {}", clients + 4),
    };
    format!(
        "database default {{\n\tuser default {{\n\
         \t\tauthentication \"none\"\n\
         \t\tstorage \"postgres_server\"\n\
         \t\t{pool}\n\
         \t\tpool_timeout 10000\n\
         \t}}\n}}\n"
    )
}

/// The cluster (max_connections 100) and the pooler in front of it.
fn start(mode: Mode, clients: u32, schema: &str) -> (Cluster, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    if !schema.is_empty() {
        cluster
            .psql("postgres", "postgres", schema)
            .expect("schema");
    }
    let pooler =
        Pooler::start(&config(cluster.port(), &rules(mode, clients))).expect("start odyssey");
    (cluster, pooler)
}

/// How many servers the pooler holds open now (all of them client backends but psql's own).
fn servers(cluster: &Cluster) -> u32 {
    cluster
        .psql(
            "postgres",
            "postgres",
            "SELECT count(*) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .unwrap()
        .parse()
        .unwrap()
}

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
    let pooler = Pooler::start(&config(cluster.port(), &rules(mode, PGBENCH_CLIENTS)))
        .expect("start odyssey");

    let clients = PGBENCH_CLIENTS.to_string();
    let args = ["-M", "prepared", "-c", &clients, "-j", "2", "-T", "15"];
    let out = pgbench(&pooler.params("postgres"), &args, Duration::from_secs(60)).unwrap();
    let log = pooler.log();
    assert!(
        out.success(),
        "pgbench -M prepared, {mode:?} pooling: {}\n--- odyssey log (last 4000 bytes) ---\n{}",
        out.combined(),
        &log[log.len().saturating_sub(4000)..]
    );
    let summary = PgbenchSummary::parse(&out.stdout).expect(&out.stdout);
    assert!(summary.processed > 0, "{}", out.stdout);
    assert_eq!(summary.failed, 0, "{}", out.stdout);
    println!(
        "pgbench -M prepared -c {clients} -j 2 -T 15, {mode:?} pooling: {} transactions, {:.0} tps",
        summary.processed, summary.tps
    );
    if mode == Mode::Transaction {
        let servers = servers(&cluster);
        assert!(
            servers <= POOL_SIZE,
            "{servers} servers, pool_size {POOL_SIZE}"
        );
    }
}

#[test]
fn pgbench_prepared_session_pool() {
    pgbench_prepared(Mode::Session);
}

#[test]
#[ignore = "needs prepared statements in transaction pooling (issue 6)"]
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
    let (cluster, pooler) = start(mode, RUST_CLIENTS, &schema);
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
    let log = pooler.log();
    assert!(
        errors.is_empty(),
        "{} of {RUST_CLIENTS} clients failed in {mode:?} pooling: {errors:#?}\n\
         --- odyssey log (last 4000 bytes) ---\n{}",
        errors.len(),
        &log[log.len().saturating_sub(4000)..]
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
    if mode == Mode::Transaction {
        let servers = servers(&cluster);
        assert!(
            servers <= POOL_SIZE,
            "{servers} servers, pool_size {POOL_SIZE}"
        );
    }
}

#[test]
fn rust_client_prepared_statements_session_pool() {
    rust_prepared(Mode::Session);
}

#[test]
#[ignore = "needs prepared statements in transaction pooling (issue 6)"]
fn rust_client_prepared_statements_transaction_pool() {
    rust_prepared(Mode::Transaction);
}
