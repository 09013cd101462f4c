//! A session's clock: when the query and the transaction in flight started (for their times in
//! the route's statistics) and when the client last got an answer (for a graceful shutdown).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::route::Route;

/// Start times of what is in flight.
#[derive(Default)]
pub(super) struct Clock {
    pub(super) query: Option<Instant>,
    pub(super) transaction: Option<Instant>,
    /// When the client last got an answer (or its greeting).
    pub(super) answered: Option<Instant>,
}

/// During a shutdown, a client between transactions is let go only once it has been quiet
/// this long: one that just got its answer (or just connected, before an online restart's
/// hand-over) may be about to leave, or to send its next query, rather than hear a FATAL in
/// the middle.
pub(super) const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

impl Clock {
    /// Counts bytes sent to the client, and the queries and transactions they completed, with
    /// their times; `busy`: more requests are in flight.
    pub(super) fn count_out(
        &mut self,
        route: &Route,
        busy: bool,
        (n, queries, transactions): (usize, u32, u32),
    ) {
        let stats = route.stats.local();
        stats.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        if queries == 0 {
            return;
        }
        let now = Instant::now();
        let micros = |since: Instant| now.duration_since(since).as_micros() as u64;
        stats
            .queries
            .fetch_add(u64::from(queries), Ordering::Relaxed);
        self.answered = Some(now);
        if let Some(started) = self.query.take() {
            stats.query_time.record(micros(started));
        }
        if busy {
            // Pipelined requests: the next one's clock runs from here.
            self.query = Some(now);
        }
        if transactions > 0 {
            stats
                .transactions
                .fetch_add(u64::from(transactions), Ordering::Relaxed);
            if let Some(started) = self.transaction.take() {
                stats.xact_time.record(micros(started));
            }
        }
    }
}
