//! One blocking call: wait until woken, timed out or cancelled — whichever comes first.
//!
//! Every blocking primitive (io, cond, channel, sleep, join) is built on [`block`]. The
//! primitive first registers a [`Waiter`] wherever the wake will come from, then parks. Every
//! wake source carries the call's generation; only the first wake of the current generation
//! counts, so a late timer, a second signal or a stale io event is harmless.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::machine::{self, Machine, MachineId, Remote};
use crate::scheduler::{CoKey, Wake};
use crate::timer::{Deadline, Target};

/// Who to wake: a coroutine's pending call on a given machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waiter {
    pub(crate) machine: MachineId,
    pub(crate) key: CoKey,
    pub(crate) epoch: u32,
}

impl Waiter {
    /// Wakes the waiter, which must live on the current machine.
    pub(crate) fn wake_local(self, m: &Machine, why: Wake) -> bool {
        debug_assert_eq!(self.machine, m.id);
        m.sched.wake(self.key, self.epoch, why)
    }
}

/// A waiter that may be woken from any thread.
#[derive(Clone)]
pub(crate) struct RemoteWaiter {
    pub(crate) waiter: Waiter,
    pub(crate) remote: Arc<Remote>,
}

impl RemoteWaiter {
    /// Wakes the waiter: directly when called on its machine, through its inbox otherwise.
    pub(crate) fn wake(&self) {
        match machine::current() {
            Some(m) if m.id == self.waiter.machine => {
                self.waiter.wake_local(m, Wake::Ready);
            }
            _ => self.remote.post_wake(self.waiter.key, self.waiter.epoch),
        }
    }

    pub(crate) fn is(&self, w: Waiter) -> bool {
        self.waiter == w
    }
}

/// Parks the running coroutine until a wake of this call, the deadline, or cancellation.
///
/// `register` is given the waiter to hand to the wake source before the coroutine parks.
/// After an `Err`, the caller must unlink whatever it registered (it may already be gone).
pub(crate) fn block(deadline: Deadline, register: impl FnOnce(Waiter, &Machine)) -> Result<()> {
    if std::thread::panicking() {
        return Err(Error::Unwinding);
    }
    let m = machine::current().ok_or(Error::NotInCoroutine)?;
    let co = m.sched.running().ok_or(Error::NotInCoroutine)?;
    if co.cancelled.get() {
        return Err(Error::Cancelled);
    }
    // A deadline already gone: the caller has tried its operation once; do not park.
    if deadline.expired() {
        return Err(Error::TimedOut);
    }
    let epoch = co.call_gen.get().wrapping_add(1);
    co.call_gen.set(epoch);
    co.pending.set(true);
    let waiter = Waiter {
        machine: m.id,
        key: co.key,
        epoch,
    };
    register(waiter, m);
    if let Deadline::At(at) = deadline {
        m.timers.borrow_mut().arm(at, Target::Call(co.key, epoch));
        co.has_timer.set(true);
    }
    m.sched.suspend(&co);
    let why = co.wake.get();
    if co.has_timer.replace(false) && why != Wake::TimedOut {
        m.timers.borrow_mut().disarmed();
    }
    match why {
        Wake::Ready => Ok(()),
        Wake::TimedOut => Err(Error::TimedOut),
        Wake::Cancelled => Err(Error::Cancelled),
    }
}

/// The waiter of the running coroutine's next call, for primitives that must publish it
/// under their own lock before parking (see `cond`, `channel`).
pub(crate) fn remote_waiter(w: Waiter, m: &Machine) -> RemoteWaiter {
    RemoteWaiter {
        waiter: w,
        remote: m.remote.clone(),
    }
}
