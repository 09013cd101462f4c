//! Fuzz target `hba`: an hba_file's text parsed, then every parsed line asked to decide for a
//! few clients (Unix, TCP v4/v6, TLS), as the login path does after routing.
//!
//! Nothing may panic; a failed parse names a line of the text.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use odyssey::config::hba;
use odyssey::config::rule::Transport;

const CLIENTS: [(Transport, Option<IpAddr>); 4] = [
    (Transport::Unix, None),
    (
        Transport::Tcp { tls: false },
        Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
    ),
    (
        Transport::Tcp { tls: true },
        Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ),
    (
        Transport::Tcp { tls: false },
        Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let name: Arc<str> = "fuzz_hba.conf".into();
    match hba::parse(&name, text) {
        Ok(lines) => {
            for (transport, ip) in CLIENTS {
                let _ = hba::decide(&lines, transport, ip, "db", "db");
                let _ = hba::decide(&lines, transport, ip, "postgres", "alice");
            }
        }
        Err(d) => assert!(d.line as usize <= text.lines().count().max(1)),
    }
});
