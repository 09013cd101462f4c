//! Cond, channels, wait groups and the blocking pool, within and across machines.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use machinarium::{
    BlockingPool, Cond, Deadline, Error, MachineConfig, WaitGroup, channel, machine_create,
};

fn within(elapsed: Duration, lo: Duration, hi: Duration) {
    assert!(
        elapsed >= lo && elapsed < hi,
        "elapsed {elapsed:?} not in [{lo:?}, {hi:?})"
    );
}

#[test]
fn cond_wait_deadline_fires_on_time() {
    let (r, elapsed) = machinarium::run(|| {
        let cond = Cond::new();
        let t = Instant::now();
        (cond.wait(Duration::from_millis(50)), t.elapsed())
    })
    .expect("run");
    assert!(matches!(r, Err(Error::TimedOut)), "{r:?}");
    within(
        elapsed,
        Duration::from_millis(50),
        Duration::from_millis(250),
    );
}

#[test]
fn cond_signalled_from_another_machine() {
    let cond = Cond::new();
    let remote_cond = cond.clone();
    // Timed from before the signaller starts: its 30 ms may begin before this machine's
    // waiter does (under valgrind a machine takes milliseconds to start), never after.
    let t = Instant::now();
    let other = machine_create("signaller", MachineConfig::default(), move || {
        machinarium::sleep(Duration::from_millis(30)).expect("sleep");
        remote_cond.signal();
    })
    .expect("machine");
    let (r, elapsed) =
        machinarium::run(move || (cond.wait(Duration::from_secs(5)), t.elapsed())).expect("run");
    other.join().expect("join");
    assert!(r.is_ok(), "{r:?}");
    within(elapsed, Duration::from_millis(25), Duration::from_secs(2));
}

#[test]
fn cond_signal_before_wait_is_remembered() {
    let r = machinarium::run(|| {
        let cond = Cond::new();
        cond.signal();
        cond.wait(Duration::from_millis(1))
    })
    .expect("run");
    assert!(r.is_ok());
}

#[test]
fn channel_recv_deadline_fires_on_time() {
    let (r, elapsed) = machinarium::run(|| {
        let (_tx, rx) = channel::<u32>();
        let t = Instant::now();
        (rx.recv(Duration::from_millis(40)), t.elapsed())
    })
    .expect("run");
    assert!(matches!(r, Err(Error::TimedOut)));
    within(
        elapsed,
        Duration::from_millis(40),
        Duration::from_millis(250),
    );
}

#[test]
fn channel_closed_when_senders_gone() {
    let r = machinarium::run(|| {
        let (tx, rx) = channel::<u32>();
        tx.send(1).expect("send");
        drop(tx);
        (
            rx.recv(Deadline::NEVER).ok(),
            rx.recv(Deadline::NEVER).err(),
        )
    })
    .expect("run");
    assert_eq!(r.0, Some(1));
    assert!(matches!(r.1, Some(Error::Closed)));
}

/// 4 machines each send 100,000 messages to each other over channels; receivers use tiny
/// random deadlines to force hand-off/timeout races. Every message arrives exactly once and in
/// per-sender order.
#[test]
fn four_machines_exchange_100k_messages_each() {
    const MACHINES: usize = 4;
    let per_machine: u64 = if std::env::var_os("MACHINARIUM_UNDER_VALGRIND").is_some() {
        2_000
    } else {
        100_000
    };
    let chans: Vec<_> = (0..MACHINES).map(|_| channel::<(usize, u64)>()).collect();
    let senders: Vec<_> = chans.iter().map(|(tx, _)| tx.clone()).collect();
    let mut joins = Vec::new();
    let mut machines = Vec::new();
    for (me, (_, rx)) in chans.into_iter().enumerate() {
        let rx = rx.clone();
        let senders = senders.clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let m = machine_create(&format!("m{me}"), MachineConfig::default(), move || {
            // Send to the next machine, receive from the previous one, in two coroutines.
            let to = senders[(me + 1) % MACHINES].clone();
            drop(senders);
            let producer = machinarium::spawn(move || {
                for i in 0..per_machine {
                    to.send((me, i)).expect("send");
                    if i % 1024 == 0 {
                        machinarium::yield_now();
                    }
                }
            });
            let mut seen = HashSet::new();
            let mut next = 0u64;
            let mut timeouts = 0u64;
            let mut rng = me as u64 * 7919 + 1;
            while next < per_machine {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let d = Duration::from_micros((rng >> 33) % 2000);
                match rx.recv(d) {
                    Ok((from, i)) => {
                        assert_eq!(from, (me + MACHINES - 1) % MACHINES);
                        assert_eq!(i, next, "per-sender order");
                        assert!(seen.insert(i), "duplicate {i}");
                        next += 1;
                    }
                    Err(Error::TimedOut) => timeouts += 1,
                    Err(e) => panic!("recv: {e}"),
                }
            }
            producer.join(Deadline::NEVER).expect("producer");
            assert!(rx.try_recv().is_none(), "nothing extra");
            done_tx.send((seen.len() as u64, timeouts)).expect("report");
        })
        .expect("machine");
        machines.push(m);
        joins.push(done_rx);
    }
    drop(senders);
    for (m, done) in machines.iter().zip(joins) {
        let (count, _timeouts) = done
            .recv_timeout(Duration::from_secs(120))
            .expect("machine finished");
        assert_eq!(count, per_machine);
        m.join().expect("join");
    }
}

#[test]
fn wait_group_across_machines() {
    let start = Instant::now();
    let wg = WaitGroup::new();
    let mut machines = Vec::new();
    for i in 0..4 {
        wg.add();
        let wg = wg.clone();
        machines.push(
            machine_create(&format!("wg{i}"), MachineConfig::default(), move || {
                machinarium::sleep(Duration::from_millis(10 * (i + 1))).expect("sleep");
                wg.done();
            })
            .expect("machine"),
        );
    }
    let r =
        machinarium::run(move || (wg.wait(Duration::from_secs(5)), start.elapsed(), wg.count()))
            .expect("run");
    for m in machines {
        m.join().expect("join");
    }
    assert!(r.0.is_ok());
    // The slowest task sleeps 40 ms: the wait cannot end before it is done.
    assert!(r.1 >= Duration::from_millis(40), "{:?}", r.1);
    assert_eq!(r.2, 0);
}

#[test]
fn wait_group_deadline() {
    let r = machinarium::run(|| {
        let wg = WaitGroup::new();
        wg.add();
        wg.wait(Duration::from_millis(20))
    })
    .expect("run");
    assert!(matches!(r, Err(Error::TimedOut)));
}

#[test]
fn blocking_pool_times_out_and_keeps_working() {
    let pool = BlockingPool::new("blk", 2).expect("pool");
    let r = machinarium::run(move || {
        let t = Instant::now();
        let slow = pool.run(Duration::from_millis(20), || {
            std::thread::sleep(Duration::from_millis(200))
        });
        let waited = t.elapsed();
        let fast = pool.run(Duration::from_secs(5), || 6 * 7);
        let resolved = pool.resolve("localhost", 5432, Duration::from_secs(5));
        (slow, waited, fast, resolved)
    })
    .expect("run");
    assert!(matches!(r.0, Err(Error::TimedOut)));
    assert!(r.1 < Duration::from_millis(150), "{:?}", r.1);
    assert_eq!(r.2.expect("fast"), 42);
    let addrs = r.3.expect("resolve");
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 5432),
        "{addrs:?}"
    );
}
