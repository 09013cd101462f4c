//! `storage "name" { }`: a backend (remote PostgreSQL hosts, or the local admin console), with
//! its endpoints, TLS, balancing and optional lag watchdog.

use std::time::Duration;

use super::convert::{Reader, Seen, put, put_some};
use super::diag::Pos;
use super::model::{Item, Value};
use super::rule::{self, Body, Rule, RuleKey};
use super::tls::{self, Tls};

/// What a storage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageType {
    /// PostgreSQL servers.
    Remote,
    /// The admin console.
    Local,
}

/// libpq-style target_session_attrs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TargetSessionAttrs {
    /// A primary.
    ReadWrite,
    /// A standby.
    ReadOnly,
    /// A standby if there is one.
    PreferStandby,
    /// Any server.
    #[default]
    Any,
}

impl TargetSessionAttrs {
    /// The value named `s`, as upstream spells it (or `prefer-replica`).
    pub fn from_name(s: &str) -> Option<TargetSessionAttrs> {
        Some(match s {
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "prefer-standby" | "prefer-replica" => TargetSessionAttrs::PreferStandby,
            "any" => TargetSessionAttrs::Any,
            _ => return None,
        })
    }

    /// Upstream's spelling.
    pub fn name(self) -> &'static str {
        match self {
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
            TargetSessionAttrs::Any => "any",
        }
    }
}

/// How a client's endpoint is chosen among a storage's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BalancingMethod {
    /// In turn.
    RoundRobin,
    /// Fewest connections.
    LeastConn,
    /// Recognised name, not implemented upstream either (refused at validation).
    Weighted,
    /// Recognised name, not implemented.
    WeightedLeastConn,
    /// Recognised name, not implemented.
    ResponseTime,
}

/// A storage's `balancing { }` block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balancing {
    /// The method.
    pub method: BalancingMethod,
    /// Prefer endpoints in our availability zone.
    pub az_aware: bool,
    /// NOTICE "select host ..." to clients when there are several endpoints.
    pub show_notice_messages: bool,
}

/// One host of a storage's `host` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address (without brackets).
    pub host: String,
    /// Port, when the entry names one; else the storage's `port`.
    pub port: Option<u16>,
    /// Availability zone suffix.
    pub availability_zone: Option<String>,
    /// Written as `unix://...`.
    pub unix: bool,
}

/// The watchdog of a storage: an internal rule used to poll replication lag.
#[derive(Debug, Clone, PartialEq)]
pub struct Watchdog {
    /// The rule the watchdog connects with (`watchdog_int.watchdog_int`).
    pub rule: Box<Rule>,
}

/// One `storage` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// Where the section starts.
    pub pos: Pos,
    /// Its name, as rules refer to it.
    pub name: String,
    /// Remote or local.
    pub kind: StorageType,
    /// The `host` string as written.
    pub host: Option<String>,
    /// `host` split into endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Default port of endpoints (no implicit 5432, as upstream).
    pub port: u16,
    /// TLS towards servers.
    pub tls: Tls,
    /// Concurrent connects; 0 means as many as workers.
    pub server_max_routing: u32,
    /// Freshness of endpoint status.
    pub endpoints_status_poll_interval: Duration,
    /// Endpoint choice.
    pub balancing: Balancing,
    /// Lag watchdog, if configured.
    pub watchdog: Option<Watchdog>,
    /// The servers clients of this storage want when neither their listen nor their rule
    /// says (odyssey 1.4's storage-level `target_session_attrs`; HEAD moved it to those two).
    pub target_session_attrs: Option<TargetSessionAttrs>,
}

impl Storage {
    /// `server_max_routing`, or `workers` when it is 0 (spec §2.4): how many servers may be
    /// opened on it at once.
    pub fn max_routing(&self, workers: u32) -> u32 {
        match self.server_max_routing {
            0 => workers.max(1),
            n => n,
        }
    }
}

/// Reads a `storage "name" { ... }` section.
pub fn read(r: &mut Reader, item: &Item) -> Option<Storage> {
    let name = section_name(r, item, "storage")?;
    let block = r.block(item)?;
    let mut s = Storage {
        pos: item.pos().clone(),
        name,
        kind: StorageType::Remote,
        host: None,
        endpoints: Vec::new(),
        port: 0,
        tls: Tls::default(),
        server_max_routing: 0,
        endpoints_status_poll_interval: Duration::from_millis(1000),
        balancing: Balancing {
            method: BalancingMethod::RoundRobin,
            az_aware: true,
            show_notice_messages: false,
        },
        watchdog: None,
        target_session_attrs: None,
    };
    let mut seen = Seen::default();
    let mut has_type = false;
    for it in &block.items {
        r.note(&mut seen, it);
        if tls::read(r, &mut s.tls, it, &format!("storage '{}'", s.name)) {
            continue;
        }
        match it.name() {
            "type" => {
                has_type = true;
                put(&mut s.kind, storage_type(r, it, &s.name))
            }
            "host" => {
                if let Some(h) = r.string(it) {
                    s.endpoints = endpoints(r, it, &h).unwrap_or_default();
                    s.host = Some(h);
                }
            }
            "port" => put(&mut s.port, r.int_in(it, 0, 65535).map(|p| p as u16)),
            "server_max_routing" => put(&mut s.server_max_routing, r.count(it)),
            "endpoints_status_poll_interval" => put(
                &mut s.endpoints_status_poll_interval,
                r.int_in(it, 1, i64::MAX)
                    .map(|n| Duration::from_millis(n as u64)),
            ),
            "balancing" => balancing(r, it, &mut s.balancing),
            "watchdog" => watchdog(r, it, &mut s),
            "target_session_attrs" => {
                put_some(&mut s.target_session_attrs, target_session_attrs(r, it))
            }
            _ => r.unexpected(it, "storage"),
        }
    }
    if !has_type {
        r.error(
            item.pos(),
            format!("storage '{}': 'type' is required (remote or local)", s.name),
        );
    }
    Some(s)
}

/// The quoted name after a named section (`storage "x"`), never empty.
pub fn section_name(r: &mut Reader, item: &Item, what: &str) -> Option<String> {
    let Some(arg) = item.args.first() else {
        r.expected(item.pos(), format!("a quoted name after {what}"), "nothing");
        return None;
    };
    if let Some(extra) = item.args.get(1) {
        r.expected(
            &extra.pos,
            format!("'{{' after {what} name"),
            extra.value.describe(),
        );
        return None;
    }
    let name = r.string_value(item, arg)?;
    if name.is_empty() {
        r.error(&arg.pos, format!("{what} name cannot be empty"));
        return None;
    }
    Some(name)
}

fn storage_type(r: &mut Reader, item: &Item, name: &str) -> Option<StorageType> {
    match r.string(item)?.as_str() {
        "remote" => Some(StorageType::Remote),
        "local" => Some(StorageType::Local),
        other => {
            r.error(
                &item.args[0].pos,
                format!("storage '{name}': unknown type '{other}' (remote or local)"),
            );
            None
        }
    }
}

fn balancing(r: &mut Reader, item: &Item, b: &mut Balancing) {
    let Some(block) = r.section(item) else { return };
    let mut seen = Seen::default();
    for it in &block.items {
        r.note(&mut seen, it);
        match it.name() {
            "method" => {
                let arg = it.args.first().map(|a| &a.value);
                if let Some(Value::Str(m, _)) = arg {
                    put(&mut b.method, method(r, it, m));
                } else {
                    r.expected(
                        it.pos(),
                        "a quoted balancing method after method",
                        arg.map_or("nothing".into(), Value::describe),
                    );
                }
                for az in it.block.iter().flat_map(|b| &b.items) {
                    match az.name() {
                        "az_aware" => put(&mut b.az_aware, r.bool(az)),
                        _ => r.unexpected(az, "balancing method"),
                    }
                }
            }
            "show_notice_messages" => put(&mut b.show_notice_messages, r.bool(it)),
            _ => r.unexpected(it, "balancing"),
        }
    }
}

fn watchdog(r: &mut Reader, item: &Item, s: &mut Storage) {
    let Some(block) = r.section(item) else { return };
    if s.watchdog.is_some() {
        r.error(
            item.pos(),
            format!("redefinition of watchdog for storage '{}'", s.name),
        );
    }
    let key = RuleKey::internal("watchdog_int", "watchdog_int", item.pos().clone());
    let rule = rule::read_body(r, block, key, Body::Watchdog);
    s.watchdog = Some(Watchdog {
        rule: Box::new(rule),
    });
}

/// `target_session_attrs "read-write"` and friends.
pub fn target_session_attrs(r: &mut Reader, item: &Item) -> Option<TargetSessionAttrs> {
    let s = r.string(item)?;
    let tsa = TargetSessionAttrs::from_name(&s);
    if tsa.is_none() {
        let what = "read-write, read-only, prefer-standby or any for target_session_attrs";
        r.expected(&item.args[0].pos, what, format!("\"{s}\""));
    }
    tsa
}

/// `balancing_method "leastconn"` (listen) or `method "x"` (storage).
pub fn balancing_method(r: &mut Reader, item: &Item) -> Option<BalancingMethod> {
    let s = r.string(item)?;
    method(r, item, &s)
}

fn method(r: &mut Reader, item: &Item, s: &str) -> Option<BalancingMethod> {
    let m = match s {
        "roundrobin" => BalancingMethod::RoundRobin,
        "leastconn" => BalancingMethod::LeastConn,
        "weighted" => BalancingMethod::Weighted,
        "weightedleastconn" => BalancingMethod::WeightedLeastConn,
        "responsetime" => BalancingMethod::ResponseTime,
        _ => {
            let what = "a balancing method (roundrobin or leastconn)";
            r.expected(&item.args[0].pos, what, format!("\"{s}\""));
            return None;
        }
    };
    if !matches!(m, BalancingMethod::RoundRobin | BalancingMethod::LeastConn) {
        r.error(
            &item.args[0].pos,
            format!("not implemented balancing method '{s}'"),
        );
    }
    Some(m)
}

/// Splits a storage `host` list: `[tcp://|unix://]host[:port][:az]` or `[host]:port:az`.
fn endpoints(r: &mut Reader, item: &Item, list: &str) -> Option<Vec<Endpoint>> {
    let mut out = Vec::new();
    for entry in list.split(',').map(str::trim) {
        match endpoint(entry) {
            Some(e) => out.push(e),
            None => {
                r.error(
                    &item.args[0].pos,
                    format!("can't parse endpoints from '{list}' (at '{entry}')"),
                );
                return None;
            }
        }
    }
    if out.len() > 128 {
        r.error(&item.args[0].pos, "too many endpoints (at most 128)");
        return None;
    }
    Some(out)
}

fn endpoint(entry: &str) -> Option<Endpoint> {
    let (unix, rest) = match entry.strip_prefix("unix://") {
        Some(rest) => (true, rest),
        None => (false, entry.strip_prefix("tcp://").unwrap_or(entry)),
    };
    let (host, tail) = match rest.strip_prefix('[') {
        Some(inner) => {
            let end = inner.find(']')?;
            (
                &inner[..end],
                inner[end + 1..]
                    .strip_prefix(':')
                    .unwrap_or(&inner[end + 1..]),
            )
        }
        None => rest.split_once(':').unwrap_or((rest, "")),
    };
    if host.is_empty() {
        return None;
    }
    let mut e = Endpoint {
        host: host.to_string(),
        port: None,
        availability_zone: None,
        unix,
    };
    for part in tail.split(':').filter(|p| !p.is_empty()) {
        if part.bytes().all(|b| b.is_ascii_digit()) {
            if e.port.is_some() {
                return None;
            }
            e.port = Some(part.parse().ok()?);
        } else {
            if e.availability_zone.is_some() {
                return None;
            }
            e.availability_zone = Some(part.to_string());
        }
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        let e = endpoint("tcp://h1:5433:klg").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.availability_zone.as_deref()),
            ("h1", Some(5433), Some("klg"))
        );
        let e = endpoint("[::1]:6000").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", Some(6000)));
        assert!(endpoint("h:1:2").is_none());
        assert!(endpoint("").is_none());
        assert!(endpoint("unix:///tmp").is_some_and(|e| e.unix));
    }
}
