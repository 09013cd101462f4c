//! Global directives with a visible effect and no test of their own before: `include` (a rule
//! from an included file routes clients) and `log_syslog_facility` (the facility in the syslog
//! datagram's priority).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::temp_dir::TempDir;
use odyssey_test::{Cluster, ClusterOptions, Pooler, PoolerOptions, connect};

#[test]
fn an_included_file_adds_its_rules() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let dir = TempDir::new("include").expect("temp dir");
    let included = dir.path().join("routes.conf");
    std::fs::write(
        &included,
        r#"
database "postgres" {
	user "postgres" {
		authentication "none"
		storage "postgres_server"
		pool "transaction"
	}
}
"#,
    )
    .expect("write the included file");
    let pooler = Pooler::start(&config(
        cluster.port(),
        &format!("include \"{}\"\n", included.display()),
    ))
    .expect("pooler");
    let mut client = connect(&pooler.params("postgres")).expect("routed by the included rule");
    let one: i32 = client.query_one("SELECT 1", &[]).expect("query").get(0);
    assert_eq!(one, 1);
}

#[test]
fn log_syslog_facility_sets_the_datagram_priority() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let dir = TempDir::new("facility").expect("temp dir");
    let socket_path = dir.path().join("syslog.sock");
    let syslog = UnixDatagram::bind(&socket_path).expect("bind");
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let options = PoolerOptions {
        env: vec![(
            "ODYSSEY_SYSLOG_SOCKET".to_string(),
            socket_path.display().to_string(),
        )],
        ..PoolerOptions::default()
    };
    let rules = r#"
log_syslog yes
log_syslog_facility "local3"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#;
    let _pooler = Pooler::start_with(&config(cluster.port(), rules), options).expect("pooler");
    let mut buf = [0u8; 2048];
    let n = syslog.recv(&mut buf).expect("a syslog datagram");
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    // <PRI> = facility * 8 + severity; local3 is facility 19: 152..=159.
    let pri: u32 = line
        .strip_prefix('<')
        .and_then(|rest| rest.split('>').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no priority in {line:?}"));
    assert_eq!(pri / 8, 19, "facility of {line:?}");
}

#[test]
fn a_storage_host_name_is_resolved() {
    // `localhost` goes through the resolver pool (`resolvers`), not an address literal.
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let template = config(cluster.port(), "").replace(
        "type \"remote\"\n\thost \"127.0.0.1\"",
        "type \"remote\"\n\thost \"localhost\"",
    );
    let rules = r#"
resolvers 2
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#;
    let pooler = Pooler::start(&format!("{template}{rules}")).expect("pooler");
    assert!(
        pooler.config_path().exists()
            && std::fs::read_to_string(pooler.config_path())
                .is_ok_and(|c| c.contains("host \"localhost\"")),
        "the storage names a host, not an address"
    );
    let mut client = connect(&pooler.params("postgres")).expect("connect through localhost");
    let one: i32 = client.query_one("SELECT 1", &[]).expect("query").get(0);
    assert_eq!(one, 1);
}

#[test]
fn pool_reset_timeout_ms_closes_a_server_whose_reset_is_too_slow() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let start = |timeout: &str| {
        Pooler::start(&config(
            cluster.port(),
            &format!(
                r#"
database default {{
	user default {{
		authentication "none"
		storage "postgres_server"
		pool "session"
		pool_size 1
		pool_discard no
		pool_discard_query "SELECT pg_sleep(1)"
		{timeout}
	}}
}}
"#
            ),
        ))
        .expect("pooler")
    };
    let same_server_after_reset = |pooler: &Pooler| {
        let pid = || -> i32 {
            let mut c = connect(&pooler.params("postgres")).expect("connect");
            c.query_one("SELECT pg_backend_pid()", &[])
                .expect("pid")
                .get(0)
        };
        let first = pid();
        // The reset of the first server (its discard query) runs as the client leaves.
        std::thread::sleep(Duration::from_millis(1500));
        first == pid()
    };
    let slow = start("pool_reset_timeout_ms 200");
    assert!(
        !same_server_after_reset(&slow),
        "a reset past pool_reset_timeout_ms closes the server\n{}",
        slow.log()
    );
    let patient = start("pool_reset_timeout_ms 5000");
    assert!(
        same_server_after_reset(&patient),
        "within the timeout the server is reused (the test tests something)\n{}",
        patient.log()
    );
}
