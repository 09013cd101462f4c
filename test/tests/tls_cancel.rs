//! Cancels towards a TLS storage (issue 10) go over TLS, as libpq 17 sends them: an SSLRequest,
//! the handshake with the storage's context, then the CancelRequest, so the server's key never
//! crosses the network in plaintext. PostgreSQL here lets TCP clients in only over TLS.

use std::time::Duration;

use odyssey_test::pg::error::SqlState;
use odyssey_test::tap::{CANCEL_REQUEST, SSL_REQUEST, Tap};
use odyssey_test::tls::{certs, pooler, rule, tls_cluster_with};
use odyssey_test::{ClusterOptions, cancel_a_sleep, connect};

#[test]
fn a_cancel_to_a_tls_storage_goes_over_tls() {
    let (ca, _server) = certs();
    let cluster = tls_cluster_with(&ca, ClusterOptions::default().hostssl_only());
    let tap = Tap::start(cluster.port()).expect("tap");
    let pooler = pooler(
        tap.port(),
        "",
        "\ttls \"require\"\n",
        &rule("alice", "", "none"),
    );
    let mut client = connect(&pooler.params("alice")).expect("login through the pooler");
    client.batch_execute("select 1").expect("select 1");
    let (err, took) = cancel_a_sleep(&mut client, Duration::from_millis(500));
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");
    assert!(took < Duration::from_secs(5), "cancel took {took:?}");
    // The server's login and the cancel: both opened with an SSLRequest.
    let codes = tap.codes();
    assert!(codes.len() >= 2, "{codes:?}");
    assert!(
        !codes.contains(&CANCEL_REQUEST),
        "a plaintext cancel: {codes:?}"
    );
    assert!(codes.iter().all(|&c| c == SSL_REQUEST), "{codes:?}");
}
