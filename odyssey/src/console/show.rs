//! SHOW commands about configuration and statistics, with upstream's column names, order
//! and types (spec §5; dashboards and exporters read them by name).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::command::Show;
use super::show_activity;
use super::table::{Table, Type, v};
use crate::config::hba::rule_names;
use crate::config::selector::ConnType;
use crate::config::tls::Tls;
use crate::config::{PoolMode, TlsMode};
use crate::instance::Instance;
use crate::reply::Reply;
use crate::route::Route;
use crate::stats::{Totals, average, errors};

use Type::{Bool, Float4, Int4, Int8, Text};

/// Runs a SHOW; `quantiles` are the console rule's (for SHOW POOLS_EXTENDED).
pub fn show(inst: &Arc<Instance>, what: Show, quantiles: &[f64]) -> Result<Table, Reply> {
    Ok(match what {
        Show::Help => help(),
        Show::Stats => stats_table(inst),
        Show::Pools => show_activity::pools(inst, None),
        Show::PoolsExtended => show_activity::pools(inst, Some(quantiles)),
        Show::Databases => databases(inst),
        Show::Servers => show_activity::servers(inst),
        Show::Clients => show_activity::clients(inst),
        Show::Lists => show_activity::lists(inst),
        Show::Fds => show_activity::fds(inst),
        Show::ServerPrepStmts => show_activity::server_prep_stmts(inst),
        Show::Errors => errors_table(inst),
        Show::ErrorsPerRoute => errors_per_route(inst),
        Show::Version => version(),
        Show::VersionExtended => version_extended(),
        Show::Listen => listen(inst),
        Show::Storages => storages(inst),
        Show::GlobalPreparedStatements => prepared(inst),
        Show::IsPaused => {
            let mut t = Table::show(&[("is_paused", Bool)]);
            t.row(vec![v(if inst.pause.global() { "t" } else { "f" })]);
            t
        }
        Show::HostUtilization => host_utilization(inst),
        Show::Rules => rules(inst),
        Show::Hosts => show_activity::hosts(inst),
    })
}

/// Every route, by name (old generations after new ones).
pub fn routes(inst: &Instance) -> Vec<Arc<Route>> {
    let mut routes = inst.router.routes();
    routes.sort_by(|a, b| {
        (b.key.generation, &a.key.database, &a.key.user).cmp(&(
            a.key.generation,
            &b.key.database,
            &b.key.user,
        ))
    });
    routes
}

fn help() -> Table {
    let mut t = Table::done("SHOW");
    t.notice = Some(
        [
            "Console usage",
            "\tSHOW STATS|HELP|POOLS|POOLS_EXTENDED|DATABASES|SERVERS|CLIENTS|HOST_UTILIZATION",
            "\tSHOW LISTS|ERRORS|ERRORS_PER_ROUTE|VERSION|VERSION_EXTENDED|LISTEN|STORAGES|RULES",
            "\tSHOW IS_PAUSED|FDS|SERVER_PREP_STMTS|GLOBAL_PREPARED_STATEMENTS|HOSTS",
            "\tKILL_CLIENT <client_id>",
            "\tRELOAD",
            "\tSET key=arg",
            "\tPAUSE [database]",
            "\tRESUME [database]",
            "\tDROP SERVERS",
        ]
        .join("\n"),
    );
    t
}

/// `SHOW STATS`: per backend database, totals since start and averages over the last
/// `stats_interval`.
fn stats_table(inst: &Instance) -> Table {
    let mut t = Table::show(&[
        ("database", Text),
        ("total_xact_count", Int8),
        ("total_query_count", Int8),
        ("total_server_assignment_count", Int8),
        ("total_received", Int8),
        ("total_sent", Int8),
        ("total_xact_time", Int8),
        ("total_query_time", Int8),
        ("total_wait_time", Int8),
        ("avg_xact_count", Int8),
        ("avg_query_count", Int8),
        ("avg_server_assignment_count", Int8),
        ("avg_recv", Int8),
        ("avg_sent", Int8),
        ("avg_xact_time", Int8),
        ("avg_query_time", Int8),
        ("avg_wait_time", Int8),
        ("total_parse_count", Int8),
        ("total_parse_count_reuse", Int8),
        ("total_cancel_count", Int8),
    ]);
    let mut by_db: BTreeMap<String, (Totals, Totals, f64)> = BTreeMap::new();
    for route in routes(inst) {
        let e = by_db
            .entry(route.backend_database().to_string())
            .or_default();
        e.0.merge(&route.stats.totals());
        let w = route.stats.window();
        e.1.merge(&w.delta);
        e.2 = e.2.max(w.length.as_secs_f64());
    }
    for (db, (all, last, secs)) in by_db {
        let rate = |n: u64| {
            if secs > 0.0 {
                (n as f64 / secs) as u64
            } else {
                0
            }
        };
        t.row(vec![
            v(db),
            v(all.transactions),
            v(all.queries),
            v(all.assignments),
            v(all.bytes_in),
            v(all.bytes_out),
            v(all.xact_us),
            v(all.query_us),
            v(all.wait_us),
            v(rate(last.transactions)),
            v(rate(last.queries)),
            v(rate(last.assignments)),
            v(rate(last.bytes_in)),
            v(rate(last.bytes_out)),
            v(average(last.xact_us, last.transactions)),
            v(average(last.query_us, last.queries)),
            v(average(last.wait_us, last.assignments)),
            v(all.parses),
            v(all.parses_reused),
            v(all.cancels),
        ]);
    }
    t
}

/// `SHOW DATABASES`: per route.
fn databases(inst: &Instance) -> Table {
    let mut t = Table::show(&[
        ("name", Text),
        ("host", Text),
        ("port", Int8),
        ("database", Text),
        ("force_user", Text),
        ("pool_size", Int8),
        ("reserve_pool", Int8),
        ("pool_mode", Text),
        ("max_connections", Int8),
        ("current_connections", Int8),
        ("paused", Int8),
        ("disabled", Int8),
    ]);
    for route in routes(inst) {
        let rule = route.rule();
        let storage = route.storage();
        let (db, user) = rule_names(&rule.key);
        let paused = inst.pause.holds(&route.key.database);
        t.row(vec![
            v(route.backend_database()),
            v(storage.and_then(|s| s.host.clone()).unwrap_or_default()),
            v(storage.map_or(0, |s| s.port)),
            v(db),
            v(user),
            v(crate::router::pool_size(&route)),
            v(0),
            v(mode_name(rule.pool.mode)),
            v(rule.client_max.unwrap_or(0)),
            v(route.clients.load(std::sync::atomic::Ordering::Relaxed)),
            v(u8::from(paused)),
            v(0),
        ]);
    }
    t
}

/// A pool mode as the console names it.
pub fn mode_name(mode: Option<PoolMode>) -> &'static str {
    match mode.unwrap_or(PoolMode::Session) {
        PoolMode::Session => "session",
        PoolMode::Transaction => "transaction",
        PoolMode::Statement => "statement",
    }
}

fn errors_table(inst: &Instance) -> Table {
    let mut t = Table::show(&[("error_type", Text), ("count", Int8)]);
    for &kind in errors::ALL {
        t.row(vec![v(kind.name()), v(inst.errors.get(kind))]);
    }
    t
}

fn errors_per_route(inst: &Instance) -> Table {
    let mut t = Table::show(&[
        ("error_type", Text),
        ("user", Text),
        ("database", Text),
        ("count", Int8),
    ]);
    let kinds: Vec<_> = errors::ALL
        .iter()
        .copied()
        .filter(|k| !k.is_router() || *k == errors::ErrorKind::RouterLimitRoute)
        .collect();
    for route in routes(inst) {
        for kind in &kinds {
            t.row(vec![
                v(kind.name()),
                v(&route.key.user),
                v(&route.key.database),
                v(route.stats.errors.get(*kind)),
            ]);
        }
    }
    t
}

fn version() -> Table {
    let mut t = Table::show(&[("version", Text)]);
    t.row(vec![v(format!(
        "odyssey {} (rust) {}, compiled by rustc",
        env!("CARGO_PKG_VERSION"),
        build_type()
    ))]);
    t
}

fn build_type() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

fn version_extended() -> Table {
    let mut t = Table::show(&[
        ("version", Text),
        ("build_type", Text),
        ("compiler", Text),
        ("compiler_version", Text),
        ("arch", Text),
    ]);
    t.row(vec![
        v(env!("CARGO_PKG_VERSION")),
        v(build_type()),
        v("rustc"),
        v(option_env!("RUSTC_VERSION").unwrap_or("stable")),
        v(std::env::consts::ARCH),
    ]);
    t
}

/// The TLS columns of SHOW LISTEN and SHOW STORAGES (`(None)` for unset files, as upstream).
fn tls_columns(tls: &Tls) -> Vec<Option<String>> {
    let file = |f: &Option<String>| v(f.clone().unwrap_or_else(|| "(None)".into()));
    vec![
        v(tls_mode_name(tls)),
        file(&tls.cert_file),
        file(&tls.key_file),
        file(&tls.ca_file),
        file(&tls.protocols),
    ]
}

/// A TLS mode as the config spells it.
pub fn tls_mode_name(tls: &Tls) -> &'static str {
    match tls.mode {
        TlsMode::Disable => "disable",
        TlsMode::Allow => "allow",
        TlsMode::Prefer => "prefer",
        TlsMode::Require => "require",
        TlsMode::VerifyCa => "verify_ca",
        TlsMode::VerifyFull => "verify_full",
    }
}

const TLS_COLUMNS: [(&str, Type); 5] = [
    ("tls", Text),
    ("tls_cert_file", Text),
    ("tls_key_file", Text),
    ("tls_ca_file", Text),
    ("tls_protocols", Text),
];

fn listen(inst: &Instance) -> Table {
    let mut cols = vec![("host", Text), ("port", Int4)];
    cols.extend(TLS_COLUMNS);
    let mut t = Table::show(&cols);
    for l in &inst.config().config.listen {
        let mut row = vec![v(l.host.clone().unwrap_or_default()), v(l.port)];
        row.extend(tls_columns(&l.tls));
        t.row(row);
    }
    t
}

fn storages(inst: &Instance) -> Table {
    let mut cols = vec![("type", Text), ("host", Text), ("port", Int4)];
    cols.extend(TLS_COLUMNS);
    let mut t = Table::show(&cols);
    for s in &inst.config().config.storages {
        let kind = match s.kind {
            crate::config::StorageType::Local => "local",
            crate::config::StorageType::Remote => "remote",
        };
        let mut row = vec![v(kind), v(s.host.clone().unwrap_or_default()), v(s.port)];
        row.extend(tls_columns(&s.tls));
        t.row(row);
    }
    t
}

fn prepared(inst: &Instance) -> Table {
    let mut t = Table::show(&[("name", Text), ("definition", Text), ("refcount", Text)]);
    for (key, query, count) in inst.statements.list() {
        t.row(vec![
            v(crate::server::statements::server_name(key)),
            v(String::from_utf8_lossy(&query)),
            v(count),
        ]);
    }
    t
}

/// CPU and memory in use, in percent, as the host watcher last sampled them (zeros without
/// `enable_host_watcher`, as upstream).
fn host_utilization(inst: &Instance) -> Table {
    let mut t = Table::show(&[("cpu", Float4), ("mem", Float4)]);
    t.tag = Some("HOST_UTILIZATION".into());
    let (cpu, mem) = inst.host.get();
    t.row(vec![v(format!("{cpu:.2}")), v(format!("{mem:.2}"))]);
    t
}

fn rules(inst: &Instance) -> Table {
    let mut t = Table::show(&[
        ("database", Text),
        ("user", Text),
        ("address", Text),
        ("connection_type", Text),
        ("obsolete", Bool),
    ]);
    for rule in &inst.config().config.rules {
        let key = &rule.key;
        let conn = match key.conn_type {
            ConnType::Default => "all",
            ConnType::Host => "host",
            ConnType::HostSsl => "hostssl",
            ConnType::HostNoSsl => "hostnossl",
            ConnType::Local => "local",
        };
        t.row(vec![
            v(key.db.as_named().unwrap_or("<default>")),
            v(key.user.as_named().unwrap_or("<default>")),
            v(&key.address),
            v(conn),
            v("f"),
        ]);
    }
    t
}
