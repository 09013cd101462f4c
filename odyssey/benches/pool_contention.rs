//! How a route's server pool behaves with many workers taking and giving back servers: the
//! many-core case issue 16 asks to model. `SERVERS` real loopback connections (detached, as
//! an idle pool holds them) sit in one `ServerPool`; N plain threads each take a server
//! (`acquire`, never waiting: there are as many servers as threads or more) and give it back
//! (`release`), in a loop, for a fixed time. Printed per N: pairs per second in all, and
//! nanoseconds per pair per thread — which stays flat while the pool's mutex is not the limit.
//!
//! This machine has few cores: with N above the core count the threads also take turns on
//! the cores, and a thread preempted while holding the mutex makes the others wait, so the
//! figures there bound the contention from above. Env: `POOL_SECS` (seconds per N, default 1),
//! `POOL_THREADS` (comma-separated, default `1,2,4,8,16,32,64`).

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use kiwi::backend::TransactionStatus;
use machinarium::Deadline;
use machinarium::net::Stream;
use odyssey::conn::{Conn, Transport};
use odyssey::pool::{Grant, ServerPool, Wait};
use odyssey::server::{Address, Server, ServerInfo};

/// Servers in the pool: at least as many as the most threads, so that nobody waits.
const SERVERS: usize = 64;

fn main() {
    let secs: f64 = std::env::var("POOL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let threads: Vec<usize> = std::env::var("POOL_THREADS")
        .unwrap_or_else(|_| "1,2,4,8,16,32,64".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|&n| n > 0 && n <= SERVERS)
        .collect();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let pool = Arc::new(ServerPool::default());
    let filled = pool.clone();
    // The connections are made on a machine (machinarium's streams need one), detached and
    // left idle in the pool; the accepted ends stay open here until the end.
    let accepted = std::thread::spawn(move || {
        (0..SERVERS)
            .map(|_| listener.accept().expect("accept").0)
            .collect::<Vec<_>>()
    });
    machinarium::run(move || {
        let mut idle = Vec::with_capacity(SERVERS);
        for _ in 0..SERVERS {
            let stream =
                Stream::connect(addr, Deadline::after(Duration::from_secs(5))).expect("connect");
            let server = Server {
                info: Box::new(ServerInfo::new(Address::Tcp(addr))),
                conn: Conn::new(Transport::Plain(stream)),
                tx: TransactionStatus::Idle,
            };
            idle.push(server.detach().map_err(|(_, why)| why).expect("detach"));
            // Counted as connecting, then connected (active): released below, it is idle.
            match filled.acquire(0, wait()) {
                Ok(Grant::Connect) => filled.connected(),
                _ => panic!("a pool with no idle server lets the caller connect"),
            }
        }
        for server in idle {
            assert!(filled.release(server).is_none());
        }
    })
    .expect("machine");
    let _peers = accepted.join().expect("accept thread");
    println!(
        "server pool: {SERVERS} idle servers, N threads each taking one and giving it back, {secs} s per N; {} CPU(s)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("threads | pairs/s in all | ns per pair per thread");
    for n in threads {
        let (pairs, elapsed) = run(&pool, n, Duration::from_secs_f64(secs));
        let rate = pairs as f64 / elapsed.as_secs_f64();
        println!(
            "{n:7} | {rate:14.0} | {:22.0}",
            elapsed.as_nanos() as f64 * n as f64 / pairs.max(1) as f64
        );
    }
}

/// Never waits: the pool has a server for every thread.
fn wait() -> Wait<'static> {
    Wait {
        deadline: Deadline::after(Duration::ZERO),
        idle_only: false,
        notice: None,
    }
}

/// N threads taking and giving back servers for `secs`; the pairs done and the time taken.
fn run(pool: &Arc<ServerPool>, n: usize, secs: Duration) -> (u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let pairs = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(n + 1));
    let workers: Vec<_> = (0..n)
        .map(|_| {
            let (pool, stop, pairs, start) =
                (pool.clone(), stop.clone(), pairs.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let Ok(Grant::Server(server)) = pool.acquire(SERVERS as u32, wait()) else {
                        panic!("a server is always idle");
                    };
                    assert!(pool.release(*server).is_none());
                    done += 1;
                }
                pairs.fetch_add(done, Ordering::Relaxed);
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    std::thread::sleep(secs);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    (pairs.load(Ordering::Relaxed), t.elapsed())
}
