//! `authentication "external"` (spec §8): the pooler asks an agent on the unix socket
//! `external_auth_socket_path` (8-byte little-endian length frames: user, password; answers:
//! status, external id). The agent here is a thread of the test allowing one password; its id
//! shows in the log. A wrong password, and an agent that is gone, fail the login with
//! `FATAL 28P01 external authentication failed`.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use odyssey_test::clients::{current_user, login_error};
use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::temp_dir::TempDir;
use odyssey_test::{Cluster, ClusterOptions, Pooler};

/// The agent's password.
const SECRET: &str = "agent secret";

/// An agent thread answering on `path` until dropped.
struct Agent {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Agent {
    fn start(path: &Path) -> Agent {
        let listener = UnixListener::bind(path).expect("bind the agent socket");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = answer(stream);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Agent {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_frame(s: &mut UnixStream) -> std::io::Result<Vec<u8>> {
    let mut header = [0u8; 8];
    s.read_exact(&mut header)?;
    let mut body = vec![0u8; u64::from_le_bytes(header).min(4096) as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

fn write_frame(s: &mut UnixStream, body: &[u8]) -> std::io::Result<()> {
    s.write_all(&(body.len() as u64).to_le_bytes())?;
    s.write_all(body)
}

/// Allows [`SECRET`]; the external id is `ext-<user>`.
fn answer(mut s: UnixStream) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let user = read_frame(&mut s)?;
    let password = read_frame(&mut s)?;
    let user = String::from_utf8_lossy(user.strip_suffix(b"\0").unwrap_or(&user)).into_owned();
    let allowed = password == format!("{SECRET}\0").as_bytes();
    write_frame(&mut s, &[u8::from(allowed)])?;
    write_frame(&mut s, format!("ext-{user}").as_bytes())
}

fn rules(socket: &Path) -> String {
    format!(
        "external_auth_socket_path \"{}\"\n\
         database \"postgres\" {{\n\tuser default {{\n\t\tauthentication \"external\"\n\
         \t\tstorage \"postgres_server\"\n\t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t}}\n}}\n",
        socket.display()
    )
}

#[test]
fn the_agent_decides_and_names_the_client() {
    let dir = TempDir::new("external").unwrap();
    let socket = dir.path().join("agent.sock");
    let agent = Agent::start(&socket);
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&config(cluster.port(), &rules(&socket))).expect("pooler");

    let right = pooler.params("alice").password(SECRET);
    assert_eq!(current_user(&right, &|| pooler.log()), "postgres");
    assert!(
        pooler.wait_log(
            "user 'postgres.alice' was authenticated with external_id: ext-alice",
            Duration::from_secs(5)
        ),
        "{}",
        pooler.log()
    );

    let refused = |user: &str| {
        let started = Instant::now();
        let (code, msg) = login_error(&pooler.params(user).password("wrong"));
        assert!(started.elapsed() < Duration::from_secs(4));
        assert_eq!(code, Some(SqlState::INVALID_PASSWORD), "{msg}");
        assert!(
            msg.ends_with(&format!(
                "external authentication failed for user \"{user}\""
            )),
            "{msg}"
        );
    };
    refused("bob");
    // The agent is gone: the login fails within its timeouts.
    drop(agent);
    let _ = std::fs::remove_file(&socket);
    refused("carol");
    assert!(
        pooler.wait_log("external auth via", Duration::from_secs(5)),
        "{}",
        pooler.log()
    );
}
