//! The HTTP side of `/metrics` and `/healthz`: one request per connection (HTTP/1.0 or 1.1
//! with `Connection: close`), read with a deadline, answered and closed. It runs on the system
//! machine; a scrape is small and rare next to client traffic.

use std::sync::Arc;
use std::time::Duration;

use machinarium::Deadline;
use machinarium::net::{DetachedStream, Listener};

use crate::instance::Instance;
use crate::od_error;

/// Largest request head read.
const MAX_REQUEST: usize = 8192;
/// How long a scraper may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts scrapes until the coroutine is cancelled.
pub fn serve(inst: Arc<Instance>, listener: Listener) {
    loop {
        let socket = match listener.accept(Deadline::Never) {
            Ok((socket, _)) => socket,
            Err(machinarium::Error::Cancelled) => return,
            Err(e) => {
                od_error!(inst.logger, "metrics", None, None, "accept failed: {e}");
                if machinarium::sleep(Duration::from_millis(100)).is_err() {
                    return;
                }
                continue;
            }
        };
        let inst = inst.clone();
        machinarium::spawn(move || answer(&inst, socket));
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Metrics,
    Health,
    NotFound,
    BadMethod,
}

/// The request line of a request head.
fn parse(head: &[u8]) -> Request {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (method, target) = (words.next(), words.next().unwrap_or(""));
    if method != Some("GET") {
        return Request::BadMethod;
    }
    match target.split('?').next() {
        Some("/metrics") => Request::Metrics,
        Some("/healthz") => Request::Health,
        _ => Request::NotFound,
    }
}

fn answer(inst: &Instance, socket: DetachedStream) {
    let Ok(mut stream) = socket.attach() else {
        return;
    };
    let deadline = Deadline::after(READ_TIMEOUT);
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        match stream.read(&mut buf, deadline) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let (status, body) = match parse(&head) {
        Request::Metrics => ("200 OK", super::render(inst)),
        Request::Health if inst.is_shutting_down() => {
            ("503 Service Unavailable", "shutting down\n".into())
        }
        Request::Health => ("200 OK", "ok\n".into()),
        Request::NotFound => ("404 Not Found", "try /metrics or /healthz\n".into()),
        Request::BadMethod => ("405 Method Not Allowed", "GET only\n".into()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes(), Deadline::after(READ_TIMEOUT));
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(
            parse(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Request::Metrics
        );
        assert_eq!(parse(b"GET /healthz HTTP/1.1\r\n\r\n"), Request::Health);
        assert_eq!(parse(b"HEAD /healthz HTTP/1.1\r\n\r\n"), Request::BadMethod);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Request::BadMethod);
        assert_eq!(parse(b""), Request::BadMethod);
    }
}
