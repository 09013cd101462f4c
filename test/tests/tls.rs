//! TLS on both sides (issue 10), with certificates made by the test (`odyssey_test::certs`):
//! a listen's `tls` modes with `tls_cert_file`, `tls_key_file` and `tls_ca_file` (SSLRequest
//! answered `S`, a client certificate demanded under `verify_ca`, plaintext refused under
//! `require`), `hostssl` rules and hba lines matching the real transport, `cert` logins, bytes
//! smuggled behind an SSLRequest, a storage's `tls` towards a PostgreSQL with `ssl = on`
//! (encrypted, verified, the host name checked under `verify_full`, pooled across workers).
//! More in `tls_*.rs`: protocols, cancels, direct TLS, SCRAM towards servers, 100 MB each way.

use std::time::Duration;

use odyssey_test::certs::{Certs, Pair};
use odyssey_test::pooler::run_odyssey;
use odyssey_test::raw::RawConn;
use odyssey_test::tls::{
    TIMEOUT, assert_ok, assert_refused, certs, listen_tls, pooler, rule, run, template, tls,
    tls_cluster,
};
use odyssey_test::{Cluster, ClusterOptions, Output, pgbench};

#[test]
fn require_refuses_plaintext_and_serves_tls_clients() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let (ca, server) = certs();
    let pooler = pooler(
        cluster.port(),
        &listen_tls("require", &server, None),
        "",
        &rule("alice", "", "none"),
    );
    let plain = pooler.params("alice");
    assert_refused(&run(&plain, "select 1"), "plaintext", "SSL is required");
    let out = run(&tls(plain.clone()), "select 1");
    assert_eq!(assert_ok(&out, "sslmode=require", &pooler), "1");
    // verify-full: the pooler's certificate chains to the CA and names 127.0.0.1.
    let verified = plain
        .clone()
        .libpq("PGSSLMODE", "verify-full")
        .libpq("PGSSLROOTCERT", &ca.ca().display().to_string());
    let out = run(&verified, "select 2");
    assert_eq!(assert_ok(&out, "sslmode=verify-full", &pooler), "2");
    // A CA the pooler's certificate does not chain to: the client refuses the pooler.
    let other = Certs::new().expect("other CA");
    let wrong = plain
        .libpq("PGSSLMODE", "verify-ca")
        .libpq("PGSSLROOTCERT", &other.ca().display().to_string());
    assert_refused(
        &run(&wrong, "select 3"),
        "an unknown CA",
        "certificate verify failed",
    );
}

#[test]
fn hostssl_rules_and_hba_lines_match_only_tls_clients() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let (ca, server) = certs();
    let hba = ca.path("hba.conf");
    std::fs::write(
        &hba,
        "hostssl all dave 127.0.0.1/32 allow\nhostnossl all erin 127.0.0.1/32 allow\n\
         host all alice 127.0.0.1/32 allow\n",
    )
    .expect("hba file");
    let rules = format!(
        "hba_file \"{}\"\n{}{}{}",
        hba.display(),
        rule("alice", "hostssl", "none"),
        rule("dave", "", "none"),
        rule("erin", "", "none")
    );
    let pooler = pooler(
        cluster.port(),
        &listen_tls("allow", &server, None),
        "",
        &rules,
    );
    // A hostssl rule: found over TLS only.
    let alice = pooler.params("alice");
    assert_refused(&run(&alice, "select 1"), "alice, plaintext", "is not found");
    assert_ok(&run(&tls(alice), "select 1"), "alice over TLS", &pooler);
    // hba lines: dave only over TLS, erin only without it.
    let dave = pooler.params("dave");
    assert_refused(
        &run(&dave, "select 1"),
        "dave, plaintext",
        "host based authentication rejected",
    );
    assert_ok(&run(&tls(dave), "select 1"), "dave over TLS", &pooler);
    let erin = pooler.params("erin");
    assert_ok(&run(&erin, "select 1"), "erin, plaintext", &pooler);
    assert_refused(
        &run(&tls(erin), "select 1"),
        "erin over TLS",
        "host based authentication rejected",
    );
}

#[test]
fn verify_ca_demands_a_client_certificate_from_its_ca() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let (ca, server) = certs();
    let alice = ca.issue("alice", "alice", None, 2).expect("alice");
    let expired = ca.issue("expired", "alice", None, -1).expect("expired");
    let stranger = ca.self_signed("stranger", "alice").expect("self-signed");
    let rules = format!("{}{}", rule("alice", "", "cert"), rule("bob", "", "cert"));
    let pooler = pooler(
        cluster.port(),
        &listen_tls("verify_ca", &server, Some(&ca)),
        "",
        &rules,
    );
    let with = |user: &str, pair: &Pair| {
        tls(pooler.params(user))
            .libpq("PGSSLCERT", &pair.cert.display().to_string())
            .libpq("PGSSLKEY", &pair.key.display().to_string())
    };
    let out = run(&with("alice", &alice), "select 'in'");
    assert_eq!(assert_ok(&out, "alice's certificate", &pooler), "in");
    // `cert` login: the certificate's CN must name the user.
    assert_refused(
        &run(&with("bob", &alice), "select 1"),
        "bob with alice's certificate",
        "certificate authentication failed for user \"bob\"",
    );
    // The handshake itself refuses these; the pooler logs why, under the client's id.
    let cases = [
        (None, "no certificate", "certificate"),
        (
            Some(&expired),
            "an expired certificate",
            "certificate has expired",
        ),
        (
            Some(&stranger),
            "a certificate of no known CA",
            "certificate verify failed",
        ),
    ];
    for (pair, what, reason) in cases {
        let params = match pair {
            Some(pair) => with("alice", pair),
            None => tls(pooler.params("alice")),
        };
        let out = run(&params, "select 1");
        assert!(!out.success(), "{what} was let in");
        let logged = pooler.wait_log(reason, Duration::from_secs(5));
        assert!(
            logged,
            "{what}: no '{reason}' in the log:\n{}",
            pooler.log()
        );
    }
    assert!(
        pooler.log().contains("TLS handshake failed"),
        "{}",
        pooler.log()
    );
    // Plaintext is refused too (verify_ca implies require).
    assert_refused(
        &run(&pooler.params("alice"), "select 1"),
        "plaintext",
        "SSL is required",
    );
}

/// CVE-2021-23214: a StartupMessage sent right behind the SSLRequest, before the handshake,
/// would be read as if it came over TLS. The pooler answers `S` and closes the connection.
#[test]
fn bytes_behind_an_ssl_request_close_the_connection() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let (_ca, server) = certs();
    let pooler = pooler(
        cluster.port(),
        &listen_tls("allow", &server, None),
        "",
        &rule("alice", "", "none"),
    );
    let mut raw = RawConn::connect(pooler.port(), TIMEOUT).expect("connect");
    let mut packets = Vec::new();
    kiwi::startup::StartupPacket::SslRequest.encode(&mut packets);
    kiwi::startup::Startup {
        version: kiwi::startup::ProtocolVersion::V3_0,
        params: vec![
            (b"user".as_slice(), b"alice".as_slice()),
            (b"database".as_slice(), b"postgres".as_slice()),
        ],
    }
    .encode(&mut packets);
    raw.send(&packets).expect("send");
    assert_eq!(raw.recv_byte().expect("answer"), Some(b'S'));
    // Closed without a handshake and without reading the StartupMessage as plaintext.
    assert!(
        matches!(raw.recv_byte(), Ok(None) | Err(_)),
        "the connection stays open"
    );
    assert!(
        pooler.wait_log("extraneous data", Duration::from_secs(5)),
        "{}",
        pooler.log()
    );
}

/// A second storage `name` at `host` with `tls`, and a rule for database `name` using it.
fn storage(name: &str, host: &str, port: u16, tls: &str) -> String {
    format!(
        "storage \"{name}\" {{\n\ttype \"remote\"\n\thost \"{host}\"\n\tport {port}\n{tls}}}\n\
         database \"{name}\" {{\n\tuser default {{\n\t\tauthentication \"none\"\n\
         \t\tstorage \"{name}\"\n\t\tstorage_db \"postgres\"\n\t\tstorage_user \"postgres\"\n\
         \t\tpool \"session\"\n\t}}\n}}\n"
    )
}

#[test]
fn storage_require_encrypts_and_its_servers_move_between_workers() {
    let ca = Certs::new().expect("CA");
    let cluster = tls_cluster(&ca);
    let pooler = pooler(
        cluster.port(),
        "",
        "\ttls \"require\"\n",
        &rule("alice", "", "none"),
    );
    let params = pooler.params("alice");
    let sql = "select ssl, pg_backend_pid() from pg_stat_ssl where pid = pg_backend_pid()";
    let first = assert_ok(&run(&params, sql), "first client", &pooler);
    assert!(
        first.starts_with("t|"),
        "server connection not TLS: {first}"
    );
    // Clients go round-robin to the 2 workers; pool_size 1 gives each the same server.
    for i in 0..4 {
        let again = assert_ok(&run(&params, sql), "next client", &pooler);
        assert_eq!(again, first, "client {i} got another server");
    }
}

#[test]
fn storage_verification_checks_the_chain_and_verify_full_the_host() {
    let ca = Certs::new().expect("CA");
    let cluster = tls_cluster(&ca);
    let port = cluster.port();
    let other = Certs::new().expect("other CA");
    let ca_line = |c: &Certs| format!("\ttls_ca_file \"{}\"\n", c.ca().display());
    let rest = [
        storage(
            "full",
            "127.0.0.1",
            port,
            &format!("\ttls \"verify_full\"\n{}", ca_line(&ca)),
        ),
        storage(
            "wrong_host",
            "127.0.0.2",
            port,
            &format!("\ttls \"verify_full\"\n{}", ca_line(&ca)),
        ),
        storage(
            "chain_only",
            "127.0.0.2",
            port,
            &format!("\ttls \"verify_ca\"\n{}", ca_line(&ca)),
        ),
        storage(
            "wrong_ca",
            "127.0.0.1",
            port,
            &format!("\ttls \"verify_ca\"\n{}", ca_line(&other)),
        ),
    ]
    .concat();
    let pooler = pooler(port, "", "", &rest);
    let sql = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
    let at = |db: &str| pooler.params("postgres").dbname(db);
    assert_eq!(
        assert_ok(&run(&at("full"), sql), "verify_full", &pooler),
        "t"
    );
    assert_eq!(
        assert_ok(&run(&at("chain_only"), sql), "verify_ca", &pooler),
        "t"
    );
    assert_refused(
        &run(&at("wrong_host"), sql),
        "verify_full at another address",
        "failed to get remote server connection",
    );
    assert!(
        pooler.wait_log("IP address mismatch", Duration::from_secs(5)),
        "{}",
        pooler.log()
    );
    assert_refused(
        &run(&at("wrong_ca"), sql),
        "a server of another CA",
        "failed to get remote server connection",
    );
    assert!(
        pooler.log().contains("certificate verify failed"),
        "{}",
        pooler.log()
    );
}

#[test]
fn storage_modes_against_a_server_without_tls() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let port = cluster.port();
    let rest = [
        storage("preferred", "127.0.0.1", port, "\ttls \"prefer\"\n"),
        storage("allowed", "127.0.0.1", port, "\ttls \"allow\"\n"),
        storage("required", "127.0.0.1", port, "\ttls \"require\"\n"),
    ]
    .concat();
    let pooler = pooler(port, "", "", &rest);
    let at = |db: &str| pooler.params("postgres").dbname(db);
    assert_ok(
        &run(&at("preferred"), "select 1"),
        "prefer falls back",
        &pooler,
    );
    assert_ok(
        &run(&at("allowed"), "select 1"),
        "allow is plaintext",
        &pooler,
    );
    assert_refused(
        &run(&at("required"), "select 1"),
        "require without TLS",
        "failed to get remote server connection",
    );
    assert!(
        pooler.wait_log("the server does not support TLS", Duration::from_secs(5)),
        "{}",
        pooler.log()
    );
}

#[test]
fn unusable_tls_files_are_config_errors() {
    let (ca, server) = certs();
    let other = ca.issue("other", "other", None, 2).expect("other");
    let mismatched = Pair {
        cert: server.cert.clone(),
        key: other.key,
    };
    let missing = Pair {
        cert: ca.path("nothing.crt"),
        key: server.key.clone(),
    };
    // Files named and unusable: errors naming them.
    let errors = [
        (
            listen_tls("require", &missing, None),
            "nothing.crt",
            "No such file",
        ),
        (
            listen_tls("require", &mismatched, None),
            "other.key",
            "does not match",
        ),
    ];
    for (lines, file, reason) in errors {
        let out = check(&lines);
        assert!(!out.success(), "{lines} passed --test");
        let said = out.combined();
        assert!(
            said.contains(file) && said.contains(reason),
            "{lines}: {said}"
        );
    }
    // Files left out: valid for upstream, so warnings saying what follows.
    let warnings = [
        (
            "\ttls \"require\"\n".to_string(),
            "every TCP client is refused",
        ),
        (
            listen_tls("verify_ca", &server, None),
            "no client certificate can be verified",
        ),
    ];
    for (lines, warning) in warnings {
        let out = check(&lines);
        assert!(out.success(), "{lines}: {}", out.combined());
        assert!(
            out.combined().contains(warning),
            "{lines}: {}",
            out.combined()
        );
    }
}

fn check(listen_lines: &str) -> Output {
    let text = template(5432, listen_lines, "", &rule("alice", "", "none"));
    run_odyssey(&["--test"], Some(&text), TIMEOUT).expect("odyssey --test")
}

/// SCRAM-SHA-256-PLUS: over TLS the pooler offers channel binding to its certificate
/// (`tls-server-end-point`), and a client that demands it logs in.
#[test]
fn scram_channel_binding_over_tls() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let (_ca, server) = certs();
    let rule = rule("carol", "", "scram-sha-256").replace(
        "\t\tauth_common_name default\n",
        "\t\tpassword \"carol secret\"\n",
    );
    let pooler = pooler(
        cluster.port(),
        &listen_tls("allow", &server, None),
        "",
        &rule,
    );
    let bound =
        tls(pooler.params("carol").password("carol secret")).libpq("PGCHANNELBINDING", "require");
    let out = run(&bound, "select 'bound'");
    assert_eq!(assert_ok(&out, "channel_binding=require", &pooler), "bound");
    let wrong = tls(pooler.params("carol").password("wrong")).libpq("PGCHANNELBINDING", "require");
    assert_refused(
        &run(&wrong, "select 1"),
        "a wrong password",
        "password authentication failed",
    );
}

/// Transaction pooling with TLS on both sides: clients park between transactions (their TLS
/// session held without a coroutine) and share two TLS servers across both workers.
#[test]
fn transaction_pooling_with_tls_on_both_sides() {
    let (ca, server) = certs();
    let cluster = tls_cluster(&ca);
    let rules = rule("alice", "", "none")
        .replace("pool \"session\"", "pool \"transaction\"")
        .replace("pool_size 1", "pool_size 2");
    let pooler = pooler(
        cluster.port(),
        &listen_tls("require", &server, None),
        "\ttls \"require\"\n",
        &rules,
    );
    let script = ca.path("select.sql");
    std::fs::write(
        &script,
        "select ssl from pg_stat_ssl where pid = pg_backend_pid();\nselect 1;\n",
    )
    .expect("script");
    let script = script.display().to_string();
    let args = ["-n", "-c", "8", "-j", "2", "-t", "50", "-f", &script];
    let out = pgbench(&tls(pooler.params("alice")), &args, TIMEOUT).expect("pgbench runs");
    assert!(out.success(), "{}\n{}", out.combined(), pooler.log());
    assert!(
        out.stdout
            .contains("number of transactions actually processed: 400/400"),
        "{}",
        out.stdout
    );
    // The pooler's servers stay in the pool: all TLS; only this check's session is not.
    let sql = "select count(*) filter (where s.ssl) >= 1 and count(*) filter (where not s.ssl) = 1 \
               from pg_stat_ssl s join pg_stat_activity a using (pid) \
               where a.backend_type = 'client backend'";
    let checked = cluster
        .psql("postgres", "postgres", sql)
        .expect("direct psql");
    assert_eq!(checked.trim(), "t", "a plaintext server connection");
}
