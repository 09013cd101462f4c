//! A client is told its parameters as PostgreSQL reports them, not as it sent them: drivers
//! compare these (a client starting with `client_encoding=eucjp` must hear `EUC_JP`).
//! Regression: the pooler repeated the raw startup value.

use std::time::Duration;

use kiwi::backend::BackendMessage;
use odyssey_test::pooler::config;
use odyssey_test::raw::RawConn;
use odyssey_test::{Cluster, ClusterOptions, Pooler};

/// Logs in with `params` and returns the ParameterStatus values the client is told.
fn told(pooler: &Pooler, params: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut conn = RawConn::connect(pooler.port(), Duration::from_secs(5)).expect("connect");
    let mut startup = vec![("user", "postgres"), ("database", "postgres")];
    startup.extend_from_slice(params);
    conn.startup(&startup).expect("startup");
    let messages = conn.until_ready().expect("login");
    let mut told = Vec::new();
    for m in &messages {
        if let Some(e) = m.error() {
            panic!("login failed: {e:?}\n{}", pooler.log());
        }
        if let Ok(BackendMessage::ParameterStatus(ps)) = m.decode() {
            told.push((
                String::from_utf8_lossy(ps.name).into_owned(),
                String::from_utf8_lossy(ps.value).into_owned(),
            ));
        }
    }
    told
}

fn value<'a>(told: &'a [(String, String)], name: &str) -> Option<&'a str> {
    told.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn check(pool: &str) {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(
        cluster.port(),
        &format!(
            r#"
database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "{pool}"
	}}
}}
"#
        ),
    ))
    .expect("pooler");
    // The first client of the route, a second one with the same values (learnt by then), and
    // a third with other values.
    for round in 0..2 {
        let t = told(
            &pooler,
            &[("client_encoding", "eucjp"), ("DateStyle", "iso")],
        );
        assert_eq!(
            value(&t, "client_encoding"),
            Some("EUC_JP"),
            "round {round}: {t:?}"
        );
        let datestyle = value(&t, "DateStyle").unwrap_or_default();
        assert!(datestyle.starts_with("ISO, "), "round {round}: {datestyle}");
    }
    let t = told(&pooler, &[("client_encoding", "latin1")]);
    assert_eq!(value(&t, "client_encoding"), Some("LATIN1"), "{t:?}");
    let t = told(&pooler, &[("client_encoding", "UTF8")]);
    assert_eq!(value(&t, "client_encoding"), Some("UTF8"), "{t:?}");
}

#[test]
fn reported_values_in_transaction_pooling() {
    check("transaction");
}

#[test]
fn reported_values_in_session_pooling() {
    check("session");
}
