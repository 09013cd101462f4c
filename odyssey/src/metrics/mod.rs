//! Metrics in the Prometheus text format (version 0.0.4), served natively on
//! `promhttp_server_port` (`http`): gauges and counters per route (labels `database` and
//! `user` only, so cardinality is bounded by the routes), histograms of query, transaction
//! and pool-wait times, errors by kind, logins by result, and process figures.

pub mod http;
pub mod process;

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::clients::RouteClients;
use crate::config::Storage;
use crate::endpoints::Endpoints;
use crate::instance::Instance;
use crate::route::Route;
use crate::stats::{Snapshot, Totals, errors};

/// Histogram bucket bounds: powers of two from 128 µs to 2^25 µs (33.6 s). Each is a bound of
/// the stats histograms, so the counts are exact.
const BUCKET_BITS: std::ops::RangeInclusive<u32> = 7..=25;

/// The whole exposition.
pub fn render(inst: &Instance) -> String {
    let mut out = Metrics::default();
    instance_metrics(inst, &mut out);
    process::render(&mut out);
    let routes = inst.router.routes();
    let clients = inst.client_list.count_by_route();
    route_metrics(&routes, &clients, &mut out);
    host_metrics(inst, &mut out);
    out.text
}

/// One figure of a storage host, if known.
type HostFigure = fn(&Endpoints, &Storage, usize) -> Option<f64>;

/// What is known of each storage host: up, primary, replication lag (labels `storage` and
/// `host`, as written in the config).
fn host_metrics(inst: &Instance, m: &mut Metrics) {
    let snapshot = inst.config();
    let endpoints = &inst.router.endpoints;
    let hosts: Vec<_> = snapshot
        .config
        .storages
        .iter()
        .filter(|s| s.kind == crate::config::StorageType::Remote)
        .flat_map(|s| (0..s.endpoints.len()).map(move |i| (s, i)))
        .collect();
    let name = |s: &crate::config::Storage, i: usize| {
        let e = &s.endpoints[i];
        format!("{}:{}", e.host, e.port.unwrap_or(s.port))
    };
    let families: [(&str, &str, HostFigure); 3] = [
        (
            "odyssey_storage_host_up",
            "1 when the last connect to the host worked.",
            |e, s, i| e.last(s, i).map(|st| f64::from(u8::from(st.alive))),
        ),
        (
            "odyssey_storage_host_primary",
            "1 for a primary, 0 for a standby, as last seen.",
            |e, s, i| e.last(s, i)?.read_write.map(|rw| f64::from(u8::from(rw))),
        ),
        (
            "odyssey_storage_host_lag_seconds",
            "Replication lag the storage's watchdog measured.",
            |e, s, i| e.lag(s, i).map(|l| l as f64),
        ),
    ];
    for (family, help, get) in families {
        m.family(family, "gauge", help);
        for (s, i) in &hosts {
            if let Some(v) = get(endpoints, s, *i) {
                let host = name(s, *i);
                m.sample(
                    family,
                    &[("storage", s.name.as_str()), ("host", host.as_str())],
                    v,
                );
            }
        }
    }
}

/// Metric families being written, each with its HELP and TYPE once.
#[derive(Default)]
pub struct Metrics {
    text: String,
}

impl Metrics {
    /// Starts a family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn instance_metrics(inst: &Instance, m: &mut Metrics) {
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    m.family("odyssey_clients", "gauge", "Client connections open now.");
    m.sample("odyssey_clients", &[], inst.clients.load(Ordering::Relaxed));
    m.family(
        "odyssey_clients_accepted_total",
        "counter",
        "Client connections accepted since start.",
    );
    m.sample(
        "odyssey_clients_accepted_total",
        &[],
        get(&inst.clients_total),
    );
    m.family(
        "odyssey_logins_total",
        "counter",
        "Client logins by result.",
    );
    m.sample(
        "odyssey_logins_total",
        &[("result", "ok")],
        get(&inst.logins.ok),
    );
    m.sample(
        "odyssey_logins_total",
        &[("result", "failed")],
        get(&inst.logins.failed),
    );
    m.family(
        "odyssey_errors_total",
        "counter",
        "Failed logins and sessions by upstream's error kind.",
    );
    for &kind in errors::ALL {
        m.sample(
            "odyssey_errors_total",
            &[("kind", kind.name())],
            inst.errors.get(kind),
        );
    }
    m.family(
        "odyssey_paused",
        "gauge",
        "1 while the console's PAUSE holds every database.",
    );
    m.sample("odyssey_paused", &[], u8::from(inst.pause.global()));
    m.family(
        "odyssey_coroutines",
        "gauge",
        "Coroutines alive on the machines (idle clients park without one).",
    );
    m.sample("odyssey_coroutines", &[], inst.coroutines());
    m.family(
        "odyssey_log_dropped_lines_total",
        "counter",
        "Log lines dropped because the log_async queue (log_queue_depth) was full.",
    );
    m.sample(
        "odyssey_log_dropped_lines_total",
        &[],
        inst.logger.dropped(),
    );
}

type Counter = (&'static str, &'static str, fn(&Totals) -> u64);

const COUNTERS: [Counter; 6] = [
    (
        "odyssey_route_transactions_total",
        "Transactions completed.",
        |t| t.transactions,
    ),
    ("odyssey_route_queries_total", "Queries completed.", |t| {
        t.queries
    }),
    (
        "odyssey_route_received_bytes_total",
        "Bytes from clients to servers.",
        |t| t.bytes_in,
    ),
    (
        "odyssey_route_sent_bytes_total",
        "Bytes from servers to clients.",
        |t| t.bytes_out,
    ),
    (
        "odyssey_route_server_assignments_total",
        "Servers given to clients.",
        |t| t.assignments,
    ),
    (
        "odyssey_route_cancels_total",
        "Cancel requests forwarded.",
        |t| t.cancels,
    ),
];

/// A route's `database` and `user` labels.
type RouteLabels<'a> = [(&'static str, &'a str); 2];

fn route_labels(route: &Route) -> RouteLabels<'_> {
    [
        ("database", route.key.database.as_str()),
        ("user", route.key.user.as_str()),
    ]
}

fn route_metrics(routes: &[Arc<Route>], clients: &HashMap<usize, RouteClients>, m: &mut Metrics) {
    route_gauges(routes, clients, m);
    let totals: Vec<_> = routes.iter().map(|r| r.stats.totals()).collect();
    route_counters(routes, &totals, m);
    route_histograms(routes, &totals, m);
}

fn route_gauges(routes: &[Arc<Route>], clients: &HashMap<usize, RouteClients>, m: &mut Metrics) {
    m.family(
        "odyssey_route_clients",
        "gauge",
        "Clients of a route by state.",
    );
    for r in routes {
        let c = clients
            .get(&(Arc::as_ptr(r) as usize))
            .copied()
            .unwrap_or_default();
        for (state, n) in [
            ("active", c.active),
            ("waiting", c.waiting),
            ("idle", c.idle),
        ] {
            let [db, user] = route_labels(r);
            m.sample("odyssey_route_clients", &[db, user, ("state", state)], n);
        }
    }
    m.family(
        "odyssey_route_servers",
        "gauge",
        "Server connections of a route by state.",
    );
    for r in routes {
        let p = r.pool.counts();
        for (state, n) in [
            ("active", p.active),
            ("idle", p.idle),
            ("connecting", p.connecting),
        ] {
            let [db, user] = route_labels(r);
            m.sample("odyssey_route_servers", &[db, user, ("state", state)], n);
        }
    }
}

fn route_counters(routes: &[Arc<Route>], totals: &[Totals], m: &mut Metrics) {
    for (name, help, get) in COUNTERS {
        m.family(name, "counter", help);
        for (r, t) in routes.iter().zip(totals) {
            m.sample(name, &route_labels(r), get(t));
        }
    }
    let connects = "odyssey_route_server_connects_total";
    m.family(connects, "counter", "Server connections opened.");
    for r in routes {
        let n = r.stats.connects.load(Ordering::Relaxed);
        m.sample(connects, &route_labels(r), n);
    }
    let errors = "odyssey_route_errors_total";
    m.family(errors, "counter", "Session failures of a route by kind.");
    for r in routes {
        for &kind in errors::ALL.iter().filter(|k| !k.is_router()) {
            let [db, user] = route_labels(r);
            m.sample(
                errors,
                &[db, user, ("kind", kind.name())],
                r.stats.errors.get(kind),
            );
        }
    }
}

/// A histogram of a route's totals: its counts and their sum in µs.
type HistogramOf = fn(&Totals) -> (&Snapshot, u64);

const HISTOGRAMS: [(&str, &str, HistogramOf); 3] = [
    (
        "odyssey_route_query_duration_seconds",
        "Query times, request to ReadyForQuery.",
        |t| (&t.query_hist, t.query_us),
    ),
    (
        "odyssey_route_transaction_duration_seconds",
        "Transaction times.",
        |t| (&t.xact_hist, t.xact_us),
    ),
    (
        "odyssey_route_wait_duration_seconds",
        "Waits for a server from the pool.",
        |t| (&t.wait_hist, t.wait_us),
    ),
];

fn route_histograms(routes: &[Arc<Route>], totals: &[Totals], m: &mut Metrics) {
    for (name, help, get) in HISTOGRAMS {
        m.family(name, "histogram", help);
        for (r, t) in routes.iter().zip(totals) {
            let (hist, sum_us) = get(t);
            histogram(m, name, &route_labels(r), hist, sum_us);
        }
    }
}

/// The `_bucket`, `_sum` and `_count` samples of one histogram.
fn histogram(m: &mut Metrics, name: &str, labels: &[(&str, &str)], hist: &Snapshot, sum_us: u64) {
    let bucket = format!("{name}_bucket");
    for bits in BUCKET_BITS {
        let limit = 1u64 << bits;
        let le = format!("{}", limit as f64 / 1e6);
        let mut l = labels.to_vec();
        l.push(("le", &le));
        m.sample(&bucket, &l, hist.below(limit));
    }
    let mut l = labels.to_vec();
    l.push(("le", "+Inf"));
    m.sample(&bucket, &l, hist.count());
    m.sample(&format!("{name}_sum"), labels, sum_us as f64 / 1e6);
    m.sample(&format!("{name}_count"), labels, hist.count());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_escaping() {
        let mut m = Metrics::default();
        m.family("x_total", "counter", "An x.");
        m.sample("x_total", &[("db", "a\"b\\c\nd")], 3);
        assert_eq!(
            m.text,
            "# HELP x_total An x.\n# TYPE x_total counter\nx_total{db=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = crate::stats::Histogram::default();
        for us in [100, 200, 5000, 100_000_000] {
            h.record(us);
        }
        let mut m = Metrics::default();
        histogram(&mut m, "t", &[], &h.snapshot(), 100_005_300);
        assert!(
            m.text.contains("t_bucket{le=\"0.000128\"} 1\n"),
            "{}",
            m.text
        );
        assert!(m.text.contains("t_bucket{le=\"0.000256\"} 2\n"));
        assert!(m.text.contains("t_bucket{le=\"0.008192\"} 3\n"));
        assert!(m.text.contains("t_bucket{le=\"33.554432\"} 3\n"));
        assert!(m.text.contains("t_bucket{le=\"+Inf\"} 4\n"));
        assert!(m.text.contains("t_sum 100.0053\n"));
        assert!(m.text.contains("t_count 4\n"));
    }
}
