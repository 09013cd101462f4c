//! Condition: a coroutine waits with a deadline; any thread may signal.
//!
//! A signal with nobody waiting is remembered (the next wait returns at once), as in
//! machinarium's `mm_cond`. Spurious wakeups are possible; callers re-check their condition.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::call::{self, RemoteWaiter, Waiter};
use crate::coroutine::lock;
use crate::error::Result;
use crate::scheduler::Wake;
use crate::timer::Deadline;

/// A condition that coroutines wait on and any thread signals. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Cond {
    inner: Arc<Mutex<CondState>>,
}

#[derive(Default)]
struct CondState {
    signaled: bool,
    waiters: VecDeque<RemoteWaiter>,
}

impl Cond {
    /// A new, unsignaled condition.
    pub fn new() -> Cond {
        Cond::default()
    }

    /// Wakes one waiter, or remembers the signal if nobody waits.
    pub fn signal(&self) {
        let waiter = {
            let mut s = lock(&self.inner);
            let w = s.waiters.pop_front();
            if w.is_none() {
                s.signaled = true;
            }
            w
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// Wakes every waiter (and remembers the signal if nobody waits).
    pub fn broadcast(&self) {
        let waiters: Vec<RemoteWaiter> = {
            let mut s = lock(&self.inner);
            if s.waiters.is_empty() {
                s.signaled = true;
            }
            s.waiters.drain(..).collect()
        };
        for w in waiters {
            w.wake();
        }
    }

    /// Waits for a signal until the deadline.
    pub fn wait(&self, deadline: impl Into<Deadline>) -> Result<()> {
        let deadline = deadline.into();
        let mut me: Option<Waiter> = None;
        let r = call::block(deadline, |w, m| {
            let mut s = lock(&self.inner);
            if std::mem::take(&mut s.signaled) {
                w.wake_local(m, Wake::Ready);
            } else {
                s.waiters.push_back(call::remote_waiter(w, m));
                me = Some(w);
            }
        });
        match (r, me) {
            (Err(e), Some(w)) => {
                let mut s = lock(&self.inner);
                let before = s.waiters.len();
                s.waiters.retain(|rw| !rw.is(w));
                // Not in the list any more: a signal picked us while the deadline fired.
                // Take the signal rather than lose it.
                if s.waiters.len() == before {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            (r, _) => r,
        }
    }
}
