//! Replication clients through the pooler (issue 13): `replication=database` and physical
//! replication get a server of their own with the same parameter, piped both ways —
//! `IDENTIFY_SYSTEM` answers with the cluster's system id and `pg_basebackup` copies a
//! working data directory; a value PostgreSQL would refuse gets `ERROR 08006`.

use std::process::Command;
use std::time::Duration;

use odyssey_test::clients::pg_binary;
use odyssey_test::command;
use odyssey_test::temp_dir::TempDir;
use odyssey_test::{ConnParams, cluster_and_pooler, psql};

const RULES: &str = r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		storage_user "postgres"
		pool "transaction"
		pool_size 2
	}
}
"#;

/// psql with `replication=<mode>` in its connection string (there is no environment variable
/// for it).
fn replication_psql(port: u16, mode: &str, sql: &str) -> odyssey_test::Output {
    let mut cmd = Command::new(pg_binary("psql"));
    cmd.arg("-XAtq")
        .arg("-d")
        .arg(format!(
            "host=127.0.0.1 port={port} user=app dbname=postgres replication={mode} sslmode=disable"
        ))
        .args(["-c", sql])
        .env_remove("PGPASSWORD")
        .env_remove("PGSERVICE");
    command::run(cmd, "psql", Duration::from_secs(30)).expect("psql")
}

#[test]
fn identify_system_and_pg_basebackup_go_through() {
    let (cluster, pooler) = cluster_and_pooler(RULES);
    let system_id = cluster
        .psql(
            "postgres",
            "postgres",
            "select system_identifier from pg_control_system()",
        )
        .expect("system id");
    for mode in ["database", "true"] {
        let out = replication_psql(pooler.port(), mode, "IDENTIFY_SYSTEM");
        assert!(
            out.success(),
            "{mode}: {}\n{}",
            out.combined(),
            pooler.log()
        );
        assert!(out.stdout.starts_with(&system_id), "{mode}: {}", out.stdout);
    }
    // Ordinary clients of the same route still go through the pool.
    let out = psql(
        &ConnParams::tcp(pooler.port(), "app"),
        "select 1",
        Duration::from_secs(10),
    )
    .expect("psql");
    assert_eq!(out.stdout.trim(), "1");

    let target = TempDir::new("basebackup").expect("temp dir");
    let data = target.path().join("copy");
    let mut cmd = Command::new(pg_binary("pg_basebackup"));
    cmd.arg("-D")
        .arg(&data)
        .args(["-h", "127.0.0.1", "-p", &pooler.port().to_string()])
        .args(["-U", "app", "-X", "stream", "-c", "fast", "--no-sync"])
        .env("PGSSLMODE", "disable")
        .env_remove("PGPASSWORD");
    let out = command::run(cmd, "pg_basebackup", Duration::from_secs(120)).expect("run");
    assert!(out.success(), "{}\n{}", out.combined(), pooler.log());
    let version = std::fs::read_to_string(data.join("PG_VERSION")).expect("PG_VERSION copied");
    assert!(!version.trim().is_empty());
    assert!(data.join("global/pg_control").exists());
    assert!(
        pooler.log().contains("replication (true) connection"),
        "{}",
        pooler.log()
    );
}

#[test]
fn a_bad_replication_value_is_refused() {
    let (_cluster, pooler) = cluster_and_pooler(RULES);
    let out = replication_psql(pooler.port(), "sometimes", "select 1");
    assert!(!out.success());
    assert!(
        out.combined()
            .contains("invalid value for parameter \"replication\""),
        "{}",
        out.combined()
    );
}
