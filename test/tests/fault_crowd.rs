//! Many more clients than servers, and a client that writes far ahead of what it reads.
//!
//! - 300 clients on a transaction pool of 2, 5 transactions each: all complete, none fails,
//!   and PostgreSQL never sees more than 2 servers.
//! - A held server: `pool_timeout` fails the waiting client on time (not early, not late).
//! - 1,000 queries written before reading (simple, and extended with a Sync each): all
//!   answered, in order, no deadlock.

use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::tx::{TxPoolConfig, TxSetup, extended_query, first_values, join_errors, tags};

const CLIENTS: usize = 300;
const TRANSACTIONS: usize = 5;
const PIPELINED: usize = 1000;
const POOL_TIMEOUT_MS: u64 = 300;

fn setup(pool_size: u32) -> TxSetup {
    let config = TxPoolConfig::new("transaction", pool_size);
    TxSetup::start(&config, "CREATE TABLE done (client int, n int)").expect("setup")
}

/// One client's transactions, each inserting a row it then counts.
fn client(setup_params: odyssey_test::ConnParams, id: usize) -> Result<(), String> {
    let mut c = odyssey_test::connect(&setup_params).map_err(|e| format!("{id}: {e}"))?;
    for n in 0..TRANSACTIONS {
        let mut tx = c.transaction().map_err(|e| format!("{id}/{n}: {e}"))?;
        tx.execute(
            "INSERT INTO done VALUES ($1, $2)",
            &[&(id as i32), &(n as i32)],
        )
        .map_err(|e| format!("{id}/{n}: {e}"))?;
        tx.commit().map_err(|e| format!("{id}/{n}: {e}"))?;
    }
    Ok(())
}

#[test]
fn three_hundred_clients_on_two_servers_all_complete() {
    let setup = setup(2);
    let began = Instant::now();
    let workers = (0..CLIENTS)
        .map(|id| {
            let params = setup.params();
            thread::spawn(move || client(params, id))
        })
        .collect();
    let errors = join_errors(workers);
    let took = began.elapsed();
    assert!(
        errors.is_empty(),
        "{} failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    let rows = setup
        .backend("SELECT count(DISTINCT (client, n)) FROM done")
        .unwrap();
    assert_eq!(rows, (CLIENTS * TRANSACTIONS).to_string());
    let servers = setup
        .backend(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
             AND datname = 'postgres' AND pid <> pg_backend_pid()",
        )
        .unwrap();
    assert!(servers.parse::<u32>().unwrap() <= 2, "{servers} servers");
    eprintln!("{CLIENTS} clients x {TRANSACTIONS} transactions on 2 servers in {took:?}");
}

#[test]
fn pool_timeout_fails_the_waiting_client_on_time() {
    let config =
        TxPoolConfig::new("transaction", 1).rule(&format!("pool_timeout {POOL_TIMEOUT_MS}"));
    let setup = TxSetup::start(&config, "").expect("setup");
    let mut holder = setup.connect().unwrap();
    holder.batch_execute("BEGIN; SELECT 1").unwrap();
    let mut waiter = setup.connect().unwrap();
    let began = Instant::now();
    let err = waiter
        .simple_query("SELECT 1")
        .expect_err("a second server appeared");
    let took = began.elapsed();
    let timeout = Duration::from_millis(POOL_TIMEOUT_MS);
    assert!(
        took >= timeout && took < timeout + Duration::from_millis(500),
        "pool_timeout {timeout:?} fired after {took:?}: {err}"
    );
    assert!(err.as_db_error().is_some(), "not an ErrorResponse: {err:?}");
    holder.batch_execute("COMMIT").unwrap();
    eprintln!("pool_timeout {timeout:?}: error after {took:?}");
}

#[test]
fn a_thousand_pipelined_queries_are_all_answered_in_order() {
    let setup = setup(1);
    let mut conn = setup.raw().unwrap();
    let mut out = Vec::new();
    for n in 0..PIPELINED {
        kiwi::frontend::Query {
            sql: format!("SELECT {n}").as_bytes(),
        }
        .encode(&mut out);
        extended_query(&mut out, "SELECT $1::int", &[&n.to_string()]);
        odyssey_test::tx::bodiless(&mut out, b'S');
    }
    let began = Instant::now();
    // Written from another thread: the pooler answers while the client is still writing, and
    // neither side may wait for the other to read.
    let mut writer = conn.try_clone().unwrap();
    let sender = thread::spawn(move || writer.send(&out));
    let mut values = Vec::new();
    let mut readies = 0;
    while readies < 2 * PIPELINED {
        let batch = conn.until_ready().unwrap();
        assert_eq!(batch.last().map(|m| m.tag), Some(b'Z'), "{}", tags(&batch));
        readies += 1;
        values.extend(first_values(&batch));
    }
    sender.join().unwrap().unwrap();
    let want: Vec<String> = (0..PIPELINED)
        .flat_map(|n| [n.to_string(), n.to_string()])
        .collect();
    assert_eq!(values, want);
    eprintln!(
        "{} pipelined requests answered in order in {:?}",
        2 * PIPELINED,
        began.elapsed()
    );
}
