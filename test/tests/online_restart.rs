//! Online restart (issue 14, spec §9.6): SIGUSR2 starts a new process that takes the very
//! listening sockets over; a loop of connects through the hand-over sees no refusal and no
//! error, a client inside a transaction finishes it on the old process, the old process exits,
//! a new pid serves, and a second SIGUSR2 does it again. A new process that cannot start (a
//! broken config) changes nothing. The unix socket is handed over as well. Idle clients of the
//! old process hear it is an online restart, and to reconnect.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use kiwi::backend::ErrorFields;
use odyssey_test::pooler::config;
use odyssey_test::process::{self, Signal};
use odyssey_test::raw::RawConn;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect};

const RULES: &str = r#"
enable_online_restart yes
unix_socket_dir "@DIR@"
unix_socket_mode "0644"
listen {
	port @PORT@
}
graceful_shutdown_timeout_ms 10000
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		storage_db "postgres"
		storage_user "postgres"
		pool "session"
		pool_size 0
	}
}
"#;

/// Connects, queries and disconnects in a loop until told to stop; returns the failures.
fn connect_loop(port: u16, stop: Arc<AtomicBool>) -> thread::JoinHandle<(u32, u32, Vec<String>)> {
    thread::spawn(move || {
        let (ok, failed) = (AtomicU32::new(0), AtomicU32::new(0));
        let mut errors = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let r = connect(&ConnParams::tcp(port, "app"))
                .and_then(|mut c| c.simple_query("select 1").map(drop));
            match r {
                Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    errors.push(format!("{e}: {:?}", e.as_db_error().map(|d| d.message())));
                    failed.fetch_add(1, Ordering::Relaxed)
                }
            };
            thread::sleep(Duration::from_millis(5));
        }
        (ok.into_inner(), failed.into_inner(), errors)
    })
}

/// Sends SIGUSR2 to `old` and waits for a new pid in the pid file and `old` gone.
fn restart(pooler: &Pooler, old: u32) -> u32 {
    let new = pooler
        .restart_online(old)
        .unwrap_or_else(|| panic!("no new process\n{}", pooler.log()));
    assert!(
        process::wait_gone(&[old], Duration::from_secs(15)),
        "the old process does not exit\n{}",
        pooler.log()
    );
    new
}

#[test]
fn sigusr2_hands_over_without_a_refused_connection() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    let mut last = process::Stopper(None);
    let first = pooler.pid();
    // A client in a transaction finishes it on the old process.
    cluster
        .psql("postgres", "postgres", "create table probe(n int)")
        .expect("probe table");
    let mut busy = connect(&ConnParams::tcp(pooler.port(), "app")).expect("busy client");
    busy.simple_query("begin; insert into probe values (1)")
        .expect("begin");
    let long = thread::spawn(move || {
        busy.simple_query("select pg_sleep(2)")?;
        busy.simple_query("commit").map(drop)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let looping = connect_loop(pooler.port(), stop.clone());
    thread::sleep(Duration::from_millis(300));
    let second = restart(&pooler, first);
    last.0 = Some(second);
    // The commit runs on the old process; the client may then hear that process is going.
    if let Err(e) = long.join().expect("long query thread") {
        let shutting_down = e.as_db_error().is_some_and(|d| d.code().code() == "08006");
        assert!(
            shutting_down,
            "the transaction failed: {e}\n{}",
            pooler.log()
        );
    }
    let committed = cluster
        .psql("postgres", "postgres", "select count(*) from probe")
        .expect("count");
    assert_eq!(
        committed, "1",
        "the transaction must commit on the old process"
    );
    // And once more, from the new process.
    let third = restart(&pooler, second);
    last.0 = Some(third);
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (ok, failed, errors) = looping.join().expect("connect loop");
    assert!(ok > 20, "too few connects to mean anything: {ok}");
    assert_eq!(
        failed, 0,
        "refused or failed during the hand-over: {errors:?}"
    );
    assert!(process::alive(third));
    let log = pooler.log();
    assert!(
        log.contains(&format!("took over from process {second}")),
        "{log}"
    );
}

#[test]
fn a_new_process_that_fails_changes_nothing() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    let pid = pooler.pid();
    pooler
        .rewrite_config("this is not a config {")
        .expect("break the config");
    assert!(process::send_signal(pid, Signal::Usr2));
    assert!(
        pooler.wait_log("exited", Duration::from_secs(10)),
        "{}",
        pooler.log()
    );
    assert!(process::alive(pid));
    assert_eq!(pooler.pid_in_file(), Some(pid));
    let mut c = connect(&ConnParams::tcp(pooler.port(), "app")).expect("still serving");
    c.simple_query("select 1").expect("query");
}

#[test]
fn idle_clients_hear_it_is_an_online_restart() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), RULES)).expect("pooler");
    let mut idle = RawConn::connect(pooler.port(), Duration::from_secs(15)).unwrap();
    idle.startup(&[("user", "app"), ("database", "postgres")])
        .unwrap();
    let login = idle.until_ready().unwrap();
    assert_eq!(login.last().map(|m| m.tag), Some(b'Z'), "{login:?}");
    let new = pooler.restart_online(pooler.pid());
    let _last = process::Stopper(new);
    let fatal = idle.recv().unwrap().expect("a FATAL before the close");
    let fields = ErrorFields::decode(&fatal.body).expect("an ErrorResponse");
    let text = |f: Option<&[u8]>| String::from_utf8_lossy(f.unwrap_or_default()).into_owned();
    assert_eq!(
        fields.code().map(|c| c.as_str().to_string()).as_deref(),
        Some("08006")
    );
    assert!(
        text(fields.detail_text()).contains("performing online restart"),
        "{}",
        text(fields.detail_text())
    );
    assert_eq!(text(fields.hint_text()), "Try to reconnect");
}
