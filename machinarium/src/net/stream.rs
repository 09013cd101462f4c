//! A connected stream registered with the current machine, and its detached (`Send`) form.

use std::io::{self, IoSlice, Read, Write};
use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::call::{self, Waiter};
use crate::error::{Error, Result};
use crate::machine::{self, MachineId};
use crate::net::home::Home;
use crate::net::socket::{self, KeepAlive, Socket};
use crate::reactor::{CLOSED, IoKey, ParkEvent, READ, WRITE};
use crate::scheduler::Wake;
use crate::timer::Deadline;

/// A connected TCP or Unix stream, registered with the machine it lives on.
///
/// Every call that may block takes a deadline. `!Send`: use [`Stream::detach`] to move it.
#[derive(Debug)]
pub struct Stream {
    sock: Socket,
    io: IoKey,
    _local: PhantomData<*const ()>,
}

/// A socket no coroutine holds; `Send`, so it can travel to another machine and be attached
/// there with [`DetachedStream::attach`]. One detached from a machine stays registered there
/// (see `home.rs`): attached on that machine again, it costs no system call.
pub struct DetachedStream {
    // Declared first: dropped (the home told) before the socket closes.
    home: Option<Home>,
    sock: Socket,
}

impl std::fmt::Debug for DetachedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DetachedStream(fd {}, home {:?})",
            self.sock.raw_fd(),
            self.home_machine()
        )
    }
}

impl DetachedStream {
    pub(crate) fn new(sock: Socket) -> DetachedStream {
        DetachedStream { home: None, sock }
    }

    /// Registers the socket with the current machine. Data that arrived while the socket was
    /// detached is read by the first `read` without waiting for a new event.
    pub fn attach(self) -> Result<Stream> {
        let DetachedStream { home, sock } = self;
        let io = Home::attach(home, sock.raw_fd())?;
        Ok(Stream {
            sock,
            io,
            _local: PhantomData,
        })
    }

    /// The machine the socket is still registered with, where attaching it is cheapest.
    pub fn home_machine(&self) -> Option<MachineId> {
        self.home.as_ref().map(Home::machine)
    }

    /// The peer's TCP address (None for Unix sockets).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.sock {
            Socket::Tcp(s) => s.peer_addr().ok(),
            Socket::Unix(_) => None,
        }
    }

    /// The raw fd (still owned by this value).
    pub fn as_raw_fd(&self) -> RawFd {
        self.sock.raw_fd()
    }

    /// Whether this is a Unix-domain socket.
    pub fn is_unix(&self) -> bool {
        matches!(self.sock, Socket::Unix(_))
    }

    /// Sets what a listener's [`crate::net::Listener::set_accepted_options`] sets, on a
    /// socket accepted before the listener had them (TCP only).
    pub fn set_accepted_options(&self, o: &crate::net::AcceptedOptions) -> Result<()> {
        match &self.sock {
            Socket::Tcp(_) => Ok(socket::set_accepted_options(self.sock.fd(), o)?),
            Socket::Unix(_) => Ok(()),
        }
    }
}

/// Waits until `bits` readiness (READ or WRITE) arrives on `io`, or the deadline.
pub(crate) fn wait_io(io: IoKey, bits: u8, deadline: Deadline) -> Result<()> {
    let m = machine::current().ok_or(Error::NotInCoroutine)?;
    m.reactor.clear_ready(io, bits);
    let mut waiter: Option<Waiter> = None;
    let r = call::block(deadline, |w, m| {
        if m.reactor.set_waiter(io, bits, w) {
            waiter = Some(w);
        } else {
            w.wake_local(m, Wake::Ready);
        }
    });
    if let (Err(_), Some(w)) = (&r, waiter) {
        m.reactor.clear_waiter(io, w);
    }
    r
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl Stream {
    /// Connects to a TCP address within the deadline.
    pub fn connect(addr: SocketAddr, deadline: impl Into<Deadline>) -> Result<Stream> {
        let deadline = deadline.into();
        let sock = mio::net::TcpStream::connect(addr)?;
        let stream = DetachedStream::new(Socket::Tcp(std::net::TcpStream::from(sock))).attach()?;
        wait_io(stream.io, WRITE, deadline)?;
        if let Some(e) = stream.sock.take_error()? {
            return Err(e.into());
        }
        if let Socket::Tcp(s) = &stream.sock {
            // A refused connect can report writable with the error already taken.
            s.peer_addr()?;
        }
        Ok(stream)
    }

    /// Connects to a Unix socket within the deadline.
    pub fn connect_unix(path: &Path, deadline: impl Into<Deadline>) -> Result<Stream> {
        let deadline = deadline.into();
        let sock = mio::net::UnixStream::connect(path)?;
        let stream = DetachedStream::new(Socket::Unix(UnixStream::from(sock))).attach()?;
        wait_io(stream.io, WRITE, deadline)?;
        if let Some(e) = stream.sock.take_error()? {
            return Err(e.into());
        }
        Ok(stream)
    }

    /// Reads what is available (at least one byte), waiting until the deadline; `Ok(0)` is
    /// end of stream.
    pub fn read(&mut self, buf: &mut [u8], deadline: impl Into<Deadline>) -> Result<usize> {
        let deadline = deadline.into();
        loop {
            // A short read cleared the readiness: the recv would say EAGAIN, so wait first.
            if let Some(m) = machine::current()
                && !m.reactor.is_ready(self.io, READ)
            {
                wait_io(self.io, READ, deadline)?;
            }
            match self.sock.read(buf) {
                Ok(n) => {
                    self.after_read(n, buf.len());
                    return Ok(n);
                }
                Err(e) if would_block(&e) => wait_io(self.io, READ, deadline)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A stream socket that returned less than asked has nothing more right now: forget the
    /// readiness (saving the `EAGAIN` read) unless the peer closed, whose end of stream must
    /// still be read.
    fn after_read(&self, n: usize, asked: usize) {
        if n > 0
            && n < asked
            && let Some(m) = machine::current()
            && !m.reactor.is_ready(self.io, CLOSED)
        {
            m.reactor.clear_ready(self.io, READ);
        }
    }

    /// Reads what is available now without waiting: `Ok(None)` when nothing is. Costs no
    /// syscall when the stream is known to have nothing.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>> {
        if let Some(m) = machine::current()
            && !m.reactor.is_ready(self.io, READ)
        {
            return Ok(None);
        }
        loop {
            match self.sock.read(buf) {
                Ok(n) => {
                    self.after_read(n, buf.len());
                    return Ok(Some(n));
                }
                Err(e) if would_block(&e) => {
                    if let Some(m) = machine::current() {
                        m.reactor.clear_ready(self.io, READ);
                    }
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Fills `buf` completely; the deadline covers the whole operation. End of stream before
    /// that is [`Error::Closed`].
    pub fn read_exact(&mut self, mut buf: &mut [u8], deadline: impl Into<Deadline>) -> Result<()> {
        let deadline = deadline.into();
        while !buf.is_empty() {
            let n = self.read(buf, deadline)?;
            if n == 0 {
                return Err(Error::Closed);
            }
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// Writes some of `buf`, waiting for room until the deadline.
    pub fn write(&mut self, buf: &[u8], deadline: impl Into<Deadline>) -> Result<usize> {
        let deadline = deadline.into();
        loop {
            match self.sock.write(buf) {
                Ok(n) => return Ok(n),
                Err(e) if would_block(&e) => wait_io(self.io, WRITE, deadline)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Writes all of `buf`; the deadline covers the whole operation.
    pub fn write_all(&mut self, mut buf: &[u8], deadline: impl Into<Deadline>) -> Result<()> {
        let deadline = deadline.into();
        while !buf.is_empty() {
            let n = self.write(buf, deadline)?;
            if n == 0 {
                return Err(Error::Closed);
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Writes all of `bufs` with vectored writes; the deadline covers the whole operation.
    pub fn write_all_vectored(
        &mut self,
        bufs: &[&[u8]],
        deadline: impl Into<Deadline>,
    ) -> Result<()> {
        let deadline = deadline.into();
        let mut parts: Vec<&[u8]> = bufs.iter().copied().filter(|b| !b.is_empty()).collect();
        let mut first = 0;
        while first < parts.len() {
            let slices: Vec<IoSlice<'_>> = parts[first..].iter().map(|b| IoSlice::new(b)).collect();
            let n = match self.sock.write_vectored(&slices) {
                Ok(0) => return Err(Error::Closed),
                Ok(n) => n,
                Err(e) if would_block(&e) => {
                    wait_io(self.io, WRITE, deadline)?;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            let mut left = n;
            while first < parts.len() && left >= parts[first].len() {
                left -= parts[first].len();
                first += 1;
            }
            if left > 0 {
                parts[first] = &parts[first][left..];
            }
        }
        Ok(())
    }

    /// Copies bytes that have arrived into `buf` without consuming them (the next read returns
    /// them again), waiting until the deadline for at least one; `Ok(0)` is end of stream.
    /// TCP only: a Unix stream is [`Error::Io`] `Unsupported`.
    pub fn peek(&self, buf: &mut [u8], deadline: impl Into<Deadline>) -> Result<usize> {
        let deadline = deadline.into();
        let Socket::Tcp(sock) = &self.sock else {
            return Err(Error::Io(io::ErrorKind::Unsupported.into()));
        };
        loop {
            match sock.peek(buf) {
                Ok(n) => return Ok(n),
                Err(e) if would_block(&e) => wait_io(self.io, READ, deadline)?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until the stream is readable (or closed).
    pub fn readable(&self, deadline: impl Into<Deadline>) -> Result<()> {
        let m = machine::current().ok_or(Error::NotInCoroutine)?;
        if m.reactor.is_ready(self.io, READ) {
            return Ok(());
        }
        wait_io(self.io, READ, deadline.into())
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> Result<()> {
        Ok(self.sock.shutdown(how)?)
    }

    /// Disables Nagle's algorithm (TCP only; a no-op on Unix sockets).
    pub fn set_nodelay(&self, on: bool) -> Result<()> {
        match &self.sock {
            Socket::Tcp(s) => Ok(s.set_nodelay(on)?),
            Socket::Unix(_) => Ok(()),
        }
    }

    /// Sets TCP keepalive (a no-op on Unix sockets).
    pub fn set_keepalive(&self, ka: &KeepAlive) -> Result<()> {
        match &self.sock {
            Socket::Tcp(_) => Ok(socket::set_keepalive(self.sock.fd(), ka)?),
            Socket::Unix(_) => Ok(()),
        }
    }

    /// The peer's TCP address (None for Unix sockets).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.sock {
            Socket::Tcp(s) => s.peer_addr().ok(),
            Socket::Unix(_) => None,
        }
    }

    /// The local TCP address (None for Unix sockets).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.sock {
            Socket::Tcp(s) => s.local_addr().ok(),
            Socket::Unix(_) => None,
        }
    }

    /// Whether this is a Unix-domain socket.
    pub fn is_unix(&self) -> bool {
        matches!(self.sock, Socket::Unix(_))
    }

    /// Lets go of the stream so that any machine may attach it; it stays registered here.
    pub fn detach(self) -> Result<DetachedStream> {
        let (sock, io) = self.into_parts();
        Ok(DetachedStream {
            home: Home::here(io),
            sock,
        })
    }

    /// Parks the stream without a coroutine or stack: when it becomes readable (or closed, or
    /// failed), or when the deadline passes, `f` runs in a new coroutine with the stream and
    /// the reason. Until then only the stream and `f`'s captured state take memory.
    pub fn park<F>(self, deadline: impl Into<Deadline>, f: F)
    where
        F: FnOnce(Stream, ParkEvent) + 'static,
    {
        let key = self.park_key();
        crate::net::park_any(&[key], deadline, move |_, ev| f(self, ev));
    }

    /// A key to park this stream with [`crate::net::park_any`].
    pub fn park_key(&self) -> crate::net::ParkKey {
        crate::net::park::key_for(self.io, self.sock.fd(), false)
    }

    pub(crate) fn into_parts(self) -> (Socket, IoKey) {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again; we move the socket out exactly once.
        let sock = unsafe { std::ptr::read(&me.sock) };
        (sock, me.io)
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.raw_fd()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        // Deregister before the socket closes, so the slot is free and no stale event hits it.
        if let Some(m) = machine::current() {
            drop(m.reactor.deregister(self.sock.raw_fd(), self.io));
        }
    }
}

/// Waits until one of `streams` is readable; returns its index. A stream that has not hit
/// `WouldBlock` since its last event counts as readable at once.
pub fn wait_readable_any(streams: &[&Stream], deadline: impl Into<Deadline>) -> Result<usize> {
    let deadline = deadline.into();
    let m = machine::current().ok_or(Error::NotInCoroutine)?;
    loop {
        if let Some(i) = streams.iter().position(|s| m.reactor.is_ready(s.io, READ)) {
            return Ok(i);
        }
        let mut waiter: Option<Waiter> = None;
        let r = call::block(deadline, |w, _| {
            for s in streams {
                m.reactor.set_waiter(s.io, READ, w);
            }
            waiter = Some(w);
        });
        if let Some(w) = waiter {
            for s in streams {
                m.reactor.clear_waiter(s.io, w);
            }
        }
        r?;
    }
}
