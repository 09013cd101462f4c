//! `StreamWaker` (wake one parked stream from another thread) and `Bell` (a doorbell a
//! coroutine waits on beside its streams).

use std::net::{SocketAddr, TcpListener as StdListener};
use std::time::{Duration, Instant};

use machinarium::net::{Stream, StreamWaker, bell, wait_any};
use machinarium::{ParkEvent, channel};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// A silent peer's stream, parked with a 5 s deadline, is woken from another thread at once
/// with `Interrupted`; its park's timer does not fire afterwards.
#[test]
fn a_waker_runs_the_parked_function_from_another_thread() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let hold = std::thread::spawn(move || {
        let (s, _) = peer.accept().expect("accept");
        std::thread::sleep(Duration::from_millis(600));
        drop(s);
    });
    let got = machinarium::run(move || {
        let s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let waker = StreamWaker::new(&s.park_key()).expect("in a machine");
        let (tx, rx) = channel();
        let began = Instant::now();
        s.park(Duration::from_secs(5), move |s, ev| {
            tx.send((ev, began.elapsed())).expect("send");
            // Parked again: only the peer's close wakes it, not the old timer.
            let tx = tx.clone();
            s.park(Duration::from_secs(5), move |_s, ev| {
                tx.send((ev, began.elapsed())).expect("send")
            });
        });
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.wake();
        });
        let first = rx.recv(Duration::from_secs(5)).expect("woken");
        let second = rx.recv(Duration::from_secs(5)).expect("peer closed");
        (first, second)
    })
    .expect("run");
    hold.join().expect("peer");
    let ((ev1, at1), (ev2, at2)) = got;
    assert_eq!(ev1, ParkEvent::Interrupted);
    assert!(at1 < Duration::from_secs(1), "woken after {at1:?}");
    assert_eq!(
        ev2,
        ParkEvent::Readable,
        "the second park ends by the peer's close"
    );
    assert!(at2 >= Duration::from_millis(500), "{at2:?}");
}

/// A waker of a stream that is not parked, or is closed, does nothing.
#[test]
fn a_waker_of_a_running_or_closed_stream_does_nothing() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let hold = std::thread::spawn(move || {
        let a = peer.accept().expect("accept a");
        let b = peer.accept().expect("accept b");
        std::thread::sleep(Duration::from_millis(400));
        drop((a, b));
    });
    let got = machinarium::run(move || {
        let first = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let stale = StreamWaker::new(&first.park_key()).expect("waker");
        stale.wake(); // not parked: nothing happens
        drop(first);
        // The new stream may reuse the slot; the stale waker must not wake it.
        let second = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let (tx, rx) = channel();
        second.park(Duration::from_millis(200), move |_s, ev| {
            tx.send(ev).expect("send")
        });
        stale.wake();
        rx.recv(Duration::from_secs(5)).expect("park ended")
    })
    .expect("run");
    hold.join().expect("peer");
    assert_eq!(got, ParkEvent::TimedOut);
}

/// A coroutine waiting on a stream and a bell wakes when another thread rings; rings before
/// the wait are not lost, and `clear` forgets them.
#[test]
fn a_bell_rung_from_another_thread_ends_a_wait() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let hold = std::thread::spawn(move || {
        let s = peer.accept().expect("accept");
        std::thread::sleep(Duration::from_millis(500));
        drop(s);
    });
    let got = machinarium::run(move || {
        let s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let (mut bell, ringer) = bell().expect("bell");
        ringer.ring();
        ringer.ring();
        let early = wait_any(&[s.park_key(), bell.park_key()], Duration::from_secs(1));
        bell.clear().expect("clear");
        let quiet = wait_any(&[s.park_key(), bell.park_key()], Duration::from_millis(50));
        let began = Instant::now();
        let r = ringer.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            r.ring();
        });
        let rung = wait_any(&[s.park_key(), bell.park_key()], Duration::from_secs(5));
        (early.ok(), quiet.is_err(), rung.ok(), began.elapsed())
    })
    .expect("run");
    hold.join().expect("peer");
    assert_eq!(got.0, Some(1), "a ring before the wait");
    assert!(got.1, "a cleared bell is quiet");
    assert_eq!(got.2, Some(1), "the ring from another thread");
    assert!(got.3 < Duration::from_secs(1), "{:?}", got.3);
}
