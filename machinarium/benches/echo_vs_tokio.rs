//! The machinarium echo server (as `examples/echo.rs`: an acceptor machine hands sockets to N
//! worker machines) against a tokio echo server (one task per connection: with one thread a
//! current-thread runtime, with N > 1 a multi-thread runtime with N workers), under the same
//! load, in the same run.
//!
//! Load: C loopback connections driven by one client thread (mio, edge-triggered), the same
//! code for both servers. Every connection does round trips of 64 bytes: write 64, read 64,
//! repeat. A run connects, warms up, counts round trips for a fixed time, then closes
//! everything and stops the server. Runs of the two servers alternate (A B, then B A, ...),
//! and the table gives the mean of each server's runs, the ratio, and the server's CPU time
//! per round trip (process CPU minus the client thread's CPU over the counted window).
//!
//! With 2 cores, the client thread competes with the server's threads; the same client is
//! used for both servers.
//!
//! Env: `BENCH_QUICK=1` (1 s runs, one round), `ECHO_SECS` (counted seconds per run, default
//! 4), `ECHO_ROUNDS` (pairs of runs per configuration, default 2), `ECHO_CONNS` and
//! `ECHO_THREADS` (comma-separated lists, default `64,1000` and `1,2`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use machinarium::net::{DetachedStream, ListenOptions, Listener};
use machinarium::{Deadline, MachineConfig, MachineHandle, machine_create};

const MSG: usize = 64;

/// A running server: its address, and how to stop it (returns once every thread is gone).
struct Server {
    addr: SocketAddr,
    stop: Box<dyn FnOnce()>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Machinarium,
    Tokio,
}

impl Kind {
    fn start(self, threads: usize) -> Server {
        match self {
            Kind::Machinarium => start_machinarium(threads),
            Kind::Tokio => start_tokio(threads),
        }
    }
}

// ---- machinarium server (examples/echo.rs, plus a way to stop it) ----

fn mm_echo(conn: DetachedStream) {
    let Ok(mut s) = conn.attach() else { return };
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match s.read(&mut buf, Deadline::NEVER) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n], Duration::from_secs(30)).is_err() {
                    return;
                }
            }
        }
    }
}

fn start_machinarium(threads: usize) -> Server {
    let workers: Vec<MachineHandle> = (0..threads)
        .map(|i| {
            machine_create(&format!("worker{i}"), MachineConfig::default(), || {
                // Lives until stopped (the sleep is cancelled); its coroutines come by spawn.
                let _ = machinarium::sleep(Duration::from_secs(u64::MAX / 4));
            })
            .expect("worker machine")
        })
        .collect();
    let (addr_tx, addr_rx) = mpsc::channel();
    let acceptor_workers = workers.clone();
    let acceptor = machine_create("acceptor", MachineConfig::default(), move || {
        let opts = ListenOptions {
            backlog: 4096,
            ..ListenOptions::default()
        };
        let listener = Listener::bind("127.0.0.1:0".parse().expect("addr"), &opts).expect("bind");
        let _ = addr_tx.send(listener.local_addr().expect("addr"));
        let mut next = 0;
        // Ends when the machine is stopped (accept is cancelled).
        while let Ok((conn, _peer)) = listener.accept(Deadline::NEVER) {
            acceptor_workers[next % acceptor_workers.len()].spawn_detached(move || mm_echo(conn));
            next += 1;
        }
    })
    .expect("acceptor machine");
    started(
        &addr_rx,
        Box::new(move || {
            acceptor.stop();
            for w in &workers {
                w.stop();
            }
            acceptor.join().expect("acceptor");
            for w in &workers {
                w.join().expect("worker");
            }
        }),
    )
}

/// A server whose thread reports its address on `addr_rx`, and how to stop it.
fn started(addr_rx: &mpsc::Receiver<SocketAddr>, stop: Box<dyn FnOnce()>) -> Server {
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server address");
    Server { addr, stop }
}

// ---- tokio server ----

async fn tokio_echo(mut s: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn start_tokio(threads: usize) -> Server {
    if threads == 1 {
        return start_tokio_current_thread();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_io()
        .build()
        .expect("tokio runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(tokio_echo(s));
        }
    });
    Server {
        addr,
        stop: Box::new(move || rt.shutdown_timeout(Duration::from_secs(5))),
    }
}

/// Tokio's single-threaded flavour: the runtime and every task on one thread, as a
/// one-worker machinarium runs its coroutines (and without the multi-thread runtime's
/// work-stealing and its thread that only waits in `block_on`).
fn start_tokio_current_thread() -> Server {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("tokio-current".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let _ = addr_tx.send(listener.local_addr().expect("addr"));
                let accept = async {
                    while let Ok((s, _)) = listener.accept().await {
                        tokio::spawn(tokio_echo(s));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
            // Dropping the runtime drops every connection's task.
            rt.shutdown_timeout(Duration::from_secs(5));
        })
        .expect("tokio thread");
    started(
        &addr_rx,
        Box::new(move || {
            let _ = stop_tx.send(());
            thread.join().expect("tokio thread");
        }),
    )
}

// ---- the load generator ----

struct Conn {
    s: mio::net::TcpStream,
    /// Bytes of the current request still to write.
    to_write: usize,
    /// Bytes of the current reply read so far.
    got: usize,
}

struct LoadResult {
    round_trips: u64,
    secs: f64,
    /// Process CPU minus the client thread's, over the counted window.
    server_cpu: f64,
    client_cpu: f64,
    errors: u64,
}

/// Drives `conns` connections to `addr` for `warmup + secs`, counting round trips in the
/// last `secs` only.
fn load(addr: SocketAddr, conns: usize, warmup: Duration, secs: Duration) -> LoadResult {
    std::thread::Builder::new()
        .name("client".into())
        .spawn(move || drive(addr, conns, warmup, secs))
        .expect("client thread")
        .join()
        .expect("client")
}

fn drive(addr: SocketAddr, conns: usize, warmup: Duration, secs: Duration) -> LoadResult {
    let mut poll = mio::Poll::new().expect("poll");
    let mut events = mio::Events::with_capacity(1024);
    let mut cs: Vec<Conn> = Vec::with_capacity(conns);
    for i in 0..conns {
        let std = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        std.set_nodelay(true).expect("nodelay");
        let _ = common::set_linger_zero(&std);
        std.set_nonblocking(true).expect("nonblocking");
        let mut s = mio::net::TcpStream::from_std(std);
        poll.registry()
            .register(
                &mut s,
                mio::Token(i),
                mio::Interest::READABLE | mio::Interest::WRITABLE,
            )
            .expect("register");
        cs.push(Conn {
            s,
            to_write: MSG,
            got: 0,
        });
    }
    let request = [0x5au8; MSG];
    let mut reply = [0u8; MSG];
    let mut count = 0u64;
    let mut errors = 0u64;
    let start = Instant::now();
    let warm_end = start + warmup;
    let end = warm_end + secs;
    let mut at_warm: Option<(u64, Instant, f64, f64)> = None;
    // Service one connection until it waits: for room to write, or for the reply. With
    // edge-triggered readiness every arrival of data is an event, so after a request is written
    // (or a short read) the reply is awaited from the poll rather than tried for with a read
    // that would say WouldBlock: the client makes one read and one write per round trip, and so
    // has more of its core for load.
    let mut step = |c: &mut Conn, count: &mut u64, errors: &mut u64| loop {
        if c.to_write > 0 {
            match c.s.write(&request[MSG - c.to_write..]) {
                Ok(n) => c.to_write -= n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    *errors += 1;
                    return;
                }
            }
            if c.to_write == 0 {
                return;
            }
            continue;
        }
        match c.s.read(&mut reply[..MSG - c.got]) {
            Ok(0) => {
                *errors += 1;
                return;
            }
            Ok(n) => {
                c.got += n;
                if c.got < MSG {
                    return;
                }
                *count += 1;
                c.got = 0;
                c.to_write = MSG;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(_) => {
                *errors += 1;
                return;
            }
        }
    };
    for c in cs.iter_mut() {
        step(c, &mut count, &mut errors);
    }
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if at_warm.is_none() && now >= warm_end {
            at_warm = Some((
                count,
                now,
                common::cpu_seconds(false),
                common::cpu_seconds(true),
            ));
        }
        let wait = if at_warm.is_none() { warm_end } else { end } - now;
        if poll
            .poll(&mut events, Some(wait.min(Duration::from_millis(100))))
            .is_err()
        {
            continue;
        }
        for ev in events.iter() {
            if let Some(c) = cs.get_mut(ev.token().0) {
                step(c, &mut count, &mut errors);
            }
        }
    }
    let (proc_end, thread_end) = (common::cpu_seconds(false), common::cpu_seconds(true));
    let (warm_count, warm_at, proc_warm, thread_warm) = at_warm.unwrap_or((0, start, 0.0, 0.0));
    let secs = warm_at.elapsed().as_secs_f64();
    drop(cs);
    let client_cpu = thread_end - thread_warm;
    LoadResult {
        round_trips: count - warm_count,
        secs,
        server_cpu: (proc_end - proc_warm) - client_cpu,
        client_cpu,
        errors,
    }
}

struct Sample {
    rate: f64,
    server_us_per_rt: f64,
    client_cpu_share: f64,
    errors: u64,
}

fn one_run(kind: Kind, threads: usize, conns: usize, warmup: Duration, secs: Duration) -> Sample {
    let server = kind.start(threads);
    let r = load(server.addr, conns, warmup, secs);
    (server.stop)();
    Sample {
        rate: r.round_trips as f64 / r.secs,
        server_us_per_rt: r.server_cpu * 1e6 / r.round_trips.max(1) as f64,
        client_cpu_share: r.client_cpu / r.secs,
        errors: r.errors,
    }
}

fn env_num(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// A comma-separated list of numbers, e.g. `ECHO_CONNS=64,1000`.
fn env_list(name: &str) -> Option<Vec<usize>> {
    let v = std::env::var(name).ok()?;
    let list: Vec<usize> = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    (!list.is_empty()).then_some(list)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn main() {
    let nofile = common::raise_nofile();
    let quick = common::quick();
    let secs = Duration::from_secs(env_num("ECHO_SECS").unwrap_or(if quick { 1 } else { 4 }));
    let rounds = env_num("ECHO_ROUNDS").unwrap_or(if quick { 1 } else { 2 }) as usize;
    let warmup = Duration::from_millis(if quick { 200 } else { 500 });
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "echo round trips ({MSG} B write + {MSG} B read per round trip), {}s counted after {}ms \
         warm-up, {rounds} run(s) per server per configuration, alternating; 1 client thread; \
         {cpus} CPU(s); RLIMIT_NOFILE {nofile}",
        secs.as_secs(),
        warmup.as_millis()
    );
    println!(
        "{:>6} {:>7} | {:>12} {:>12} | {:>6} {:>5} | {:>10} {:>10} | {:>7} {:>7} | runs (mm / tokio)",
        "conns",
        "threads",
        "machinarium",
        "tokio",
        "ratio",
        "met",
        "mm cpu/rt",
        "tk cpu/rt",
        "cl. mm",
        "cl. tk"
    );
    let conns_list = env_list("ECHO_CONNS").unwrap_or_else(|| vec![64, 1000]);
    let threads_list = env_list("ECHO_THREADS").unwrap_or_else(|| vec![1, 2]);
    for &conns in &conns_list {
        for &threads in &threads_list {
            let mut mm: Vec<Sample> = Vec::new();
            let mut tk: Vec<Sample> = Vec::new();
            for round in 0..rounds {
                let order = if round % 2 == 0 {
                    [Kind::Machinarium, Kind::Tokio]
                } else {
                    [Kind::Tokio, Kind::Machinarium]
                };
                for kind in order {
                    let s = one_run(kind, threads, conns, warmup, secs);
                    match kind {
                        Kind::Machinarium => mm.push(s),
                        Kind::Tokio => tk.push(s),
                    }
                }
            }
            let rate = |v: &[Sample]| mean(&v.iter().map(|s| s.rate).collect::<Vec<_>>());
            let cpu =
                |v: &[Sample]| mean(&v.iter().map(|s| s.server_us_per_rt).collect::<Vec<_>>());
            let cl = |v: &[Sample]| mean(&v.iter().map(|s| s.client_cpu_share).collect::<Vec<_>>());
            let runs = |v: &[Sample]| {
                v.iter()
                    .map(|s| format!("{:.0}", s.rate))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let errors: u64 = mm.iter().chain(&tk).map(|s| s.errors).sum();
            let ratio = rate(&mm) / rate(&tk);
            println!(
                "{:>6} {:>7} | {:>10.0}/s {:>10.0}/s | {:>6.3} {:>5} | {:>8.2}us {:>8.2}us | {:>6.0}% {:>6.0}% | {} / {}{}",
                conns,
                threads,
                rate(&mm),
                rate(&tk),
                ratio,
                if ratio >= 1.0 { "yes" } else { "NO" },
                cpu(&mm),
                cpu(&tk),
                cl(&mm) * 100.0,
                cl(&tk) * 100.0,
                runs(&mm),
                runs(&tk),
                if errors > 0 {
                    format!(" ({errors} connection errors)")
                } else {
                    String::new()
                }
            );
        }
    }
    println!(
        "goal: machinarium >= 1.0x tokio round trips/s. cpu/rt: server CPU (process minus \
         client thread) per round trip; cl.: client thread CPU share of one core."
    );
}
