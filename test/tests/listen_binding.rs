//! Listen sockets as upstream binds them: a unix socket only for a listen without `host`, and
//! one address that cannot be bound is logged (`bind to '<addr>' failed`) while the others
//! serve; only when nothing is bound does startup fail. Regression: a unix socket was bound for
//! every listen, and one failing bind aborted startup (issue 15). The unix socket gets
//! `unix_socket_mode`, and a listen's `backlog` sizes its queue (what `ss` shows).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use odyssey_test::pooler::{config, run_odyssey};
use odyssey_test::tx::{first_values, raw_login, simple_query};
use odyssey_test::{Cluster, ClusterOptions, Pooler, free_port};

const RULES: &str = r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#;

#[test]
fn one_failing_bind_does_not_stop_the_others() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let rest = format!("listen {{\n\thost \"127.0.0.1\"\n\tport {taken_port}\n}}\n{RULES}");
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler starts");
    assert!(
        pooler.wait_log(
            &format!("bind to '127.0.0.1:{taken_port}' failed"),
            Duration::from_secs(5)
        ),
        "{}",
        pooler.log()
    );
    let mut conn = raw_login(pooler.port()).expect("login on the bound listen");
    let rows = simple_query(&mut conn, "SELECT 1").expect("query");
    assert_eq!(first_values(&rows), ["1"]);
    drop(taken);
}

#[test]
fn nothing_bound_fails_startup() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let template = format!(
        "daemonize no\nlog_format \"%l %m\\n\"\nlog_to_stdout yes\n\
         listen {{\n\thost \"127.0.0.1\"\n\tport {taken_port}\n}}\n\
         storage \"postgres_server\" {{\n\ttype \"remote\"\n\thost \"127.0.0.1\"\n\tport 1\n}}\n{RULES}"
    );
    let out = run_odyssey(&[], Some(&template), Duration::from_secs(20)).expect("run");
    assert!(!out.success(), "{out:?}");
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        text.contains(&format!("bind to '127.0.0.1:{taken_port}' failed")),
        "{text}"
    );
    assert!(text.contains("failed to bind any listen address"), "{text}");
    drop(taken);
}

#[test]
fn unix_socket_only_for_listens_without_host() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let unix_port = free_port().expect("port");
    let rest = format!(
        "unix_socket_dir \"@DIR@\"\nunix_socket_mode \"0600\"\n\
         listen {{\n\tport {unix_port}\n}}\n{RULES}"
    );
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler");
    let tcp_socket = pooler.dir().join(format!(".s.PGSQL.{}", pooler.port()));
    let unix_socket = pooler.dir().join(format!(".s.PGSQL.{unix_port}"));
    let bound = odyssey_test::wait_for(Duration::from_secs(5), || unix_socket.exists());
    assert!(bound, "{}", pooler.log());
    UnixStream::connect(&unix_socket).expect("the unix listen accepts");
    // unix_socket_mode, not the umask's 0755.
    let mode = std::fs::metadata(&unix_socket)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "unix_socket_mode: {mode:o}");
    assert!(
        !tcp_socket.exists(),
        "a listen with host got a unix socket too"
    );
}

#[test]
fn backlog_sizes_the_listen_queue() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let port = free_port().expect("port");
    let rest = format!("listen {{\n\thost \"127.0.0.1\"\n\tport {port}\n\tbacklog 37\n}}\n{RULES}");
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler");
    let queue = |port: u16| {
        let filter = format!("sport = :{port}");
        let out = std::process::Command::new("ss")
            .args(["-ltnH", &filter])
            .output()
            .expect("ss");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // State, Recv-Q, Send-Q (for a listener: its backlog), ...
        let line = text.lines().next().unwrap_or_default().to_string();
        line.split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(queue(port), "37", "{}", pooler.log());
    assert_eq!(queue(pooler.port()), "128", "the default backlog");
}
