//! 100 MB each way through TLS on both sides (issue 10): a COPY TO STDOUT result and a COPY
//! FROM STDIN through a pooler with `tls require` towards psql and towards a PostgreSQL with
//! `ssl = on`, each checked byte-exact against md5 computed by PostgreSQL itself.

use std::time::{Duration, Instant};

use odyssey_test::certs::Certs;
use odyssey_test::tls::{assert_ok, certs, listen_tls, pooler, rule, tls, tls_cluster};
use odyssey_test::{Cluster, Pooler, psql};
use openssl::hash::{MessageDigest, hash};

/// Rows in [`ROWS_SQL`], of about 1030 bytes each: 103 MB.
const ROWS: u32 = 100_000;
/// Generous for 2 × 100 MB on a shared machine; the test reports what it took.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The row set both directions move: `i`, then 1024 bytes of hex.
const ROWS_SQL: &str =
    "select i, repeat(md5(i::text), 32) as line from generate_series(1, 100000) i";

fn md5_hex(bytes: &[u8]) -> String {
    let digest = hash(MessageDigest::md5(), bytes).expect("md5");
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// md5 of `source`'s rows in COPY text format, computed by PostgreSQL.
fn server_md5(cluster: &Cluster, source: &str) -> String {
    let sql = format!(
        "select md5(string_agg(i || E'\\t' || line || E'\\n', '' order by i)) from ({source}) s"
    );
    cluster
        .psql("postgres", "postgres", &sql)
        .expect("md5 on the server")
}

/// A TLS cluster behind a pooler with TLS on both sides, and the CA (whose directory holds
/// the data file too).
fn setup() -> (Cluster, Pooler, Certs) {
    let (ca, server) = certs();
    let cluster = tls_cluster(&ca);
    let pooler = pooler(
        cluster.port(),
        &listen_tls("require", &server, None),
        "\ttls \"require\"\n",
        &rule("alice", "", "none"),
    );
    (cluster, pooler, ca)
}

#[test]
fn a_100_mb_copy_out_and_in_through_tls_on_both_sides_is_byte_exact() {
    let (cluster, pooler, dir) = setup();
    let params = tls(pooler.params("alice"));
    // Out: the result lands in a file through psql's \copy, then is compared.
    let out_file = dir.path("out.copy");
    let started = Instant::now();
    let copy_out = format!("\\copy ({ROWS_SQL}) to '{}'", out_file.display());
    let out = psql(&params, &copy_out, TIMEOUT).expect("psql runs");
    assert_ok(&out, "COPY TO STDOUT through TLS", &pooler);
    let received = std::fs::read(&out_file).expect("the copied file");
    let took_out = started.elapsed();
    assert!(received.len() > 100_000_000, "{} bytes", received.len());
    assert_eq!(
        md5_hex(&received),
        server_md5(&cluster, ROWS_SQL),
        "COPY out differs"
    );
    // In: the same bytes back into a table, compared on the server.
    cluster
        .psql(
            "postgres",
            "postgres",
            "create table big (i int, line text)",
        )
        .expect("create table");
    let started = Instant::now();
    let copy_in = format!("\\copy big from '{}'", out_file.display());
    let out = psql(&params, &copy_in, TIMEOUT).expect("psql runs");
    assert_ok(&out, "COPY FROM STDIN through TLS", &pooler);
    let took_in = started.elapsed();
    let stored = server_md5(&cluster, "select i, line from big");
    assert_eq!(stored, md5_hex(&received), "COPY in differs");
    let count = cluster
        .psql("postgres", "postgres", "select count(*) from big")
        .expect("count");
    assert_eq!(count.trim(), ROWS.to_string());
    eprintln!("100 MB through TLS: out {took_out:?}, in {took_in:?}");
}
