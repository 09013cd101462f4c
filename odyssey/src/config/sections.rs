//! The small top-level sections: `ldap_endpoint`, `shared_pool`, `conn_drop_options`,
//! `soft_oom`, `query_parsing`.

use std::time::Duration;

use super::convert::{Reader, Seen, put, put_some};
use super::diag::Pos;
use super::model::{Item, Value};
use super::storage::section_name;

/// An `ldap_endpoint "name" { }` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LdapEndpoint {
    /// Its name, as rules refer to it.
    pub name: String,
    /// LDAP host (required).
    pub server: Option<String>,
    /// LDAP port (0 is written into the URL as is).
    pub port: u16,
    /// `ldap` or `ldaps`.
    pub scheme: String,
    /// Search base; set means search+bind, unset means simple bind.
    pub basedn: Option<String>,
    /// Initial bind DN.
    pub binddn: Option<String>,
    /// Initial bind password.
    pub bindpasswd: Option<String>,
    /// Search attribute.
    pub search_attribute: String,
    /// Extra search filter.
    pub search_filter: Option<String>,
    /// Simple-bind DN prefix.
    pub prefix: Option<String>,
    /// Simple-bind DN suffix.
    pub suffix: Option<String>,
    /// Accepted and ignored, as upstream.
    pub scope: Option<String>,
    /// `ldaptls`: StartTLS on an `ldap` connection before any bind (ours, as PostgreSQL's
    /// `ldaptls=1`).
    pub starttls: bool,
    /// `ldapcafile`: the CA file that verifies the LDAP server's certificate (ours; unset:
    /// the system's trust store).
    pub ca_file: Option<String>,
}

/// A `shared_pool "name" { pool_size N }` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPool {
    /// Where it is defined.
    pub pos: Pos,
    /// Its name.
    pub name: String,
    /// Servers shared by its rules, more than 0.
    pub size: u32,
}

/// `conn_drop_options { }` (alias `online_restart_drop_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnDrop {
    /// When false, old clients are never dropped.
    pub enabled: bool,
    /// Connections dropped per interval per worker.
    pub rate: u32,
    /// The interval.
    pub interval: Duration,
}

impl Default for ConnDrop {
    fn default() -> Self {
        ConnDrop {
            enabled: true,
            rate: 1,
            interval: Duration::from_millis(1000),
        }
    }
}

/// `soft_oom { }`: refuse new remote logins over a memory limit, maybe signal processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftOom {
    /// Limit in bytes (required, > 0).
    pub limit: u64,
    /// Process name substring whose memory counts; `None` is the whole system.
    pub process: Option<String>,
    /// Check period.
    pub check_interval: Duration,
    /// Signal the biggest processes while over the limit.
    pub drop: Option<SoftOomDrop>,
}

/// `soft_oom { drop { } }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftOomDrop {
    /// Signal name without `SIG` (`TERM`, `KILL`...).
    pub signal: String,
    /// Processes signalled per check.
    pub max_rate: u32,
}

/// `query_parsing { }` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryParsingMode {
    /// No query interception at all.
    Disabled,
    /// The minimal parser (default).
    Minimal,
}

/// `query_parsing { }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryParsing {
    /// Mode.
    pub mode: QueryParsingMode,
    /// Per-worker parse arena, bytes.
    pub mem_limit: u64,
}

impl Default for QueryParsing {
    fn default() -> Self {
        QueryParsing {
            mode: QueryParsingMode::Minimal,
            mem_limit: 1 << 20,
        }
    }
}

/// Reads `ldap_endpoint "name" { ... }`.
pub fn ldap_endpoint(r: &mut Reader, item: &Item) -> Option<LdapEndpoint> {
    let name = section_name(r, item, "ldap_endpoint")?;
    let block = r.block(item)?;
    let mut e = LdapEndpoint {
        name,
        scheme: "ldap".into(),
        search_attribute: "uid".into(),
        ..Default::default()
    };
    let mut seen = Seen::default();
    for it in &block.items {
        r.note(&mut seen, it);
        match it.name() {
            "ldapserver" => put_some(&mut e.server, r.string(it)),
            "ldapport" => put(&mut e.port, r.int_in(it, 0, 65535).map(|p| p as u16)),
            "ldapscheme" => put(&mut e.scheme, r.string(it)),
            "ldapbasedn" => put_some(&mut e.basedn, r.string(it)),
            "ldapbinddn" => put_some(&mut e.binddn, r.string(it)),
            "ldapbindpasswd" => put_some(&mut e.bindpasswd, r.string(it)),
            "ldapsearchattribute" => put(&mut e.search_attribute, r.string(it)),
            "ldapsearchfilter" => put_some(&mut e.search_filter, r.string(it)),
            "ldapprefix" => put_some(&mut e.prefix, r.string(it)),
            "ldapsuffix" => put_some(&mut e.suffix, r.string(it)),
            "ldapscope" => put_some(&mut e.scope, r.string(it)),
            "ldaptls" => put(&mut e.starttls, r.bool(it)),
            "ldapcafile" => put_some(&mut e.ca_file, r.string(it)),
            _ => r.unexpected(it, "ldap_endpoint"),
        }
    }
    if e.server.is_none() {
        r.error(
            item.pos(),
            format!("ldap_endpoint '{}': ldapserver is required", e.name),
        );
    }
    if !matches!(e.scheme.as_str(), "ldap" | "ldaps") {
        r.error(
            item.pos(),
            format!(
                "ldap_endpoint '{}': ldapscheme must be \"ldap\" or \"ldaps\"",
                e.name
            ),
        );
    }
    if let Some(f) = &e.ca_file
        && !std::path::Path::new(f).is_file()
    {
        r.error(
            item.pos(),
            format!(
                "ldap_endpoint '{}': ldapcafile \"{f}\" is not a readable file",
                e.name
            ),
        );
    }
    if e.starttls && e.scheme == "ldaps" {
        r.error(
            item.pos(),
            format!(
                "ldap_endpoint '{}': ldaptls (StartTLS) goes with ldapscheme \"ldap\" only",
                e.name
            ),
        );
    }
    Some(e)
}

/// Reads `shared_pool "name" { pool_size N }`.
pub fn shared_pool(r: &mut Reader, item: &Item) -> Option<SharedPool> {
    let name = section_name(r, item, "shared_pool")?;
    let block = r.block(item)?;
    let mut size = None;
    for it in &block.items {
        match it.name() {
            "pool_size" => put_some(&mut size, r.int(it)),
            _ => r.unexpected(it, "shared_pool"),
        }
    }
    match size {
        None => r.error(
            item.pos(),
            format!("pool_size is required in shared_pool '{name}'"),
        ),
        Some(n) if n <= 0 || n > i64::from(u32::MAX) => r.error(
            item.pos(),
            format!("shared_pool '{name}' pool_size must be positive"),
        ),
        Some(n) => {
            return Some(SharedPool {
                pos: item.pos().clone(),
                name,
                size: n as u32,
            });
        }
    }
    None
}

/// Reads `conn_drop_options { ... }`.
pub fn conn_drop(r: &mut Reader, item: &Item) -> Option<ConnDrop> {
    let block = r.section(item)?;
    let mut c = ConnDrop::default();
    let mut seen = Seen::default();
    for it in &block.items {
        r.note(&mut seen, it);
        match it.name() {
            "drop_enabled" => put(&mut c.enabled, r.bool(it)),
            "rate" => put(
                &mut c.rate,
                r.int_in(it, 1, i64::from(i32::MAX)).map(|n| n as u32),
            ),
            "interval_ms" => {
                let n = r.int_in(it, 1, i64::from(i32::MAX));
                put(&mut c.interval, n.map(|n| Duration::from_millis(n as u64)))
            }
            _ => r.unexpected(it, item.name()),
        }
    }
    Some(c)
}

/// Reads `soft_oom { ... }`.
pub fn soft_oom(r: &mut Reader, item: &Item) -> Option<SoftOom> {
    let block = r.section(item)?;
    let mut s = SoftOom {
        limit: 0,
        process: None,
        check_interval: Duration::from_millis(1000),
        drop: None,
    };
    let mut seen = Seen::default();
    for it in &block.items {
        r.note(&mut seen, it);
        match it.name() {
            "limit" => put(&mut s.limit, r.size(it)),
            "process" => put_some(&mut s.process, r.string_or_word(it)),
            "check_interval_ms" => put(&mut s.check_interval, r.millis(it)),
            "drop" => put_some(&mut s.drop, soft_oom_drop(r, it)),
            _ => r.unexpected(it, "soft_oom"),
        }
    }
    if s.process.as_ref().is_some_and(|p| p.len() > 255) {
        r.error(item.pos(), "too long process name, max is 255");
    }
    if s.limit == 0 {
        r.error(item.pos(), "limit is not set for soft_oom");
        return None;
    }
    Some(s)
}

fn soft_oom_drop(r: &mut Reader, item: &Item) -> Option<SoftOomDrop> {
    let block = r.section(item)?;
    let mut d = SoftOomDrop {
        signal: "TERM".into(),
        max_rate: 3,
    };
    for it in &block.items {
        match it.name() {
            "signal" => put(&mut d.signal, signal(r, it)),
            "max_rate" => put(&mut d.max_rate, r.count(it)),
            _ => r.unexpected(it, "soft_oom.drop"),
        }
    }
    Some(d)
}

fn signal(r: &mut Reader, item: &Item) -> Option<String> {
    const SIGNALS: &[&str] = &[
        "HUP", "INT", "QUIT", "ABRT", "KILL", "USR1", "USR2", "TERM", "STOP", "TSTP",
    ];
    let s = r.string_or_word(item)?;
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if SIGNALS.contains(&bare) {
        return Some(bare.to_string());
    }
    r.error(&item.args[0].pos, format!("can't parse signal from '{s}'"));
    None
}

/// Reads `query_parsing { ... }`.
pub fn query_parsing(r: &mut Reader, item: &Item) -> Option<QueryParsing> {
    let block = r.section(item)?;
    let mut q = QueryParsing::default();
    for it in &block.items {
        match it.name() {
            "mode" => {
                let arg = r.one(it, "disabled or minimal")?;
                match &arg.value {
                    Value::Word(w) if w == "disabled" => q.mode = QueryParsingMode::Disabled,
                    Value::Word(w) if w == "minimal" => q.mode = QueryParsingMode::Minimal,
                    Value::Word(w) if w == "full" => {
                        r.error(&arg.pos, "full mode of query parsing is not supported now")
                    }
                    other => r.expected(&arg.pos, "disabled or minimal for mode", other.describe()),
                }
            }
            "mem_limit" => put(&mut q.mem_limit, r.size(it)),
            _ => r.unexpected(it, "query_parsing"),
        }
    }
    Some(q)
}
