//! systemd's readiness protocol (issue 14): with `NOTIFY_SOCKET` set, the pooler sends
//! `READY=1` (with its `MAINPID`) once it listens, `RELOADING=1` then `READY=1` around a
//! SIGHUP reload, `STOPPING=1` when it stops; after an online restart the new process names
//! itself in `MAINPID`. The shipped unit is `Type=notify` and, where `systemd-analyze` exists,
//! verifies.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use odyssey_test::pooler::config;
use odyssey_test::process::{self, Signal};
use odyssey_test::temp_dir::TempDir;
use odyssey_test::{Cluster, ClusterOptions, Pooler, PoolerOptions};

const RULES: &str = r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#;

/// The next notification that contains `needle`, within 15 s.
fn next_with(sock: &UnixDatagram, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains(needle) {
                return msg;
            }
            seen.push(msg);
        }
    }
    panic!("no notification with {needle:?}; got {seen:?}");
}

#[test]
fn ready_reloading_stopping_and_mainpid_after_a_restart() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let dir = TempDir::new("notify").expect("temp dir");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let options = PoolerOptions {
        env: vec![("NOTIFY_SOCKET".into(), path.display().to_string())],
        ..PoolerOptions::default()
    };
    let pooler = Pooler::start_with(&config(cluster.port(), RULES), options).expect("pooler");
    let first = pooler.pid();
    let ready = next_with(&sock, "READY=1");
    assert!(ready.contains(&format!("MAINPID={first}")), "{ready}");

    pooler.signal(Signal::Hup).expect("SIGHUP");
    let reloading = next_with(&sock, "RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    next_with(&sock, "READY=1");

    // An online restart: the new process says it is the main one; the old one stops.
    assert!(process::send_signal(first, Signal::Usr2));
    let ready = next_with(&sock, "MAINPID=");
    let new: u32 = ready
        .lines()
        .find_map(|l| l.strip_prefix("MAINPID="))
        .and_then(|p| p.parse().ok())
        .expect("a pid");
    assert_ne!(new, first, "{ready}");
    next_with(&sock, "STOPPING=1");
    assert!(process::wait_gone(&[first], Duration::from_secs(15)));
    process::send_signal(new, Signal::Term);
    assert!(
        process::wait_gone(&[new], Duration::from_secs(15)),
        "the new process must stop on SIGTERM"
    );
    next_with(&sock, "STOPPING=1");
}

#[test]
fn the_unit_is_type_notify_and_verifies_where_it_can() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/odyssey.service");
    let text = std::fs::read_to_string(&unit).expect("unit file");
    for line in [
        "Type=notify",
        "NotifyAccess=all",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing");
    }
    let analyze = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output();
    if let Ok(out) = analyze {
        // Only complaints about the unit's own keys matter here (not a missing binary or user
        // on the build machine).
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("Unknown key") && !stderr.contains("Invalid"),
            "{stderr}"
        );
    }
}
