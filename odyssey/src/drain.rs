//! `conn_drop_options` (spec §2.2, §12): how fast a draining process — a graceful shutdown,
//! which is also how the old process of an online restart ends — drops the clients that sit
//! between transactions. Upstream's contract: on each worker, at most `rate` drops in any
//! window of `interval_ms`; with `drop_enabled no` such clients are never dropped, and only
//! leaving by themselves or the shutdown's hard timeout ends them. Dropping them a few at a
//! time lets their applications reconnect (to the new process) gradually instead of all at
//! once. Clients that lose nothing by going — a session-pool client that never had a server,
//! the console — are not counted here and go at once.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::ConnDrop;

/// The drop budget of every machine (a session asks on the machine it runs on).
pub struct DrainRate {
    policy: ConnDrop,
    windows: Box<[Mutex<Window>]>,
}

impl DrainRate {
    /// Budgets for `machines` machines (more share one; fewer waste a little memory).
    pub fn new(policy: ConnDrop, machines: usize) -> DrainRate {
        DrainRate {
            policy,
            windows: (0..machines.max(1))
                .map(|_| Mutex::new(Window::default()))
                .collect(),
        }
    }

    /// Whether the calling machine may drop one more client now; the drop is counted if so.
    pub fn permit(&self, now: Instant) -> bool {
        if !self.policy.enabled {
            return false;
        }
        let id = machinarium::current_machine_id().unwrap_or(0) as usize;
        self.windows[id % self.windows.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(now, self.policy.rate as usize, self.policy.interval)
    }
}

/// The times of the drops in the last interval, oldest first.
#[derive(Default)]
struct Window {
    drops: VecDeque<Instant>,
}

impl Window {
    /// Counts a drop at `now` unless `rate` already happened within `interval` before it.
    fn take(&mut self, now: Instant, rate: usize, interval: Duration) -> bool {
        while self
            .drops
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= interval)
        {
            self.drops.pop_front();
        }
        if self.drops.len() >= rate {
            return false;
        }
        self.drops.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn rate_drops_per_interval_then_waits_for_the_oldest_to_age_out() {
        let mut w = Window::default();
        let t0 = Instant::now();
        assert!(w.take(t0, 2, SECOND));
        assert!(w.take(t0 + SECOND / 2, 2, SECOND));
        assert!(!w.take(t0 + SECOND / 2, 2, SECOND));
        assert!(!w.take(t0 + SECOND - Duration::from_millis(1), 2, SECOND));
        // The first drop is a whole interval old: one more may go, not two.
        assert!(w.take(t0 + SECOND, 2, SECOND));
        assert!(!w.take(t0 + SECOND, 2, SECOND));
    }

    #[test]
    fn disabled_never_permits() {
        let off = ConnDrop {
            enabled: false,
            ..ConnDrop::default()
        };
        assert!(!DrainRate::new(off, 2).permit(Instant::now()));
        let on = DrainRate::new(ConnDrop::default(), 2);
        assert!(on.permit(Instant::now()));
        assert!(!on.permit(Instant::now()), "the default is 1 per second");
    }
}
