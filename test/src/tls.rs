//! Shared setups of the TLS tests: a pooler whose listen and storage carry `tls` lines, the
//! rules they log into, the certificates of a loopback server, a PostgreSQL with `ssl = on`,
//! and psql runs checked for success or refusal.

use std::time::Duration;

use crate::certs::{Certs, Pair};
use crate::pooler::{PORT, config};
use crate::{Cluster, ClusterOptions, ConnParams, Output, Pooler, psql};

/// Bound on one psql run of a TLS test.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A pooler on [`template`].
pub fn pooler(storage_port: u16, listen_tls: &str, storage_tls: &str, rest: &str) -> Pooler {
    Pooler::start(&template(storage_port, listen_tls, storage_tls, rest)).expect("pooler")
}

/// `pooler::config` with `listen_tls` lines in its listen section and `storage_tls` lines in
/// its storage's.
pub fn template(storage_port: u16, listen_tls: &str, storage_tls: &str, rest: &str) -> String {
    config(storage_port, rest)
        .replacen(
            &format!("\tport {PORT}\n}}"),
            &format!("\tport {PORT}\n{listen_tls}}}"),
            1,
        )
        .replacen(
            &format!("\tport {storage_port}\n}}"),
            &format!("\tport {storage_port}\n{storage_tls}}}"),
            1,
        )
}

/// A session-pooled rule for `user` (any database) served as the cluster's superuser.
pub fn rule(user: &str, selector: &str, auth: &str) -> String {
    format!(
        "database default {{\n\tuser \"{user}\" {selector} {{\n\t\tauthentication \"{auth}\"\n\
         \t\tauth_common_name default\n\t\tstorage \"postgres_server\"\n\
         \t\tstorage_db \"postgres\"\n\t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\
         \t\tpool_size 1\n\t}}\n}}\n"
    )
}

/// The `tls` lines of a listen in `mode` showing `server`, verifying clients with `ca`.
pub fn listen_tls(mode: &str, server: &Pair, ca: Option<&Certs>) -> String {
    let mut out = format!(
        "\ttls \"{mode}\"\n\ttls_cert_file \"{}\"\n\ttls_key_file \"{}\"\n",
        server.cert.display(),
        server.key.display()
    );
    if let Some(ca) = ca {
        out.push_str(&format!("\ttls_ca_file \"{}\"\n", ca.ca().display()));
    }
    out
}

/// The CA, and the certificate a server on loopback shows (localhost and 127.0.0.1).
pub fn certs() -> (Certs, Pair) {
    let certs = Certs::new().expect("CA");
    let server = certs
        .issue("server", "localhost", Some("DNS:localhost,IP:127.0.0.1"), 2)
        .expect("server certificate");
    (certs, server)
}

/// A PostgreSQL with `ssl = on`, listening on 127.0.0.1 and 127.0.0.2 with a certificate for
/// `localhost` and `127.0.0.1` only.
pub fn tls_cluster(ca: &Certs) -> Cluster {
    tls_cluster_with(ca, ClusterOptions::default())
}

/// [`tls_cluster`] with more `options`.
pub fn tls_cluster_with(ca: &Certs, options: ClusterOptions) -> Cluster {
    let pg = ca
        .issue("pg", "localhost", Some("DNS:localhost,IP:127.0.0.1"), 2)
        .expect("pg certificate");
    let options = options
        .tls(&pg.cert, &pg.key)
        .setting("listen_addresses", "'127.0.0.1,127.0.0.2'");
    Cluster::start(options).expect("cluster with ssl")
}

/// psql running `sql` with `params` (it may fail).
pub fn run(params: &ConnParams, sql: &str) -> Output {
    psql(params, sql, TIMEOUT).expect("psql runs")
}

/// `params` with `sslmode=require`.
pub fn tls(params: ConnParams) -> ConnParams {
    params.libpq("PGSSLMODE", "require")
}

/// Asserts `out` succeeded (showing the pooler's log if not); its trimmed stdout.
pub fn assert_ok(out: &Output, what: &str, pooler: &Pooler) -> String {
    assert!(
        out.success(),
        "{what}: {}\n{}",
        out.combined(),
        pooler.log()
    );
    out.stdout.trim().to_string()
}

/// Asserts `out` failed saying `needle`.
pub fn assert_refused(out: &Output, what: &str, needle: &str) {
    assert!(!out.success(), "{what} was let in: {}", out.stdout);
    assert!(
        out.combined().contains(needle),
        "{what}: expected '{needle}' in: {}",
        out.combined()
    );
}
