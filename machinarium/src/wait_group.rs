//! Wait group: wait, with a deadline, until a count of tasks (on any machines) is done.

use std::sync::{Arc, Mutex};

use crate::call::{self, RemoteWaiter, Waiter};
use crate::coroutine::lock;
use crate::error::{Error, Result};
use crate::scheduler::Wake;
use crate::timer::Deadline;

/// A counter of unfinished tasks that coroutines can wait on to reach zero.
#[derive(Clone, Default)]
pub struct WaitGroup {
    inner: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    count: usize,
    waiters: Vec<RemoteWaiter>,
}

impl WaitGroup {
    /// A group with no tasks.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// One more task.
    pub fn add(&self) {
        lock(&self.inner).count += 1;
    }

    /// One task done; at zero every waiter wakes.
    pub fn done(&self) {
        let waiters = {
            let mut s = lock(&self.inner);
            s.count = s.count.saturating_sub(1);
            if s.count == 0 {
                std::mem::take(&mut s.waiters)
            } else {
                Vec::new()
            }
        };
        for w in waiters {
            w.wake();
        }
    }

    /// Tasks not yet done.
    pub fn count(&self) -> usize {
        lock(&self.inner).count
    }

    /// Waits until the count is zero.
    pub fn wait(&self, deadline: impl Into<Deadline>) -> Result<()> {
        let deadline = deadline.into();
        loop {
            let mut me: Option<Waiter> = None;
            let r = call::block(deadline, |w, m| {
                let mut s = lock(&self.inner);
                if s.count == 0 {
                    w.wake_local(m, Wake::Ready);
                } else {
                    s.waiters.push(call::remote_waiter(w, m));
                    me = Some(w);
                }
            });
            if let Some(w) = me {
                lock(&self.inner).waiters.retain(|rw| !rw.is(w));
            }
            match r {
                Ok(()) if self.count() == 0 => return Ok(()),
                Ok(()) => {}
                Err(Error::TimedOut) if self.count() == 0 => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}
