//! `listen { }`: one listening endpoint for clients.

use std::time::Duration;

use super::convert::{Reader, Seen, put, put_some};
use super::diag::Pos;
use super::model::Item;
use super::storage::{self, BalancingMethod, TargetSessionAttrs};
use super::tls::{self, Tls};

/// The port a listen section gets when it names none, as in released versions.
pub const DEFAULT_PORT: u16 = 6432;

/// One `listen` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Listen {
    /// Where the section starts.
    pub pos: Pos,
    /// `"*"` for every address, a host name or address, or `None` for the unix socket only.
    pub host: Option<String>,
    /// TCP port and unix socket suffix.
    pub port: u16,
    /// listen(2) backlog.
    pub backlog: u32,
    /// TLS towards clients.
    pub tls: Tls,
    /// Deadline for routing, startup, TLS handshake and each auth read.
    pub client_login_timeout: Duration,
    /// Overrides the rule's target_session_attrs.
    pub target_session_attrs: Option<TargetSessionAttrs>,
    /// Overrides the storage's balancing method.
    pub balancing_method: Option<BalancingMethod>,
    /// Replication-lag limit for clients of this listener (the rule's wins when non-zero).
    pub catchup_timeout: Duration,
    /// Fallback storages tried in order instead of the rule's storage.
    pub storages: Vec<String>,
}

impl Listen {
    fn new(pos: Pos) -> Self {
        Listen {
            pos,
            host: None,
            port: DEFAULT_PORT,
            backlog: 128,
            tls: Tls::default(),
            client_login_timeout: Duration::from_millis(15_000),
            target_session_attrs: None,
            balancing_method: None,
            catchup_timeout: Duration::ZERO,
            storages: Vec::new(),
        }
    }
}

/// Reads a `listen { ... }` section.
pub fn read(r: &mut Reader, item: &Item) -> Option<Listen> {
    let block = r.section(item)?;
    let mut l = Listen::new(item.pos().clone());
    let mut seen = Seen::default();
    let mut has_port = false;
    for it in &block.items {
        r.note(&mut seen, it);
        if tls::read(r, &mut l.tls, it, "listen") {
            continue;
        }
        match it.name() {
            "host" => put_some(&mut l.host, r.string(it)),
            "port" => {
                has_port = true;
                put(&mut l.port, r.int_in(it, 1, 65535).map(|p| p as u16))
            }
            "backlog" => put(&mut l.backlog, r.count(it)),
            "client_login_timeout" => put(&mut l.client_login_timeout, r.millis(it)),
            "target_session_attrs" => put_some(
                &mut l.target_session_attrs,
                storage::target_session_attrs(r, it),
            ),
            "balancing_method" => {
                put_some(&mut l.balancing_method, storage::balancing_method(r, it))
            }
            "catchup_timeout" => put(&mut l.catchup_timeout, r.secs(it)),
            "storage" => l.storages.extend(r.string(it)),
            _ => r.unexpected(it, "listen"),
        }
    }
    if !has_port {
        r.warn(
            item.pos(),
            format!(
                "listen section is missing 'port'; using {DEFAULT_PORT} as released versions do"
            ),
        );
    }
    Some(l)
}
