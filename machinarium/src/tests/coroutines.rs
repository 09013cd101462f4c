//! Spawning, joining, panics, cancellation, sleep.

use std::time::{Duration, Instant};

use crate::{Deadline, Error, JoinError};

#[test]
fn spawn_and_join_returns_value() {
    let v =
        crate::run(|| crate::spawn(|| 40 + 2).join(Deadline::NEVER).expect("join")).expect("run");
    assert_eq!(v, 42);
}

#[test]
fn hundred_thousand_coroutines_spawned_and_joined() {
    let n = if std::env::var_os("MACHINARIUM_UNDER_VALGRIND").is_some() {
        2_000
    } else {
        100_000
    };
    let total = crate::run(move || {
        let handles: Vec<_> = (0..n).map(|i| crate::spawn(move || i as u64)).collect();
        assert_eq!(crate::coroutine_count(), n + 1);
        handles
            .into_iter()
            .map(|h| h.join(Deadline::NEVER).expect("join"))
            .sum::<u64>()
    })
    .expect("run");
    assert_eq!(total, (n as u64) * (n as u64 - 1) / 2);
}

#[test]
fn panicking_coroutine_is_reported_and_machine_goes_on() {
    let (msg, after) = crate::run(|| {
        let bad = crate::spawn(|| -> u32 { panic!("boom") });
        let msg = match bad.join(Deadline::NEVER) {
            Err(JoinError::Panicked(p)) => crate::panic_message(p.as_ref()).to_string(),
            other => format!("unexpected: {other:?}"),
        };
        let after = crate::spawn(|| 7).join(Deadline::NEVER).expect("join");
        (msg, after)
    })
    .expect("run");
    assert_eq!(msg, "boom");
    assert_eq!(after, 7);
}

#[test]
fn sleep_lasts_at_least_its_duration() {
    let elapsed = crate::run(|| {
        let t = Instant::now();
        crate::sleep(Duration::from_millis(30)).expect("sleep");
        t.elapsed()
    })
    .expect("run");
    assert!(elapsed >= Duration::from_millis(30), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(300), "{elapsed:?}");
}

#[test]
fn cancel_interrupts_sleep() {
    let (r, elapsed) = crate::run(|| {
        let t = Instant::now();
        let sleeper = crate::spawn(|| crate::sleep(Duration::from_secs(60)));
        crate::sleep(Duration::from_millis(10)).expect("sleep");
        sleeper.cancel();
        (sleeper.join(Deadline::NEVER).expect("join"), t.elapsed())
    })
    .expect("run");
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert!(elapsed < Duration::from_secs(5));
}

#[test]
fn join_deadline_fires() {
    let r = crate::run(|| {
        let slow = crate::spawn(|| crate::sleep(Duration::from_secs(60)));
        let t = Instant::now();
        let r = slow.join(Duration::from_millis(20));
        (
            matches!(r, Err(JoinError::Wait(Error::TimedOut))),
            t.elapsed(),
        )
    })
    .expect("run");
    assert!(r.0);
    assert!(
        r.1 >= Duration::from_millis(20) && r.1 < Duration::from_millis(500),
        "{:?}",
        r.1
    );
}

#[test]
fn machine_stop_cancels_coroutines() {
    let m = crate::machine_create("stopme", crate::MachineConfig::default(), || {
        let _ = crate::sleep(Duration::from_secs(600));
    })
    .expect("machine");
    let r = m.spawn(|| crate::sleep(Duration::from_secs(600)));
    std::thread::sleep(Duration::from_millis(20));
    let t = Instant::now();
    m.stop();
    m.join().expect("join machine");
    assert!(t.elapsed() < Duration::from_secs(3));
    assert!(matches!(r.join_thread(), Ok(Err(Error::Cancelled))));
}

#[test]
fn blocking_while_unwinding_fails_fast() {
    struct BlocksInDrop;
    impl Drop for BlocksInDrop {
        fn drop(&mut self) {
            let r = crate::sleep(Duration::from_secs(10));
            assert!(matches!(r, Err(Error::Unwinding)));
        }
    }
    let ok = crate::run(|| {
        let h = crate::spawn(|| {
            let _guard = BlocksInDrop;
            panic!("unwind with a blocking drop");
        });
        let panicked = matches!(h.join(Deadline::NEVER), Err(JoinError::Panicked(_)));
        panicked && !std::thread::panicking()
    })
    .expect("run");
    assert!(ok);
}
