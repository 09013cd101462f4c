//! Streams and listeners on loopback: deadlines, cancel, big transfers, hand-off between
//! machines, parking without a stack.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::time::{Duration, Instant};

use machinarium::net::{ListenOptions, Listener, Stream, wait_readable_any};
use machinarium::{Deadline, Error, MachineConfig, ParkEvent, channel, machine_create};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

#[test]
fn read_deadline_fires_with_silent_peer() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let (r, elapsed) = machinarium::run(move || {
        let mut s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let t = Instant::now();
        let mut buf = [0u8; 16];
        (s.read(&mut buf, Duration::from_millis(50)), t.elapsed())
    })
    .expect("run");
    drop(peer);
    assert!(matches!(r, Err(Error::TimedOut)), "{r:?}");
    assert!(
        elapsed >= Duration::from_millis(50) && elapsed < Duration::from_millis(300),
        "{elapsed:?}"
    );
}

#[test]
fn read_exact_deadline_covers_the_whole_operation() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let trickler = std::thread::spawn(move || {
        let (mut s, _) = peer.accept().expect("accept");
        for _ in 0..20 {
            if s.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (r, elapsed) = machinarium::run(move || {
        let mut s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let t = Instant::now();
        let mut buf = [0u8; 100];
        (
            s.read_exact(&mut buf, Duration::from_millis(200)),
            t.elapsed(),
        )
    })
    .expect("run");
    trickler.join().expect("trickler");
    assert!(matches!(r, Err(Error::TimedOut)), "{r:?}");
    assert!(elapsed < Duration::from_millis(400), "{elapsed:?}");
}

#[test]
fn read_cancelled_by_another_coroutine() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let r = machinarium::run(move || {
        let reader = machinarium::spawn(move || {
            let mut s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
            let mut buf = [0u8; 16];
            s.read(&mut buf, Deadline::NEVER)
        });
        machinarium::sleep(Duration::from_millis(20)).expect("sleep");
        reader.cancel();
        reader.join(Duration::from_secs(5)).expect("join")
    })
    .expect("run");
    drop(peer);
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
}

#[test]
fn accept_deadline_fires() {
    let r = machinarium::run(|| {
        let l = Listener::bind(loopback(), &ListenOptions::default()).expect("bind");
        let t = Instant::now();
        (l.accept(Duration::from_millis(30)).map(|_| ()), t.elapsed())
    })
    .expect("run");
    assert!(matches!(r.0, Err(Error::TimedOut)));
    assert!(r.1 >= Duration::from_millis(30));
}

#[test]
fn connect_refused_is_an_error() {
    let addr = {
        let l = StdListener::bind(loopback()).expect("bind");
        l.local_addr().expect("addr")
    };
    let r = machinarium::run(move || Stream::connect(addr, Duration::from_secs(2)).map(|_| ()))
        .expect("run");
    match r {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("expected refused, got {other:?}"),
    }
}

/// 10 MB each way through a machinarium echo server, byte-exact.
#[test]
fn ten_megabytes_echoed_byte_exact() {
    const SIZE: usize = 10 * 1024 * 1024;
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = machine_create("echo", MachineConfig::default(), move || {
        let l = Listener::bind(loopback(), &ListenOptions::default()).expect("bind");
        addr_tx
            .send(l.local_addr().expect("addr"))
            .expect("send addr");
        let (conn, _) = l.accept(Duration::from_secs(10)).expect("accept");
        let mut s = conn.attach().expect("attach");
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = s.read(&mut buf, Duration::from_secs(10)).expect("read");
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n], Duration::from_secs(10))
                .expect("write");
        }
    })
    .expect("machine");
    let addr = addr_rx.recv_timeout(Duration::from_secs(5)).expect("addr");
    let data: Vec<u8> = (0..SIZE).map(|i| (i * 31 % 251) as u8).collect();
    let mut client = StdStream::connect(addr).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut writer = client.try_clone().expect("clone");
    let to_send = data.clone();
    let w = std::thread::spawn(move || {
        writer.write_all(&to_send).expect("write");
        writer
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
    });
    let mut got = Vec::with_capacity(SIZE);
    client.read_to_end(&mut got).expect("read back");
    w.join().expect("writer");
    server.join().expect("server");
    assert_eq!(got.len(), SIZE);
    assert!(got == data, "echoed bytes differ");
}

/// Accept on machine A, detach, send to machine B, attach and serve there. The client writes
/// before B attaches: B's first read must see the bytes without waiting for a new event.
#[test]
fn socket_detached_on_one_machine_used_on_another() {
    let (tx, rx) = channel();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = machine_create("worker", MachineConfig::default(), move || {
        let conn: machinarium::net::DetachedStream =
            rx.recv(Duration::from_secs(10)).expect("recv");
        let mut s = conn.attach().expect("attach");
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf, Duration::from_secs(5))
            .expect("read");
        s.write_all(&buf, Duration::from_secs(5)).expect("write");
        done_tx
            .send(machinarium::current_machine_name())
            .expect("done");
    })
    .expect("worker");
    let acceptor = machine_create("acceptor", MachineConfig::default(), move || {
        let l = Listener::bind(loopback(), &ListenOptions::default()).expect("bind");
        addr_tx.send(l.local_addr().expect("addr")).expect("addr");
        let (conn, _) = l.accept(Duration::from_secs(10)).expect("accept");
        // Give the client time to write before the hand-off.
        machinarium::sleep(Duration::from_millis(50)).expect("sleep");
        tx.send(conn).expect("hand off");
    })
    .expect("acceptor");
    let addr = addr_rx.recv_timeout(Duration::from_secs(5)).expect("addr");
    let mut c = StdStream::connect(addr).expect("connect");
    c.write_all(b"hello").expect("write");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut back = [0u8; 5];
    c.read_exact(&mut back).expect("read");
    assert_eq!(&back, b"hello");
    assert_eq!(
        done_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("done")
            .as_deref(),
        Some("worker")
    );
    acceptor.join().expect("acceptor");
    worker.join().expect("worker");
}

/// A parked stream holds no coroutine; its function runs when bytes arrive, and again after
/// re-parking; a park deadline fires when the peer stays silent.
#[test]
fn parked_stream_runs_its_function_on_readable_and_on_deadline() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let client = std::thread::spawn(move || {
        let (mut s, _) = peer.accept().expect("accept");
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"ping").expect("write");
        std::thread::sleep(Duration::from_millis(500));
    });
    let events = machinarium::run(move || {
        let s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let (tx, rx) = channel();
        let count_before = machinarium::coroutine_count();
        let tx2 = tx.clone();
        s.park(Deadline::NEVER, move |mut s, ev| {
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf, Duration::from_secs(1))
                .expect("read");
            tx2.send(format!("{ev:?}:{}", String::from_utf8_lossy(&buf)))
                .expect("send");
            // Park again; nothing more comes, so the deadline fires.
            s.park(Duration::from_millis(50), move |_s, ev| {
                tx2.send(format!("{ev:?}")).expect("send");
            });
        });
        let parked_count = machinarium::coroutine_count();
        let a = rx.recv(Duration::from_secs(5)).expect("first");
        let b = rx.recv(Duration::from_secs(5)).expect("second");
        drop(tx);
        (count_before, parked_count, a, b)
    })
    .expect("run");
    client.join().expect("client");
    assert_eq!(events.0, events.1, "parking must not hold a coroutine");
    assert_eq!(events.2, "Readable:ping");
    assert_eq!(events.3, format!("{:?}", ParkEvent::TimedOut));
}

#[test]
fn wait_readable_any_picks_the_stream_with_data() {
    let a = StdListener::bind(loopback()).expect("bind");
    let b = StdListener::bind(loopback()).expect("bind");
    let (aa, ba) = (a.local_addr().expect("a"), b.local_addr().expect("b"));
    let t = std::thread::spawn(move || {
        let (_sa, _) = a.accept().expect("a");
        let (mut sb, _) = b.accept().expect("b");
        std::thread::sleep(Duration::from_millis(30));
        sb.write_all(b"x").expect("write");
        std::thread::sleep(Duration::from_millis(200));
    });
    let idx = machinarium::run(move || {
        let mut sa = Stream::connect(aa, Duration::from_secs(5)).expect("a");
        let mut sb = Stream::connect(ba, Duration::from_secs(5)).expect("b");
        let mut buf = [0u8; 1];
        // Drain the optimistic readiness of both.
        assert!(sa.try_read(&mut buf).expect("a").is_none());
        assert!(sb.try_read(&mut buf).expect("b").is_none());
        wait_readable_any(&[&sa, &sb], Duration::from_secs(5)).expect("wait")
    })
    .expect("run");
    t.join().expect("thread");
    assert_eq!(idx, 1);
}

#[test]
fn unix_socket_round_trip() {
    let dir = std::env::temp_dir().join(format!("mm-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("s.sock");
    let p2 = path.clone();
    let got = machinarium::run(move || {
        let opts = ListenOptions {
            unix_mode: Some(0o600),
            ..ListenOptions::default()
        };
        let l = Listener::bind_unix(&p2, &opts).expect("bind");
        let p3 = p2.clone();
        let client = machinarium::spawn(move || {
            let mut s = Stream::connect_unix(&p3, Duration::from_secs(2)).expect("connect");
            s.write_all(b"unix!", Duration::from_secs(2))
                .expect("write");
        });
        let (conn, peer) = l.accept(Duration::from_secs(2)).expect("accept");
        let mut s = conn.attach().expect("attach");
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf, Duration::from_secs(2))
            .expect("read");
        client.join(Deadline::NEVER).expect("client");
        (buf, peer, s.is_unix())
    })
    .expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(&got.0, b"unix!");
    assert_eq!(got.1, machinarium::net::PeerAddr::Unix);
    assert!(got.2);
}

/// Two streams parked as a group: the one that speaks first wakes the function (once), and the
/// other one's park is withdrawn.
#[test]
fn park_any_wakes_once_for_the_first_readable_stream() {
    let a = StdListener::bind(loopback()).expect("bind");
    let b = StdListener::bind(loopback()).expect("bind");
    let (aa, ba) = (a.local_addr().expect("a"), b.local_addr().expect("b"));
    let peer = std::thread::spawn(move || {
        let (mut sa, _) = a.accept().expect("a");
        let (mut sb, _) = b.accept().expect("b");
        std::thread::sleep(Duration::from_millis(40));
        sb.write_all(b"b").expect("write b");
        std::thread::sleep(Duration::from_millis(40));
        sa.write_all(b"a").expect("write a");
        std::thread::sleep(Duration::from_millis(100));
    });
    let got = machinarium::run(move || {
        let sa = Stream::connect(aa, Duration::from_secs(5)).expect("a");
        let sb = Stream::connect(ba, Duration::from_secs(5)).expect("b");
        let (tx, rx) = channel();
        let keys = [sa.park_key(), sb.park_key()];
        let before = machinarium::coroutine_count();
        machinarium::net::park_any(&keys, Duration::from_secs(5), move |i, ev| {
            let _keep = (sa, sb);
            tx.send((i, ev)).expect("send");
        });
        let parked = machinarium::coroutine_count();
        let first = rx.recv(Duration::from_secs(5)).expect("first wake");
        // The other stream's data must not wake anything again.
        let second = rx.recv(Duration::from_millis(150));
        (before, parked, first, second.is_err())
    })
    .expect("run");
    peer.join().expect("peer");
    assert_eq!(got.0, got.1, "parking holds no coroutine");
    assert_eq!(got.2, (1, ParkEvent::Readable));
    assert!(got.3, "woken exactly once");
}

/// Data and end of stream arriving together: the short read must not make the reader miss
/// the end (the readiness is kept while the peer has closed).
#[test]
fn data_then_close_is_read_to_the_end() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let t = std::thread::spawn(move || {
        let (mut s, _) = peer.accept().expect("accept");
        s.write_all(b"abc").expect("write");
        drop(s);
    });
    let got = machinarium::run(move || {
        let mut s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        machinarium::sleep(Duration::from_millis(50)).expect("sleep");
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf, Duration::from_secs(2)).expect("data");
        let end = s
            .read(&mut buf, Duration::from_secs(2))
            .expect("end of stream");
        (n, end)
    })
    .expect("run");
    t.join().expect("peer");
    assert_eq!(got, (3, 0));
}

/// Regression: two streams of a group readable in the same poll batch. The first part runs
/// the function, which parks the group again; the second (stale) part must not withdraw the
/// new park, or a later byte on that stream wakes nobody.
#[test]
fn a_stale_part_of_a_group_does_not_withdraw_a_newer_park() {
    let a = StdListener::bind(loopback()).expect("bind");
    let b = StdListener::bind(loopback()).expect("bind");
    let (aa, ba) = (a.local_addr().expect("a"), b.local_addr().expect("b"));
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let peer = std::thread::spawn(move || {
        let (mut sa, _) = a.accept().expect("a");
        let (mut sb, _) = b.accept().expect("b");
        std::thread::sleep(Duration::from_millis(50));
        // Both at once: one poll batch sees both streams readable.
        sa.write_all(b"1").expect("a1");
        sb.write_all(b"1").expect("b1");
        for s in [&mut sa, &mut sb] {
            if go_rx.recv_timeout(Duration::from_secs(5)).is_err() {
                return;
            }
            s.write_all(b"2").expect("second byte");
        }
        let _ = go_rx.recv_timeout(Duration::from_secs(5));
    });
    fn wait(streams: (Stream, Stream), tx: machinarium::Sender<usize>) {
        let keys = [streams.0.park_key(), streams.1.park_key()];
        machinarium::net::park_any(&keys, Duration::from_secs(5), move |i, ev| {
            let (mut a, mut b) = streams;
            if ev != ParkEvent::Readable {
                return;
            }
            let mut buf = [0u8; 8];
            while a.try_read(&mut buf).expect("read a").is_some_and(|n| n > 0) {}
            while b.try_read(&mut buf).expect("read b").is_some_and(|n| n > 0) {}
            let _ = tx.send(i);
            wait((a, b), tx);
        });
    }
    let wakes = machinarium::run(move || {
        let sa = Stream::connect(aa, Duration::from_secs(5)).expect("a");
        let sb = Stream::connect(ba, Duration::from_secs(5)).expect("b");
        let (tx, rx) = channel();
        wait((sa, sb), tx);
        let mut wakes = 0;
        // First wake (both streams), then one wake per later byte on each stream.
        for round in 0..3 {
            if rx.recv(Duration::from_secs(2)).is_err() {
                break;
            }
            wakes += 1;
            // Give the stale part of the same batch time to run before the next byte.
            machinarium::sleep(Duration::from_millis(30)).expect("sleep");
            while rx.try_recv().is_some() {}
            if round < 2 {
                go_tx.send(()).expect("go");
            }
        }
        let _ = go_tx.send(());
        wakes
    })
    .expect("run");
    peer.join().expect("peer");
    assert_eq!(wakes, 3, "every later byte must wake the parked group");
}

#[test]
fn peek_waits_for_bytes_and_leaves_them_for_read() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let writer = std::thread::spawn(move || {
        let (mut s, _) = peer.accept().expect("accept");
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"\x16hello").expect("write");
        s
    });
    let (peeked, read, silent) = machinarium::run(move || {
        let mut s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let mut first = [0u8; 1];
        let peeked = s
            .peek(&mut first, Duration::from_secs(5))
            .map(|n| first[..n].to_vec());
        let mut all = [0u8; 6];
        let read = s
            .read_exact(&mut all, Duration::from_secs(5))
            .map(|()| all.to_vec());
        // Nothing more: peek waits until its deadline.
        let silent = s.peek(&mut first, Duration::from_millis(50));
        (peeked, read, silent)
    })
    .expect("run");
    drop(writer.join().expect("writer"));
    assert_eq!(peeked.expect("peek"), b"\x16");
    assert_eq!(read.expect("read"), b"\x16hello");
    assert!(matches!(silent, Err(Error::TimedOut)), "{silent:?}");
}

/// A detached stream stays registered with the machine it left: attached there again it reads
/// what arrived meanwhile (the edge landed in its slot), and moved to another machine and back
/// it leaves no registration behind on either.
#[test]
fn a_detached_stream_keeps_its_home_until_it_moves() {
    let peer = StdListener::bind(loopback()).expect("bind");
    let addr = peer.local_addr().expect("addr");
    let (to_b, from_a) = channel::<machinarium::net::DetachedStream>();
    let (to_a, from_b) = channel::<machinarium::net::DetachedStream>();
    let (say_tx, say_rx) = std::sync::mpsc::channel::<&'static [u8]>();
    let (said_tx, said_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let (mut s, _) = peer.accept().expect("accept");
        while let Ok(bytes) = say_rx.recv_timeout(Duration::from_secs(10)) {
            s.write_all(bytes).expect("write");
            // The last words are not waited for: the other side may be gone already.
            let _ = said_tx.send(());
        }
    });
    let read_word = |s: &mut Stream| {
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf, Duration::from_secs(5))
            .expect("read");
        // Nothing more: the next read meets WouldBlock and readiness is forgotten.
        let mut more = [0u8; 1];
        assert!(matches!(
            s.read(&mut more, Duration::from_millis(20)),
            Err(Error::TimedOut)
        ));
        buf
    };
    let b = machine_create("b", MachineConfig::default(), move || {
        let mut s = from_a
            .recv(Duration::from_secs(10))
            .expect("recv")
            .attach()
            .expect("attach");
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf, Duration::from_secs(5))
            .expect("read on b");
        assert_eq!(&buf, b"two");
        let d = s.detach().expect("detach");
        assert_eq!(d.home_machine(), machinarium::current_machine_id());
        to_a.send(d).expect("back to a");
        // Its registration here goes when a attaches it: b's count drops back to none.
        let t = Instant::now();
        while machinarium::registered_sockets() != 0 && t.elapsed() < Duration::from_secs(5) {
            machinarium::sleep(Duration::from_millis(5)).expect("sleep");
        }
        assert_eq!(
            machinarium::registered_sockets(),
            0,
            "b kept a registration"
        );
    })
    .expect("machine b");
    machinarium::run(move || {
        let base = machinarium::registered_sockets();
        let mut s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        say_tx.send(b"one").expect("say");
        said_rx.recv_timeout(Duration::from_secs(5)).expect("said");
        assert_eq!(&read_word(&mut s), b"one");
        let d = s.detach().expect("detach");
        assert_eq!(d.home_machine(), machinarium::current_machine_id());
        assert_eq!(
            machinarium::registered_sockets(),
            base + 1,
            "still registered at home"
        );
        // Bytes come while nobody holds the stream; attached at home, it reads them at once.
        say_tx.send(b"uno").expect("say");
        said_rx.recv_timeout(Duration::from_secs(5)).expect("said");
        machinarium::sleep(Duration::from_millis(50)).expect("sleep");
        let mut s = d.attach().expect("attach at home");
        assert_eq!(&read_word(&mut s), b"uno");
        // To b, where the next bytes are read; its slot here is freed.
        to_b.send(s.detach().expect("detach")).expect("to b");
        let t = Instant::now();
        while machinarium::registered_sockets() != base && t.elapsed() < Duration::from_secs(5) {
            machinarium::sleep(Duration::from_millis(5)).expect("sleep");
        }
        assert_eq!(
            machinarium::registered_sockets(),
            base,
            "a kept the moved stream's slot"
        );
        say_tx.send(b"two").expect("say");
        let mut s = from_b
            .recv(Duration::from_secs(10))
            .expect("back")
            .attach()
            .expect("attach");
        say_tx.send(b"end").expect("say");
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf, Duration::from_secs(5))
            .expect("read back at a");
        assert_eq!(&buf, b"end");
        drop(s);
        assert_eq!(machinarium::registered_sockets(), base);
    })
    .expect("machine a");
    b.join().expect("machine b");
    writer.join().expect("writer");
}

fn sockopt(fd: std::os::fd::RawFd, level: libc::c_int, name: libc::c_int) -> [libc::c_int; 2] {
    let mut v = [0 as libc::c_int; 2];
    let mut len = std::mem::size_of_val(&v) as libc::socklen_t;
    // SAFETY: `v` has room for `len` bytes (an int, or a linger struct of two ints), and
    // getsockopt writes no more than `len` into it.
    let rc = unsafe { libc::getsockopt(fd, level, name, v.as_mut_ptr().cast(), &mut len) };
    assert_eq!(rc, 0, "getsockopt {level}/{name}");
    v
}

/// Waits (at most 5 s) until a connection waits to be accepted.
fn until_queued(l: &Listener) {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: l.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and we pass a count of one.
    let rc = unsafe { libc::poll(&mut p, 1, 5000) };
    assert_eq!(rc, 1, "a connection must be queued");
}

/// Options set on a listener reach the sockets it accepts (no system call per socket), a
/// later call overwrites them all, and `emptied_since` tells whether an accept had to wait.
#[test]
fn accepted_sockets_inherit_the_listener_options() {
    use machinarium::net::{AcceptedOptions, KeepAlive};
    use std::os::fd::AsRawFd;
    let got = machinarium::run(|| {
        let l = Listener::bind(loopback(), &ListenOptions::default()).expect("bind");
        let addr = l.local_addr().expect("addr");
        let on = AcceptedOptions {
            nodelay: true,
            keepalive: KeepAlive {
                idle: Some(Duration::from_secs(77)),
                interval: None,
                probes: Some(5),
                user_timeout: Some(Duration::from_millis(12_345)),
            },
            nolinger: true,
        };
        l.set_accepted_options(&on).expect("set");
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            StdStream::connect(addr).expect("connect")
        });
        let (first, _) = l.accept(Duration::from_secs(5)).expect("accept");
        let waited = l.emptied_since();
        let first = first.attach().expect("attach");
        let fd = first.as_raw_fd();
        let read = |fd| {
            (
                sockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY)[0],
                sockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE)[0],
                sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)[0],
                sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL)[0],
                sockopt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT)[0],
                sockopt(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT)[0],
                sockopt(fd, libc::SOL_SOCKET, libc::SO_LINGER),
            )
        };
        let first_opts = read(fd);
        let _c1 = late.join().expect("client");

        // Keepalive off: the user timeout is the kernel's default again, as on a fresh socket.
        let off = AcceptedOptions {
            nodelay: false,
            keepalive: KeepAlive {
                user_timeout: Some(Duration::from_millis(999)),
                ..KeepAlive::default()
            },
            nolinger: false,
        };
        l.set_accepted_options(&off).expect("set again");
        l.emptied_since();
        let _c2 = StdStream::connect(addr).expect("connect");
        until_queued(&l);
        let (second, _) = l.accept(Duration::from_secs(5)).expect("accept");
        let queued = !l.emptied_since();
        let second = second.attach().expect("attach");
        let second_opts = read(second.as_raw_fd());
        (waited, first_opts, queued, second_opts)
    })
    .expect("run");
    let sysctl_intvl: libc::c_int =
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_keepalive_intvl")
            .expect("sysctl")
            .trim()
            .parse()
            .expect("number");
    let (waited, first, queued, second) = got;
    assert!(waited, "the first accept waited for its client");
    assert_eq!(first, (1, 1, 77, sysctl_intvl, 5, 12_345, [1, 0]));
    assert!(queued, "the second client was queued before the accept");
    assert_eq!((second.0, second.1, second.5, second.6), (0, 0, 0, [0, 0]));
}
