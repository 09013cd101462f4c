//! Machines: OS threads, each with a scheduler, an event loop and a timer heap.
//!
//! A machine runs its main function as a coroutine and loops: drain the inbox (wakes, spawns
//! and stop requests from other threads), fire due timers, run ready coroutines, poll io. When
//! the main function returns or `stop` is called, every coroutine is cancelled and the machine
//! exits once they have all finished (stragglers are leaked after a grace period, never freed
//! while suspended).

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;

use crate::coroutine::{self, JoinHandle};
use crate::overflow;
use crate::reactor::{Dispatched, IoKey, ParkEvent, Reactor, WAKER_TOKEN};
use crate::scheduler::{CoKey, Scheduler, Wake};
use crate::timer::{Target, Timers};

/// Identifies a machine in this process.
pub type MachineId = u32;

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// How often cached stacks are trimmed, and how many hot ones are kept resident.
const TRIM_EVERY: Duration = Duration::from_secs(1);
const HOT_STACKS: usize = 32;

/// Scheduler passes with coroutines still ready before the loop polls io anyway.
const POLL_EVERY_PASSES: u32 = 16;

thread_local! {
    static CURRENT: Cell<*const Machine> = const { Cell::new(std::ptr::null()) };
}

/// The machine of the calling thread, if it runs one.
///
/// The reference is valid while the machine runs, which covers every coroutine and every
/// callback it executes; callers never keep it beyond the current call.
pub(crate) fn current() -> Option<&'static Machine> {
    let ptr = CURRENT.with(|c| c.get());
    // SAFETY: CURRENT points at the machine that `Machine::run` keeps alive on this thread's
    // stack for as long as its loop runs, and is reset before that machine is dropped. Only
    // code running inside that loop can observe a non-null pointer.
    unsafe { ptr.as_ref() }
}

/// Settings of a machine.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    /// Coroutine stack size in 4 KiB pages (Odyssey's `coroutine_stack_size`, default 16).
    pub stack_pages: usize,
    /// Guard pages below each stack (at least 1).
    pub guard_pages: usize,
    /// Stacks kept for reuse (Odyssey's `cache_coroutine`).
    pub coroutine_cache: usize,
    /// How long a stopping machine waits for cancelled coroutines before leaking them.
    pub stop_grace: Duration,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            stack_pages: if cfg!(debug_assertions) { 64 } else { 16 },
            guard_pages: 1,
            coroutine_cache: 1024,
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// A message for a machine from another thread.
pub(crate) enum Msg {
    Wake(CoKey, u32),
    Spawn(Box<dyn FnOnce() + Send>),
    WakeParked,
    /// Run the function parked on one stream (`StreamWaker`), if it is parked.
    WakeStream(IoKey),
    /// A socket detached from this machine went elsewhere or was closed: free its slot.
    FreeSlot(IoKey),
    Stop,
}

/// The part of a machine other threads may touch: its inbox and the waker of its poll.
pub(crate) struct Remote {
    pub(crate) id: MachineId,
    inbox: SegQueue<Msg>,
    notified: AtomicBool,
    waker: mio::Waker,
    /// The machine's poll, for other threads to take a socket that leaves it out of it.
    pub(crate) registry: mio::Registry,
    /// Live coroutines, as of the machine's last poll (for other threads' statistics).
    live: AtomicUsize,
}

impl Remote {
    /// Queues a message and wakes the machine if it may be sleeping. Wakes coalesce: one
    /// write to the eventfd per batch of messages.
    pub(crate) fn post(&self, msg: Msg) {
        self.inbox.push(msg);
        if !self.notified.swap(true, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }

    /// Queues a message the machine reads at its next turn, without waking it: for
    /// housekeeping that may wait.
    pub(crate) fn post_quiet(&self, msg: Msg) {
        self.inbox.push(msg);
    }

    pub(crate) fn post_wake(&self, key: CoKey, epoch: u32) {
        self.post(Msg::Wake(key, epoch));
    }
}

/// One machine's state, owned by its thread.
pub(crate) struct Machine {
    pub(crate) id: MachineId,
    pub(crate) name: String,
    pub(crate) sched: Scheduler,
    pub(crate) timers: RefCell<Timers>,
    pub(crate) reactor: Reactor,
    pub(crate) remote: Arc<Remote>,
    /// Read buffers let go of, for the next reader (`buffers.rs`).
    pub(crate) buffers: RefCell<Vec<Vec<u8>>>,
    stopping: Cell<bool>,
    stop_grace: Duration,
}

/// A handle to a machine, usable from any thread.
#[derive(Clone)]
pub struct MachineHandle {
    remote: Arc<Remote>,
    thread: Arc<Mutex<Option<thread::JoinHandle<()>>>>,
    name: Arc<str>,
}

impl std::fmt::Debug for MachineHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MachineHandle({} #{})", self.name, self.remote.id)
    }
}

/// How many sockets are registered with the current machine's poll, detached ones that still
/// have it as their home included (0 outside a machine).
pub fn registered_sockets() -> usize {
    current().map_or(0, |m| m.reactor.registered())
}

/// Starts a machine named `name` whose main coroutine runs `main`. The machine stops when
/// `main` returns (other coroutines are cancelled) or when [`MachineHandle::stop`] is called.
pub fn machine_create<F>(name: &str, config: MachineConfig, main: F) -> io::Result<MachineHandle>
where
    F: FnOnce() + Send + 'static,
{
    overflow::install();
    let poll = mio::Poll::new()?;
    let waker = mio::Waker::new(poll.registry(), WAKER_TOKEN)?;
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let remote = Arc::new(Remote {
        id,
        inbox: SegQueue::new(),
        notified: AtomicBool::new(false),
        waker,
        registry: poll.registry().try_clone()?,
        live: AtomicUsize::new(0),
    });
    let machine_remote = remote.clone();
    let thread_name = name.to_string();
    let thread = thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let reactor = match Reactor::new(poll) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("machinarium: machine '{thread_name}' cannot start: {e}");
                    return;
                }
            };
            let machine = Machine {
                id,
                name: thread_name,
                sched: Scheduler::new(
                    config.stack_pages,
                    config.guard_pages,
                    config.coroutine_cache,
                ),
                timers: RefCell::new(Timers::default()),
                reactor,
                remote: machine_remote,
                buffers: RefCell::new(Vec::new()),
                stopping: Cell::new(false),
                stop_grace: config.stop_grace,
            };
            machine.run(Box::new(main));
        })?;
    Ok(MachineHandle {
        remote,
        thread: Arc::new(Mutex::new(Some(thread))),
        name: name.into(),
    })
}

impl MachineHandle {
    /// The machine's id.
    pub fn id(&self) -> MachineId {
        self.remote.id
    }

    /// The machine's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Spawns `f` as a coroutine on this machine; its result comes back through the handle.
    pub fn spawn<F, T>(&self, f: F) -> coroutine::RemoteJoin<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        coroutine::spawn_remote(&self.remote, f)
    }

    /// Runs `f` as a coroutine on this machine, without a handle (fire and forget).
    pub fn spawn_detached<F>(&self, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        self.remote.post(Msg::Spawn(Box::new(f)));
    }

    /// Coroutines alive on this machine when it last polled for events (parked streams are
    /// not coroutines and not counted).
    pub fn coroutines(&self) -> usize {
        self.remote.live.load(Ordering::Relaxed)
    }

    /// Runs every function parked on this machine's streams now, with
    /// [`ParkEvent::Interrupted`].
    pub fn wake_parked(&self) {
        self.remote.post(Msg::WakeParked);
    }

    /// Asks the machine to stop: every coroutine is cancelled, and the thread exits once they
    /// have finished.
    pub fn stop(&self) {
        self.remote.post(Msg::Stop);
    }

    /// Waits for the machine's thread to exit. Only the first call on any clone waits.
    pub fn join(&self) -> thread::Result<()> {
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        match thread {
            Some(t) => t.join(),
            None => Ok(()),
        }
    }
}

/// Runs `f` in a coroutine on a new machine and returns its result (or its panic) to the
/// calling thread. The machine stops when `f` returns. Handy for tests and tools.
pub fn run<F, T>(f: F) -> thread::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    run_with(MachineConfig::default(), f)
}

/// [`run`] with explicit machine settings.
pub fn run_with<F, T>(config: MachineConfig, f: F) -> thread::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot: Arc<Mutex<Option<thread::Result<T>>>> = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let handle = machine_create("run", config, move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        if let Ok(mut out) = out.lock() {
            *out = Some(r);
        }
    })
    .map_err(|e| Box::new(e) as Box<dyn std::any::Any + Send>)?;
    handle.join()?;
    let result = slot.lock().ok().and_then(|mut s| s.take());
    result.unwrap_or_else(|| Err(Box::new("machine exited without a result")))
}

/// The id of the calling thread's machine, if it runs one.
pub fn current_machine_id() -> Option<MachineId> {
    current().map(|m| m.id)
}

/// The name of the calling thread's machine, if it runs one.
pub fn current_machine_name() -> Option<String> {
    current().map(|m| m.name.clone())
}

impl Machine {
    fn run(&self, main: Box<dyn FnOnce()>) {
        let _altstack = overflow::AltStack::ensure();
        CURRENT.with(|c| c.set(self as *const Machine));
        let main: JoinHandle<()> = match coroutine::spawn_main(self, main) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("machinarium: machine '{}' cannot start: {e}", self.name);
                CURRENT.with(|c| c.set(std::ptr::null()));
                return;
            }
        };
        let mut stop_started: Option<Instant> = None;
        let mut dispatched = Dispatched::default();
        let mut passes_without_poll = 0u32;
        let mut trimmed_at = Instant::now();
        loop {
            self.drain_inbox();
            self.fire_timers();
            self.sched.run_ready();
            if main.is_finished() && !self.stopping.get() {
                self.begin_stop();
            }
            if self.stopping.get() {
                let since = *stop_started.get_or_insert_with(Instant::now);
                if self.sched.live() == 0 {
                    break;
                }
                if since.elapsed() > self.stop_grace {
                    eprintln!(
                        "machinarium: machine '{}': {} coroutine(s) ignored cancellation; \
                         leaking their stacks",
                        self.name,
                        self.sched.live()
                    );
                    self.sched.leak_all();
                    break;
                }
            }
            // Coroutines still ready: run them again before asking the kernel, but poll at
            // least every few passes so io is never starved.
            if self.sched.has_ready() && passes_without_poll < POLL_EVERY_PASSES {
                passes_without_poll += 1;
                continue;
            }
            passes_without_poll = 0;
            if trimmed_at.elapsed() >= TRIM_EVERY {
                self.sched.trim_stacks(HOT_STACKS);
                trimmed_at = Instant::now();
            }
            self.remote.live.store(self.sched.live(), Ordering::Relaxed);
            let timeout = self.poll_timeout(stop_started.is_some());
            if let Err(e) = self.reactor.poll(timeout, &mut dispatched) {
                eprintln!("machinarium: machine '{}': poll failed: {e}", self.name);
                thread::sleep(Duration::from_millis(10));
            }
            self.apply(&mut dispatched);
        }
        // Parked streams hold sockets (and whatever their functions captured): close them.
        drop(self.reactor.take_all_parked());
        CURRENT.with(|c| c.set(std::ptr::null()));
    }

    fn begin_stop(&self) {
        self.stopping.set(true);
        self.sched.cancel_all();
        drop(self.reactor.take_all_parked());
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    fn drain_inbox(&self) {
        self.remote.notified.store(false, Ordering::Release);
        while let Some(msg) = self.remote.inbox.pop() {
            match msg {
                Msg::Wake(key, epoch) => {
                    self.sched.wake(key, epoch, Wake::Ready);
                }
                Msg::Spawn(f) => {
                    if let Err(e) = coroutine::spawn_boxed(self, f) {
                        eprintln!("machinarium: machine '{}': spawn failed: {e}", self.name);
                    }
                }
                Msg::WakeStream(io) => {
                    if let Some((f, timed)) = self.reactor.take_parked_now(io) {
                        if timed {
                            self.timers.borrow_mut().disarmed();
                        }
                        self.spawn_parked(f, ParkEvent::Interrupted);
                    }
                }
                Msg::FreeSlot(io) => drop(self.reactor.release(io)),
                Msg::WakeParked => {
                    for f in self.reactor.take_all_parked() {
                        self.spawn_parked(f, ParkEvent::Interrupted);
                    }
                }
                Msg::Stop => self.begin_stop(),
            }
        }
    }

    fn fire_timers(&self) {
        let now = Instant::now();
        loop {
            let due = self.timers.borrow_mut().pop_due(now);
            let Some(target) = due else { break };
            match target {
                Target::Call(key, epoch) => {
                    if self.sched.wake(key, epoch, Wake::TimedOut) {
                        self.timers.borrow_mut().fired();
                    }
                }
                Target::Park(key, epoch) => {
                    if let Some(f) = self.reactor.take_parked(key, epoch) {
                        self.timers.borrow_mut().fired();
                        self.spawn_parked(f, ParkEvent::TimedOut);
                    }
                }
            }
        }
        if self.timers.borrow().needs_compaction() {
            self.compact_timers();
        }
    }

    fn compact_timers(&self) {
        let mut timers = self.timers.borrow_mut();
        timers.retain(|t| match t {
            Target::Call(key, epoch) => self
                .sched
                .get(key)
                .is_some_and(|co| co.pending.get() && co.call_gen.get() == epoch),
            Target::Park(key, epoch) => self.reactor.is_parked(key, epoch),
        });
    }

    fn poll_timeout(&self, stopping: bool) -> Option<Duration> {
        if self.sched.has_ready() || !self.remote.inbox.is_empty() {
            return Some(Duration::ZERO);
        }
        let mut timeout = self
            .timers
            .borrow()
            .next()
            .map(|at| at.saturating_duration_since(Instant::now()));
        if stopping {
            // Re-check the grace period even if nothing else happens.
            timeout = Some(timeout.map_or(Duration::from_millis(100), |t| {
                t.min(Duration::from_millis(100))
            }));
        }
        // Wake at least every TRIM_EVERY so cold stacks are trimmed on an idle machine too.
        timeout = Some(timeout.map_or(TRIM_EVERY, |t| t.min(TRIM_EVERY)));
        // Round up to whole milliseconds (epoll's resolution) so a timer is never polled early
        // in a busy loop.
        timeout.map(|t| {
            let ms = t.as_nanos().div_ceil(1_000_000) as u64;
            Duration::from_millis(ms)
        })
    }

    fn apply(&self, d: &mut Dispatched) {
        for w in d.wakes.drain(..) {
            self.sched.wake(w.key, w.epoch, Wake::Ready);
        }
        for _ in 0..std::mem::take(&mut d.disarmed) {
            self.timers.borrow_mut().disarmed();
        }
        for f in d.parked.drain(..) {
            self.spawn_parked(f, ParkEvent::Readable);
        }
    }

    fn spawn_parked(&self, f: crate::reactor::Parked, ev: ParkEvent) {
        if let Err(e) = coroutine::spawn_boxed(self, Box::new(move || f(ev))) {
            eprintln!("machinarium: machine '{}': spawn failed: {e}", self.name);
        }
    }
}
