//! TLS echo over machinarium streams, with a certificate made by the test.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use machinarium::net::{ListenOptions, Listener, Stream, TlsStream};
use machinarium::{MachineConfig, MachineHandle, machine_create};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::{X509, X509NameBuilder};

fn self_signed() -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "localhost").expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(1).expect("t"))
        .expect("na");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    (b.build(), key)
}

/// A machine that accepts one TLS client with `cert` and echoes what it reads until the end.
fn echo_server(cert: &X509, key: &PKey<Private>) -> (MachineHandle, std::net::SocketAddr) {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    acceptor.set_certificate(cert).expect("cert");
    acceptor.set_private_key(key).expect("key");
    let acceptor = acceptor.build();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = machine_create("tls-echo", MachineConfig::default(), move || {
        let l = Listener::bind(
            "127.0.0.1:0".parse().expect("addr"),
            &ListenOptions::default(),
        )
        .expect("bind");
        addr_tx.send(l.local_addr().expect("addr")).expect("send");
        let (conn, _) = l.accept(Duration::from_secs(5)).expect("accept");
        let stream = conn.attach().expect("attach");
        let mut tls = TlsStream::accept(stream, acceptor.context(), Duration::from_secs(5))
            .expect("handshake");
        let mut buf = [0u8; 4096];
        while let Ok(n) = tls.read(&mut buf, Duration::from_secs(5)) {
            if n == 0 || tls.write_all(&buf[..n], Duration::from_secs(5)).is_err() {
                break;
            }
        }
    })
    .expect("server");
    let addr = addr_rx.recv_timeout(Duration::from_secs(5)).expect("addr");
    (server, addr)
}

#[test]
fn tls_echo_with_a_certificate_made_by_the_test() {
    let (cert, key) = self_signed();
    let mut connector = SslConnector::builder(SslMethod::tls()).expect("connector");
    connector
        .cert_store_mut()
        .add_cert(cert.clone())
        .expect("trust");
    connector.set_verify(SslVerifyMode::PEER);
    let connector = connector.build();
    let (server, addr) = echo_server(&cert, &key);
    let (echoed, subject) = machinarium::run(move || {
        let s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let mut tls = TlsStream::connect(
            s,
            connector.context(),
            Some("localhost"),
            Duration::from_secs(5),
        )
        .expect("client handshake");
        let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let mut got = vec![0u8; msg.len()];
        // Write in pieces and read back each piece, so neither side's buffers fill up.
        for (chunk, out) in msg.chunks(10_000).zip(got.chunks_mut(10_000)) {
            tls.write_all(chunk, Duration::from_secs(5)).expect("write");
            tls.read_exact(out, Duration::from_secs(5)).expect("read");
        }
        let subject = tls.ssl().peer_certificate().and_then(|c| {
            c.subject_name()
                .entries()
                .next()
                .map(|e| e.data().as_slice().to_vec())
        });
        tls.shutdown(Duration::from_secs(5)).expect("shutdown");
        (got == msg, subject)
    })
    .expect("run");
    server.join().expect("server");
    assert!(echoed, "TLS echo must be byte-exact");
    assert_eq!(subject.as_deref(), Some(&b"localhost"[..]));
}

/// A pooled TLS server connection moves between workers: the client session is detached on
/// one machine, sent to another thread and attached to a second machine, and the session
/// goes on there with the same keys.
#[test]
fn a_detached_tls_session_goes_on_on_another_machine() {
    let (cert, key) = self_signed();
    let mut connector = SslConnector::builder(SslMethod::tls()).expect("connector");
    connector.set_verify(SslVerifyMode::NONE);
    let connector = connector.build();
    let (server, addr) = echo_server(&cert, &key);
    let detached = machinarium::run(move || {
        let s = Stream::connect(addr, Duration::from_secs(5)).expect("connect");
        let mut tls = TlsStream::connect(s, connector.context(), None, Duration::from_secs(5))
            .expect("client handshake");
        let mut got = [0u8; 5];
        tls.write_all(b"first", Duration::from_secs(5))
            .expect("write");
        tls.read_exact(&mut got, Duration::from_secs(5))
            .expect("read");
        assert_eq!(&got, b"first");
        tls.detach()
    })
    .expect("first machine");
    let second = std::thread::spawn(move || {
        machinarium::run(move || {
            let mut tls = detached.attach().expect("attach");
            let mut got = [0u8; 6];
            tls.write_all(b"second", Duration::from_secs(5))
                .expect("write");
            tls.read_exact(&mut got, Duration::from_secs(5))
                .expect("read");
            tls.shutdown(Duration::from_secs(5)).expect("shutdown");
            got
        })
        .expect("second machine")
    });
    assert_eq!(&second.join().expect("thread"), b"second");
    server.join().expect("server");
}

/// The client side of the read-ahead test: blocking OpenSSL over a socket that, once `split`
/// is set, sends each write in two halves 300 ms apart (a record arriving in two pieces).
#[derive(Debug)]
struct SplitWriter {
    sock: std::net::TcpStream,
    split: bool,
}

impl std::io::Read for SplitWriter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.sock.read(buf)
    }
}

impl std::io::Write for SplitWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.split && buf.len() > 1 {
            let half = buf.len() / 2;
            self.sock.write_all(&buf[..half])?;
            std::thread::sleep(Duration::from_millis(300));
            self.sock.write_all(&buf[half..])?;
        } else {
            self.sock.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// With read-ahead, one recv may take two records: the second counts as pending (a parked
/// session wakes for it at once, though the socket has nothing more), while the first part
/// of a record that has not all arrived does not (a parked session waits for the rest instead
/// of waking again and again).
#[test]
fn records_read_ahead_wake_a_parked_session_and_half_a_record_does_not() {
    let (cert, key) = self_signed();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    acceptor.set_certificate(&cert).expect("cert");
    acceptor.set_private_key(&key).expect("key");
    acceptor.set_read_ahead(true);
    let acceptor = acceptor.build();
    let (sent_tx, sent_rx) = machinarium::channel::<&'static str>();
    let client = move |addr: std::net::SocketAddr| {
        let mut connector = SslConnector::builder(SslMethod::tls()).expect("connector");
        connector.set_verify(SslVerifyMode::NONE);
        let sock = std::net::TcpStream::connect(addr).expect("connect");
        sock.set_nodelay(true).expect("nodelay");
        let wire = SplitWriter { sock, split: false };
        let mut tls = connector
            .build()
            .connect("localhost", wire)
            .expect("client handshake");
        tls.write_all(b"one").expect("one");
        tls.write_all(b"two").expect("two");
        sent_tx.send("two records").expect("signal");
        tls.get_mut().split = true;
        tls.write_all(b"three").expect("three");
        let mut end = [0u8; 1];
        // Holds the connection until the server is done with it.
        let _ = tls.read(&mut end);
    };
    let (client, first, pending, second, third, wakes) = machinarium::run(move || {
        let l = Listener::bind(
            "127.0.0.1:0".parse().expect("addr"),
            &ListenOptions::default(),
        )
        .expect("bind");
        let addr = l.local_addr().expect("addr");
        let client = std::thread::spawn(move || client(addr));
        let (conn, _) = l.accept(Duration::from_secs(5)).expect("accept");
        let stream = conn.attach().expect("attach");
        let mut tls = TlsStream::accept(stream, acceptor.context(), Duration::from_secs(5))
            .expect("handshake");
        sent_rx.recv(Duration::from_secs(5)).expect("records sent");
        let mut buf = [0u8; 64];
        let n = tls.read(&mut buf, Duration::from_secs(5)).expect("read");
        let first = buf[..n].to_vec();
        let pending = tls.pending();
        let (tx, rx) = machinarium::channel();
        let tx2 = tx.clone();
        tls.park(Duration::from_secs(2), move |mut tls, ev| {
            let mut buf = [0u8; 64];
            let got = match tls.try_read(&mut buf) {
                Ok(Some(n)) => format!("{ev:?}:{}", String::from_utf8_lossy(&buf[..n])),
                other => format!("{ev:?}:{other:?}"),
            };
            tx2.send(got).expect("send");
            park_until_read(tls, tx2, 0);
        });
        let second = rx.recv(Duration::from_secs(5)).expect("second");
        let third = rx.recv(Duration::from_secs(5)).expect("third");
        let (text, wakes) = third.rsplit_once('#').expect("wakes");
        let (third, wakes) = (text.to_string(), wakes.parse::<u32>().expect("count"));
        drop(tx);
        (client, first, pending, second, third, wakes)
    })
    .expect("run");
    client.join().expect("client");
    assert_eq!(first, b"one");
    assert!(
        pending,
        "the second record, read ahead with the first, must count as pending"
    );
    assert_eq!(
        second, "Readable:two",
        "a parked session must wake for a record read ahead"
    );
    assert_eq!(third, "three");
    assert!(
        wakes <= 3,
        "half a record must not wake a parked session again and again: {wakes} wakes"
    );
}

/// Parks until `try_read` gives bytes; sends them with the number of wakes it took.
fn park_until_read(tls: TlsStream, tx: machinarium::Sender<String>, wakes: u32) {
    tls.park(Duration::from_secs(5), move |mut tls, _ev| {
        let mut buf = [0u8; 64];
        match tls.try_read(&mut buf) {
            Ok(Some(n)) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                tx.send(format!("{text}#{}", wakes + 1)).expect("send");
            }
            Ok(None) => park_until_read(tls, tx, wakes + 1),
            Err(e) => tx.send(format!("{e}#{}", wakes + 1)).expect("send"),
        }
    });
}
