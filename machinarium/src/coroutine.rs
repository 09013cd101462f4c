//! Spawning coroutines, joining them, cancelling them, and the calls every coroutine may make
//! (`yield_now`, `sleep`, `cancelled`).
//!
//! A coroutine's body runs inside `catch_unwind` in a non-unwinding entry function: a panic is
//! stored for `join` and never crosses a context switch.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::call::{self, RemoteWaiter, Waiter};
use crate::error::{Error, Result};
use crate::machine::{self, Machine, Msg, Remote};
use crate::scheduler::{CoKey, Coroutine};
use crate::timer::Deadline;

/// Why `join` did not return the coroutine's value.
pub enum JoinError {
    /// The coroutine panicked; this is the panic's payload.
    Panicked(Box<dyn Any + Send>),
    /// The wait itself failed (deadline, cancellation of the joining coroutine, ...).
    Wait(Error),
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => write!(f, "Panicked({:?})", panic_message(p.as_ref())),
            JoinError::Wait(e) => write!(f, "Wait({e:?})"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => {
                write!(f, "coroutine panicked: {}", panic_message(p.as_ref()))
            }
            JoinError::Wait(e) => write!(f, "join: {e}"),
        }
    }
}

impl std::error::Error for JoinError {}

/// The text of a panic payload, when it is a string.
pub fn panic_message(p: &(dyn Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

/// Identifies a coroutine (unique within its machine while it lives).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CoroutineId {
    machine: machine::MachineId,
    key: CoKey,
}

struct JoinState<T> {
    result: RefCell<Option<std::thread::Result<T>>>,
    waiter: Cell<Option<Waiter>>,
}

/// Owns a coroutine on the current machine: join it or cancel it. Dropping the handle
/// detaches the coroutine (it keeps running).
pub struct JoinHandle<T> {
    state: Rc<JoinState<T>>,
    id: CoroutineId,
}

/// Spawns `f` as a coroutine on the current machine.
///
/// # Panics
/// Outside a machine, or when no stack can be mapped; see [`try_spawn`].
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    match try_spawn(f) {
        Ok(h) => h,
        Err(e) => panic!("machinarium::spawn: {e}"),
    }
}

/// Spawns `f` as a coroutine on the current machine, or says why it cannot.
pub fn try_spawn<F, T>(f: F) -> Result<JoinHandle<T>>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let m = machine::current().ok_or(Error::NotInCoroutine)?;
    Ok(spawn_in(m, f)?)
}

/// Spawns a machine's main function, whose end the machine watches.
pub(crate) fn spawn_main(m: &Machine, f: Box<dyn FnOnce()>) -> io::Result<JoinHandle<()>> {
    spawn_in(m, f)
}

/// Spawns a function nobody joins (parked wakes, remote spawns): no join state is kept.
pub(crate) fn spawn_boxed(m: &Machine, f: Box<dyn FnOnce()>) -> io::Result<()> {
    let key = m.sched.spawn(f, co_entry)?;
    if m.is_stopping() {
        m.sched.cancel(key);
    }
    Ok(())
}

fn spawn_in<F, T>(m: &Machine, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let state = Rc::new(JoinState {
        result: RefCell::new(None),
        waiter: Cell::new(None),
    });
    let out = state.clone();
    let body = Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        *out.result.borrow_mut() = Some(result);
        if let (Some(w), Some(m)) = (out.waiter.take(), machine::current()) {
            w.wake_local(m, crate::scheduler::Wake::Ready);
        }
    });
    let key = m.sched.spawn(body, co_entry)?;
    if m.is_stopping() {
        m.sched.cancel(key);
    }
    Ok(JoinHandle {
        state,
        id: CoroutineId { machine: m.id, key },
    })
}

/// Entry of every coroutine: runs the body of the record `arg` points to, never returns.
unsafe extern "sysv64" fn co_entry(arg: *mut u8) -> ! {
    // SAFETY: `arg` is the address of the coroutine's record, which the scheduler's slab keeps
    // alive until after this coroutine's final switch.
    let co = unsafe { &*(arg as *const Coroutine) };
    match machine::current() {
        Some(m) => m.sched.run_body(co),
        // A coroutine only ever runs inside its machine's loop.
        None => std::process::abort(),
    }
}

impl<T> JoinHandle<T> {
    /// The coroutine's id.
    pub fn id(&self) -> CoroutineId {
        self.id
    }

    /// Whether the coroutine has finished (returned or panicked).
    pub fn is_finished(&self) -> bool {
        self.state.result.borrow().is_some()
    }

    /// Waits for the coroutine and returns its value, or its panic.
    pub fn join(self, deadline: impl Into<Deadline>) -> std::result::Result<T, JoinError> {
        let deadline = deadline.into();
        loop {
            if let Some(r) = self.state.result.borrow_mut().take() {
                return r.map_err(JoinError::Panicked);
            }
            let state = &self.state;
            let r = call::block(deadline, |w, _| state.waiter.set(Some(w)));
            if let Err(e) = r {
                self.state.waiter.set(None);
                return Err(JoinError::Wait(e));
            }
        }
    }

    /// Cancels the coroutine: its current and every later blocking call fail with
    /// [`Error::Cancelled`].
    pub fn cancel(&self) {
        if let Some(m) = machine::current().filter(|m| m.id == self.id.machine) {
            m.sched.cancel(self.id.key);
        }
    }
}

/// Gives other ready coroutines (and io) a turn, then continues.
pub fn yield_now() {
    let Some(m) = machine::current() else { return };
    let Some(co) = m.sched.running() else { return };
    if std::thread::panicking() {
        return;
    }
    m.sched.requeue(&co);
    m.sched.suspend(&co);
}

/// Sleeps for `d`. `sleep(Duration::ZERO)` lets io and timers run first, then continues.
pub fn sleep(d: Duration) -> Result<()> {
    if d.is_zero() {
        if std::thread::panicking() {
            return Err(Error::Unwinding);
        }
        if cancelled() {
            return Err(Error::Cancelled);
        }
        yield_now();
        return Ok(());
    }
    match call::block(Deadline::after(d), |_, _| {}) {
        Err(Error::TimedOut) => Ok(()),
        Ok(()) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether the running coroutine has been cancelled.
pub fn cancelled() -> bool {
    machine::current()
        .and_then(|m| m.sched.running())
        .is_some_and(|co| co.cancelled.get())
}

/// The running coroutine's id, if called inside a coroutine.
pub fn current_id() -> Option<CoroutineId> {
    let m = machine::current()?;
    let co = m.sched.running()?;
    Some(CoroutineId {
        machine: m.id,
        key: co.key,
    })
}

/// Number of live coroutines on the current machine.
pub fn coroutine_count() -> usize {
    machine::current().map_or(0, |m| m.sched.live())
}

impl CoroutineId {
    /// A number for logs: unique within the machine while the coroutine lives.
    pub fn serial(&self) -> u32 {
        self.key.serial()
    }
}

/// A one-value slot filled on one thread and awaited on another (remote join, blocking pool).
pub(crate) struct Oneshot<T> {
    state: Mutex<OneshotState<T>>,
    /// For waiters that are plain threads, not coroutines.
    cv: Condvar,
}

struct OneshotState<T> {
    value: Option<T>,
    waiter: Option<RemoteWaiter>,
    closed: bool,
}

impl<T> Oneshot<T> {
    pub(crate) fn new() -> Arc<Oneshot<T>> {
        Arc::new(Oneshot {
            state: Mutex::new(OneshotState {
                value: None,
                waiter: None,
                closed: false,
            }),
            cv: Condvar::new(),
        })
    }

    /// Fills the slot and wakes whoever waits.
    pub(crate) fn send(&self, v: T) {
        let waiter = {
            let mut s = lock(&self.state);
            s.value = Some(v);
            s.waiter.take()
        };
        self.cv.notify_all();
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// Marks the slot as never to be filled (the producer went away).
    pub(crate) fn close(&self) {
        let waiter = {
            let mut s = lock(&self.state);
            s.closed = true;
            s.waiter.take()
        };
        self.cv.notify_all();
        if let Some(w) = waiter {
            w.wake();
        }
    }

    /// Waits in a coroutine for the value.
    pub(crate) fn recv(&self, deadline: Deadline) -> Result<T> {
        loop {
            let mut registered = false;
            {
                let mut s = lock(&self.state);
                if let Some(v) = s.value.take() {
                    return Ok(v);
                }
                if s.closed {
                    return Err(Error::Closed);
                }
            }
            let r = call::block(deadline, |w, m| {
                let mut s = lock(&self.state);
                // Re-check under the lock: the value may have arrived meanwhile.
                if s.value.is_some() || s.closed {
                    w.wake_local(m, crate::scheduler::Wake::Ready);
                } else {
                    s.waiter = Some(call::remote_waiter(w, m));
                    registered = true;
                }
            });
            if let Err(e) = r {
                let mut s = lock(&self.state);
                if registered {
                    s.waiter = None;
                }
                // The value won the race with the deadline: deliver it, never drop it.
                if let Some(v) = s.value.take() {
                    return Ok(v);
                }
                return Err(e);
            }
        }
    }

    /// Waits on a plain thread (not a coroutine) for the value.
    pub(crate) fn recv_thread(&self) -> Result<T> {
        let mut s = lock(&self.state);
        loop {
            if let Some(v) = s.value.take() {
                return Ok(v);
            }
            if s.closed {
                return Err(Error::Closed);
            }
            s = self.cv.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Locks a std mutex that is never held across a switch; a poisoned lock still holds valid
/// data here (every critical section is a few field assignments).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The handle of a coroutine spawned on another machine.
pub struct RemoteJoin<T> {
    slot: Arc<Oneshot<std::thread::Result<T>>>,
}

/// Closes the oneshot if the spawned closure is dropped without running (machine stopped).
struct CloseOnDrop<T>(Option<Arc<Oneshot<T>>>);

impl<T> Drop for CloseOnDrop<T> {
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.close();
        }
    }
}

pub(crate) fn spawn_remote<F, T>(remote: &Remote, f: F) -> RemoteJoin<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = Oneshot::new();
    let mut guard = CloseOnDrop(Some(slot.clone()));
    remote.post(Msg::Spawn(Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        if let Some(s) = guard.0.take() {
            s.send(result);
        }
    })));
    RemoteJoin { slot }
}

impl<T> RemoteJoin<T> {
    /// Waits, in a coroutine on any machine, for the result.
    pub fn join(self, deadline: impl Into<Deadline>) -> std::result::Result<T, JoinError> {
        match self.slot.recv(deadline.into()) {
            Ok(r) => r.map_err(JoinError::Panicked),
            Err(e) => Err(JoinError::Wait(e)),
        }
    }

    /// Waits on a plain thread (not in a coroutine) for the result.
    pub fn join_thread(self) -> std::result::Result<T, JoinError> {
        match self.slot.recv_thread() {
            Ok(r) => r.map_err(JoinError::Panicked),
            Err(e) => Err(JoinError::Wait(e)),
        }
    }
}
