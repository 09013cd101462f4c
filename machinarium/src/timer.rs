//! Deadlines and the per-machine timer heap.
//!
//! A coroutine has at most one blocking call in flight, so at most one live timer. Timers are
//! never removed when a call ends early: the entry goes stale (its generation no longer matches)
//! and is skipped when popped. The heap is rebuilt when stale entries outnumber live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// When a blocking call gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// Wait as long as it takes.
    Never,
    /// Give up at this instant.
    At(Instant),
}

impl Deadline {
    /// No deadline.
    pub const NEVER: Deadline = Deadline::Never;

    /// A deadline `d` from now.
    pub fn after(d: Duration) -> Deadline {
        match Instant::now().checked_add(d) {
            Some(at) => Deadline::At(at),
            None => Deadline::Never,
        }
    }

    /// The instant, if any.
    pub fn instant(self) -> Option<Instant> {
        match self {
            Deadline::Never => None,
            Deadline::At(at) => Some(at),
        }
    }

    /// Whether the deadline has passed.
    pub fn expired(self) -> bool {
        matches!(self, Deadline::At(at) if at <= Instant::now())
    }
}

impl From<Duration> for Deadline {
    fn from(d: Duration) -> Self {
        Deadline::after(d)
    }
}

impl From<Option<Duration>> for Deadline {
    fn from(d: Option<Duration>) -> Self {
        d.map_or(Deadline::Never, Deadline::after)
    }
}

impl From<Instant> for Deadline {
    fn from(at: Instant) -> Self {
        Deadline::At(at)
    }
}

/// What a timer wakes when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    /// A coroutine's blocking call: (coroutine key, call generation).
    Call(crate::scheduler::CoKey, u32),
    /// A stream parked without a stack: (io key, park generation).
    Park(crate::reactor::IoKey, u32),
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Instant,
    seq: u64,
    target: Target,
}

/// The timer heap of one machine.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// Timers armed and not yet ended (fired or disarmed by their owner).
    live: usize,
}

impl Timers {
    /// Arms a timer; the owner calls [`Timers::disarmed`] when its wait ends without it.
    pub(crate) fn arm(&mut self, at: Instant, target: Target) {
        self.seq += 1;
        self.live += 1;
        self.heap.push(Reverse(Entry {
            at,
            seq: self.seq,
            target,
        }));
    }

    /// The owner of a live timer no longer needs it (its entry is now stale).
    pub(crate) fn disarmed(&mut self) {
        self.live = self.live.saturating_sub(1);
    }

    /// The earliest instant in the heap (maybe stale: a wake-up too early is harmless).
    pub(crate) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Pops one entry due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Target> {
        match self.heap.peek() {
            Some(Reverse(e)) if e.at <= now => {}
            _ => return None,
        }
        self.heap.pop().map(|Reverse(e)| e.target)
    }

    /// A fired timer was live (its owner was still waiting on it).
    pub(crate) fn fired(&mut self) {
        self.live = self.live.saturating_sub(1);
    }

    /// Whether stale entries dominate; then [`Timers::retain`] should be called.
    pub(crate) fn needs_compaction(&self) -> bool {
        self.heap.len() > 1024 && self.heap.len() > 4 * self.live
    }

    /// Keeps only the entries for which `live` says the owner still waits.
    pub(crate) fn retain(&mut self, mut live: impl FnMut(Target) -> bool) {
        let entries = std::mem::take(&mut self.heap).into_vec();
        self.heap = entries
            .into_iter()
            .filter(|Reverse(e)| live(e.target))
            .collect();
        self.live = self.heap.len();
    }
}
