//! Periodic maintenance on the system machine: every second, idle servers past `pool_ttl` or
//! `server_lifetime` are closed, routes of old configs without clients are dropped and routes
//! short of `min_pool_size` get one more server; every `stats_interval`, a stats line per
//! route.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::auth::Authenticated;
use crate::auth::backend::backend_credentials;
use crate::instance::Instance;
use crate::route::{Route, RouteKey};
use crate::router::Connector;
use crate::{od_info, router};

/// Most idle servers closed per tick, so a mass expiry does not stall the machine.
const EXPIRE_PER_TICK: usize = 64;

/// The cron loop; ends when the coroutine is cancelled.
pub fn run(inst: Arc<Instance>) {
    let mut last_stats = Instant::now();
    let mut previous: Vec<(Arc<Route>, Counters)> = Vec::new();
    loop {
        if machinarium::sleep(Duration::from_secs(1)).is_err() {
            return;
        }
        expire(&inst);
        min_pool(&inst);
        let snapshot = inst.config();
        let g = &snapshot.config.global;
        if g.log.stats && !g.stats_interval.is_zero() && last_stats.elapsed() >= g.stats_interval {
            let elapsed = last_stats.elapsed();
            last_stats = Instant::now();
            previous = log_stats(&inst, &previous, elapsed);
        }
    }
}

fn expire(inst: &Instance) {
    let generation = inst.config().generation;
    for route in inst.router.gc(generation) {
        router::close_idle(&route);
    }
    for route in inst.router.routes() {
        let closed = router::expire(&route, EXPIRE_PER_TICK);
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
            let key = RouteKey {
                generation: snapshot.generation,
                rule: index,
                database: db.to_string(),
                user: user.to_string(),
            };
            inst.router.ensure(key, config);
        }
    }
    for route in inst.router.routes() {
        let rule = route.rule();
        if route.key.generation != snapshot.generation || rule.pool.shared_pool.is_some() {
            continue;
        }
        let configured = rule.storage_password.is_some() || rule.auth.password.is_some();
        if rule.auth.password_passthrough && !configured {
            continue;
        }
        let credentials = || backend_credentials(rule, &route.key.user, &Authenticated::default());
        let via = Connector {
            credentials: &credentials,
            resolver: &inst.resolver,
            logger: &inst.logger,
            client: None,
        };
        // A failure is logged by the router; the next tick tries again.
        let _ = router::prefill(&route, &via);
    }
}

/// A route's cumulative counters at one moment.
#[derive(Clone, Copy, Default)]
struct Counters {
    transactions: u64,
    queries: u64,
    bytes_in: u64,
    bytes_out: u64,
}

fn counters(r: &Route) -> Counters {
    Counters {
        transactions: r.stats.transactions.load(Ordering::Relaxed),
        queries: r.stats.queries.load(Ordering::Relaxed),
        bytes_in: r.stats.bytes_in.load(Ordering::Relaxed),
        bytes_out: r.stats.bytes_out.load(Ordering::Relaxed),
    }
}

fn log_stats(
    inst: &Instance,
    previous: &[(Arc<Route>, Counters)],
    elapsed: Duration,
) -> Vec<(Arc<Route>, Counters)> {
    let secs = elapsed.as_secs_f64().max(0.001);
    od_info!(
        inst.logger,
        "stats",
        None,
        None,
        "clients {}",
        inst.clients.load(Ordering::Relaxed)
    );
    let mut now = Vec::new();
    for route in inst.router.routes() {
        let c = counters(&route);
        let before = previous
            .iter()
            .find(|(r, _)| Arc::ptr_eq(r, &route))
            .map(|(_, c)| *c)
            .unwrap_or_default();
        let counts = route.pool.counts();
        od_info!(
            inst.logger,
            "stats",
            None,
            None,
            "[{}] {} clients, {} active servers, {} idle servers ({} prepared statements), {:.0} transactions/sec, {:.0} queries/sec, {:.0} in bytes/sec, {:.0} out bytes/sec",
            route.name(),
            route.clients.load(Ordering::Relaxed),
            counts.active,
            counts.idle,
            route.pool.idle_prepared_statements(),
            (c.transactions - before.transactions) as f64 / secs,
            (c.queries - before.queries) as f64 / secs,
            (c.bytes_in - before.bytes_in) as f64 / secs,
            (c.bytes_out - before.bytes_out) as f64 / secs,
        );
        now.push((route, c));
    }
    now
}
