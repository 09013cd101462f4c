//! Backend authentication against a real PostgreSQL: `auth::backend::authenticate_server`
//! answers MD5 and SCRAM-SHA-256 requests (with a password, an md5 hash, or SCRAM
//! pass-through keys) and the session reaches ReadyForQuery; wrong passwords surface the
//! server's 28P01 ErrorResponse. The password precedence of spec §8.1 is checked on its own.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use kiwi::backend::Authentication;
use kiwi::scram::{ScramKeys, ScramVerifier};
use kiwi::startup::{ProtocolVersion, Startup};
use machinarium::Deadline;
use machinarium::net::Stream;
use odyssey::auth::Authenticated;
use odyssey::auth::backend::{
    BackendAuthError, BackendCredentials, authenticate_server, backend_credentials,
    is_plain_password, retained_for_servers,
};
use odyssey::config;
use odyssey::conn::{Conn, DEFAULT_MAX_MESSAGE, Transport};
use odyssey_test::{AuthMethod, Cluster, ClusterOptions};

const TIMEOUT: Duration = Duration::from_secs(10);

fn credentials(user: &str, password: Option<&str>) -> BackendCredentials {
    BackendCredentials {
        user: user.to_string(),
        password: password.map(|p| p.as_bytes().to_vec()),
        scram_keys: None,
    }
}

/// Connects to `port`, sends a StartupMessage for `cred.user` and database `postgres`, runs
/// `authenticate_server` and reads to ReadyForQuery; returns the tags after authentication.
fn login(port: u16, cred: BackendCredentials) -> Result<Vec<u8>, BackendAuthError> {
    machinarium::run(move || {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Deadline::after(TIMEOUT);
        let stream = Stream::connect(addr, deadline).expect("connect");
        let mut conn = Conn::new(Transport::Plain(stream));
        let params = vec![
            (&b"user"[..], cred.user.as_bytes()),
            (&b"database"[..], &b"postgres"[..]),
        ];
        let mut out = Vec::new();
        Startup {
            version: ProtocolVersion::V3_0,
            params,
        }
        .encode(&mut out);
        conn.write_all(&out, deadline).expect("startup");
        authenticate_server(&mut conn, &cred, deadline)?;
        let mut tags = Vec::new();
        loop {
            let m = conn.read_message(deadline, DEFAULT_MAX_MESSAGE)?;
            tags.push(m.tag);
            if m.tag == b'Z' || m.tag == b'E' {
                return Ok(tags);
            }
        }
    })
    .expect("machine")
}

fn assert_ready(result: Result<Vec<u8>, BackendAuthError>) {
    let tags = result.unwrap_or_else(|e| panic!("login failed: {e}"));
    assert_eq!(tags.last(), Some(&b'Z'), "{tags:?}");
    assert!(tags.contains(&b'K'), "BackendKeyData: {tags:?}");
}

fn assert_wrong_password(result: Result<Vec<u8>, BackendAuthError>) {
    match result {
        Err(BackendAuthError::Server(bytes, text)) => {
            assert_eq!(bytes.first(), Some(&b'E'), "raw ErrorResponse kept");
            assert!(text.contains("28P01"), "{text}");
        }
        other => panic!("expected the server's 28P01, got {other:?}"),
    }
}

/// The SCRAM keys a client holding `password` has for `user`'s stored verifier.
fn keys_for(cluster: &Cluster, user: &str, password: &str) -> ScramKeys {
    let sql = format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'");
    let stored = cluster
        .psql("postgres", "postgres", &sql)
        .expect("verifier");
    let v = ScramVerifier::parse(&stored).expect("a SCRAM verifier");
    ScramKeys::derive(password.as_bytes(), &v.salt, v.iterations).expect("keys")
}

#[test]
fn md5_and_scram_logins_against_real_postgres() {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .add_user("md5_u", "m5pass", AuthMethod::Md5)
        .expect("md5 user");
    cluster
        .add_user("scram_u", "s3cret", AuthMethod::ScramSha256)
        .expect("scram user");
    let port = cluster.port();

    assert_ready(login(port, credentials("md5_u", Some("m5pass"))));
    let hash = kiwi::md5::md5_password_hash(b"md5_u", b"m5pass");
    assert_ready(login(port, credentials("md5_u", Some(&hash))));
    assert_wrong_password(login(port, credentials("md5_u", Some("wrong"))));

    assert_ready(login(port, credentials("scram_u", Some("s3cret"))));
    assert_wrong_password(login(port, credentials("scram_u", Some("wrong"))));

    let mut pass_through = credentials("scram_u", None);
    pass_through.scram_keys = Some(keys_for(&cluster, "scram_u", "s3cret"));
    assert_ready(login(port, pass_through));
    let mut wrong_keys = credentials("scram_u", None);
    wrong_keys.scram_keys = Some(keys_for(&cluster, "scram_u", "other"));
    assert_wrong_password(login(port, wrong_keys));

    match login(port, credentials("md5_u", None)) {
        Err(BackendAuthError::Failed(text)) => assert!(text.contains("no password"), "{text}"),
        other => panic!("expected Failed without a password, got {other:?}"),
    }
}

/// A fake server that asks for GSSAPI: only the shape of the refusal is checked here.
#[test]
fn other_methods_are_unsupported() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut out = Vec::new();
        Authentication::Gss.encode(&mut out);
        s.write_all(&out).expect("write");
        s // kept open until the client is done
    });
    let result = login(port, credentials("u", Some("pw")));
    drop(server.join().expect("fake server"));
    match result {
        Err(BackendAuthError::Unsupported(text)) => {
            assert_eq!(text, "unsupported authentication method 7")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

fn rule(body: &str) -> config::Rule {
    let text = format!(
        "log_format \"%m\\n\"\nlisten {{\n\thost \"127.0.0.1\"\n\tport 6432\n}}\n\
         storage \"pg\" {{\n\ttype \"remote\"\n\thost \"localhost\"\n}}\n\
         database default {{\n\tuser default {{\n{body}\n\t\tstorage \"pg\"\n\t\tpool \"session\"\n\t}}\n}}\n"
    );
    let (c, _) = config::load_str("backend.conf", &text).expect("config");
    c.rules.into_iter().next().expect("rule")
}

#[test]
fn password_precedence_is_storage_then_rule_then_passthrough() {
    let received = Authenticated {
        password: Some(b"typed".to_vec()),
        scram_keys: None,
        secret: None,
        external_id: None,
        ldap_storage: None,
    };
    let full = rule(
        "authentication \"clear_text\"\npassword \"rule_pw\"\npassword_passthrough yes\n\
         storage_user \"backend\"\nstorage_password \"storage_pw\"",
    );
    let c = backend_credentials(&full, "alice", Some(&received));
    assert_eq!(
        (c.user.as_str(), c.password.as_deref()),
        ("backend", Some(&b"storage_pw"[..]))
    );

    let no_storage =
        rule("authentication \"clear_text\"\npassword \"rule_pw\"\npassword_passthrough yes");
    let c = backend_credentials(&no_storage, "alice", Some(&received));
    assert_eq!(
        (c.user.as_str(), c.password.as_deref()),
        ("alice", Some(&b"rule_pw"[..]))
    );

    let mut passthrough = no_storage.clone();
    passthrough.auth.password = None;
    let c = backend_credentials(&passthrough, "alice", Some(&received));
    assert_eq!(c.password.as_deref(), Some(&b"typed"[..]));

    passthrough.auth.password_passthrough = false;
    assert_eq!(
        backend_credentials(&passthrough, "alice", Some(&received)).password,
        None
    );
}

#[test]
fn an_auth_query_md5_hash_goes_first_and_a_verifier_leaves_it_to_the_keys() {
    let hash = kiwi::md5::md5_password_hash(b"alice", b"pw");
    let looked_up = |secret: &str| Authenticated {
        secret: Some(secret.to_string()),
        ..Authenticated::default()
    };
    let r = rule("authentication \"none\"\nstorage_password \"storage_pw\"");
    let c = backend_credentials(&r, "alice", Some(&looked_up(&hash)));
    assert_eq!(c.password.as_deref(), Some(hash.as_bytes()));
    let verifier = kiwi::scram::ScramVerifier::from_password(b"pw", b"salt", 16)
        .unwrap()
        .to_string();
    let c = backend_credentials(&r, "alice", Some(&looked_up(&verifier)));
    assert_eq!(c.password.as_deref(), Some(&b"storage_pw"[..]));
}

/// What a session keeps of a login (`retained_for_servers`) logs into servers exactly as the
/// whole login result would, under each way the rule can choose the server password; and it
/// keeps nothing when nothing of the login is used.
#[test]
fn a_session_keeps_of_its_login_what_server_logins_use_and_nothing_more() {
    let keys = ScramKeys::derive(b"pw", b"salt", 16).expect("keys");
    let verifier = ScramVerifier::from_password(b"pw", b"salt", 16)
        .unwrap()
        .to_string();
    let hash = kiwi::md5::md5_password_hash(b"alice", b"pw");
    let login = |secret: Option<&str>| Authenticated {
        password: Some(b"typed".to_vec()),
        scram_keys: Some(keys.clone()),
        secret: secret.map(str::to_string),
        external_id: Some("ext".into()),
        ldap_storage: None,
    };
    // Pass-through of what the client typed applies when the rule has no password of its
    // own (its password comes from auth_query, say).
    let mut passthrough =
        rule("authentication \"clear_text\"\npassword \"x\"\npassword_passthrough yes");
    passthrough.auth.password = None;
    // (what, the rule, the login, whether anything is kept)
    let cases = [
        (
            "storage_password, plain",
            rule("authentication \"scram-sha-256\"\npassword \"pw\"\nstorage_password \"s\""),
            login(None),
            false,
        ),
        (
            "the rule's plain password",
            rule("authentication \"scram-sha-256\"\npassword \"pw\""),
            login(None),
            false,
        ),
        (
            "the rule's password is a verifier: the keys log in",
            rule(&format!(
                "authentication \"scram-sha-256\"\npassword \"{verifier}\""
            )),
            login(None),
            true,
        ),
        ("pass-through", passthrough, login(None), true),
        (
            "auth_query's md5 hash",
            rule("authentication \"md5\"\npassword \"x\""),
            login(Some(&hash)),
            true,
        ),
        (
            "auth_query's verifier, storage_password",
            rule("authentication \"scram-sha-256\"\npassword \"x\"\nstorage_password \"s\""),
            login(Some(&verifier)),
            false,
        ),
    ];
    for (body, r, auth, kept) in cases {
        let whole = backend_credentials(&r, "alice", Some(&auth));
        let retained = retained_for_servers(&r, auth);
        assert_eq!(retained.is_some(), kept, "{body}: kept");
        let from_kept = backend_credentials(&r, "alice", retained.as_deref());
        assert_eq!(
            (&from_kept.user, &from_kept.password),
            (&whole.user, &whole.password),
            "{body}: user and password"
        );
        // The keys answer SCRAM only when there is no plain password: then they must be kept.
        if !whole.password.as_deref().is_some_and(is_plain_password) {
            assert_eq!(from_kept.scram_keys, whole.scram_keys, "{body}: keys");
        }
    }
}
