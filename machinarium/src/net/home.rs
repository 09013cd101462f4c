//! The machine a detached socket stays registered with.
//!
//! Detaching a stream used to take it out of its machine's poll, and attaching it put it into
//! another's: two `epoll_ctl` calls each time a pooled server connection went from one client
//! to the next, even when both clients lived on the same machine. Now a detached socket keeps
//! its registration (and its slot, where edge-triggered events go on landing while nobody
//! holds it) at the machine it left, its home. Attached there again, it costs no system call;
//! attached on another machine, it leaves its old poll first (`epoll_ctl` on that machine's
//! poll from this thread, which the kernel allows) and the home frees the slot when it next
//! reads its inbox. A detached socket closed away from home only tells the home to free the
//! slot: closing the descriptor takes it out of every poll.

use std::os::fd::RawFd;
use std::sync::Arc;

use mio::unix::SourceFd;

use crate::error::{Error, Result};
use crate::machine::{self, MachineId, Msg, Remote};
use crate::reactor::IoKey;

/// A registration a detached socket keeps at the machine it left.
pub(crate) struct Home {
    remote: Arc<Remote>,
    key: IoKey,
}

impl Home {
    /// Keeps the registration `key` of the current machine for a socket being detached.
    pub(crate) fn here(key: IoKey) -> Option<Home> {
        let m = machine::current()?;
        Some(Home {
            remote: m.remote.clone(),
            key,
        })
    }

    /// The machine it is registered with.
    pub(crate) fn machine(&self) -> MachineId {
        self.remote.id
    }

    /// Registers `fd` with the current machine: its old slot when this is its home, else a
    /// new one (after leaving the old home's poll).
    pub(crate) fn attach(home: Option<Home>, fd: RawFd) -> Result<IoKey> {
        let m = machine::current().ok_or(Error::NotInCoroutine)?;
        if let Some(home) = home {
            if home.remote.id == m.id && m.reactor.owns(home.key) {
                let home = std::mem::ManuallyDrop::new(home);
                return Ok(home.key);
            }
            // Out of the old poll (even when that is this machine's and its slot was somehow
            // lost, so that registering again cannot meet EEXIST) before the new one has it:
            // no other machine may wake for it from now on.
            let _ = home.remote.registry.deregister(&mut SourceFd(&fd));
        }
        Ok(m.reactor.register(fd)?)
    }
}

impl Drop for Home {
    /// The socket has left (or is about to be closed): its home's slot is free. The caller
    /// has taken the descriptor out of the home's poll, or is closing it.
    fn drop(&mut self) {
        match machine::current() {
            Some(m) if m.id == self.remote.id => drop(m.reactor.release(self.key)),
            _ => self.remote.post_quiet(Msg::FreeSlot(self.key)),
        }
    }
}
