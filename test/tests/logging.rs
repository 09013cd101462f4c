//! Log lines carry client and server ids; a client's error names its id; syslog lines reach
//! the syslog socket.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::temp_dir::TempDir;
use odyssey_test::{Cluster, ClusterOptions, Pooler, PoolerOptions, connect};

/// Routes for everyone, and a blocked user to provoke an error.
const RULES: &str = r#"
log_syslog yes
log_syslog_ident "odyssey-e2e"
database default {
	user "blocked" {
		authentication "block"
		storage "postgres_server"
		pool "session"
	}
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#;

/// Whether `word` is `prefix` followed by exactly 12 lowercase hex digits.
fn is_id(word: &str, prefix: char) -> bool {
    word.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 12
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[test]
fn ids_in_log_lines_client_errors_and_syslog() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let dir = TempDir::new("syslog").unwrap();
    let socket_path = dir.path().join("syslog.sock");
    let syslog = UnixDatagram::bind(&socket_path).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let options = PoolerOptions {
        env: vec![(
            "ODYSSEY_SYSLOG_SOCKET".to_string(),
            socket_path.display().to_string(),
        )],
        ..PoolerOptions::default()
    };
    let pooler = Pooler::start_with(&config(cluster.port(), RULES), options).expect("pooler");

    let mut client = connect(&pooler.params("postgres")).unwrap();
    client.batch_execute("SELECT 1").unwrap();
    drop(client);
    assert!(pooler.wait_log("client disconnected", Duration::from_secs(5)));

    // log_format "... [%i %s] ...": a line with both ids, from the server connection.
    let log = pooler.log();
    let with_both = log.lines().find(|line| {
        line.split_once('[')
            .and_then(|(_, rest)| rest.split_once(']'))
            .is_some_and(|(ids, _)| match ids.split_once(' ') {
                Some((c, s)) => is_id(c, 'c') && is_id(s, 's'),
                None => false,
            })
    });
    assert!(
        with_both.is_some(),
        "no line with a client and a server id:\n{log}"
    );

    // The blocked user's error names its client id, and the log knows that id.
    let err = connect(&pooler.params("blocked"))
        .err()
        .expect("blocked got in");
    let msg = err
        .as_db_error()
        .expect("an ErrorResponse")
        .message()
        .to_string();
    let id = msg
        .strip_prefix("odyssey: ")
        .and_then(|rest| rest.split_once(": "))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("no `odyssey: c…: ` prefix in {msg:?}"));
    assert!(is_id(&id, 'c'), "{id}");
    assert!(
        pooler.wait_log(&format!("[{id} "), Duration::from_secs(5)),
        "client {id} not in the log:\n{}",
        pooler.log()
    );

    // Syslog got lines too, with the configured ident.
    let mut datagrams = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = syslog.recv(&mut buf) {
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        let done = line.contains("client disconnected");
        datagrams.push(line);
        if done {
            break;
        }
    }
    assert!(
        datagrams
            .iter()
            .any(|d| d.contains("odyssey-e2e") && d.contains("client disconnected")),
        "syslog datagrams: {datagrams:#?}"
    );
}
