//! Periodic maintenance on the system machine: every second, idle servers past `pool_ttl` or
//! `server_lifetime` are closed and routes of old configs without clients are dropped; every
//! `stats_interval`, a stats line per route.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::instance::Instance;
use crate::route::Route;
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
