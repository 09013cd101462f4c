//! Malformed startup input: the pooler drops the connection and keeps serving others.
//! Oversized messages before authentication are refused from their header.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use odyssey_test::raw::RawConn;
use odyssey_test::{Cluster, Error, Pooler, cluster_and_pooler, connect};

/// Bound on waiting for the pooler to close a connection.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

fn start() -> (Cluster, Pooler) {
    cluster_and_pooler(
        r#"
database default {
	user default {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
}
"#,
    )
}

/// Sends `bytes`, then reads until the pooler closes: the messages it sent first. Fails the
/// test if the connection is still open after [`CLOSE_TIMEOUT`].
fn send_and_wait_close(pooler: &Pooler, bytes: &[u8]) -> Vec<(String, String)> {
    let mut conn = RawConn::connect(pooler.port(), CLOSE_TIMEOUT).unwrap();
    conn.send(bytes).unwrap();
    let mut errors = Vec::new();
    loop {
        match conn.recv() {
            Ok(Some(m)) => errors.extend(m.error()),
            Ok(None) => return errors,
            Err(Error::Io { source, .. })
                if matches!(source.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                panic!("connection still open after {bytes:?}")
            }
            // A reset is a close too.
            Err(_) => return errors,
        }
    }
}

fn still_serves(pooler: &Pooler) {
    let mut client = connect(&pooler.params("postgres"))
        .unwrap_or_else(|e| panic!("pooler no longer serves: {e}\n{}", pooler.log()));
    let n: i32 = client.query_one("SELECT 41 + 1", &[]).unwrap().get(0);
    assert_eq!(n, 42);
}

#[test]
fn garbage_absurd_length_and_truncated_packets_are_dropped() {
    let (_cluster, pooler) = start();
    still_serves(&pooler);

    send_and_wait_close(&pooler, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    still_serves(&pooler);

    // Length 0x7fffffff: the pooler must not wait for (or allocate) 2 GB.
    send_and_wait_close(&pooler, &[0x7f, 0xff, 0xff, 0xff, 0x00, 0x03, 0x00, 0x00]);
    still_serves(&pooler);

    // A startup packet cut short, then the client goes away.
    {
        let mut conn = RawConn::connect(pooler.port(), CLOSE_TIMEOUT).unwrap();
        conn.send(&[0, 0, 0, 100, 0, 3, 0, 0, b'u', b's']).unwrap();
    }
    still_serves(&pooler);
}

#[test]
fn unsupported_protocol_version_gets_0a000() {
    let (_cluster, pooler) = start();
    let mut packet = Vec::new();
    let body = b"user\0postgres\0\0";
    packet.extend_from_slice(&((8 + body.len()) as u32).to_be_bytes());
    packet.extend_from_slice(&0x0002_0000u32.to_be_bytes());
    packet.extend_from_slice(body);
    let errors = send_and_wait_close(&pooler, &packet);
    let (code, msg) = errors.first().expect("an ErrorResponse before the close");
    assert_eq!(code, "0A000");
    assert!(
        msg.contains("unsupported frontend protocol 2.0: server supports 3.0 to 3.0"),
        "{msg}"
    );
    still_serves(&pooler);
}

/// Password routes for the oversized-message test, and `postgres` for [`still_serves`].
const PASSWORD_RULES: &str = r#"
database default {
	user "postgres" {
		authentication "none"
		storage "postgres_server"
		pool "session"
	}
	user "ct_user" {
		authentication "clear_text"
		password "clear pass"
		storage "postgres_server"
		storage_user "postgres"
		pool "session"
	}
	user "md5_user" {
		authentication "md5"
		password "md5 pass"
		storage "postgres_server"
		storage_user "postgres"
		pool "session"
	}
}
"#;

/// Regression: a PasswordMessage was read whole (up to 1 GiB) before its 10,000-byte limit
/// was checked, so an unauthenticated client could make the pooler buffer 100 MB. The header
/// alone must now get `08P01` and a close; the body streamed after it then fails at once.
///
/// The close is awaited before streaming: bytes written earlier sit in loopback socket
/// buffers (megabytes) whatever the pooler does, and the reset they cause can drop the reply.
#[test]
fn oversized_password_message_is_refused_from_its_header() {
    const ANNOUNCED: u32 = 100 << 20;
    const CHUNK: usize = 64 * 1024;
    const MOST_ACCEPTED: usize = 1 << 20;
    let (_cluster, pooler) = cluster_and_pooler(PASSWORD_RULES);
    for user in ["ct_user", "md5_user"] {
        let mut conn = RawConn::connect(pooler.port(), CLOSE_TIMEOUT).unwrap();
        conn.startup(&[("user", user), ("database", "postgres")])
            .unwrap();
        let request = conn.recv().unwrap().expect("an authentication request");
        assert_eq!(request.tag, b'R', "{user}: {request:?}");

        let mut header = vec![b'p'];
        header.extend_from_slice(&(ANNOUNCED + 4).to_be_bytes());
        conn.send(&header).unwrap();
        let reply = match conn.recv() {
            Ok(Some(m)) => m,
            other => panic!(
                "{user}: no reply to a {ANNOUNCED}-byte password header: {other:?}\n{}",
                pooler.log()
            ),
        };
        let (code, msg) = reply.error().expect("an ErrorResponse");
        assert_eq!(code, "08P01", "{user}: {msg}");
        assert!(msg.contains("bad password message"), "{user}: {msg}");
        match conn.recv() {
            Err(Error::Io { source, .. })
                if matches!(source.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                panic!("{user}: still open {CLOSE_TIMEOUT:?} after the refusal")
            }
            Ok(None) | Err(_) => {}
            Ok(Some(m)) => panic!(
                "{user}: a message after the refusal (the reply sent twice?): {:?}",
                m.error()
            ),
        }

        let started = Instant::now();
        let chunk = vec![b'x'; CHUNK];
        let mut accepted = 0;
        while conn.send(&chunk).is_ok() {
            accepted += CHUNK;
            assert!(
                accepted < MOST_ACCEPTED,
                "{user}: the pooler accepted {accepted} bytes of the password body"
            );
        }
        assert!(
            started.elapsed() < CLOSE_TIMEOUT,
            "{user}: the close took too long"
        );
    }
    still_serves(&pooler);
}
