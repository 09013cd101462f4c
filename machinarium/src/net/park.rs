//! Parking streams without a coroutine: a function runs when any of a group of streams becomes
//! readable, or at a deadline. This is how an idle client waits between transactions, holding
//! only its structs — and, when it keeps a server, wakes for whichever side speaks first.

use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::rc::Rc;

use crate::machine::{self, Machine};
use crate::net::socket;
use crate::reactor::{IoKey, ParkEvent, Parked, READ};
use crate::timer::{Deadline, Target};

/// Names a stream to park (from `Stream::park_key` or `TlsStream::park_key`). `!Send`: it is
/// only meaningful on the stream's machine, and only while the stream lives.
#[derive(Clone, Copy, Debug)]
pub struct ParkKey {
    io: IoKey,
    readable: bool,
    _local: PhantomData<*const ()>,
}

impl ParkKey {
    pub(crate) fn io(&self) -> IoKey {
        self.io
    }
}

/// Readiness bits are optimistic (set at attach, kept until `WouldBlock`); find out for real
/// whether input waits, so that an idle stream does not wake at once.
pub(crate) fn key_for(io: IoKey, fd: BorrowedFd<'_>, pending: bool) -> ParkKey {
    let mut readable = pending;
    if let Some(m) = machine::current().filter(|m| m.reactor.is_ready(io, READ)) {
        if socket::has_input(fd) {
            readable = true;
        } else {
            m.reactor.clear_ready(io, READ);
        }
    }
    ParkKey {
        io,
        readable,
        _local: PhantomData,
    }
}

type Wake = Box<dyn FnOnce(usize, ParkEvent)>;

/// The parked parts of a group: each stream's key and park epoch, once parked.
type Group = Rc<RefCell<Vec<Option<(IoKey, u32)>>>>;

/// Parks until one of `keys` is readable (or closed), or the deadline: then `f(index, event)`
/// runs in a new coroutine. `f` usually owns the streams behind the keys; the streams must
/// stay alive until `f` runs (dropping one of them cancels its part of the park). If a stream
/// is readable already, `f` is spawned at once.
pub fn park_any<F>(keys: &[ParkKey], deadline: impl Into<Deadline>, f: F)
where
    F: FnOnce(usize, ParkEvent) + 'static,
{
    let deadline = deadline.into();
    let Some(m) = machine::current() else {
        return f(0, ParkEvent::Readable);
    };
    if let Some(i) = keys
        .iter()
        .position(|k| k.readable || m.reactor.is_ready(k.io, READ))
    {
        return spawn_wake(m, Box::new(f), i, ParkEvent::Readable);
    }
    if let [key] = keys {
        // One stream: no group to coordinate.
        let part: Parked = Box::new(move |ev| f(0, ev));
        return park_one(m, key.io, part, deadline);
    }
    let shared: Rc<Cell<Option<Wake>>> = Rc::new(Cell::new(Some(Box::new(f))));
    // Each key's park epoch, filled in as the parts are parked: a part withdraws only parts
    // of its own group, never a newer park of the same stream.
    let parked: Group = Rc::new(RefCell::new(vec![None; keys.len()]));
    for (i, key) in keys.iter().enumerate() {
        let shared = shared.clone();
        let group = parked.clone();
        let part: Parked = Box::new(move |ev| {
            // The first part of the group to fire takes the function; a later one (fired in
            // the same poll batch) finds it gone and does nothing.
            let Some(f) = shared.take() else { return };
            if let Some(m) = machine::current() {
                for (j, entry) in group.borrow().iter().enumerate() {
                    if let (true, Some((io, epoch))) = (j != i, *entry) {
                        drop(m.reactor.take_parked(io, epoch));
                    }
                }
            }
            f(i, ev);
        });
        // Only the first key carries the deadline's timer.
        let timed = i == 0 && deadline != Deadline::Never;
        match m.reactor.park(key.io, part, timed) {
            Ok(epoch) => {
                parked.borrow_mut()[i] = Some((key.io, epoch));
                if let (true, Deadline::At(at)) = (timed, deadline) {
                    m.timers.borrow_mut().arm(at, Target::Park(key.io, epoch));
                }
            }
            // Readable meanwhile (cannot happen between the check above and here, as no
            // events are dispatched in between), or a stream parked twice: run it now.
            Err(part) => {
                let r =
                    crate::coroutine::spawn_boxed(m, Box::new(move || part(ParkEvent::Readable)));
                if let Err(e) = r {
                    eprintln!("machinarium: cannot spawn for a parked stream: {e}");
                }
            }
        }
    }
}

/// Parks one function on one stream, with the deadline's timer.
fn park_one(m: &Machine, io: IoKey, part: Parked, deadline: Deadline) {
    match m.reactor.park(io, part, deadline != Deadline::Never) {
        Ok(epoch) => {
            if let Deadline::At(at) = deadline {
                m.timers.borrow_mut().arm(at, Target::Park(io, epoch));
            }
        }
        Err(part) => {
            if let Err(e) =
                crate::coroutine::spawn_boxed(m, Box::new(move || part(ParkEvent::Readable)))
            {
                eprintln!("machinarium: cannot spawn for a parked stream: {e}");
            }
        }
    }
}

fn spawn_wake(m: &Machine, f: Wake, i: usize, ev: ParkEvent) {
    if let Err(e) = crate::coroutine::spawn_boxed(m, Box::new(move || f(i, ev))) {
        eprintln!("machinarium: cannot spawn for a parked stream: {e}");
    }
}

/// Waits in the running coroutine until one of `keys` is readable (or closed); returns its
/// index. For waits expected to be short (a query in flight), where parking and respawning
/// would cost more than keeping the coroutine.
pub fn wait_any(keys: &[ParkKey], deadline: impl Into<Deadline>) -> crate::Result<usize> {
    let deadline = deadline.into();
    let m = machine::current().ok_or(crate::Error::NotInCoroutine)?;
    loop {
        if let Some(i) = keys
            .iter()
            .position(|k| k.readable || m.reactor.is_ready(k.io, READ))
        {
            return Ok(i);
        }
        let mut waiter = None;
        let r = crate::call::block(deadline, |w, _| {
            for k in keys {
                m.reactor.set_waiter(k.io, READ, w);
            }
            waiter = Some(w);
        });
        if let Some(w) = waiter {
            for k in keys {
                m.reactor.clear_waiter(k.io, w);
            }
        }
        r?;
    }
}
