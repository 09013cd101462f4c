//! Direct TLS (PostgreSQL 17's `sslnegotiation=direct`, issue 10): a client that opens with a
//! TLS ClientHello instead of an SSLRequest is served, the handshake at once and then the
//! StartupMessage inside TLS, provided it negotiates the ALPN protocol `postgresql`. As
//! PostgreSQL 17, a client offering only other protocols fails the handshake and one offering
//! none is closed after it. The installed libpq may predate 17, so the client is openssl's.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kiwi::startup::{ProtocolVersion, Startup};
use odyssey_test::certs::Certs;
use odyssey_test::tls::{TIMEOUT, certs, listen_tls, pooler, rule};
use odyssey_test::{Cluster, ClusterOptions, Pooler};
use openssl::ssl::{SslConnector, SslMethod, SslStream};

/// A TLS connection to the pooler opened with the ClientHello, offering `alpn` (wire form).
fn direct(
    pooler: &Pooler,
    ca: &Certs,
    alpn: Option<&[u8]>,
) -> Result<SslStream<TcpStream>, String> {
    let tcp = TcpStream::connect(("127.0.0.1", pooler.port())).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.set_ca_file(ca.ca()).map_err(|e| e.to_string())?;
    if let Some(alpn) = alpn {
        b.set_alpn_protos(alpn).map_err(|e| e.to_string())?;
    }
    b.build()
        .connect("localhost", tcp)
        .map_err(|e| e.to_string())
}

/// Reads messages up to ReadyForQuery; all of them, raw. An ErrorResponse fails the test.
fn until_ready(tls: &mut SslStream<TcpStream>) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let mut header = [0u8; 5];
        tls.read_exact(&mut header).expect("message header");
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(4)];
        tls.read_exact(&mut body).expect("message body");
        assert_ne!(header[0], b'E', "{}", String::from_utf8_lossy(&body));
        all.extend_from_slice(&header);
        all.extend_from_slice(&body);
        if header[0] == b'Z' {
            return all;
        }
    }
}

fn startup(user: &str) -> Vec<u8> {
    let mut out = Vec::new();
    Startup {
        version: ProtocolVersion::V3_0,
        params: vec![
            (b"user".as_slice(), user.as_bytes()),
            (b"database".as_slice(), b"postgres".as_slice()),
        ],
    }
    .encode(&mut out);
    out
}

/// A cluster behind a pooler whose listen has `tls` `mode`, and the CA of its certificate.
fn setup(mode: &str) -> (Cluster, Certs, Pooler) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let (ca, server) = certs();
    let lines = listen_tls(mode, &server, None);
    let pooler = pooler(cluster.port(), &lines, "", &rule("alice", "", "none"));
    (cluster, ca, pooler)
}

#[test]
fn a_client_opening_with_tls_and_alpn_postgresql_is_served() {
    let (_cluster, ca, pooler) = setup("require");
    let mut tls = direct(&pooler, &ca, Some(b"\x0apostgresql")).expect("handshake");
    assert_eq!(
        tls.ssl().selected_alpn_protocol(),
        Some(b"postgresql".as_slice())
    );
    tls.write_all(&startup("alice")).expect("startup");
    until_ready(&mut tls);
    let mut query = Vec::new();
    kiwi::frontend::Query {
        sql: b"select 'direct' || 'ly'",
    }
    .encode(&mut query);
    tls.write_all(&query).expect("query");
    let answer = until_ready(&mut tls);
    assert!(
        answer.windows(8).any(|w| w == b"directly"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[test]
fn direct_tls_without_alpn_postgresql_is_refused() {
    let (_cluster, ca, pooler) = setup("allow");
    // Another protocol only: the handshake fails (no_application_protocol).
    let other = direct(&pooler, &ca, Some(b"\x08http/1.1"));
    let refused = other.expect_err("a client offering http/1.1 was served");
    assert!(refused.contains("no application protocol"), "{refused}");
    // No ALPN: the handshake passes, then the pooler closes without reading a startup.
    let mut tls = direct(&pooler, &ca, None).expect("handshake without ALPN");
    let _ = tls.write_all(&startup("alice"));
    let mut byte = [0u8; 1];
    assert!(
        matches!(tls.read(&mut byte), Ok(0) | Err(_)),
        "a client without ALPN got an answer"
    );
    assert!(pooler.wait_log("without ALPN", TIMEOUT), "{}", pooler.log());
}
