//! TLS echo over machinarium streams, with a certificate made by the test.

use std::time::Duration;

use machinarium::net::{ListenOptions, Listener, Stream, TlsStream};
use machinarium::{MachineConfig, machine_create};
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

#[test]
fn tls_echo_with_a_certificate_made_by_the_test() {
    let (cert, key) = self_signed();
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    acceptor.set_certificate(&cert).expect("cert");
    acceptor.set_private_key(&key).expect("key");
    let acceptor = acceptor.build();
    let mut connector = SslConnector::builder(SslMethod::tls()).expect("connector");
    connector
        .cert_store_mut()
        .add_cert(cert.clone())
        .expect("trust");
    connector.set_verify(SslVerifyMode::PEER);
    let connector = connector.build();

    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server = machine_create("tls-server", MachineConfig::default(), move || {
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
        loop {
            let n = tls.read(&mut buf, Duration::from_secs(5)).expect("read");
            if n == 0 {
                break;
            }
            tls.write_all(&buf[..n], Duration::from_secs(5))
                .expect("write");
        }
    })
    .expect("server");
    let addr = addr_rx.recv_timeout(Duration::from_secs(5)).expect("addr");
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
