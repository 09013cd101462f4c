//! What routing a client to a rule changes before it authenticates: the rule's parameters
//! and keepalive, the `catchup_timeout` check, and the target_session_attrs the client asks for.

use std::net::SocketAddr;

use super::end::End;
use super::startup::SessionRequest;
use crate::config::rule::Rule;
use crate::config::storage::TargetSessionAttrs;
use crate::conn::{Conn, Transport};
use crate::route::Route;

/// What a rule changes once a client is routed to it (upstream order): `application_name_add_host`
/// appends the client's address, `options { }` overrides its parameters, and a rule
/// `keepalive` > 0 re-sets TCP keepalive on its socket.
pub fn routed(conn: &Conn, request: &mut SessionRequest, rule: &Rule) {
    if rule.application_name_add_host {
        let name =
            application_name_with_host(request.vars.get("application_name"), conn.peer_addr());
        let _ = request.vars.set(b"application_name", name.as_bytes());
    }
    for (name, value) in &rule.options {
        // Only tracked parameters take effect, as upstream (spec §2, §7.7).
        let _ = request.vars.set(name.as_bytes(), value.as_bytes());
    }
    if let Some(keepalive) = crate::backend::rule_keepalive(&rule.keepalive) {
        let _ = match conn.transport() {
            Transport::Plain(stream) => stream.set_keepalive(&keepalive),
            Transport::Tls(tls) => tls.set_keepalive(&keepalive),
        };
    }
}

/// `catchup_timeout` at login (spec §7.6): refused when every host the watchdog measured lags
/// that much or more.
pub fn catchup(route: &Route) -> Result<(), End> {
    let Some(storage) = route.storage() else {
        return Ok(());
    };
    match route.endpoints.catchup_refusal(storage, route.key.catchup) {
        None => Ok(()),
        Some(lag) => Err(End::Lagging {
            lag,
            route: format!("{} {}", route.key.database, route.key.user),
        }),
    }
}

/// The target_session_attrs a client asked for in its startup parameters (or `options`), if
/// it names one: `odyssey.target_session_attrs`, which upstream reads whatever
/// `virtual_processing` says.
pub fn client_tsa(vars: &kiwi::var::Vars) -> Option<TargetSessionAttrs> {
    let value = std::str::from_utf8(vars.get("odyssey.target_session_attrs")?).ok()?;
    TargetSessionAttrs::from_name(&value.to_ascii_lowercase())
}

/// `<application_name or "unknown"> - <ip:port>` (`<unix socket>` for a unix client), cut to the
/// 127 bytes upstream's buffer holds.
pub fn application_name_with_host(name: Option<&[u8]>, peer: Option<SocketAddr>) -> String {
    let name = name.map_or("unknown".into(), String::from_utf8_lossy);
    let peer = peer.map_or("<unix socket>".to_string(), |a| a.to_string());
    let mut out = format!("{name} - {peer}");
    let mut end = out.len().min(127);
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    out
}
