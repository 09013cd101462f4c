//! Rules: `database "db"|default { user "u"|default [selector] { ... } group "g" [selector] { ... } }`.
//! A rule is the key that selects clients plus everything said about how to serve them.

use std::time::Duration;

use super::auth::{self, AuthSettings};
use super::convert::{Reader, Seen, key_values, put, put_some};
use super::model::{Block, Item};
use super::pool::{self, PoolSettings};
pub use super::selector::{ConnType, Name, RuleKey, Transport};
use super::selector::{name, selector};
use super::storage::{TargetSessionAttrs, target_session_attrs};

/// Console privileges of a rule (local storages only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not set (remote storages).
    Undef,
    /// Every console command.
    Admin,
    /// SHOW commands only.
    Stat,
    /// No console access.
    NotAllow,
}

/// What kind of rule block this is, with the directives only that kind takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// `user` block.
    User,
    /// `group` block: members are the user names `query` returns.
    Group {
        /// Membership query.
        query: Option<String>,
        /// User of the membership route.
        query_user: Option<String>,
        /// Database of the membership route.
        query_db: Option<String>,
    },
    /// A storage's `watchdog` block.
    Watchdog {
        /// Lag query (one integer: unix time of the last replay).
        lag_query: Option<String>,
        /// Parsed and only shown, as upstream.
        lag_interval: Option<i64>,
    },
}

/// Which block is being read, for `read_body`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// `user "u" { }`.
    User,
    /// `group "g" { }`.
    Group,
    /// `watchdog { }`.
    Watchdog,
}

/// Per-rule TCP keepalive re-set on the client socket after routing (0 = not applied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RuleKeepalive {
    /// Idle seconds; 0 means "do not touch".
    pub idle: u32,
    /// Seconds between probes.
    pub interval: u32,
    /// Probe count.
    pub probes: u32,
    /// TCP_USER_TIMEOUT, ms.
    pub usr_timeout_ms: i64,
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its selectors.
    pub key: RuleKey,
    /// User, group or watchdog, with the kind's own settings.
    pub kind: RuleKind,
    /// Client authentication.
    pub auth: AuthSettings,
    /// Pool settings.
    pub pool: PoolSettings,
    /// Storage name (required).
    pub storage: String,
    /// Backend database instead of the client's.
    pub storage_db: Option<String>,
    /// Backend user instead of the client's.
    pub storage_user: Option<String>,
    /// Backend password.
    pub storage_password: Option<String>,
    /// Console role.
    pub role: Role,
    /// Client limit of the rule.
    pub client_max: Option<u32>,
    /// Forward the backend's startup error to the client.
    pub client_fwd_error: bool,
    /// Prefix messages with the client id.
    pub client_show_id: bool,
    /// Append the client address to application_name.
    pub application_name_add_host: bool,
    /// Parsed, no effect (as upstream).
    pub reserve_session_server_connection: bool,
    /// Close the server after "cached plan must not change result type".
    pub server_drop_on_cached_plan_error: bool,
    /// Deploy client parameters on attach.
    pub maintain_params: bool,
    /// Which servers this rule's clients want.
    pub target_session_attrs: Option<TargetSessionAttrs>,
    /// Refuse when replication lag exceeds this; zero is off.
    pub catchup_timeout: Duration,
    /// Query/transaction time quantiles, each in 0..=1.
    pub quantiles: Vec<f64>,
    /// Per-rule debug logging.
    pub log_debug: bool,
    /// Per-rule query logging.
    pub log_query: bool,
    /// Forced client parameters.
    pub options: Vec<(String, String)>,
    /// Extra backend StartupMessage parameters.
    pub backend_startup_options: Vec<(String, String)>,
    /// Keepalive re-set on the client socket.
    pub keepalive: RuleKeepalive,
}

impl Rule {
    fn new(key: RuleKey, kind: RuleKind) -> Rule {
        Rule {
            key,
            kind,
            auth: AuthSettings::default(),
            pool: PoolSettings::default(),
            storage: String::new(),
            storage_db: None,
            storage_user: None,
            storage_password: None,
            role: Role::Undef,
            client_max: None,
            client_fwd_error: false,
            client_show_id: true,
            application_name_add_host: false,
            reserve_session_server_connection: true,
            server_drop_on_cached_plan_error: true,
            maintain_params: true,
            target_session_attrs: None,
            catchup_timeout: Duration::ZERO,
            quantiles: Vec::new(),
            log_debug: false,
            log_query: false,
            options: Vec::new(),
            backend_startup_options: Vec::new(),
            keepalive: RuleKeepalive::default(),
        }
    }
}

/// Reads a `database` section into its rules, appending them to `out`.
pub fn read_database(r: &mut Reader, item: &Item, out: &mut Vec<Rule>) {
    let db = match item.args.as_slice() {
        [arg] => match name(r, item, arg) {
            Some(db) => db,
            None => return,
        },
        _ => {
            r.expected(
                item.pos(),
                "a quoted database name or default after database",
                "something else",
            );
            return;
        }
    };
    let Some(block) = r.block(item) else { return };
    for it in &block.items {
        let body = match it.name() {
            "user" => Body::User,
            "group" => Body::Group,
            _ => {
                r.unexpected(it, "database (only user and group blocks)");
                continue;
            }
        };
        if let Some(key) = selector(r, it, db.clone(), body, out.len()) {
            let Some(block) = r.block(it) else { continue };
            out.push(read_body(r, block, key, body));
        }
    }
}

/// Reads the directives of a rule block.
pub fn read_body(r: &mut Reader, block: &Block, key: RuleKey, body: Body) -> Rule {
    let kind = match body {
        Body::User => RuleKind::User,
        Body::Group => RuleKind::Group {
            query: None,
            query_user: None,
            query_db: None,
        },
        Body::Watchdog => RuleKind::Watchdog {
            lag_query: None,
            lag_interval: None,
        },
    };
    let label = key.label();
    let mut rule = Rule::new(key, kind);
    let mut seen = Seen::default();
    for it in &block.items {
        r.note(&mut seen, it);
        let handled = auth::read(r, &mut rule.auth, it, &label)
            || pool::read(r, &mut rule.pool, it, &label)
            || read_kind(r, &mut rule.kind, it, &label)
            || read_client(r, &mut rule, it);
        if !handled {
            r.unexpected(it, "a rule");
        }
    }
    rule
}

fn read_kind(r: &mut Reader, kind: &mut RuleKind, item: &Item, label: &str) -> bool {
    let name = item.name();
    match (kind, name) {
        (RuleKind::Group { query, .. }, "group_query") => put_some(query, r.string(item)),
        (RuleKind::Group { query_user, .. }, "group_query_user") => {
            put_some(query_user, r.string(item))
        }
        (RuleKind::Group { query_db, .. }, "group_query_db") => put_some(query_db, r.string(item)),
        (RuleKind::Watchdog { lag_query, .. }, "watchdog_lag_query") => {
            put_some(lag_query, r.string(item))
        }
        (RuleKind::Watchdog { lag_interval, .. }, "watchdog_lag_interval") => {
            put_some(lag_interval, r.int(item))
        }
        (_, "group_query" | "group_query_user" | "group_query_db") => r.error(
            item.pos(),
            format!("{name} is not allowed outside group, {label}"),
        ),
        (_, "watchdog_lag_query" | "watchdog_lag_interval") => r.error(
            item.pos(),
            format!("{name} is not allowed outside watchdog, {label}"),
        ),
        _ => return false,
    }
    true
}

fn read_client(r: &mut Reader, rule: &mut Rule, item: &Item) -> bool {
    let k = &mut rule.keepalive;
    match item.name() {
        "storage" => put(&mut rule.storage, r.string(item)),
        "storage_db" => put_some(&mut rule.storage_db, r.string(item)),
        "storage_user" => put_some(&mut rule.storage_user, r.string(item)),
        "storage_password" => put_some(&mut rule.storage_password, r.string(item)),
        "role" => put(&mut rule.role, role(r, item, &rule.key.label())),
        "client_max" => put_some(
            &mut rule.client_max,
            r.int_in(item, 1, i64::from(i32::MAX)).map(|n| n as u32),
        ),
        "client_fwd_error" => put(&mut rule.client_fwd_error, r.bool(item)),
        "client_show_id" => put(&mut rule.client_show_id, r.bool(item)),
        "application_name_add_host" => put(&mut rule.application_name_add_host, r.bool(item)),
        "reserve_session_server_connection" => {
            put(&mut rule.reserve_session_server_connection, r.bool(item))
        }
        "server_drop_on_cached_plan_error" => {
            put(&mut rule.server_drop_on_cached_plan_error, r.bool(item))
        }
        "maintain_params" => put(&mut rule.maintain_params, r.bool(item)),
        "target_session_attrs" => put_some(
            &mut rule.target_session_attrs,
            target_session_attrs(r, item),
        ),
        "catchup_timeout" => put(&mut rule.catchup_timeout, r.secs(item)),
        "quantiles" => put(&mut rule.quantiles, quantiles(r, item)),
        "log_debug" => put(&mut rule.log_debug, r.bool(item)),
        "log_query" => put(&mut rule.log_query, r.bool(item)),
        "options" => rule.options = key_values(r, item),
        "backend_startup_options" => rule.backend_startup_options = key_values(r, item),
        "keepalive" => put(&mut k.idle, r.count(item)),
        "keepalive_keep_interval" => put(&mut k.interval, r.count(item)),
        "keepalive_probes" => put(&mut k.probes, r.count(item)),
        "keepalive_usr_timeout" => put(&mut k.usr_timeout_ms, r.int(item)),
        _ => return false,
    }
    true
}

fn role(r: &mut Reader, item: &Item, label: &str) -> Option<Role> {
    let s = r.string_or_word(item)?;
    Some(match s.as_str() {
        "admin" => Role::Admin,
        "stat" => Role::Stat,
        "notallow" => Role::NotAllow,
        _ => {
            r.error(
                &item.args[0].pos,
                format!("{label}: role type '{s}' is unknown (admin, stat or notallow)"),
            );
            return None;
        }
    })
}

fn quantiles(r: &mut Reader, item: &Item) -> Option<Vec<f64>> {
    let s = r.string(item)?;
    let parsed: Option<Vec<f64>> = s
        .split(',')
        .map(|q| {
            q.trim()
                .parse::<f64>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))
        })
        .collect();
    if parsed.is_none() {
        r.error(
            &item.args[0].pos,
            format!("can't parse quantiles from '{s}' (each must be between 0 and 1)"),
        );
    }
    parsed
}
