//! The harness itself: clusters start, authenticate, restart and vanish; clients and the
//! pooler fixture report what really happened.

use std::time::{Duration, Instant};

use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::{self, PORT};
use odyssey_test::{
    AuthMethod, Cluster, ClusterOptions, Error, PgbenchSummary, Pooler, connect, pgbench, process,
    psql,
};

const TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn cluster_answers_psql_and_rust_client() {
    let cluster = Cluster::start(ClusterOptions::default().setting("max_connections", "20"))
        .expect("start cluster");
    assert_eq!(cluster.host(), "127.0.0.1");
    assert!(
        cluster
            .socket_dir()
            .join(format!(".s.PGSQL.{}", cluster.port()))
            .exists()
    );

    assert_eq!(
        cluster.psql("postgres", "postgres", "SELECT 1").unwrap(),
        "1"
    );
    assert_eq!(
        cluster
            .psql("postgres", "postgres", "SHOW max_connections")
            .unwrap(),
        "20"
    );
    assert_eq!(
        cluster.psql("postgres", "postgres", "SHOW fsync").unwrap(),
        "off"
    );

    let over_tcp = psql(&cluster.params("postgres"), "SELECT 1", TIMEOUT).unwrap();
    assert!(over_tcp.success(), "{}", over_tcp.combined());
    assert_eq!(over_tcp.stdout, "1\n");

    let mut client = connect(&cluster.params("postgres")).expect("rust client connects");
    let row = client.query_one("SELECT 1::int4", &[]).unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
}

#[test]
fn users_log_in_with_their_method() {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    cluster.add_user("trusty", "", AuthMethod::Trust).unwrap();
    cluster
        .add_user("md5_user", "md5 secret", AuthMethod::Md5)
        .unwrap();
    cluster
        .add_user("scram_user", "scram's secret", AuthMethod::ScramSha256)
        .unwrap();

    // Passwords are stored the way their method needs.
    let stored = |user: &str| {
        cluster
            .psql(
                "postgres",
                "postgres",
                &format!(
                    "SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = '{user}'"
                ),
            )
            .unwrap()
    };
    assert!(
        stored("md5_user").starts_with("md5"),
        "{}",
        stored("md5_user")
    );
    assert!(stored("scram_user").starts_with("SCRAM-SHA-256$"));
    assert_eq!(stored("trusty"), "");

    // Trust lets in whatever the password.
    for password in ["", "anything"] {
        let mut client = connect(&cluster.params("trusty").password(password)).expect("trust");
        let user: String = client
            .query_one("SELECT current_user::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(user, "trusty");
    }

    for (user, password) in [("md5_user", "md5 secret"), ("scram_user", "scram's secret")] {
        let mut client = connect(&cluster.params(user).password(password))
            .unwrap_or_else(|e| panic!("{user} with the right password: {e}"));
        let who: String = client
            .query_one("SELECT current_user::text", &[])
            .unwrap()
            .get(0);
        assert_eq!(who, user);

        let err = connect(&cluster.params(user).password("wrong"))
            .err()
            .unwrap_or_else(|| panic!("{user} got in with a wrong password"));
        assert_eq!(
            err.code(),
            Some(&SqlState::INVALID_PASSWORD),
            "{user}: {err}"
        );

        let out = psql(&cluster.params(user).password("wrong"), "SELECT 1", TIMEOUT).unwrap();
        assert!(!out.success());
        assert!(
            out.stderr.contains("password authentication failed"),
            "{user}: {}",
            out.stderr
        );
    }
}

#[test]
fn superuser_can_require_scram_over_tcp() {
    let options = ClusterOptions {
        superuser_auth: AuthMethod::ScramSha256,
        superuser_password: "su pass".to_string(),
        ..ClusterOptions::default()
    };
    let cluster = Cluster::start(options).expect("start cluster");
    let err = connect(&cluster.params("postgres").password("nope"))
        .err()
        .unwrap();
    assert_eq!(err.code(), Some(&SqlState::INVALID_PASSWORD));
    connect(&cluster.params("postgres").password("su pass")).expect("right password");
    // Setup still goes through the trusted socket.
    assert_eq!(
        cluster.psql("postgres", "postgres", "SELECT 2").unwrap(),
        "2"
    );
}

#[test]
fn restart_keeps_data_and_port() {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    cluster
        .psql(
            "postgres",
            "postgres",
            "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('x')",
        )
        .unwrap();
    let (port, old_pids) = (cluster.port(), cluster.pids());
    cluster.restart().expect("restart");
    assert_eq!(cluster.port(), port);
    assert!(
        old_pids.iter().all(|&pid| !process::alive(pid)),
        "old server survived"
    );
    assert_eq!(
        cluster
            .psql("postgres", "postgres", "SELECT v FROM kept")
            .unwrap(),
        "x"
    );
}

#[test]
fn dropped_cluster_leaves_no_process_or_files() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    // A client backend too, so there is more than the postmaster's own children to clean up.
    let _client = connect(&cluster.params("postgres")).unwrap();
    let data_dir = cluster.data_dir();
    let pids = cluster.pids();
    assert!(
        pids.len() >= 2,
        "postmaster and children expected: {pids:?}"
    );
    assert_eq!(
        process::matching_cmdline(&data_dir.display().to_string()).len(),
        1
    );

    drop(cluster);
    let alive: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|&pid| process::alive(pid))
        .collect();
    assert!(alive.is_empty(), "still alive after drop: {alive:?}");
    assert!(process::matching_cmdline(&data_dir.display().to_string()).is_empty());
    assert!(!data_dir.exists(), "{} left behind", data_dir.display());
}

#[test]
fn stop_twice_is_harmless() {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    let pids = cluster.pids();
    cluster.stop().expect("stop");
    assert!(pids.iter().all(|&pid| !process::alive(pid)));
    assert!(cluster.pids().is_empty());
    cluster.stop().expect("second stop");
    assert!(cluster.psql("postgres", "postgres", "SELECT 1").is_err());
}

#[test]
fn pgbench_runs_without_failures() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    let params = cluster.params("postgres");
    let init = pgbench(&params, &["-i", "-q", "-s", "1"], TIMEOUT).unwrap();
    assert!(init.success(), "{}", init.combined());

    let run = pgbench(&params, &["-c", "4", "-j", "2", "-T", "2"], TIMEOUT).unwrap();
    assert!(run.success(), "{}", run.combined());
    let summary = PgbenchSummary::parse(&run.stdout).expect(&run.stdout);
    assert!(summary.processed > 0, "{summary:?}");
    assert_eq!(summary.failed, 0, "{}", run.stdout);
    assert!(summary.tps > 0.0);
}

#[test]
fn pgbench_summary_reads_pg15_report() {
    let report = "transaction type: <builtin: TPC-B (sort of)>\n\
                  number of transactions actually processed: 4321\n\
                  number of failed transactions: 3 (0.069%)\n\
                  tps = 2158.123456 (without initial connection time)\n";
    let summary = PgbenchSummary::parse(report).unwrap();
    assert_eq!(summary.processed, 4321);
    assert_eq!(summary.failed, 3);
    assert!((summary.tps - 2158.123456).abs() < 1e-9);
    assert_eq!(PgbenchSummary::parse("no report"), None);
}

#[test]
fn command_timeout_kills_the_program() {
    let started = Instant::now();
    let mut sleep = std::process::Command::new("sleep");
    sleep.arg("30");
    match odyssey_test::command::run(sleep, "sleep", Duration::from_millis(200)) {
        Err(Error::Timeout { program, .. }) => assert_eq!(program, "sleep"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn psql_reports_sql_errors() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("start cluster");
    match cluster.psql("postgres", "postgres", "SELECT * FROM no_such_table") {
        Err(Error::Failed {
            program, output, ..
        }) => {
            assert_eq!(program, "psql");
            assert!(output.contains("no_such_table"), "{output}");
        }
        other => panic!("expected psql to fail, got {other:?}"),
    }
}

/// odyssey at this stage runs only `--version`/`--help`; these pin what works now.
#[test]
fn odyssey_binary_reports_its_version() {
    let out = pooler::run_odyssey(&["--version"], None, TIMEOUT).expect("run odyssey");
    assert!(out.success(), "{}", out.combined());
    assert!(out.stdout.starts_with("odyssey "), "{}", out.stdout);
}

#[test]
fn pooler_start_failure_carries_its_output() {
    let template =
        format!("listen {{\n\thost \"127.0.0.1\"\n\tport {PORT}\n}}\nthis is not a keyword\n");
    match Pooler::start(&template) {
        Err(Error::Startup {
            server,
            reason,
            log,
        }) => {
            assert_eq!(server, "odyssey");
            assert!(reason.starts_with("exited with"), "{reason}");
            assert!(
                !log.trim().is_empty(),
                "the failing pooler's output is lost"
            );
        }
        Ok(pooler) => panic!("odyssey accepted an invalid config: {}", pooler.log()),
        Err(other) => panic!("expected a startup error, got {other}"),
    }
}

#[test]
fn config_template_is_rendered() {
    let dir = std::path::Path::new("/tmp/x");
    let text = pooler::render_config(
        "port @PORT@\nlog_file \"@LOG_FILE@\"\npid_file \"@PID_FILE@\"\nunix_socket_dir \"@DIR@\"\n",
        dir,
        6543,
    );
    assert_eq!(
        text,
        "port 6543\nlog_file \"/tmp/x/odyssey.log\"\npid_file \"/tmp/x/odyssey.pid\"\nunix_socket_dir \"/tmp/x\"\n"
    );
}
