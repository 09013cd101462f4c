//! Client authentication through the pooler with every method (`none`, `block`,
//! `clear_text`, `md5`, `scram-sha-256`), unknown routes, and the pooler logging into
//! PostgreSQL with md5 and SCRAM stored passwords.

use odyssey_test::clients::{current_user, login_error};
use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::raw::RawConn;
use odyssey_test::{AuthMethod, Cluster, ClusterOptions, ConnParams, Pooler};

/// Rules by user name; no `user default`, so other users have no route.
const RULES: &str = r#"
database default {
	user "postgres" {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
	user "blocked" {
		authentication "block"
		storage "postgres_server"
		pool "session"
	}
	user "ct_user" {
		authentication "clear_text"
		password "clear pass"
		storage "postgres_server"
		storage_user "postgres"
		pool "session"
	}
	user "md5_client" {
		authentication "md5"
		password "md5 pass"
		storage "postgres_server"
		storage_user "postgres"
		pool "session"
	}
	user "scram_client" {
		authentication "scram-sha-256"
		password "scram pass"
		storage "postgres_server"
		storage_user "postgres"
		pool "session"
	}
	user "md5_server" {
		authentication "none"
		storage "postgres_server"
		storage_password "md5 server pass"
		pool "session"
	}
	user "scram_server" {
		authentication "none"
		storage "postgres_server"
		password "scram server pass"
		pool "session"
	}
	user "wrong_server" {
		authentication "none"
		storage "postgres_server"
		storage_user "md5_server"
		storage_password "not the password"
		pool "session"
	}
}
"#;

fn start() -> (Cluster, Pooler) {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .add_user("md5_server", "md5 server pass", AuthMethod::Md5)
        .unwrap();
    cluster
        .add_user("scram_server", "scram server pass", AuthMethod::ScramSha256)
        .unwrap();
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    (cluster, pooler)
}

fn backend_user(params: &ConnParams, pooler: &Pooler) -> String {
    current_user(params, &|| pooler.log())
}

#[test]
fn client_auth_methods_accept_right_and_reject_wrong_passwords() {
    let (_cluster, pooler) = start();

    assert_eq!(
        backend_user(&pooler.params("postgres"), &pooler),
        "postgres"
    );

    let (code, msg) = login_error(&pooler.params("blocked"));
    assert_eq!(
        code,
        Some(SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{msg}"
    );
    assert!(msg.contains("user blocked"), "{msg}");

    for (user, password) in [
        ("ct_user", "clear pass"),
        ("md5_client", "md5 pass"),
        ("scram_client", "scram pass"),
    ] {
        let params = pooler.params(user).password(password);
        assert_eq!(backend_user(&params, &pooler), "postgres", "{user}");
    }

    for user in ["ct_user", "md5_client"] {
        let (code, msg) = login_error(&pooler.params(user).password("wrong"));
        assert_eq!(code, Some(SqlState::INVALID_PASSWORD), "{user}: {msg}");
        assert!(msg.contains("password authentication failed"), "{msg}");
    }
    // SCRAM's failed proof is 28000, as upstream sends it (inventory §10).
    let (code, msg) = login_error(&pooler.params("scram_client").password("wrong"));
    assert_eq!(
        code,
        Some(SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{msg}"
    );
    // No password at all does not get in either.
    login_error(&pooler.params("md5_client"));
}

#[test]
fn user_without_a_rule_has_no_route() {
    let (_cluster, pooler) = start();
    let (code, msg) = login_error(&pooler.params("nobody"));
    assert_eq!(code, Some(SqlState::INVALID_CATALOG_NAME), "{msg}");
    assert!(
        msg.contains("route for 'postgres.nobody' is not found"),
        "{msg}"
    );
    assert!(msg.contains("odyssey: c"), "the client id prefix: {msg}");
}

#[test]
fn pooler_logs_into_postgres_with_md5_and_scram_passwords() {
    let (cluster, pooler) = start();
    // The cluster really asks these users for their passwords.
    for user in ["md5_server", "scram_server"] {
        let (code, msg) = login_error(&cluster.params(user).password("wrong"));
        assert_eq!(code, Some(SqlState::INVALID_PASSWORD), "{msg}");
    }
    assert_eq!(
        backend_user(&pooler.params("md5_server"), &pooler),
        "md5_server"
    );
    assert_eq!(
        backend_user(&pooler.params("scram_server"), &pooler),
        "scram_server"
    );
    // A wrong storage password fails the login instead of letting the client in.
    let (_, msg) = login_error(&pooler.params("wrong_server"));
    assert!(!msg.is_empty());
    assert!(
        cluster
            .log()
            .contains("password authentication failed for user \"md5_server\""),
        "{}",
        cluster.log()
    );
}

/// The end of a login travels in one packet, as PostgreSQL sends it: the client reads
/// AuthenticationSASLFinal (or, for md5, nothing before), AuthenticationOk, the ParameterStatus
/// messages, BackendKeyData and ReadyForQuery in one read — even for the first client of a
/// route, whose greeting waits for a server connection to learn the parameters.
#[test]
fn the_end_of_a_login_comes_in_one_packet() {
    let (_cluster, pooler) = start();
    // (user, password, reads: one per flight of the pooler's — SCRAM: SASL, SASLContinue,
    // the end; md5: the salt, the end)
    for (user, password, flights) in [
        ("scram_client", "scram pass", 3),
        ("scram_client", "scram pass", 3),
        ("md5_client", "md5 pass", 2),
    ] {
        let mut c =
            RawConn::connect(pooler.port(), std::time::Duration::from_secs(10)).expect("connect");
        c.startup(&[("user", user), ("database", "postgres")])
            .expect("startup");
        c.authenticate(user, password).expect("login");
        let greeting = c.until_ready().expect("greeting");
        assert_eq!(greeting.last().map(|m| m.tag), Some(b'Z'), "{user}");
        assert!(
            greeting.iter().any(|m| m.tag == b'S'),
            "ParameterStatus: {user}"
        );
        assert_eq!(c.reads(), flights, "{user}: reads of the login");
    }
}
