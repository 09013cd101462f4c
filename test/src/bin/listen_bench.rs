//! LISTEN/NOTIFY delivery, the pooler next to a direct connection in the same run.
//!
//! Usage: `listen_bench [LISTENERS [NOTIFICATIONS [INTERVAL_MS]]]` (defaults 1000, 200, 20);
//! `make bench_listen`. Starts a throw-away PostgreSQL (max_connections 1,200) and the pooler
//! (`target/release/odyssey`, transaction pooling, pool_size 5) on loopback. For each target,
//! LISTENERS raw connections (a thread each) LISTEN on one channel, then one more connection
//! sends NOTIFICATIONS notifications, one every INTERVAL_MS, each carrying its send time.
//! Every listener records when each arrives. Printed per target: deliveries (of LISTENERS ×
//! NOTIFICATIONS), latency p50 / p99 / max in ms, for the pooler its CPU time per
//! delivered notification (utime + stime from /proc over the sending phase), and the whole
//! machine's busy CPU time per notification over the same phase (/proc/stat: the pooler or
//! PostgreSQL, the listeners' threads, the kernel) divided by the cores: the least wall time
//! in which one notification's deliveries could all be done, were every core busy with them.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::pooler::config;
use odyssey_test::raw::RawConn;
use odyssey_test::tx::{raw_login, send_query, simple_query};
use odyssey_test::{Cluster, ClusterOptions, Pooler};

const CHANNEL: &str = "bench";

struct Args {
    listeners: usize,
    notifications: usize,
    interval: Duration,
}

fn args() -> Args {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .map(|s| s.parse().expect("numbers"))
        .collect();
    Args {
        listeners: a.first().copied().unwrap_or(1000) as usize,
        notifications: a.get(1).copied().unwrap_or(200) as usize,
        interval: Duration::from_millis(a.get(2).copied().unwrap_or(20)),
    }
}

/// One target's figures: latencies in µs of every delivery.
struct Run {
    latencies: Vec<u64>,
    cpu_us: Option<u64>,
    machine_us: u64,
}

fn main() {
    let args = args();
    let cluster = Cluster::start(ClusterOptions {
        settings: vec![("max_connections".into(), "1200".into())],
        ..ClusterOptions::default()
    })
    .expect("cluster");
    let rules = r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
		pool_size 5
		pool_timeout 30000
	}
}
"#;
    let pooler = Pooler::start(&config(cluster.port(), rules)).expect("pooler");
    println!(
        "listeners {}, notifications {} every {:?}",
        args.listeners, args.notifications, args.interval
    );
    println!(
        "target,delivered,expected,p50_ms,p99_ms,max_ms,cpu_us_per_delivery,machine_ms_per_notification,floor_ms"
    );
    let base = Instant::now();
    for (name, port, pid) in [
        ("direct", cluster.port(), None),
        ("odyssey", pooler.port(), Some(pooler.pid())),
    ] {
        let run = measure(&args, port, pid, base);
        report(name, &args, &run);
    }
}

fn report(name: &str, args: &Args, run: &Run) {
    let mut l = run.latencies.clone();
    l.sort_unstable();
    let at = |q: f64| l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)));
    let ms = |v: Option<&u64>| v.map_or(f64::NAN, |v| *v as f64 / 1000.0);
    let per = run.cpu_us.map_or("-".to_string(), |c| {
        format!("{:.2}", c as f64 / l.len().max(1) as f64)
    });
    let machine_ms = run.machine_us as f64 / 1000.0 / args.notifications.max(1) as f64;
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{name},{},{},{:.2},{:.2},{:.2},{per},{machine_ms:.2},{:.2}",
        l.len(),
        args.listeners * args.notifications,
        ms(at(0.5)),
        ms(at(0.99)),
        ms(l.last()),
        machine_ms / cores as f64,
    );
}

fn measure(args: &Args, port: u16, pid: Option<u32>, base: Instant) -> Run {
    let ready = Arc::new(Barrier::new(args.listeners + 1));
    let want = args.notifications;
    let listeners: Vec<_> = (0..args.listeners)
        .map(|_| {
            let ready = ready.clone();
            thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || listen(port, want, &ready, base))
                .expect("thread")
        })
        .collect();
    ready.wait();
    let cpu_before = pid.map(cpu_us);
    let machine_before = machine_busy_us();
    let mut notifier = raw_login(port).expect("notifier login");
    for _ in 0..args.notifications {
        let sent = base.elapsed().as_micros();
        simple_query(&mut notifier, &format!("NOTIFY {CHANNEL}, '{sent}'")).expect("notify");
        thread::sleep(args.interval);
    }
    let mut latencies = Vec::new();
    for l in listeners {
        latencies.extend(l.join().expect("listener"));
    }
    let machine_us = machine_busy_us().saturating_sub(machine_before);
    let cpu_us = pid
        .zip(cpu_before)
        .map(|(p, b)| cpu_us(p).saturating_sub(b));
    Run {
        latencies,
        cpu_us,
        machine_us,
    }
}

/// One listener: LISTEN, wait for the start, then the latency of each notification (until
/// `want` came, or 10 s of silence).
fn listen(port: u16, want: usize, ready: &Barrier, base: Instant) -> Vec<u64> {
    let mut conn: RawConn = raw_login(port).expect("listener login");
    simple_query(&mut conn, &format!("LISTEN {CHANNEL}")).expect("listen");
    ready.wait();
    let mut out = Vec::with_capacity(want);
    while out.len() < want {
        let Ok(Some(m)) = conn.recv() else { break };
        if m.tag != b'A' {
            continue;
        }
        let now = base.elapsed().as_micros() as u64;
        // pid (4 bytes), channel\0, payload\0
        let rest = &m.body[4..];
        let payload = rest.split(|b| *b == 0).nth(1).unwrap_or_default();
        let sent: u64 = std::str::from_utf8(payload)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        out.push(now.saturating_sub(sent));
    }
    let _ = send_query(&mut conn, "UNLISTEN *");
    out
}

/// utime + stime of process `pid`, in µs.
fn cpu_us(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // Fields after the name: state(skipped: not a number) ... utime is field 14 overall.
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    let hz = 100; // USER_HZ on Linux
    ticks * 1_000_000 / hz
}

/// The machine's busy CPU time so far, all cores (user, nice, system, irq, softirq, steal
/// from the first line of /proc/stat), in µs.
fn machine_busy_us() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    busy * 1_000_000 / 100 // USER_HZ on Linux
}
