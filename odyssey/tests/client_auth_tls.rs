//! Client authentication over TLS on loopback: `cert` against client certificates made by the
//! test, and SCRAM-SHA-256-PLUS bound to the pooler's certificate (`tls-server-end-point`).
//! The client is a std thread with a blocking openssl stream speaking the protocol with kiwi.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use kiwi::backend::{Authentication, BackendMessage, ErrorFields};
use kiwi::frontend::{AuthResponse, SaslInitialResponse};
use kiwi::header::Header;
use kiwi::scram::{ChannelBinding, ScramClient, tls_server_end_point_of};
use machinarium::Deadline;
use machinarium::net::{ListenOptions, Listener, TlsStream};
use odyssey::auth::{AuthError, Authenticated, ClientAuth, authenticate};
use odyssey::config::{self, Rule};
use odyssey::conn::{Conn, Transport};
use odyssey::id::ClientId;
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslStream, SslVerifyMode};
use openssl::x509::{X509, X509NameBuilder};

const TIMEOUT: Duration = Duration::from_secs(10);

fn self_signed(cn: &str) -> (X509, PKey<Private>) {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", cn).expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(1).expect("t"))
        .expect("not after");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    (b.build(), key)
}

fn rule(auth: &str) -> Rule {
    let text = format!(
        "log_format \"%m\\n\"\nlisten {{\n\thost \"127.0.0.1\"\n\tport 6432\n}}\n\
         storage \"pg\" {{\n\ttype \"remote\"\n\thost \"localhost\"\n}}\n\
         database \"db\" {{\n\tuser \"u\" {{\n{auth}\n\t\tstorage \"pg\"\n\t\tpool \"session\"\n\t}}\n}}\n"
    );
    let (c, _) = config::load_str("tls.conf", &text).expect("config");
    c.rules.into_iter().next().expect("rule")
}

/// A blocking TLS client with a certificate for `client_cn` (none when `None`).
struct Client {
    tls: SslStream<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    fn connect(port: u16, client_cn: Option<&str>) -> Client {
        let mut b = SslConnector::builder(SslMethod::tls()).expect("connector");
        b.set_verify(SslVerifyMode::NONE); // the pooler's certificate is self-signed
        if let Some(cn) = client_cn {
            let (cert, key) = self_signed(cn);
            b.set_certificate(&cert).expect("client cert");
            b.set_private_key(&key).expect("client key");
        }
        let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        tcp.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let tls = b.build().connect("localhost", tcp).expect("handshake");
        Client {
            tls,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).expect("write");
    }

    /// The next message (tag, body); `None` at EOF.
    fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            let header = Header::parse(&self.buf, 1 << 20).expect("header");
            if let Some(h) = header.filter(|h| self.buf.len() >= h.frame_len()) {
                let body = self.buf[5..h.frame_len()].to_vec();
                self.buf.drain(..h.frame_len());
                return Some((h.tag, body));
            }
            let mut chunk = [0u8; 4096];
            match self.tls.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// "ok" after AuthenticationOk, else "<code>: <message>" of the ErrorResponse.
    fn outcome(&mut self) -> String {
        while let Some((tag, body)) = self.recv() {
            if let Some(verdict) = verdict(tag, &body) {
                return verdict;
            }
        }
        "EOF".into()
    }
}

/// "ok" for AuthenticationOk, "<code>: <message>" for an ErrorResponse, else `None`.
fn verdict(tag: u8, body: &[u8]) -> Option<String> {
    if tag == b'E' {
        let f = ErrorFields::decode(body).expect("error");
        let msg = String::from_utf8_lossy(f.message().unwrap_or_default()).into_owned();
        return Some(format!("{}: {msg}", f.code().expect("code")));
    }
    let ok = BackendMessage::decode(tag, body).ok()
        == Some(BackendMessage::Authentication(Authentication::Ok));
    ok.then(|| "ok".to_string())
}

/// Runs `authenticate` on a TLS connection accepted with a fresh server certificate; the
/// client gets the port and that certificate.
fn login<T: Send + 'static>(
    rule: Rule,
    client: impl FnOnce(u16, X509) -> T + Send + 'static,
) -> (Result<Authenticated, AuthError>, T) {
    let (cert, key) = self_signed("pooler");
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    acceptor.set_certificate(&cert).expect("cert");
    acceptor.set_private_key(&key).expect("key");
    // Ask for a client certificate and take any: the CN check is what is under test.
    acceptor.set_verify_callback(SslVerifyMode::PEER, |_, _| true);
    let acceptor = acceptor.build();
    machinarium::run(move || {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let listener = Listener::bind(addr, &ListenOptions::default()).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let peer = std::thread::spawn(move || client(port, cert));
        let deadline = Deadline::after(TIMEOUT);
        let (stream, _) = listener.accept(deadline).expect("accept");
        let stream = stream.attach().expect("attach");
        let tls = TlsStream::accept(stream, acceptor.context(), deadline).expect("handshake");
        let mut conn = Conn::new(Transport::Tls(tls));
        let a = ClientAuth {
            client: ClientId::new(),
            user: "u",
            database: "db",
            rule: &rule,
            show_id: false,
            deadline,
            peer: None,
            pooler: None,
        };
        let outcome = authenticate(&mut conn, &a);
        let _ = conn.flush(deadline); // AuthenticationOk, which the greeting would carry
        drop(conn);
        (outcome, peer.join().expect("client"))
    })
    .expect("machine")
}

#[test]
fn cert_accepts_the_user_a_listed_name_and_a_wildcard() {
    let cases = [
        ("auth_common_name default", "U"),
        ("auth_common_name \"svc\"", "svc"),
        ("auth_common_name \"db.example.com\"", "*.example.com"),
    ];
    for (names, cn) in cases {
        let auth = format!("authentication \"cert\"\n{names}");
        let (outcome, got) = login(rule(&auth), move |port, _| {
            Client::connect(port, Some(cn)).outcome()
        });
        assert_eq!(got, "ok", "{names} / CN {cn}");
        outcome.expect("accepted");
    }
}

#[test]
fn cert_refuses_another_name_and_no_certificate() {
    let auth = "authentication \"cert\"\nauth_common_name default\nauth_common_name \"svc\"";
    for cn in [Some("mallory"), None] {
        let (outcome, got) = login(rule(auth), move |port, _| {
            Client::connect(port, cn).outcome()
        });
        assert_eq!(
            got,
            "28P01: odyssey: certificate authentication failed for user \"u\""
        );
        assert!(matches!(outcome, Err(AuthError::Rejected(_))));
    }
}

/// Logs in with SCRAM choosing from the offered mechanisms with `binding`.
fn scram_login(port: u16, binding: impl FnOnce(&[&str]) -> ChannelBinding) -> String {
    let mut c = Client::connect(port, None);
    let (_, body) = c.recv().expect("AuthenticationSASL");
    let Ok(Authentication::Sasl { mechanisms }) = Authentication::decode(&body) else {
        panic!("expected AuthenticationSASL");
    };
    let mut scram = ScramClient::new(b"pw")
        .expect("client")
        .channel_binding(binding(&mechanisms));
    let first = scram.client_first();
    let mut out = Vec::new();
    let mechanism = scram.mechanism();
    SaslInitialResponse {
        mechanism,
        data: Some(&first),
    }
    .encode(&mut out);
    c.send(&out);
    let (tag, body) = c.recv().expect("reply to client-first");
    if let Some(verdict) = verdict(tag, &body) {
        return verdict;
    }
    let Ok(Authentication::SaslContinue { data }) = Authentication::decode(&body) else {
        panic!("expected SASLContinue");
    };
    let data = &scram.handle_server_first(data).expect("server-first");
    out.clear();
    AuthResponse { data }.encode(&mut out);
    c.send(&out);
    c.outcome()
}

#[test]
fn scram_plus_binds_to_the_pooler_certificate() {
    let auth = "authentication \"scram-sha-256\"\npassword \"pw\"";
    let (outcome, got) = login(rule(auth), |port, cert| {
        scram_login(port, |offered| {
            assert_eq!(offered, ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
            ChannelBinding::TlsServerEndPoint(tls_server_end_point_of(&cert).expect("hash"))
        })
    });
    assert_eq!(got, "ok");
    assert!(outcome.expect("accepted").scram_keys.is_some());
}

#[test]
fn scram_plus_refuses_a_downgrade_and_a_wrong_binding() {
    let auth = "authentication \"scram-sha-256\"\npassword \"pw\"";
    let (_, got) = login(rule(auth), |port, _| {
        scram_login(port, |_| ChannelBinding::NotOffered)
    });
    assert_eq!(
        got,
        "0A000: odyssey: frontend auth: doesn't support channel binding at the moment"
    );
    let (outcome, got) = login(rule(auth), |port, _| {
        scram_login(port, |_| ChannelBinding::TlsServerEndPoint(vec![0; 32]))
    });
    assert_eq!(
        got,
        "28000: odyssey: frontend auth: malformed client SASLResponse"
    );
    assert!(matches!(outcome, Err(AuthError::Rejected(_))));
}
