//! Resident memory per idle coroutine and per parked stream, at the default stack size.
//!
//! Each case runs in a fresh child process (this binary re-executed with `RSS_BENCH_CASE`),
//! so that memory freed by one case cannot be reused by the next and hide its cost. A case
//! reads RSS (`/proc/self/statm`, resident pages × page size) once the machine is up and
//! warm, creates N idle things, reads RSS again, and divides the difference by N:
//!
//! - `cond`: N coroutines parked in `Cond::wait` on one machine (detached, no join handles).
//! - `read`: N loopback connections to a listener in this process; each accepted stream is
//!   served by a coroutine blocked in `Stream::read` (64-byte buffer on its stack).
//! - `park`: the same connections, each accepted stream `park`ed with a small closure
//!   (no coroutine, no stack).
//!
//! Both ends of every connection live in this process, so N connections take 2N fds; N is
//! scaled down when RLIMIT_NOFILE (raised to its hard limit first) is too low. The client
//! sockets are plain std sockets held by the main thread (4 bytes each in a Vec), counted in
//! the difference. Kernel socket memory is not part of RSS.
//!
//! `BENCH_QUICK=1`: 20k coroutines and 2k connections instead of 100k and 10k.

mod common;

use std::cell::Cell;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use machinarium::net::{ListenOptions, Listener};
use machinarium::{Cond, Deadline, MachineConfig, machine_create, spawn, yield_now};

const CASE_ENV: &str = "RSS_BENCH_CASE";

struct Case {
    name: &'static str,
    what: &'static str,
    goal_bytes: u64,
}

const CASES: [Case; 3] = [
    Case {
        name: "cond",
        what: "coroutine parked on Cond",
        goal_bytes: 12 * 1024,
    },
    Case {
        name: "read",
        what: "coroutine blocked in socket read",
        goal_bytes: 12 * 1024,
    },
    Case {
        name: "park",
        what: "stream parked without a stack",
        goal_bytes: 512,
    },
];

/// What a child reports, one line: `RESULT n before after vmas_before vmas_after note`.
struct Measured {
    n: u64,
    before: u64,
    after: u64,
    vmas_before: usize,
    vmas_after: usize,
    note: String,
}

fn main() {
    if let Ok(case) = std::env::var(CASE_ENV) {
        let m = match case.as_str() {
            "cond" => case_cond(),
            "read" => case_connections(false),
            "park" => case_connections(true),
            other => panic!("unknown case {other}"),
        };
        println!(
            "RESULT {} {} {} {} {} {}",
            m.n, m.before, m.after, m.vmas_before, m.vmas_after, m.note
        );
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let default = machinarium::MachineConfig::default();
    println!(
        "RSS per idle item (default stack: {} pages = {} KiB + {} guard page(s); page size {})",
        default.stack_pages,
        default.stack_pages * 4,
        default.guard_pages,
        common::page_size()
    );
    println!(
        "{:<36} {:>7} {:>11} {:>11} {:>10} {:>10} {:>5}  note",
        "case", "N", "RSS before", "RSS after", "per item", "goal", "met"
    );
    for case in &CASES {
        let out = Command::new(&exe)
            .env(CASE_ENV, case.name)
            .output()
            .expect("run case");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let Some(line) = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) else {
            println!(
                "{:<36} failed: {}\n{}",
                case.what,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        };
        let f: Vec<&str> = line.splitn(6, ' ').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let m = Measured {
            n: num(0),
            before: num(1),
            after: num(2),
            vmas_before: num(3) as usize,
            vmas_after: num(4) as usize,
            note: f.get(5).unwrap_or(&"").to_string(),
        };
        let per = m.after.saturating_sub(m.before) as f64 / m.n.max(1) as f64;
        println!(
            "{:<36} {:>7} {:>8} KiB {:>8} KiB {:>8.0} B {:>8} B {:>5}  VMAs {} -> {}; {}",
            case.what,
            m.n,
            m.before / 1024,
            m.after / 1024,
            per,
            case.goal_bytes,
            if per <= case.goal_bytes as f64 {
                "yes"
            } else {
                "NO"
            },
            m.vmas_before,
            m.vmas_after,
            m.note
        );
    }
}

/// Yields until `cond()` holds or `limit` passes; false on timeout.
fn yield_until(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let until = Instant::now() + limit;
    while !cond() {
        if Instant::now() > until {
            return false;
        }
        yield_now();
    }
    true
}

fn case_cond() -> Measured {
    let n: usize = if common::quick() { 20_000 } else { 100_000 };
    machinarium::run(move || {
        // Warm up the machine: allocator arenas, the stack pool, the ready queue.
        spawn(|| ()).join(Deadline::NEVER).expect("join");
        let cond = Cond::new();
        let started = Rc::new(Cell::new(0usize));
        let done = Rc::new(Cell::new(0usize));
        let before = common::rss_bytes();
        let vmas_before = common::vma_count();
        for _ in 0..n {
            let (cond, started, done) = (cond.clone(), started.clone(), done.clone());
            // Detached: the handle is dropped, so only the runtime's own memory counts.
            drop(spawn(move || {
                started.set(started.get() + 1);
                // A broadcast can be a spurious wake for nobody: loop until really done.
                let _ = cond.wait(Deadline::NEVER);
                done.set(done.get() + 1);
            }));
        }
        let all_parked = yield_until(Duration::from_secs(60), || started.get() == n);
        let after = common::rss_bytes();
        let vmas_after = common::vma_count();
        let live = machinarium::coroutine_count();
        cond.broadcast();
        let all_woken = yield_until(Duration::from_secs(60), || done.get() == n);
        Measured {
            n: n as u64,
            before,
            after,
            vmas_before,
            vmas_after,
            note: format!(
                "live coroutines {live}; guard via {}; all parked: {all_parked}, all woken: \
                 {all_woken}",
                if machinarium::guard_uses_madvise() {
                    "madvise"
                } else {
                    "mprotect"
                }
            ),
        }
    })
    .expect("run")
}

fn case_connections(park: bool) -> Measured {
    let nofile = common::raise_nofile();
    let wanted: u64 = if common::quick() { 2_000 } else { 10_000 };
    // Two fds per connection, plus the listener, epoll, eventfds, stdio and some spare.
    let n = wanted.min(nofile.saturating_sub(64) / 2) as usize;
    let note = if (n as u64) < wanted {
        format!("scaled down from {wanted}: RLIMIT_NOFILE is {nofile} (2 fds a connection)")
    } else {
        format!("RLIMIT_NOFILE {nofile}")
    };

    let idle = Arc::new(AtomicUsize::new(0));
    let server_idle = idle.clone();
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let server = machine_create("server", MachineConfig::default(), move || {
        let opts = ListenOptions {
            backlog: 4096,
            ..ListenOptions::default()
        };
        let listener = Listener::bind("127.0.0.1:0".parse().expect("addr"), &opts).expect("bind");
        addr_tx
            .send(listener.local_addr().expect("local addr"))
            .expect("addr");
        // Ends when the machine is stopped (accept is cancelled).
        while let Ok((conn, _)) = listener.accept(Deadline::NEVER) {
            let Ok(stream) = conn.attach() else { continue };
            if park {
                stream.park(Deadline::NEVER, |s, _ev| drop(s));
                server_idle.fetch_add(1, Ordering::Relaxed);
            } else {
                let idle = server_idle.clone();
                drop(spawn(move || {
                    let mut s = stream;
                    let mut buf = [0u8; 64];
                    idle.fetch_add(1, Ordering::Relaxed);
                    let _ = s.read(&mut buf, Deadline::NEVER);
                }));
            }
        }
    })
    .expect("server machine");
    let addr = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("server address");

    // Warm up: one connection through the whole path, then let it settle.
    let warm = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    let until = Instant::now() + Duration::from_secs(10);
    while idle.load(Ordering::Relaxed) < 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(200));

    let mut clients: Vec<TcpStream> = Vec::with_capacity(n);
    let before = common::rss_bytes();
    let vmas_before = common::vma_count();
    for _ in 0..n {
        let c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        let _ = common::set_linger_zero(&c);
        clients.push(c);
    }
    let until = Instant::now() + Duration::from_secs(60);
    while idle.load(Ordering::Relaxed) < n + 1 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    let reached = idle.load(Ordering::Relaxed) - 1;
    // Let the last coroutines reach their read.
    std::thread::sleep(Duration::from_millis(300));
    let after = common::rss_bytes();
    let vmas_after = common::vma_count();

    server.stop();
    server.join().expect("server machine");
    drop(clients);
    drop(warm);
    Measured {
        n: reached as u64,
        before,
        after,
        vmas_before,
        vmas_after,
        note: format!(
            "{note}; {}",
            if park {
                "closure drops the stream"
            } else {
                "64-byte read buffer on the coroutine stack"
            }
        ),
    }
}
