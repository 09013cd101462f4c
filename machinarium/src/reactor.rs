//! The event loop's io side: one `mio::Poll` per machine, a slab of io slots, readiness.
//!
//! Every fd is registered once, edge-triggered, for both directions. A slot keeps readiness
//! bits that are set by events and cleared only when a syscall says `WouldBlock`, and at most
//! one waiting reader and one writer. Events are dispatched only while no coroutine runs, so
//! "try the syscall, then wait" has no lost-wakeup window. Tokens carry the slot generation so
//! an event for a closed fd never reaches the slot's next owner.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};

use crate::call::Waiter;

/// Readable bit of [`IoSlot::ready`].
pub(crate) const READ: u8 = 1;
/// Writable bit of [`IoSlot::ready`].
pub(crate) const WRITE: u8 = 2;
/// The peer closed its side or the socket failed; never cleared. While it is set, a short
/// read does not clear [`READ`] (the end of stream must still be read).
pub(crate) const CLOSED: u8 = 4;

/// Token of the machine's `mio::Waker`.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Identifies a registered fd: slot index and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct IoKey {
    idx: u32,
    epoch: u32,
}

impl IoKey {
    fn token(self) -> Token {
        Token(((self.epoch as usize) << 32) | self.idx as usize)
    }

    fn from_token(t: Token) -> IoKey {
        IoKey {
            idx: t.0 as u32,
            epoch: (t.0 >> 32) as u32,
        }
    }
}

/// Why a parked stream's function runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParkEvent {
    /// The stream has bytes to read, or the peer closed it, or it failed.
    Readable,
    /// The park deadline passed first.
    TimedOut,
    /// The machine was asked to wake every parked stream (`MachineHandle::wake_parked`),
    /// for example so that idle clients notice a shutdown.
    Interrupted,
}

/// A function waiting for its stream to become readable, with no coroutine behind it.
pub(crate) type Parked = Box<dyn FnOnce(ParkEvent)>;

#[derive(Default)]
struct IoSlot {
    epoch: u32,
    used: bool,
    ready: u8,
    reader: Option<Waiter>,
    writer: Option<Waiter>,
    parked: Option<Parked>,
    park_epoch: u32,
    /// The current park armed a timer.
    park_timer: bool,
}

/// What dispatching events asks the machine to do once no slot is borrowed.
#[derive(Default)]
pub(crate) struct Dispatched {
    pub(crate) wakes: Vec<Waiter>,
    pub(crate) parked: Vec<Parked>,
    /// Park timers made stale by readiness (for the timer heap's live count).
    pub(crate) disarmed: usize,
}

/// The io registry of one machine.
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    registry: Registry,
    slots: RefCell<Vec<IoSlot>>,
    free: RefCell<Vec<u32>>,
}

impl Reactor {
    pub(crate) fn new(poll: Poll) -> io::Result<Reactor> {
        let registry = poll.registry().try_clone()?;
        Ok(Reactor {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(1024)),
            registry,
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        })
    }

    /// Registers `fd` (edge-triggered, both directions); it starts as ready both ways, so the
    /// first syscall is tried without waiting for an edge that may have come before.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<IoKey> {
        let mut slots = self.slots.borrow_mut();
        let idx = match self.free.borrow_mut().pop() {
            Some(idx) => idx,
            None => {
                slots.push(IoSlot::default());
                (slots.len() - 1) as u32
            }
        };
        let slot = &mut slots[idx as usize];
        slot.used = true;
        slot.ready = READ | WRITE;
        let key = IoKey {
            idx,
            epoch: slot.epoch,
        };
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = self
            .registry
            .register(&mut SourceFd(&fd), key.token(), interest)
        {
            slot.used = false;
            self.free.borrow_mut().push(idx);
            return Err(e);
        }
        Ok(key)
    }

    /// Removes `fd` from the poll and frees its slot. Must run before the fd is closed.
    /// Returns the parked function, if any, for the caller to drop outside any borrow.
    pub(crate) fn deregister(&self, fd: RawFd, key: IoKey) -> Option<Parked> {
        let _ = self.registry.deregister(&mut SourceFd(&fd));
        self.release(key)
    }

    /// Frees the slot of `key` (its fd is out of the poll already, or being closed); events
    /// still in flight for it find a newer generation and are dropped. Returns the parked
    /// function, if any, for the caller to drop outside any borrow.
    pub(crate) fn release(&self, key: IoKey) -> Option<Parked> {
        let mut slots = self.slots.borrow_mut();
        let slot = slots.get_mut(key.idx as usize)?;
        if !slot.used || slot.epoch != key.epoch {
            return None;
        }
        let parked = slot.parked.take();
        *slot = IoSlot {
            epoch: slot.epoch.wrapping_add(1),
            ..IoSlot::default()
        };
        self.free.borrow_mut().push(key.idx);
        parked
    }

    /// How many sockets are registered (slots in use).
    pub(crate) fn registered(&self) -> usize {
        self.slots.borrow().iter().filter(|s| s.used).count()
    }

    /// Whether `key` is a live registration of this reactor.
    pub(crate) fn owns(&self, key: IoKey) -> bool {
        self.with_slot(key, |_| ()).is_some()
    }

    fn with_slot<R>(&self, key: IoKey, f: impl FnOnce(&mut IoSlot) -> R) -> Option<R> {
        let mut slots = self.slots.borrow_mut();
        match slots.get_mut(key.idx as usize) {
            Some(slot) if slot.used && slot.epoch == key.epoch => Some(f(slot)),
            _ => None,
        }
    }

    /// A syscall said `WouldBlock` for `bits`: forget that readiness until the next edge.
    pub(crate) fn clear_ready(&self, key: IoKey, bits: u8) {
        self.with_slot(key, |s| s.ready &= !bits);
    }

    /// Whether readiness `bits` are set (an edge came since the last `WouldBlock`).
    pub(crate) fn is_ready(&self, key: IoKey, bits: u8) -> bool {
        self.with_slot(key, |s| s.ready & bits != 0)
            .unwrap_or(false)
    }

    /// Makes `w` the waiter for `bits` (READ or WRITE) on `key`. Returns false (and registers
    /// nothing) when the readiness is already there.
    pub(crate) fn set_waiter(&self, key: IoKey, bits: u8, w: Waiter) -> bool {
        self.with_slot(key, |s| {
            if s.ready & bits != 0 {
                return false;
            }
            if bits == READ {
                s.reader = Some(w);
            } else {
                s.writer = Some(w);
            }
            true
        })
        .unwrap_or(false)
    }

    /// Unlinks waiter `w` from `key` (after a timeout or cancel).
    pub(crate) fn clear_waiter(&self, key: IoKey, w: Waiter) {
        self.with_slot(key, |s| {
            if s.reader == Some(w) {
                s.reader = None;
            }
            if s.writer == Some(w) {
                s.writer = None;
            }
        });
    }

    /// Parks `f` on `key` until readable; returns `f` back if the stream is readable already.
    pub(crate) fn park(&self, key: IoKey, f: Parked, timer: bool) -> Result<u32, Parked> {
        let mut slots = self.slots.borrow_mut();
        match slots.get_mut(key.idx as usize) {
            Some(s)
                if s.used && s.epoch == key.epoch && s.ready & READ == 0 && s.parked.is_none() =>
            {
                s.park_epoch = s.park_epoch.wrapping_add(1);
                s.parked = Some(f);
                s.park_timer = timer;
                Ok(s.park_epoch)
            }
            _ => Err(f),
        }
    }

    /// Takes the parked function of `key` if its park generation is still `epoch` (timer fired).
    pub(crate) fn take_parked(&self, key: IoKey, epoch: u32) -> Option<Parked> {
        self.with_slot(key, |s| {
            if s.park_epoch == epoch {
                s.parked.take()
            } else {
                None
            }
        })
        .flatten()
    }

    /// Takes the parked function of `key`, whatever its park generation, and whether its
    /// park armed a timer (now stale).
    pub(crate) fn take_parked_now(&self, key: IoKey) -> Option<(Parked, bool)> {
        self.with_slot(key, |s| {
            let f = s.parked.take()?;
            Some((f, std::mem::take(&mut s.park_timer)))
        })
        .flatten()
    }

    /// Whether `key` still has the park of generation `epoch` (for timer compaction).
    pub(crate) fn is_parked(&self, key: IoKey, epoch: u32) -> bool {
        self.with_slot(key, |s| s.parked.is_some() && s.park_epoch == epoch)
            .unwrap_or(false)
    }

    /// Takes every parked function (machine exit).
    pub(crate) fn take_all_parked(&self) -> Vec<Parked> {
        self.slots
            .borrow_mut()
            .iter_mut()
            .filter_map(|s| s.parked.take())
            .collect()
    }

    /// Waits for events up to `timeout` and records what they make ready.
    pub(crate) fn poll(&self, timeout: Option<Duration>, out: &mut Dispatched) -> io::Result<()> {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut slots = self.slots.borrow_mut();
        for ev in events.iter() {
            if ev.token() == WAKER_TOKEN {
                continue;
            }
            let key = IoKey::from_token(ev.token());
            let Some(slot) = slots.get_mut(key.idx as usize) else {
                continue;
            };
            if !slot.used || slot.epoch != key.epoch {
                continue;
            }
            if ev.is_read_closed() || ev.is_error() {
                slot.ready |= CLOSED;
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                slot.ready |= READ;
                out.wakes.extend(slot.reader.take());
                if let Some(f) = slot.parked.take() {
                    out.parked.push(f);
                    out.disarmed += usize::from(std::mem::take(&mut slot.park_timer));
                }
            }
            if ev.is_writable() || ev.is_write_closed() || ev.is_error() {
                slot.ready |= WRITE;
                out.wakes.extend(slot.writer.take());
            }
        }
        Ok(())
    }
}
