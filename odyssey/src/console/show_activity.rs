//! SHOW commands about what is going on: pools, clients, servers, lists.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::show::{mode_name, routes, tls_mode_name};
use super::table::{Table, Type, v};
use crate::clients::ClientEntry;
use crate::instance::Instance;
use crate::route::Route;
use crate::stats::Snapshot;

use Type::{Int4, Int8, Text};

/// `SHOW POOLS`, and with `quantiles` `SHOW POOLS_EXTENDED`. `cl_waiting` counts clients
/// waiting for a server (upstream counts idle clients there; see the README).
pub fn pools(inst: &Instance, quantiles: Option<&[f64]>) -> Table {
    let mut t = Table::show(&[
        ("database", Text),
        ("user", Text),
        ("cl_active", Int8),
        ("cl_waiting", Int8),
        ("sv_active", Int8),
        ("sv_idle", Int8),
        ("sv_used", Int8),
        ("sv_tested", Int8),
        ("sv_login", Int8),
        ("maxwait", Int8),
        ("maxwait_us", Int8),
        ("pool_mode", Text),
    ]);
    if let Some(qs) = quantiles {
        for name in ["bytes_received", "bytes_sent", "tcp_conn_count"] {
            t.column(name.into(), Int4);
        }
        for q in qs {
            t.column(format!("query_{}", fmt_g(*q)), Int4);
            t.column(format!("transaction_{}", fmt_g(*q)), Int4);
        }
    }
    let states = inst.client_list.count_by_route();
    let (mut all_queries, mut all_xacts) = (Snapshot::default(), Snapshot::default());
    for route in routes(inst) {
        let counts = route.pool.counts();
        let clients = states
            .get(&(Arc::as_ptr(&route) as usize))
            .copied()
            .unwrap_or_default();
        let mut row = vec![
            v(&route.key.database),
            v(&route.key.user),
            v(clients.active),
            v(clients.waiting),
            v(counts.active),
            v(counts.idle),
            v(0),
            v(0),
            v(counts.connecting),
            v(0),
            v(0),
            v(mode_name(route.rule().pool.mode)),
        ];
        if let Some(qs) = quantiles {
            let totals = route.stats.totals();
            let window = route.stats.window().delta;
            row.extend([
                v(totals.bytes_in as i32),
                v(totals.bytes_out as i32),
                v(route.stats.connects.load(Ordering::Relaxed) as i32),
            ]);
            row.extend(quantile_values(qs, &window.query_hist, &window.xact_hist));
            all_queries.merge(&window.query_hist);
            all_xacts.merge(&window.xact_hist);
        }
        t.row(row);
    }
    if let Some(qs) = quantiles {
        let mut row = vec![v("aggregated"), v("aggregated")];
        row.extend(std::iter::repeat_n(None, 13));
        row.extend(quantile_values(qs, &all_queries, &all_xacts));
        t.row(row);
    }
    t
}

fn quantile_values(qs: &[f64], queries: &Snapshot, xacts: &Snapshot) -> Vec<Option<String>> {
    qs.iter()
        .flat_map(|q| [v(queries.quantile(*q)), v(xacts.quantile(*q))])
        .collect()
}

/// `%.6g` for quantile column names (`0.5`, `0.99`).
fn fmt_g(q: f64) -> String {
    let s = format!("{q:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn addr_columns(addr: Option<std::net::SocketAddr>) -> [Option<String>; 2] {
    match addr {
        Some(a) => [v(a.ip()), v(a.port())],
        None => [v("unix socket"), v(0)],
    }
}

/// `SHOW CLIENTS`: every logged-in client, console clients too.
pub fn clients(inst: &Instance) -> Table {
    let mut t = Table::show(&[
        ("type", Text),
        ("user", Text),
        ("database", Text),
        ("state", Text),
        ("storage_user", Text),
        ("addr", Text),
        ("port", Int4),
        ("local_addr", Text),
        ("local_port", Int4),
        ("connect_time", Text),
        ("request_time", Text),
        ("wait", Int4),
        ("wait_us", Int4),
        ("id", Text),
        ("ptr", Text),
        ("coro", Int4),
        ("remote_pid", Int4),
        ("tls", Text),
    ]);
    for c in inst.client_list.all() {
        t.row(client_row(&c));
    }
    t
}

fn client_row(c: &ClientEntry) -> Vec<Option<String>> {
    let storage_user = c
        .route
        .as_ref()
        .map(|r| storage_user(r))
        .unwrap_or_default();
    let [addr, port] = addr_columns(c.addr);
    let [local_addr, local_port] = addr_columns(c.local);
    vec![
        v("C"),
        v(&c.user),
        v(&c.database),
        v(c.state().name()),
        v(storage_user),
        addr,
        port,
        local_addr,
        local_port,
        v(timestamp(c.connected_at)),
        None,
        v(0),
        v(0),
        v(c.id),
        v(format!("{:p}", c as *const ClientEntry)),
        v(0),
        v(0),
        v(if c.tls { "TLS" } else { "" }),
    ]
}

/// The user servers of a route log in as.
fn storage_user(route: &Route) -> String {
    route
        .rule()
        .storage_user
        .clone()
        .unwrap_or_else(|| route.key.user.clone())
}

/// `SHOW SERVERS`: every server of every route, active first.
pub fn servers(inst: &Instance) -> Table {
    let mut t = Table::show(&[
        ("type", Text),
        ("user", Text),
        ("database", Text),
        ("state", Text),
        ("addr", Text),
        ("port", Int4),
        ("local_addr", Text),
        ("local_port", Int4),
        ("connect_time", Text),
        ("request_time", Text),
        ("wait", Int4),
        ("wait_us", Int4),
        ("ptr", Text),
        ("link", Text),
        ("remote_pid", Int4),
        ("tls", Text),
        ("offline", Text),
    ]);
    for route in routes(inst) {
        let mut servers = route.servers();
        servers.sort_by_key(|s| !s.active());
        for s in servers {
            let (addr, port) = match &s.address {
                crate::server::Address::Tcp(a) => (a.ip().to_string(), a.port()),
                crate::server::Address::Unix(p) => (p.display().to_string(), 0),
            };
            let [local_addr, local_port] = addr_columns(s.local);
            t.row(vec![
                v("S"),
                v(storage_user(&route)),
                v(route.backend_database()),
                v(if s.active() { "active" } else { "idle" }),
                v(addr),
                v(port),
                local_addr,
                local_port,
                v(timestamp(s.connected_at)),
                None,
                v(0),
                v(0),
                v(s.id),
                v(""),
                v(s.pid),
                v(route
                    .storage()
                    .map_or("disable", |st| tls_mode_name(&st.tls))),
                v(u8::from(s.offline())),
            ]);
        }
    }
    t
}

/// `SHOW FDS`: the socket of every server.
pub fn fds(inst: &Instance) -> Table {
    let mut t = Table::show(&[
        ("type", Text),
        ("ptr", Text),
        ("machine fd", Int4),
        ("machine fd mask", Text),
    ]);
    for route in routes(inst) {
        for s in route.servers() {
            t.row(vec![v("S"), v(s.id), v(s.fd), v("r")]);
        }
    }
    t
}

/// `SHOW SERVER_PREP_STMTS`: the statements each server holds (as of the last time it went
/// idle or its client parked), under our server-side names.
pub fn server_prep_stmts(inst: &Instance) -> Table {
    let mut t = Table::show(&[
        ("type", Text),
        ("user", Text),
        ("database", Text),
        ("sid", Text),
        ("name", Text),
        ("definition", Text),
        ("refcount", Text),
    ]);
    for route in routes(inst) {
        for s in route.servers() {
            for key in s.prepared() {
                let (text, holders) = inst.statements.text(key).unwrap_or_default();
                t.row(vec![
                    v("S"),
                    v(storage_user(&route)),
                    v(route.backend_database()),
                    v(s.id),
                    v(crate::server::statements::server_name(key)),
                    v(String::from_utf8_lossy(&text)),
                    v(holders),
                ]);
            }
        }
    }
    t
}

/// `SHOW HOSTS` (ours; upstream has no such view): every host of every remote storage, what
/// was last learnt of it, its watchdog lag and the servers the pooler has on it.
pub fn hosts(inst: &Instance) -> Table {
    let mut t = Table::show(&[
        ("storage", Text),
        ("host", Text),
        ("port", Int4),
        ("zone", Text),
        ("state", Text),
        ("role", Text),
        ("lag_seconds", Int8),
        ("servers", Int8),
    ]);
    let snapshot = inst.config();
    let endpoints = &inst.router.endpoints;
    let routes = inst.router.routes();
    for s in &snapshot.config.storages {
        for (i, e) in s.endpoints.iter().enumerate() {
            let last = endpoints.last(s, i);
            let servers: usize = routes
                .iter()
                .filter(|r| r.rule().storage == s.name)
                .map(|r| r.servers().iter().filter(|x| x.endpoint == i).count())
                .sum();
            t.row(vec![
                v(&s.name),
                v(&e.host),
                v(e.port.unwrap_or(s.port)),
                e.availability_zone.clone(),
                v(last.map_or("unknown", |l| if l.alive { "up" } else { "down" })),
                v(match last.and_then(|l| l.read_write) {
                    Some(true) => "primary",
                    Some(false) => "standby",
                    None => "unknown",
                }),
                endpoints.lag(s, i).map(|l| l.to_string()),
                v(servers),
            ]);
        }
    }
    t
}

/// `SHOW LISTS`: how many of each thing there are.
pub fn lists(inst: &Instance) -> Table {
    let mut t = Table::show(&[("list", Text), ("items", Int4)]);
    let routes = inst.router.routes();
    let clients = inst.client_list.all().len();
    let (mut idle, mut active) = (0, 0);
    let mut dbs = std::collections::HashSet::new();
    let mut users = std::collections::HashSet::new();
    for r in &routes {
        let c = r.pool.counts();
        idle += c.idle;
        active += c.active;
        dbs.insert(r.key.database.clone());
        users.insert(r.key.user.clone());
    }
    let connected = inst.clients.load(Ordering::Relaxed) as usize;
    let items: [(&str, usize); 13] = [
        ("databases", dbs.len()),
        ("users", users.len()),
        ("pools", routes.len()),
        ("free_clients", 0),
        ("used_clients", clients),
        ("login_clients", connected.saturating_sub(clients)),
        ("routing_clients", inst.routing.in_use() as usize),
        ("free_servers", idle as usize),
        ("used_servers", active as usize),
        ("dns_names", 0),
        ("dns_zones", 0),
        ("dns_queries", 0),
        ("dns_pending", 0),
    ];
    for (name, n) in items {
        t.row(vec![v(name), v(n)]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_quantile_names() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_796_212_800 + 3661);
        assert_eq!(timestamp(t), "2026-12-02 13:01:01");
        assert_eq!(fmt_g(0.5), "0.5");
        assert_eq!(fmt_g(0.99), "0.99");
        assert_eq!(fmt_g(1.0), "1");
    }
}
