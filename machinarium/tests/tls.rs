//! TLS echo over machinarium streams, with a certificate made by the test.

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
