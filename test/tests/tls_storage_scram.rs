//! SCRAM-SHA-256-PLUS towards PostgreSQL (issue 10): a storage with `tls require` whose server
//! offers channel binding over TLS gets a login bound to its certificate
//! (`tls-server-end-point`); the pooler's log says which method each server login used.

use odyssey_test::tls::{assert_ok, certs, pooler, rule, run, tls_cluster_with};
use odyssey_test::{AuthMethod, ClusterOptions};

#[test]
fn a_tls_storage_with_scram_logs_in_with_channel_binding() {
    let (ca, _server) = certs();
    let options = ClusterOptions {
        superuser_auth: AuthMethod::ScramSha256,
        superuser_password: "su pass".to_string(),
        ..ClusterOptions::default()
    }
    .hostssl_only();
    let cluster = tls_cluster_with(&ca, options);
    let rule = rule("alice", "", "none").replace(
        "\t\tstorage_user \"postgres\"\n",
        "\t\tstorage_user \"postgres\"\n\t\tstorage_password \"su pass\"\n",
    );
    let pooler = pooler(cluster.port(), "", "\ttls \"require\"\n", &rule);
    let sql = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
    let out = run(&pooler.params("alice"), sql);
    assert_eq!(assert_ok(&out, "login over TLS with SCRAM", &pooler), "t");
    let log = pooler.log();
    assert!(
        log.contains("over TLSv1.3, auth SCRAM-SHA-256-PLUS"),
        "no channel-bound login in the log:\n{log}"
    );
}
