//! `tls_protocols` (issue 10): the TLS versions a listen serves and a storage speaks. A listen
//! limited to TLS 1.3 refuses a client that stops at TLS 1.2; a storage limited to one version
//! talks that version to PostgreSQL (as `pg_stat_ssl` shows); an unknown name is a config
//! error at its line.

use odyssey_test::pooler::run_odyssey;
use odyssey_test::tls::{
    TIMEOUT, assert_ok, assert_refused, certs, listen_tls, pooler, rule, run, template, tls,
    tls_cluster,
};

#[test]
fn a_listen_limited_to_tls13_refuses_a_tls12_client() {
    let (ca, server) = certs();
    let cluster = tls_cluster(&ca);
    let lines = format!(
        "{}\ttls_protocols \"tlsv1.3\"\n",
        listen_tls("require", &server, None)
    );
    let pooler = pooler(cluster.port(), &lines, "", &rule("alice", "", "none"));
    let params = tls(pooler.params("alice"));
    let out = run(&params, "select 1");
    assert_eq!(assert_ok(&out, "a TLS 1.3 client", &pooler), "1");
    let old = params.libpq("PGSSLMAXPROTOCOLVERSION", "TLSv1.2");
    assert_refused(&run(&old, "select 1"), "a TLS 1.2 client", "SSL error");
    assert!(
        pooler.wait_log("TLS handshake failed", TIMEOUT),
        "{}",
        pooler.log()
    );
}

#[test]
fn a_storage_speaks_the_version_it_is_given() {
    let (ca, _server) = certs();
    let cluster = tls_cluster(&ca);
    let rest = rule("alice", "", "none");
    let sql = "select version from pg_stat_ssl where pid = pg_backend_pid()";
    for (list, version) in [("tlsv1.2", "TLSv1.2"), ("TLSv1.2, TLSv1.3", "TLSv1.3")] {
        let storage = format!("\ttls \"require\"\n\ttls_protocols \"{list}\"\n");
        let pooler = pooler(cluster.port(), "", &storage, &rest);
        let out = run(&pooler.params("alice"), sql);
        assert_eq!(assert_ok(&out, list, &pooler), version, "{list}");
    }
}

#[test]
fn an_unknown_protocol_is_a_config_error_at_its_line() {
    let (_ca, server) = certs();
    let lines = format!(
        "{}\ttls_protocols \"tlsv1.2 sslv3\"\n",
        listen_tls("require", &server, None)
    );
    let text = template(5432, &lines, "", &rule("alice", "", "none"));
    let out = run_odyssey(&["--test"], Some(&text), TIMEOUT).expect("odyssey --test");
    assert!(!out.success(), "--test passed: {}", out.combined());
    let said = out.combined();
    assert!(
        said.contains(".conf:15:") && said.contains("unknown TLS protocol \"sslv3\""),
        "{said}"
    );
}
