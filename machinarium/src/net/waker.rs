//! Waking one parked stream from any thread, and a doorbell a coroutine waits on beside its
//! streams. Both carry a "look again" signal, no data: the owner keeps what changed elsewhere
//! (a queue behind a lock) and looks at it when woken, and before it parks or waits again.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::machine::{self, Msg, Remote};
use crate::net::socket::Socket;
use crate::net::{DetachedStream, ParkKey, Stream};
use crate::reactor::IoKey;

/// Wakes the function parked on one stream, from any thread: it runs with
/// [`crate::ParkEvent::Interrupted`]. A stream that is not parked when the machine reads the
/// message (its owner is running, or waits in a coroutine) is left alone: the owner must look
/// at its queue before every park. A stream closed since is never confused with a newer one
/// in its slot (the slot's epoch differs).
#[derive(Clone)]
pub struct StreamWaker {
    remote: Arc<Remote>,
    io: IoKey,
}

impl StreamWaker {
    /// The waker of the stream behind `key`; None outside a machine.
    pub fn new(key: &ParkKey) -> Option<StreamWaker> {
        let m = machine::current()?;
        Some(StreamWaker {
            remote: m.remote.clone(),
            io: key.io(),
        })
    }

    /// Asks the stream's machine to run the stream's parked function now.
    pub fn wake(&self) {
        self.remote.post(Msg::WakeStream(self.io));
    }
}

/// The waiting side of a doorbell: registered with its machine like a stream, so a coroutine
/// waits for it and its streams at once (`wait_any` with [`Bell::park_key`]).
pub struct Bell {
    stream: Stream,
}

/// The ringing side of a doorbell: `Send` and cheap to clone; any thread rings.
#[derive(Clone)]
pub struct BellRinger {
    tx: Arc<UnixStream>,
}

/// A new doorbell, its waiting side registered with the current machine.
pub fn bell() -> Result<(Bell, BellRinger)> {
    machine::current().ok_or(Error::NotInCoroutine)?;
    let (rx, tx) = UnixStream::pair()?;
    rx.set_nonblocking(true)?;
    tx.set_nonblocking(true)?;
    let stream = DetachedStream::new(Socket::Unix(rx)).attach()?;
    Ok((Bell { stream }, BellRinger { tx: Arc::new(tx) }))
}

impl Bell {
    /// A key to wait for a ring with [`crate::net::wait_any`] or to park on.
    pub fn park_key(&self) -> ParkKey {
        self.stream.park_key()
    }

    /// Forgets the rings so far (call before looking at what they announced).
    pub fn clear(&mut self) -> Result<()> {
        let mut buf = [0u8; 64];
        while let Some(n) = self.stream.try_read(&mut buf)? {
            if n == 0 {
                return Err(Error::Closed);
            }
        }
        Ok(())
    }
}

impl BellRinger {
    /// Rings. A bell with unread rings is not rung again (the socket's buffer is full only
    /// when thousands are unread, and one is enough).
    pub fn ring(&self) {
        match (&*self.tx).write(&[1]) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {} // the bell is gone: nobody waits any more
        }
    }
}
