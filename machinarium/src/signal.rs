//! Signals delivered into a coroutine through a signalfd (Linux).
//!
//! Block the signals in the main thread with [`block_signals`] before any machine or thread
//! starts (masks are inherited), then create a [`SignalFd`] on the machine that should handle
//! them and call [`SignalFd::wait`] in a coroutine.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{Error, Result};
use crate::machine;
use crate::net::stream::wait_io;
use crate::reactor::{IoKey, READ};
use crate::timer::Deadline;

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks `signals` in the calling thread (and so in every thread it starts afterwards).
pub fn block_signals(signals: &[i32]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: changes the calling thread's mask only.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// A signalfd registered with the current machine.
pub struct SignalFd {
    fd: OwnedFd,
    io: IoKey,
    _local: std::marker::PhantomData<*const ()>,
}

impl SignalFd {
    /// Receives `signals` (which must be blocked in every thread) on the current machine.
    pub fn new(signals: &[i32]) -> Result<SignalFd> {
        let m = machine::current().ok_or(Error::NotInCoroutine)?;
        let set = sigset(signals);
        // SAFETY: a new signalfd for a valid set; the result is checked and owned.
        let raw = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error().into());
        }
        // SAFETY: `raw` is a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let io = m.reactor.register(fd.as_raw_fd())?;
        Ok(SignalFd {
            fd,
            io,
            _local: std::marker::PhantomData,
        })
    }

    /// Waits for the next signal; returns its number.
    pub fn wait(&self, deadline: impl Into<Deadline>) -> Result<i32> {
        let deadline = deadline.into();
        loop {
            // SAFETY: siginfo is plain data; zeroed is valid.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `size` bytes into `info`.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if n == size as isize {
                return Ok(info.ssi_signo as i32);
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => wait_io(self.io, READ, deadline)?,
                io::ErrorKind::Interrupted => {}
                _ => return Err(err.into()),
            }
        }
    }
}

impl Drop for SignalFd {
    fn drop(&mut self) {
        if let Some(m) = machine::current() {
            drop(m.reactor.deregister(self.fd.as_raw_fd(), self.io));
        }
    }
}
