//! Statistics: per-route counters and time histograms, recorded by the workers on the hot path
//! and read by `SHOW STATS`, `SHOW POOLS_EXTENDED`, the stats log lines and `/metrics`.
//!
//! Each route keeps one shard of counters per machine (picked by the machine's id), so a
//! worker only ever adds to its own cache lines; readers add the shards up.

pub mod errors;
pub mod histogram;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use errors::{ErrorCounts, ErrorKind};
pub use histogram::{Histogram, Snapshot};

/// One machine's counters for a route. Aligned so that two shards never share a cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Shard {
    /// Transactions completed.
    pub transactions: AtomicU64,
    /// Queries completed (ReadyForQuery after a request).
    pub queries: AtomicU64,
    /// Bytes from clients to servers.
    pub bytes_in: AtomicU64,
    /// Bytes from servers to clients.
    pub bytes_out: AtomicU64,
    /// Servers given to clients.
    pub assignments: AtomicU64,
    /// Parse messages clients sent.
    pub parses: AtomicU64,
    /// Of those, answered from a statement a server had prepared already.
    pub parses_reused: AtomicU64,
    /// Cancel requests forwarded.
    pub cancels: AtomicU64,
    /// Query times, µs (request to ReadyForQuery).
    pub query_time: TimeCounter,
    /// Transaction times, µs (first request to ReadyForQuery outside a transaction).
    pub xact_time: TimeCounter,
    /// Waits for a server, µs.
    pub wait_time: TimeCounter,
}

/// A sum of microseconds and their histogram.
#[derive(Debug, Default)]
pub struct TimeCounter {
    /// Sum of the values.
    pub total: AtomicU64,
    /// Their distribution.
    pub histogram: Histogram,
}

impl TimeCounter {
    /// Counts one value.
    pub fn record(&self, micros: u64) {
        self.total.fetch_add(micros, Ordering::Relaxed);
        self.histogram.record(micros);
    }
}

/// A route's counters, one shard per machine.
#[derive(Debug)]
pub struct RouteStats {
    shards: Box<[Shard]>,
    /// Endings of the route's clients, by kind.
    pub errors: ErrorCounts,
    /// Server connections opened.
    pub connects: AtomicU64,
    /// Totals at the last `stats_interval` tick, and the interval that ended there.
    ticks: Mutex<(Totals, Window)>,
}

/// What happened in the last `stats_interval`.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// The counts of the interval.
    pub delta: Totals,
    /// Its length.
    pub length: Duration,
}

impl Window {
    /// `n` per second over the interval.
    pub fn rate(&self, n: u64) -> u64 {
        let secs = self.length.as_secs_f64();
        if secs <= 0.0 {
            return 0;
        }
        (n as f64 / secs) as u64
    }
}

/// `sum / n`, 0 when n is 0.
pub fn average(sum: u64, n: u64) -> u64 {
    sum.checked_div(n).unwrap_or(0)
}

impl RouteStats {
    /// Counters for `machines` machines (more share shards; fewer waste a little memory).
    pub fn new(machines: usize) -> RouteStats {
        RouteStats {
            shards: (0..machines.max(1)).map(|_| Shard::default()).collect(),
            errors: ErrorCounts::default(),
            connects: AtomicU64::new(0),
            ticks: Mutex::default(),
        }
    }

    /// Ends an interval of `length`: returns what happened in it, and keeps it for `window`.
    pub fn tick(&self, length: Duration) -> Window {
        let now = self.totals();
        let mut ticks = self.ticks.lock().unwrap_or_else(|p| p.into_inner());
        let window = Window {
            delta: now.since(&ticks.0),
            length,
        };
        *ticks = (now, window.clone());
        window
    }

    /// The last complete interval.
    pub fn window(&self) -> Window {
        self.ticks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clone()
    }

    /// The running machine's shard.
    pub fn local(&self) -> &Shard {
        let id = machinarium::current_machine_id().unwrap_or(0) as usize;
        &self.shards[id % self.shards.len()]
    }

    /// Every shard added up.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.shards.iter() {
            t.add(s);
        }
        t
    }
}

/// A route's counters at one moment, shards added up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Transactions completed.
    pub transactions: u64,
    /// Queries completed.
    pub queries: u64,
    /// Bytes from clients.
    pub bytes_in: u64,
    /// Bytes to clients.
    pub bytes_out: u64,
    /// Servers given to clients.
    pub assignments: u64,
    /// Parse messages.
    pub parses: u64,
    /// Parse messages answered from a prepared statement.
    pub parses_reused: u64,
    /// Cancel requests forwarded.
    pub cancels: u64,
    /// Sum of query times, µs.
    pub query_us: u64,
    /// Sum of transaction times, µs.
    pub xact_us: u64,
    /// Sum of waits for a server, µs.
    pub wait_us: u64,
    /// Query times.
    pub query_hist: Snapshot,
    /// Transaction times.
    pub xact_hist: Snapshot,
    /// Waits for a server.
    pub wait_hist: Snapshot,
}

impl Totals {
    fn add(&mut self, s: &Shard) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.transactions += get(&s.transactions);
        self.queries += get(&s.queries);
        self.bytes_in += get(&s.bytes_in);
        self.bytes_out += get(&s.bytes_out);
        self.assignments += get(&s.assignments);
        self.parses += get(&s.parses);
        self.parses_reused += get(&s.parses_reused);
        self.cancels += get(&s.cancels);
        self.query_us += get(&s.query_time.total);
        self.xact_us += get(&s.xact_time.total);
        self.wait_us += get(&s.wait_time.total);
        s.query_time.histogram.add_to(&mut self.query_hist);
        s.xact_time.histogram.add_to(&mut self.xact_hist);
        s.wait_time.histogram.add_to(&mut self.wait_hist);
    }

    /// Adds another route's totals (for per-database and global figures).
    pub fn merge(&mut self, o: &Totals) {
        self.transactions += o.transactions;
        self.queries += o.queries;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.assignments += o.assignments;
        self.parses += o.parses;
        self.parses_reused += o.parses_reused;
        self.cancels += o.cancels;
        self.query_us += o.query_us;
        self.xact_us += o.xact_us;
        self.wait_us += o.wait_us;
        self.query_hist.merge(&o.query_hist);
        self.xact_hist.merge(&o.xact_hist);
        self.wait_hist.merge(&o.wait_hist);
    }

    /// What happened since `older` (totals of the same routes, taken before).
    pub fn since(&self, older: &Totals) -> Totals {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        Totals {
            transactions: d(self.transactions, older.transactions),
            queries: d(self.queries, older.queries),
            bytes_in: d(self.bytes_in, older.bytes_in),
            bytes_out: d(self.bytes_out, older.bytes_out),
            assignments: d(self.assignments, older.assignments),
            parses: d(self.parses, older.parses),
            parses_reused: d(self.parses_reused, older.parses_reused),
            cancels: d(self.cancels, older.cancels),
            query_us: d(self.query_us, older.query_us),
            xact_us: d(self.xact_us, older.xact_us),
            wait_us: d(self.wait_us, older.wait_us),
            query_hist: self.query_hist.since(&older.query_hist),
            xact_hist: self.xact_hist.since(&older.xact_hist),
            wait_hist: self.wait_hist.since(&older.wait_hist),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_add_up() {
        let stats = RouteStats::new(3);
        stats.shards[0].queries.fetch_add(2, Ordering::Relaxed);
        stats.shards[2].queries.fetch_add(3, Ordering::Relaxed);
        stats.shards[1].query_time.record(100);
        stats.local().query_time.record(300);
        let t = stats.totals();
        assert_eq!(t.queries, 5);
        assert_eq!(t.query_us, 400);
        assert_eq!(t.query_hist.count(), 2);
        let later = stats.totals();
        assert_eq!(later.since(&t), Totals::default().since(&Totals::default()));
    }
}
