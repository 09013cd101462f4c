//! A gate of counted slots (a semaphore) that coroutines of any machine wait at with a
//! deadline: `cancel_max_inflight` bounds outgoing cancels, `client_max_routing` the logins in
//! their routing stage. A slot is a guard; dropping it lets the next waiter in.

use std::sync::{Arc, Mutex};

use machinarium::{Cond, Deadline};

/// Counted slots. The lock guards only the count, never held across a wait.
pub struct Gate {
    limit: u32,
    taken: Mutex<u32>,
    /// Signalled on every release; waiters re-check the count (a signal may be spurious).
    freed: Cond,
}

/// A slot held; dropping it frees it.
pub struct Slot {
    gate: Arc<Gate>,
}

impl Gate {
    /// A gate of `limit` slots (at least one).
    pub fn new(limit: u32) -> Arc<Gate> {
        Arc::new(Gate {
            limit: limit.max(1),
            taken: Mutex::new(0),
            freed: Cond::new(),
        })
    }

    /// Takes a slot, waiting for one until the deadline; `None` when it passed (or the
    /// coroutine was cancelled).
    pub fn enter(self: &Arc<Gate>, deadline: Deadline) -> Option<Slot> {
        loop {
            if let Some(slot) = self.try_enter() {
                return Some(slot);
            }
            if deadline.expired() || self.freed.wait(deadline).is_err() {
                // The last look: a release may have come with the deadline.
                return self.try_enter();
            }
        }
    }

    /// Takes a slot if one is free now.
    /// Slots taken now.
    pub fn in_use(&self) -> u32 {
        *self.taken.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn try_enter(self: &Arc<Gate>) -> Option<Slot> {
        let mut taken = self.taken.lock().unwrap_or_else(|p| p.into_inner());
        (*taken < self.limit).then(|| {
            *taken += 1;
            Slot { gate: self.clone() }
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.gate.taken.lock().unwrap_or_else(|p| p.into_inner());
        *taken -= 1;
        drop(taken);
        self.gate.freed.signal();
    }
}
