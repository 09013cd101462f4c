//! Client authentication on loopback: `auth::authenticate` runs in a coroutine on an accepted
//! connection while a blocking raw client (a std thread speaking the protocol with kiwi) logs
//! in. Each test states its rule inline; failures are checked by severity, SQLSTATE and text.

use std::net::SocketAddr;
use std::time::Duration;

use kiwi::backend::{Authentication, BackendMessage, ErrorFields};
use kiwi::frontend::{PasswordMessage, SaslInitialResponse};
use machinarium::Deadline;
use machinarium::net::{ListenOptions, Listener};
use odyssey::auth::{AuthError, Authenticated, ClientAuth, authenticate};
use odyssey::config::{self, Rule};
use odyssey::conn::{Conn, Transport};
use odyssey::id::ClientId;
use odyssey_test::raw::RawConn;

const TIMEOUT: Duration = Duration::from_secs(10);

const CONFIG: &str = "log_format \"%m\\n\"\nlisten {\n\thost \"127.0.0.1\"\n\tport 6432\n}\n\
    storage \"pg\" {\n\ttype \"remote\"\n\thost \"localhost\"\n}\n";

/// The rule of `database "db" { user "u" { <auth> } }`.
fn rule(auth: &str) -> Rule {
    let text = format!(
        "{CONFIG}database \"db\" {{\n\tuser \"u\" {{\n{auth}\n\t\tstorage \"pg\"\n\t\tpool \"session\"\n\t}}\n}}\n"
    );
    let (c, _) = config::load_str("auth.conf", &text).expect("config");
    c.rules.into_iter().next().expect("one rule")
}

/// Runs `authenticate` for user `u` of database `db` against `client`, which gets a connected
/// raw connection; returns both outcomes.
fn login<T: Send + 'static>(
    rule: Rule,
    client: impl FnOnce(RawConn) -> T + Send + 'static,
) -> (Result<Authenticated, AuthError>, T) {
    machinarium::run(move || {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let listener = Listener::bind(addr, &ListenOptions::default()).expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let peer =
            std::thread::spawn(move || client(RawConn::connect(port, TIMEOUT).expect("connect")));
        let (stream, _) = listener.accept(Deadline::after(TIMEOUT)).expect("accept");
        let mut conn = Conn::new(Transport::Plain(stream.attach().expect("attach")));
        let a = ClientAuth {
            client: ClientId::new(),
            user: "u",
            database: "db",
            rule: &rule,
            show_id: true,
            deadline: Deadline::after(TIMEOUT),
            peer: None,
            pooler: None,
        };
        let outcome = authenticate(&mut conn, &a);
        // What the session sends next (the greeting) carries AuthenticationOk; here it goes
        // alone.
        let _ = conn.flush(Deadline::after(TIMEOUT));
        drop(conn); // the client sees EOF after the last reply
        (outcome, peer.join().expect("client thread"))
    })
    .expect("machine")
}

/// A client that answers every request with `password` and returns the server's verdict.
fn with_password(password: &str) -> impl FnOnce(RawConn) -> Result<(), String> + use<> {
    let password = password.to_string();
    move |mut c| c.authenticate("u", &password).map_err(|e| e.to_string())
}

/// Reads messages until an ErrorResponse: (severity, SQLSTATE, message).
fn error_of(c: &mut RawConn) -> (String, String, String) {
    while let Some(m) = c.recv().expect("recv") {
        if m.tag == b'E' {
            let f = ErrorFields::decode(&m.body).expect("ErrorResponse");
            let severity = f.severity().expect("severity").as_str().to_string();
            let code = f.code().expect("code").to_string();
            let text = String::from_utf8_lossy(f.message().unwrap_or_default()).into_owned();
            return (severity, code, text);
        }
    }
    panic!("no ErrorResponse before EOF");
}

/// Asserts the reply's severity, code and text (after the `odyssey: c…: ` prefix).
fn assert_reply(got: &(String, String, String), severity: &str, code: &str, text: &str) {
    let (s, c, m) = got;
    assert_eq!((s.as_str(), c.as_str()), (severity, code), "{m}");
    let rest = m.strip_prefix("odyssey: c").expect("client id prefix");
    assert_eq!(rest.get(12..), Some(format!(": {text}").as_str()), "{m}");
}

fn password_message(password: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PasswordMessage { password }.encode(&mut out);
    out
}

#[test]
fn none_sends_authentication_ok() {
    let (outcome, client) = login(rule("authentication \"none\""), |mut c| {
        c.recv().expect("recv").expect("a message")
    });
    assert!(outcome.is_ok());
    let ok = BackendMessage::Authentication(Authentication::Ok);
    assert_eq!(client.decode().expect("decode"), ok);
}

#[test]
fn block_refuses_with_user_blocked() {
    let (outcome, got) = login(rule("authentication \"block\""), |mut c| error_of(&mut c));
    assert!(matches!(outcome, Err(AuthError::Rejected(_))));
    assert_reply(&got, "FATAL", "28000", "user blocked: db u");
}

#[test]
fn clear_text_right_password_is_kept_for_passthrough() {
    let auth = "authentication \"clear_text\"\npassword \"pw\"\npassword_passthrough yes";
    let (outcome, client) = login(rule(auth), with_password("pw"));
    client.expect("login");
    assert_eq!(
        outcome.expect("accepted").password.as_deref(),
        Some(&b"pw"[..])
    );
}

#[test]
fn clear_text_wrong_password_fails_with_28p01() {
    let auth = "authentication \"clear_text\"\npassword \"pw\"";
    let (outcome, client) = login(rule(auth), with_password("nope"));
    let err = client.expect_err("wrong password");
    assert!(matches!(outcome, Err(AuthError::Rejected(_))));
    assert!(
        err.contains("28P01") && err.contains("password authentication failed for user \"u\""),
        "{err}"
    );
}

#[test]
fn clear_text_checks_an_md5_stored_password() {
    let hash = kiwi::md5::md5_password_hash(b"u", b"pw");
    let auth = format!("authentication \"clear_text\"\npassword \"{hash}\"");
    let (outcome, client) = login(rule(&auth), with_password("pw"));
    client.expect("login");
    assert!(
        outcome.expect("accepted").password.is_none(),
        "no passthrough"
    );
    let (outcome, client) = login(rule(&auth), with_password(&hash));
    assert!(
        outcome.is_err() && client.is_err(),
        "the hash is not the password"
    );
}

#[test]
fn md5_with_plain_and_hashed_stored_passwords() {
    let hash = kiwi::md5::md5_password_hash(b"u", b"pw");
    for stored in ["pw".to_string(), hash] {
        let auth = format!("authentication \"md5\"\npassword \"{stored}\"");
        let (outcome, client) = login(rule(&auth), with_password("pw"));
        client.expect("right password");
        outcome.expect("accepted");
        let (outcome, client) = login(rule(&auth), with_password("wrong"));
        let err = client.expect_err("wrong password");
        assert!(matches!(outcome, Err(AuthError::Rejected(_))));
        assert!(err.contains("28P01"), "{err}");
    }
}

#[test]
fn scram_with_plain_password_returns_the_keys() {
    let auth = "authentication \"scram-sha-256\"\npassword \"pw\"";
    let (outcome, client) = login(rule(auth), with_password("pw"));
    client.expect("login");
    assert!(outcome.expect("accepted").scram_keys.is_some());
    let (outcome, client) = login(rule(auth), with_password("wrong"));
    let err = client.expect_err("wrong password");
    assert!(matches!(outcome, Err(AuthError::Rejected(_))));
    assert!(
        err.contains("28000") && err.contains("password authentication failed for user \"u\""),
        "{err}"
    );
}

#[test]
fn scram_with_stored_verifier() {
    let verifier = kiwi::scram::ScramVerifier::generate(b"pw").expect("verifier");
    let auth = format!("authentication \"scram-sha-256\"\npassword \"{verifier}\"");
    let (outcome, client) = login(rule(&auth), with_password("pw"));
    client.expect("login");
    let keys = outcome.expect("accepted").scram_keys.expect("keys");
    assert_eq!(keys.server_key, verifier.server_key);
    let (outcome, client) = login(rule(&auth), with_password("wrong"));
    assert!(client.expect_err("wrong password").contains("28000"));
    assert!(matches!(outcome, Err(AuthError::Rejected(_))));
}

#[test]
fn scram_malformed_initial_response() {
    let auth = "authentication \"scram-sha-256\"\npassword \"pw\"";
    let (outcome, got) = login(rule(auth), |mut c| {
        let mut out = Vec::new();
        let data = Some(&b"n,,garbage"[..]);
        let mechanism = "SCRAM-SHA-256";
        SaslInitialResponse { mechanism, data }.encode(&mut out);
        c.send(&out).expect("send");
        error_of(&mut c)
    });
    assert!(matches!(outcome, Err(AuthError::Rejected(_))));
    assert_reply(
        &got,
        "ERROR",
        "28000",
        "frontend auth: malformed SASLInitialResponse message",
    );
}

#[test]
fn scram_unsupported_mechanism() {
    let auth = "authentication \"scram-sha-256\"\npassword \"pw\"";
    let (_, got) = login(rule(auth), |mut c| {
        let mut out = Vec::new();
        let data = Some(&b"n,,n=,r=abc"[..]);
        SaslInitialResponse {
            mechanism: "SCRAM-SHA-1",
            data,
        }
        .encode(&mut out);
        c.send(&out).expect("send");
        error_of(&mut c)
    });
    assert_reply(
        &got,
        "ERROR",
        "28000",
        "frontend auth: unsupported SASL authorization mechanism",
    );
}

#[test]
fn oversized_password_message_is_a_bad_password_message() {
    let auth = "authentication \"clear_text\"\npassword \"pw\"";
    let (outcome, got) = login(rule(auth), |mut c| {
        c.send(&password_message(&[b'x'; 20_000])).expect("send");
        error_of(&mut c)
    });
    assert!(matches!(outcome, Err(AuthError::Rejected(_))));
    assert_reply(&got, "ERROR", "08P01", "bad password message");
}

/// Regression: the whole body used to be read (up to 1 GiB) before the length was checked.
/// A header announcing 100 MB, on any method and whatever its tag, is refused by itself.
#[test]
fn oversized_header_is_refused_before_its_body() {
    let rules = [
        "authentication \"clear_text\"\npassword \"pw\"",
        "authentication \"md5\"\npassword \"pw\"",
        "authentication \"scram-sha-256\"\npassword \"pw\"",
    ];
    for auth in rules {
        for tag in [b'p', b'Q'] {
            let (outcome, got) = login(rule(auth), move |mut c| {
                let mut header = vec![tag];
                header.extend_from_slice(&(100u32 << 20).to_be_bytes());
                c.send(&header).expect("send");
                error_of(&mut c)
            });
            assert!(matches!(outcome, Err(AuthError::Rejected(_))), "{auth}");
            assert_reply(&got, "ERROR", "08P01", "bad password message");
        }
    }
}

#[test]
fn malformed_password_message_is_a_bad_password_message() {
    let auth = "authentication \"md5\"\npassword \"pw\"";
    let (_, got) = login(rule(auth), |mut c| {
        c.send(b"p\x00\x00\x00\x06pw").expect("send"); // no NUL terminator
        error_of(&mut c)
    });
    assert_reply(&got, "ERROR", "08P01", "bad password message");
}

#[test]
fn other_messages_are_discarded_while_waiting_for_the_password() {
    let auth = "authentication \"clear_text\"\npassword \"pw\"";
    let (outcome, client) = login(rule(auth), |mut c| {
        let mut out = b"S\x00\x00\x00\x04".to_vec(); // Sync
        out.extend(password_message(b"pw"));
        c.send(&out).expect("send");
        let mut tags = Vec::new();
        while let Some(m) = c.recv().expect("recv") {
            tags.push(m.tag);
        }
        tags
    });
    outcome.expect("accepted");
    assert_eq!(client, b"RR", "cleartext request, then AuthenticationOk");
}

#[test]
fn cert_without_tls_requires_tls() {
    let auth = "authentication \"cert\"\nauth_common_name default";
    let (outcome, got) = login(rule(auth), |mut c| error_of(&mut c));
    assert!(matches!(outcome, Err(AuthError::Rejected(_))));
    assert_reply(&got, "ERROR", "28000", "TLS connection required");
}

#[test]
fn external_without_an_agent_fails_as_external_authentication() {
    // Nothing listens on the default socket here; the agent exchange is
    // test/tests/external_auth.rs.
    let (outcome, got) = login(rule("authentication \"external\""), |mut c| {
        c.send(&password_message(b"token")).expect("send");
        error_of(&mut c)
    });
    assert!(matches!(outcome, Err(AuthError::Rejected(_))));
    assert_reply(
        &got,
        "FATAL",
        "28P01",
        "external authentication failed for user \"u\"",
    );
}

#[test]
fn auth_query_without_a_pooler_to_ask_fails_as_a_failed_query() {
    // The full flow against PostgreSQL is test/tests/auth_query.rs.
    let auth = "authentication \"md5\"\nauth_query \"SELECT usename, passwd FROM pg_shadow WHERE usename=$1\"\nauth_query_db \"postgres\"\nauth_query_user \"postgres\"";
    let (_, got) = login(rule(auth), |mut c| error_of(&mut c));
    assert_reply(&got, "ERROR", "28000", "failed to make auth query");
}

#[test]
fn a_rule_without_password_fails_and_says_why_in_the_log() {
    let mut r = rule("authentication \"scram-sha-256\"\npassword \"pw\"");
    r.auth.password = None;
    let (outcome, got) = login(r, |mut c| error_of(&mut c));
    assert_reply(
        &got,
        "FATAL",
        "28P01",
        "password authentication failed for user \"u\"",
    );
    let err = outcome.expect_err("refused");
    assert!(matches!(err, AuthError::Misconfigured { .. }));
    assert!(
        err.to_string().contains("the rule has no password"),
        "{err}"
    );
}
