//! What a session adds to its route's counters: bytes and the query's clock as requests go
//! to the server, Parse messages the relay saw, cancels forwarded for the client.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::session::Session;

impl Session {
    /// Cancels forwarded for the client go into the route's counters (when it parks or ends;
    /// the cancel arrives on another connection).
    pub(super) fn count_cancels(&self) {
        let n = self.cancel.take_forwarded();
        if n > 0 {
            let stats = self.route.stats.local();
            stats.cancels.fetch_add(u64::from(n), Ordering::Relaxed);
        }
    }

    /// Parse messages the relay saw go into the route's counters.
    pub(super) fn count_parses(&mut self) {
        let parses = self.relay.take_parses();
        if parses.total > 0 {
            let stats = self.route.stats.local();
            stats
                .parses
                .fetch_add(u64::from(parses.total), Ordering::Relaxed);
            stats
                .parses_reused
                .fetch_add(u64::from(parses.reused), Ordering::Relaxed);
        }
    }

    /// Counts bytes sent to the server; a request with no query in flight starts the query's
    /// (and maybe the transaction's) clock.
    pub(super) fn count_in(&mut self, n: usize) {
        let stats = self.route.stats.local();
        stats.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        if self.clock.query.is_none() {
            let now = Instant::now();
            self.clock.query = Some(now);
            self.clock.transaction.get_or_insert(now);
        }
    }
}
