//! Clients looping on transactions while something happens to the servers (a restart, a
//! failover), each run recorded with its times, so that a test can say which runs had to work
//! (the ones that ended before the fault, the ones that began after it) and which may fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use postgres::Client;

use crate::{ConnParams, connect};

/// One transaction of a looping client: when it started, when it ended, how it ended.
pub struct Run {
    /// When it was sent (or the connection to send it began).
    pub began: Instant,
    /// When its answer (or error) came.
    pub ended: Instant,
    /// Its outcome.
    pub result: Result<(), String>,
}

/// What one looping client saw.
pub struct Trace {
    /// Every transaction it ran, in order.
    pub runs: Vec<Run>,
}

impl Trace {
    /// Whether every run that ended before `at` worked (and there was one).
    pub fn worked_before(&self, at: Instant) -> bool {
        let mut before = self.runs.iter().filter(|run| run.ended < at).peekable();
        before.peek().is_some() && before.all(|run| run.result.is_ok())
    }

    /// The runs that began at `at` or later.
    pub fn begun_after(&self, at: Instant) -> Vec<&Run> {
        self.runs.iter().filter(|run| run.began >= at).collect()
    }

    /// The failed runs that overlapped `[from, to)`.
    pub fn failed_between(&self, from: Instant, to: Instant) -> usize {
        self.runs
            .iter()
            .filter(|run| run.ended >= from && run.began < to && run.result.is_err())
            .count()
    }

    /// The last few runs, timed in ms from `origin`, for failure messages.
    pub fn last_runs(&self, origin: Instant) -> Vec<(i128, &Result<(), String>)> {
        let skip = self.runs.len().saturating_sub(5);
        let ms = |at: Instant| {
            let ms = |d: Duration| d.as_millis() as i128;
            if at >= origin {
                ms(at - origin)
            } else {
                -ms(origin - at)
            }
        };
        self.runs[skip..]
            .iter()
            .map(|run| (ms(run.began), &run.result))
            .collect()
    }
}

/// Loops `transaction` until `stop`, reconnecting with `params` when a run failed (the pooler
/// may have closed the connection). `worked` counts the clients whose first run has worked.
pub fn client_loop(
    params: ConnParams,
    stop: Arc<AtomicBool>,
    worked: Arc<AtomicUsize>,
    transaction: fn(&mut Client) -> Result<(), String>,
) -> Trace {
    let mut trace = Trace { runs: Vec::new() };
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::Relaxed) {
        let at = Instant::now();
        let result = match client.as_mut() {
            Some(c) => transaction(c),
            None => connect(&params)
                .map_err(|e| format!("connect: {e:?}"))
                .and_then(|mut c| transaction(&mut c).map(|()| client = Some(c))),
        };
        if result.is_err() {
            client = None;
            thread::sleep(Duration::from_millis(10));
        }
        if result.is_ok() && trace.runs.iter().all(|run| run.result.is_err()) {
            worked.fetch_add(1, Ordering::Relaxed);
        }
        trace.runs.push(Run {
            began: at,
            ended: Instant::now(),
            result,
        });
    }
    trace
}

/// Starts `n` looping clients of `params`; returns once each has had a run work (false if
/// that took longer than `within`), with the flag that stops them and their threads.
pub fn start_clients(
    n: usize,
    params: &ConnParams,
    transaction: fn(&mut Client) -> Result<(), String>,
    within: Duration,
) -> (bool, Arc<AtomicBool>, Vec<thread::JoinHandle<Trace>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let worked = Arc::new(AtomicUsize::new(0));
    let clients = (0..n)
        .map(|_| {
            let (params, stop, worked) = (params.clone(), stop.clone(), worked.clone());
            thread::spawn(move || client_loop(params, stop, worked, transaction))
        })
        .collect();
    let all_ran = crate::wait_for(within, || worked.load(Ordering::Relaxed) == n);
    (all_ran, stop, clients)
}
