//! The scheduler of one machine: coroutine records, the ready queue, resume and suspend.
//!
//! Switching is asymmetric: the scheduler loop runs on the machine thread's own stack and
//! resumes one coroutine at a time; a coroutine that blocks switches back to it. A finished
//! coroutine's stack is recycled by the scheduler after the switch back, never while the
//! coroutine still runs on it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;

use crate::context::Context;
use crate::overflow;
use crate::stack::{Stack, StackPool};

/// Identifies a coroutine record inside its machine: slab index plus a serial number, so a
/// key kept after the coroutine ended never wakes the coroutine that reused the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct CoKey {
    idx: u32,
    serial: u32,
}

/// Why a blocking call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    Ready,
    TimedOut,
    Cancelled,
}

/// A coroutine's record. Owned by the scheduler's slab from spawn until its stack is recycled.
pub(crate) struct Coroutine {
    pub(crate) key: CoKey,
    pub(crate) ctx: Context,
    stack: Cell<Option<Stack>>,
    guard: (usize, usize),
    body: Cell<Option<Box<dyn FnOnce()>>>,
    finished: Cell<bool>,
    /// Generation of the current (or last) blocking call; wakes for other generations are stale.
    pub(crate) call_gen: Cell<u32>,
    /// A blocking call is in flight and nobody has woken it yet.
    pub(crate) pending: Cell<bool>,
    /// Why the last blocking call ended.
    pub(crate) wake: Cell<Wake>,
    /// The current call armed a timer.
    pub(crate) has_timer: Cell<bool>,
    pub(crate) cancelled: Cell<bool>,
}

/// The scheduler state of one machine.
pub(crate) struct Scheduler {
    /// The machine thread's own stack, suspended while a coroutine runs.
    main: Context,
    running: RefCell<Option<Rc<Coroutine>>>,
    ready: RefCell<VecDeque<Rc<Coroutine>>>,
    slab: RefCell<Vec<Option<Rc<Coroutine>>>>,
    free: RefCell<Vec<u32>>,
    serial: Cell<u32>,
    live: Cell<usize>,
    stacks: RefCell<StackPool>,
    stack_size: usize,
}

impl Scheduler {
    pub(crate) fn new(stack_pages: usize, guard_pages: usize, cache: usize) -> Scheduler {
        Scheduler {
            main: Context::empty(),
            running: RefCell::new(None),
            ready: RefCell::new(VecDeque::new()),
            slab: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            serial: Cell::new(0),
            live: Cell::new(0),
            stacks: RefCell::new(StackPool::new(stack_pages, guard_pages, cache)),
            stack_size: stack_pages * crate::stack::PAGE_SIZE,
        }
    }

    /// Creates a coroutine running `body` and makes it ready.
    pub(crate) fn spawn(
        &self,
        body: Box<dyn FnOnce()>,
        entry: crate::context::Entry,
    ) -> io::Result<CoKey> {
        let stack = self.stacks.borrow_mut().take()?;
        let idx = match self.free.borrow_mut().pop() {
            Some(idx) => idx,
            None => {
                let mut slab = self.slab.borrow_mut();
                slab.push(None);
                (slab.len() - 1) as u32
            }
        };
        let serial = self.serial.get().wrapping_add(1);
        self.serial.set(serial);
        let key = CoKey { idx, serial };
        let top = stack.top();
        let guard = stack.guard_range();
        let co = Rc::new_cyclic(|weak: &std::rc::Weak<Coroutine>| Coroutine {
            key,
            // SAFETY: the stack is exclusively this coroutine's; it stays in the record (so
            // mapped) until the scheduler recycles it after the final switch. The argument is
            // the record's address, alive as long as the slab holds the Rc.
            ctx: unsafe { Context::new(top, entry, weak.as_ptr() as *mut u8) },
            stack: Cell::new(Some(stack)),
            guard,
            body: Cell::new(Some(body)),
            finished: Cell::new(false),
            call_gen: Cell::new(0),
            pending: Cell::new(false),
            wake: Cell::new(Wake::Ready),
            has_timer: Cell::new(false),
            cancelled: Cell::new(false),
        });
        self.slab.borrow_mut()[idx as usize] = Some(co.clone());
        self.live.set(self.live.get() + 1);
        self.ready.borrow_mut().push_back(co);
        Ok(key)
    }

    /// The record behind a key, if that coroutine still exists.
    pub(crate) fn get(&self, key: CoKey) -> Option<Rc<Coroutine>> {
        let slab = self.slab.borrow();
        match slab.get(key.idx as usize) {
            Some(Some(co)) if co.key.serial == key.serial => Some(co.clone()),
            _ => None,
        }
    }

    /// The coroutine running now, if any.
    pub(crate) fn running(&self) -> Option<Rc<Coroutine>> {
        self.running.borrow().clone()
    }

    /// Number of coroutines that have not finished.
    pub(crate) fn live(&self) -> usize {
        self.live.get()
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.borrow().is_empty()
    }

    /// Ends a pending blocking call of `key` (generation `epoch`) with `why` and makes the
    /// coroutine ready. Returns false when the wake is stale (another wake won, or the call
    /// already ended).
    pub(crate) fn wake(&self, key: CoKey, epoch: u32, why: Wake) -> bool {
        let Some(co) = self.get(key) else {
            return false;
        };
        if !co.pending.get() || co.call_gen.get() != epoch {
            return false;
        }
        co.pending.set(false);
        co.wake.set(why);
        self.ready.borrow_mut().push_back(co);
        true
    }

    /// Marks a coroutine cancelled and ends its pending call, if any.
    pub(crate) fn cancel(&self, key: CoKey) {
        if let Some(co) = self.get(key) {
            co.cancelled.set(true);
            self.wake(key, co.call_gen.get(), Wake::Cancelled);
        }
    }

    /// Cancels every live coroutine (machine stop).
    pub(crate) fn cancel_all(&self) {
        let keys: Vec<CoKey> = self
            .slab
            .borrow()
            .iter()
            .flatten()
            .map(|co| co.key)
            .collect();
        for key in keys {
            self.cancel(key);
        }
    }

    /// Returns the resident pages of cold cached stacks to the kernel.
    pub(crate) fn trim_stacks(&self, keep: usize) {
        self.stacks.borrow_mut().trim(keep);
    }

    /// Puts the running coroutine at the back of the ready queue (yield without waiting).
    pub(crate) fn requeue(&self, co: &Rc<Coroutine>) {
        self.ready.borrow_mut().push_back(co.clone());
    }

    /// Runs the coroutines that are ready now; ones made ready meanwhile wait for the next
    /// turn of the loop, so io and timers are polled between rounds.
    pub(crate) fn run_ready(&self) {
        let n = self.ready.borrow().len();
        for _ in 0..n {
            let Some(co) = self.ready.borrow_mut().pop_front() else {
                break;
            };
            self.resume(co);
        }
    }

    fn resume(&self, co: Rc<Coroutine>) {
        if co.finished.get() {
            return;
        }
        *self.running.borrow_mut() = Some(co.clone());
        overflow::set_running_guard(co.guard, co.key.serial as u64, self.stack_size);
        // SAFETY: `main` is this thread's stack (running now, about to be suspended) and
        // `co.ctx` is suspended: it was made by `Context::new` or saved by `suspend`, and a
        // coroutine is in the ready queue at most once (wakes are guarded by `pending`).
        unsafe { self.main.switch(&co.ctx) };
        overflow::clear_running_guard();
        *self.running.borrow_mut() = None;
        if co.finished.get() {
            self.recycle(&co);
        }
    }

    fn recycle(&self, co: &Rc<Coroutine>) {
        self.slab.borrow_mut()[co.key.idx as usize] = None;
        self.free.borrow_mut().push(co.key.idx);
        self.live.set(self.live.get() - 1);
        // The coroutine switched away for the last time: its stack is free to reuse.
        if let Some(stack) = co.stack.take() {
            self.stacks.borrow_mut().put(stack);
        }
    }

    /// Switches from the running coroutine `co` back to the scheduler.
    pub(crate) fn suspend(&self, co: &Coroutine) {
        // SAFETY: `co` is the running coroutine (its context is live and about to be saved);
        // `main` was saved by `resume`, which is the only place that switches into `co`.
        unsafe { co.ctx.switch(&self.main) };
    }

    /// Runs the body of coroutine `co` (on its own stack), then switches away for good.
    pub(crate) fn run_body(&self, co: &Coroutine) -> ! {
        if let Some(body) = co.body.take() {
            // The body stores its own result; a panic here was already reported by the hook.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        }
        co.finished.set(true);
        self.suspend(co);
        // A finished coroutine is never resumed (`resume` checks `finished`).
        std::process::abort()
    }

    /// Stacks of coroutines that never finished are leaked, not unmapped: something may still
    /// point into them. Called when a machine exits with stragglers.
    pub(crate) fn leak_all(&self) {
        for co in self.slab.borrow_mut().drain(..).flatten() {
            if let Some(stack) = co.stack.take() {
                std::mem::forget(stack);
            }
            std::mem::forget(co);
        }
        self.ready.borrow_mut().clear();
    }
}

impl CoKey {
    pub(crate) fn serial(self) -> u32 {
        self.serial
    }
}
