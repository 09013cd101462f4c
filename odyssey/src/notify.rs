//! systemd's readiness protocol (sd_notify) without libsystemd: a datagram with `KEY=value`
//! lines to the unix socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract
//! namespace). Without that variable (not started by systemd with `Type=notify`) nothing is
//! sent.

use std::os::unix::net::UnixDatagram;

/// The pooler listens (`MAINPID` too: after an online restart the main process changed).
pub fn ready() {
    send(&format!("READY=1\nMAINPID={}", std::process::id()));
}

/// A reload starts.
pub fn reloading() {
    let now = monotonic_usec();
    send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
}

/// A reload is done.
pub fn reloaded() {
    send("READY=1");
}

/// A graceful shutdown starts.
pub fn stopping() {
    send("STOPPING=1");
}

/// Sends `state`; false when there is no socket to send to or the send failed (systemd then
/// times the service out, which is the right signal that something is wrong).
pub fn send(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    let path = path.to_string_lossy().into_owned();
    match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
                .is_ok()
        }
        None => sock.send_to(state.as_bytes(), &path).is_ok(),
    }
}

/// CLOCK_MONOTONIC in microseconds, as systemd wants it with RELOADING=1 (read from
/// /proc/uptime's clock: `Instant` exposes no absolute value).
fn monotonic_usec() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0, |secs| (secs * 1e6) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_socket_nothing_is_sent() {
        // The test runner is not started by systemd with Type=notify.
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            assert!(!send("READY=1"));
        }
        assert!(monotonic_usec() > 0);
    }
}
