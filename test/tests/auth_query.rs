//! `auth_query` (spec §8): the pooler asks PostgreSQL for the client's stored password (an md5
//! hash or a SCRAM verifier, read from `pg_shadow` through the internal route
//! `auth_query_db`.`auth_query_user`), checks the client's md5 or SCRAM answer against it,
//! then logs into PostgreSQL as that client without knowing its password (the md5 hash passed
//! on; SCRAM with the ClientKey recovered from the client's proof). An unknown user fails
//! exactly like a wrong password; a broken auth_query database fails the login quickly with
//! `failed to make auth query`; a looked-up password is cached for 10–15 s.

use std::time::{Duration, Instant};

use odyssey_test::clients::{current_user, login_error};
use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{AuthMethod, Cluster, ClusterOptions, ConnParams, Pooler, connect, psql};

const QUERY: &str = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1";

/// `aq` uses md5, `postgres` SCRAM, `ct` clear_text; `broken` asks a database that does
/// not exist, `down` a storage nobody listens on. The internal rules read pg_shadow as the
/// superuser.
fn rules(dead_port: u16) -> String {
    let client_rule = |db: &str, method: &str, query_db: &str| {
        format!(
            "database \"{db}\" {{\n\tuser default {{\n\t\tauthentication \"{method}\"\n\
             \t\tauth_query \"{QUERY}\"\n\t\tauth_query_db \"{query_db}\"\n\
             \t\tauth_query_user \"reader\"\n\t\tstorage \"postgres_server\"\n\
             \t\tstorage_db \"postgres\"\n\t\tpool \"session\"\n\t}}\n}}\n"
        )
    };
    let internal_rule = |db: &str, storage: &str| {
        format!(
            "database \"{db}\" {{\n\tuser \"reader\" {{\n\t\tauthentication \"none\"\n\
             \t\tstorage \"{storage}\"\n\t\tstorage_user \"postgres\"\n\
             \t\tpool \"transaction\"\n\t\tpool_routing \"internal\"\n\t}}\n}}\n"
        )
    };
    // clear_text against either kind of stored secret; the typed password logs in upstream.
    let clear_text = client_rule("ct", "clear_text", "postgres").replace(
        "\t\tpool \"session\"",
        "\t\tpassword_passthrough yes\n\t\tpool \"session\"",
    );
    [
        clear_text,
        client_rule("aq", "md5", "postgres"),
        client_rule("postgres", "scram-sha-256", "postgres"),
        client_rule("broken", "md5", "nosuchdb"),
        client_rule("down", "scram-sha-256", "deaddb"),
        internal_rule("postgres", "postgres_server"),
        internal_rule("nosuchdb", "postgres_server"),
        internal_rule("deaddb", "dead_server"),
        format!(
            "storage \"dead_server\" {{\n\ttype \"remote\"\n\thost \"127.0.0.1\"\n\tport {dead_port}\n}}\n"
        ),
    ]
    .concat()
}

fn start() -> (Cluster, Pooler) {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .add_user("md5_user", "md5 secret", AuthMethod::Md5)
        .unwrap();
    cluster
        .add_user("scram_user", "scram secret", AuthMethod::ScramSha256)
        .unwrap();
    let dead_port = odyssey_test::free_port().unwrap();
    let pooler = Pooler::start(&config(cluster.port(), &rules(dead_port))).expect("pooler");
    (cluster, pooler)
}

fn params(pooler: &Pooler, db: &str, user: &str, password: &str) -> ConnParams {
    pooler.params(user).dbname(db).password(password)
}

fn backend_user(params: &ConnParams, pooler: &Pooler) -> String {
    current_user(params, &|| pooler.log())
}

#[test]
fn md5_and_scram_users_log_in_with_their_postgres_passwords() {
    let (cluster, pooler) = start();
    // PostgreSQL really asks these users for their passwords, by md5 and by SCRAM.
    for user in ["md5_user", "scram_user"] {
        let (code, _) = login_error(&cluster.params(user).password("wrong"));
        assert_eq!(code, Some(SqlState::INVALID_PASSWORD));
    }
    let md5 = params(&pooler, "aq", "md5_user", "md5 secret");
    assert_eq!(backend_user(&md5, &pooler), "md5_user");
    let scram = params(&pooler, "postgres", "scram_user", "scram secret");
    assert_eq!(backend_user(&scram, &pooler), "scram_user");
    // A second login takes the cached secret; psql too.
    assert_eq!(backend_user(&scram, &pooler), "scram_user");
    for p in [&md5, &scram] {
        let out = psql(p, "SELECT current_user", Duration::from_secs(10)).unwrap();
        assert!(
            out.success(),
            "{}: {}\n{}",
            p.user,
            out.stderr,
            pooler.log()
        );
        assert_eq!(out.stdout.trim(), p.user);
    }
}

#[test]
fn wrong_password_and_unknown_user_fail_alike() {
    let (_cluster, pooler) = start();
    for (db, user, code) in [
        ("aq", "md5_user", SqlState::INVALID_PASSWORD),
        // SCRAM's failed proof is 28000, as upstream sends it (inventory §10).
        (
            "postgres",
            "scram_user",
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
        ),
    ] {
        let wrong = login_error(&params(&pooler, db, user, "wrong"));
        let unknown = login_error(&params(&pooler, db, "ghost", "wrong"));
        let expected = format!("password authentication failed for user \"{user}\"");
        assert_eq!(wrong.0, Some(code.clone()), "{}", wrong.1);
        assert!(wrong.1.ends_with(&expected), "{}", wrong.1);
        assert_eq!(unknown.0, Some(code), "{}", unknown.1);
        assert_eq!(
            unknown.1.replace("ghost", user).split(": ").last(),
            wrong.1.split(": ").last(),
        );
        // psql is refused as well.
        let out = psql(
            &params(&pooler, db, "ghost", "wrong"),
            "SELECT 1",
            Duration::from_secs(10),
        )
        .unwrap();
        assert!(!out.success());
        assert!(
            out.stderr
                .contains("password authentication failed for user \"ghost\""),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn broken_auth_query_database_fails_the_login_quickly() {
    let (_cluster, pooler) = start();
    for (db, text) in [
        ("broken", "failed to make auth query"),
        ("down", "frontend auth: failed to make auth query"),
    ] {
        let started = Instant::now();
        let (code, msg) = login_error(&params(&pooler, db, "md5_user", "md5 secret"));
        assert!(started.elapsed() < Duration::from_secs(5), "{db}: slow");
        assert_eq!(
            code,
            Some(SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
            "{db}: {msg}"
        );
        assert!(msg.ends_with(text), "{db}: {msg}");
    }
    for needle in [
        "database \"nosuchdb\" does not exist",
        "cannot connect as 'deaddb.reader'",
    ] {
        assert!(
            pooler.wait_log(needle, Duration::from_secs(5)),
            "{}",
            pooler.log()
        );
    }
}

#[test]
fn looked_up_passwords_are_cached_for_ten_to_fifteen_seconds() {
    let (cluster, pooler) = start();
    let old = params(&pooler, "aq", "md5_user", "md5 secret");
    assert_eq!(backend_user(&old, &pooler), "md5_user");
    let changed = Instant::now();
    cluster
        .set_password("md5_user", "new secret", AuthMethod::Md5)
        .unwrap();
    // The cached hash still lets the old password in (onto the idle server of the first
    // login), and keeps the new one out.
    assert_eq!(backend_user(&old, &pooler), "md5_user");
    let new = params(&pooler, "aq", "md5_user", "new secret");
    let (code, _) = login_error(&new);
    assert_eq!(code, Some(SqlState::INVALID_PASSWORD));
    // After at most 15 s the new hash is looked up.
    let deadline = changed + Duration::from_secs(17);
    while connect(&new).is_err() {
        assert!(Instant::now() < deadline, "{}", pooler.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(changed.elapsed() >= Duration::from_secs(9));
    let (code, _) = login_error(&old);
    assert_eq!(code, Some(SqlState::INVALID_PASSWORD));
}

#[test]
fn without_an_internal_rule_the_default_rule_lends_its_storage_password() {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .add_user("md5_user", "md5 secret", AuthMethod::Md5)
        .unwrap();
    let rules = format!(
        "database default {{\n\tuser default {{\n\t\tauthentication \"md5\"\n\
         \t\tauth_query \"{QUERY}\"\n\t\tauth_query_db \"postgres\"\n\
         \t\tauth_query_user \"postgres\"\n\t\tstorage \"postgres_server\"\n\
         \t\tstorage_password \"unused under trust\"\n\t\tpool \"session\"\n\t}}\n}}\n"
    );
    let pooler = Pooler::start(&config(cluster.port(), &rules)).expect("pooler");
    let md5 = params(&pooler, "postgres", "md5_user", "md5 secret");
    assert_eq!(backend_user(&md5, &pooler), "md5_user");
    let (code, _) = login_error(&params(&pooler, "postgres", "md5_user", "wrong"));
    assert_eq!(code, Some(SqlState::INVALID_PASSWORD));
}

#[test]
fn clear_text_checks_both_kinds_of_stored_secret() {
    let (_cluster, pooler) = start();
    for (user, password) in [("md5_user", "md5 secret"), ("scram_user", "scram secret")] {
        let right = params(&pooler, "ct", user, password);
        assert_eq!(backend_user(&right, &pooler), user);
        let (code, _) = login_error(&params(&pooler, "ct", user, "wrong"));
        assert_eq!(code, Some(SqlState::INVALID_PASSWORD), "{user}");
    }
    let (code, _) = login_error(&params(&pooler, "ct", "ghost", "wrong"));
    assert_eq!(code, Some(SqlState::INVALID_PASSWORD));
}
