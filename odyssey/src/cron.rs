//! Periodic maintenance on the system machine: every second, idle servers past `pool_ttl` or
//! `server_lifetime` are closed, routes of old configs without clients are dropped and routes
//! short of `min_pool_size` get one more server; every `stats_interval`, a stats line per
//! route. In a coroutine of its own, every `group_checker_interval`, each group rule's
//! `group_query` refreshes its members.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use machinarium::Deadline;

use crate::auth::backend::backend_credentials;
use crate::config::rule::RuleKind;
use crate::instance::Instance;
use crate::internal::{self, InternalQuery};
use crate::route::{Route, RouteKey};
use crate::router::Connector;
use crate::stats::average;
use crate::{od_debug, od_error, od_info, router};

/// The cron loop; ends when the coroutine is cancelled.
pub fn run(inst: Arc<Instance>) {
    let mut last_stats = Instant::now();
    let mut dropped = 0;
    loop {
        if machinarium::sleep(Duration::from_secs(1)).is_err() {
            return;
        }
        dropped = tell_dropped_lines(&inst, dropped);
        expire(&inst);
        min_pool(&inst);
        let snapshot = inst.config();
        let g = &snapshot.config.global;
        let interval = g.stats_interval.max(Duration::from_secs(1));
        if last_stats.elapsed() >= interval {
            let elapsed = last_stats.elapsed();
            last_stats = Instant::now();
            tick_stats(&inst, elapsed, g.log.stats && !g.stats_interval.is_zero());
        }
    }
}

/// Says in the log how many lines the full `log_async` queue dropped since the last tick
/// (upstream drops them without a word); returns the total so far.
fn tell_dropped_lines(inst: &Instance, before: u64) -> u64 {
    let now = inst.logger.dropped();
    if now > before {
        let depth = inst.config().config.global.log.queue_depth;
        od_error!(
            inst.logger,
            "log",
            None,
            None,
            "{} log lines dropped: the log queue (log_queue_depth {depth}) was full",
            now - before
        );
    }
    now
}

/// The group checker (spec §3): runs each group rule's `group_query` on its internal route
/// (`group_query_db`.`group_query_user`) every `group_checker_interval`; the first column of
/// the rows are the members. A failed query keeps the members known before. Ends when the
/// coroutine is cancelled.
pub fn check_groups(inst: Arc<Instance>) {
    loop {
        let snapshot = inst.config();
        let interval = snapshot
            .config
            .global
            .group_checker_interval
            .max(Duration::from_millis(100));
        let mut current = HashSet::new();
        for rule in &snapshot.config.rules {
            let (
                Some(group),
                RuleKind::Group {
                    query,
                    query_user,
                    query_db,
                },
            ) = (&rule.key.group, &rule.kind)
            else {
                continue;
            };
            current.insert(group.as_str());
            let (Some(sql), Some(user), Some(database)) = (query, query_user, query_db) else {
                continue;
            };
            let q = InternalQuery {
                database,
                user,
                sql,
                params: &[],
                deadline: Deadline::after(interval.max(Duration::from_secs(1))),
                credentials: &|rule, user| backend_credentials(rule, user, None),
            };
            match internal::rows(&inst, None, &q) {
                Ok(rows) => {
                    let members: HashSet<String> = rows
                        .into_iter()
                        .filter_map(|row| row.into_iter().next().flatten())
                        .map(|name| String::from_utf8_lossy(&name).into_owned())
                        .collect();
                    od_debug!(
                        inst.logger,
                        "group",
                        None,
                        None,
                        "group {group}: {} member(s)",
                        members.len()
                    );
                    inst.groups.set(group, members);
                }
                Err(e) => od_error!(inst.logger, "group", None, None, "group {group}: {e}"),
            }
        }
        inst.groups.retain(&current);
        if machinarium::sleep(interval).is_err() {
            return;
        }
    }
}

fn expire(inst: &Instance) {
    let snapshot = inst.config();
    for route in inst.router.gc(|key| snapshot.is_current(key)) {
        router::close_idle(&route);
    }
    for route in inst.router.routes() {
        let closed = router::expire(&route, expire_per_tick(&route));
        if closed > 0 {
            od_info!(
                inst.logger,
                "expire",
                None,
                None,
                "closing {closed} idle server(s) of {}",
                route.name()
            );
        }
    }
}

/// Most idle servers of a route closed per tick, so that a mass expiry does not stall the
/// machine nor empty a pool at once: its storage's `server_max_routing` (0: `workers`) plus
/// one, as upstream (which counts them across all routes).
fn expire_per_tick(route: &Route) -> usize {
    let workers = route.config().global.worker_threads();
    let limit = route.storage().map_or(workers, |s| s.max_routing(workers));
    limit as usize + 1
}

/// `min_pool_size` (spec §7.4): the routes of rules naming their database and user are made
/// at once; every route of the current config short of its minimum gets one more idle server
/// per tick (a full login: the credentials are the rule's, as no client is there). Rules in a
/// shared pool, and password pass-through without a configured password, are skipped.
fn min_pool(inst: &Instance) {
    let snapshot = inst.config();
    let config = &snapshot.config;
    for (index, rule) in config.rules.iter().enumerate() {
        if rule.pool.min_size == 0 || rule.pool.shared_pool.is_some() {
            continue;
        }
        if let (Some(db), Some(user)) = (rule.key.db.as_named(), rule.key.user.as_named()) {
            let origin = snapshot.origin(index);
            let key = RouteKey {
                generation: origin.generation,
                rule: origin.index,
                database: db.to_string(),
                user: user.to_string(),
                tsa: config.rule_tsa(rule),
                catchup: rule.catchup_timeout.as_secs(),
                balancing: None,
            };
            inst.router.ensure(key, &origin.config);
        }
    }
    for route in inst.router.routes() {
        let rule = route.rule();
        if !snapshot.is_current(&route.key) || rule.pool.shared_pool.is_some() {
            continue;
        }
        let configured = rule.storage_password.is_some() || rule.auth.password.is_some();
        if rule.auth.password_passthrough && !configured {
            continue;
        }
        let credentials = || backend_credentials(rule, &route.key.user, None);
        let via = Connector {
            credentials: &credentials,
            resolver: &inst.resolver,
            logger: &inst.logger,
            client: None,
            deadline: Deadline::Never,
        };
        // A failure is logged by the router; the next tick tries again.
        let _ = router::prefill(&route, &via);
    }
}

/// Every `stats_interval`: each route's interval ends (for the console's averages), and with
/// `log_stats` a line per route in upstream's words.
fn tick_stats(inst: &Instance, elapsed: Duration, log: bool) {
    if log {
        od_info!(
            inst.logger,
            "stats",
            None,
            None,
            "clients {}",
            inst.clients.load(Ordering::Relaxed)
        );
    }
    for route in inst.router.routes() {
        let w = route.stats.tick(elapsed);
        if !log {
            continue;
        }
        let d = &w.delta;
        let counts = route.pool.counts();
        od_info!(
            inst.logger,
            "stats",
            None,
            None,
            "[{}] {} clients, {} active servers, {} idle servers, {} transactions/sec ({} usec) {} queries/sec ({} usec) {} in bytes/sec, {} out bytes/sec",
            route.name(),
            route.clients.load(Ordering::Relaxed),
            counts.active,
            counts.idle,
            w.rate(d.transactions),
            average(d.xact_us, d.transactions),
            w.rate(d.queries),
            average(d.query_us, d.queries),
            w.rate(d.bytes_in),
            w.rate(d.bytes_out),
        );
    }
}
