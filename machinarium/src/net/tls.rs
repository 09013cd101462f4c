//! TLS over coroutine streams, with openssl: handshake, read, write and shutdown, each with a
//! deadline. OpenSSL runs on the nonblocking socket; WANT_READ / WANT_WRITE park the coroutine
//! until the socket is ready.

use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};

use foreign_types::ForeignTypeRef;
use openssl::ssl::{self, ErrorCode, Ssl, SslContextRef, SslRef, SslStream};

use crate::error::{Error, Result};
use crate::machine::{self, MachineId};
use crate::net::home::Home;
use crate::net::socket::Socket;
use crate::net::stream::{Stream, wait_io};
use crate::reactor::{CLOSED, IoKey, ParkEvent, READ, WRITE};
use crate::timer::Deadline;

/// A TLS session over a stream registered with the current machine. `!Send`: use
/// [`TlsStream::detach`] to move it.
pub struct TlsStream {
    ssl: SslStream<Wire>,
    io: IoKey,
    _local: PhantomData<*const ()>,
}

/// A TLS session whose socket is registered with no machine; `Send`, so a pooled TLS
/// connection can travel to another machine and be attached there with
/// [`DetachedTlsStream::attach`]. The session state (keys, sequence numbers) moves with it.
pub struct DetachedTlsStream {
    // Declared first: dropped (the home told) before the socket closes.
    home: Option<Home>,
    ssl: SslStream<Wire>,
}

/// The socket as OpenSSL reads and writes it, with what the last reads told: a short read
/// emptied the socket (the reactor's readiness may be dropped and the `EAGAIN` recv saved),
/// and OpenSSL asked for more than it holds (bytes it holds are then part of a record, not
/// something to read now). Both move with the session when it is detached.
#[derive(Debug)]
struct Wire {
    sock: Socket,
    drained: bool,
    starved: bool,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = self.sock.read(buf);
        self.drained = matches!(r, Ok(n) if n > 0 && n < buf.len());
        r
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for DetachedTlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DetachedTlsStream(fd {})",
            self.ssl.get_ref().sock.raw_fd()
        )
    }
}

impl DetachedTlsStream {
    /// Registers the socket with the current machine. Bytes that arrived while detached are
    /// read by the first `read` without waiting for a new event.
    pub fn attach(self) -> Result<TlsStream> {
        let DetachedTlsStream { home, ssl } = self;
        let io = Home::attach(home, ssl.get_ref().sock.raw_fd())?;
        Ok(TlsStream {
            ssl,
            io,
            _local: PhantomData,
        })
    }

    /// The machine the socket is still registered with, where attaching it is cheapest.
    pub fn home_machine(&self) -> Option<MachineId> {
        self.home.as_ref().map(Home::machine)
    }
}

// A detached session crosses machines: it must stay `Send` (openssl's `Ssl` is; the socket is).
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<DetachedTlsStream>();
};

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsStream(fd {})", self.as_raw_fd())
    }
}

/// A failed handshake, with the reason the peer's certificate was refused when it was.
fn handshake_error(e: ssl::Error, ssl: &SslRef) -> Error {
    let verify = ssl.verify_result();
    if verify == openssl::x509::X509VerifyResult::OK {
        return tls_error(e);
    }
    Error::Io(io::Error::other(format!(
        "tls: certificate verify failed: {}",
        verify.error_string()
    )))
}

fn tls_error(e: ssl::Error) -> Error {
    match e.into_io_error() {
        Ok(io) => Error::Io(io),
        Err(e) => Error::Io(io::Error::other(format!("tls: {e}"))),
    }
}

/// What a WANT_* result asks to wait for, or the error.
fn want(e: ssl::Error) -> std::result::Result<u8, Error> {
    match e.code() {
        ErrorCode::WANT_READ => Ok(READ),
        ErrorCode::WANT_WRITE => Ok(WRITE),
        ErrorCode::ZERO_RETURN => Err(Error::Closed),
        _ => Err(tls_error(e)),
    }
}

impl TlsStream {
    /// Runs the server side of a handshake on `stream` within the deadline.
    pub fn accept(
        stream: Stream,
        ctx: &SslContextRef,
        deadline: impl Into<Deadline>,
    ) -> Result<TlsStream> {
        let mut tls = TlsStream::wrap(stream, ctx, None)?;
        tls.handshake(deadline.into(), |s| s.accept())?;
        Ok(tls)
    }

    /// Runs the client side of a handshake on `stream` within the deadline. `sni` is the server
    /// name to send (and verify, when the context verifies hostnames).
    pub fn connect(
        stream: Stream,
        ctx: &SslContextRef,
        sni: Option<&str>,
        deadline: impl Into<Deadline>,
    ) -> Result<TlsStream> {
        let mut tls = TlsStream::wrap(stream, ctx, sni)?;
        tls.handshake(deadline.into(), |s| s.connect())?;
        Ok(tls)
    }

    /// Runs the client side of a handshake with a session the caller prepared (server name,
    /// host name or address to verify the certificate against).
    pub fn connect_with(
        stream: Stream,
        ssl: Ssl,
        deadline: impl Into<Deadline>,
    ) -> Result<TlsStream> {
        let mut tls = TlsStream::wrap_ssl(stream, ssl)?;
        tls.handshake(deadline.into(), |s| s.connect())?;
        Ok(tls)
    }

    fn wrap(stream: Stream, ctx: &SslContextRef, sni: Option<&str>) -> Result<TlsStream> {
        let mut ssl =
            Ssl::new(ctx).map_err(|e| Error::Io(io::Error::other(format!("tls: {e}"))))?;
        if let Some(name) = sni {
            ssl.set_hostname(name)
                .map_err(|e| Error::Io(io::Error::other(format!("tls: {e}"))))?;
        }
        TlsStream::wrap_ssl(stream, ssl)
    }

    fn wrap_ssl(stream: Stream, ssl: Ssl) -> Result<TlsStream> {
        let (sock, io) = stream.into_parts();
        let wire = Wire {
            sock,
            drained: false,
            starved: false,
        };
        let ssl = SslStream::new(ssl, wire)
            .map_err(|e| Error::Io(io::Error::other(format!("tls: {e}"))))?;
        Ok(TlsStream {
            ssl,
            io,
            _local: PhantomData,
        })
    }

    fn handshake(
        &mut self,
        deadline: Deadline,
        mut step: impl FnMut(&mut SslStream<Wire>) -> std::result::Result<(), ssl::Error>,
    ) -> Result<()> {
        loop {
            match step(&mut self.ssl) {
                Ok(()) => return Ok(()),
                Err(e) => match e.code() {
                    ErrorCode::WANT_READ => wait_io(self.io, READ, deadline)?,
                    ErrorCode::WANT_WRITE => wait_io(self.io, WRITE, deadline)?,
                    _ => return Err(handshake_error(e, self.ssl.ssl())),
                },
            }
        }
    }

    /// Reads decrypted bytes (at least one), waiting until the deadline; `Ok(0)` is the end of
    /// the session (close_notify or EOF).
    pub fn read(&mut self, buf: &mut [u8], deadline: impl Into<Deadline>) -> Result<usize> {
        let deadline = deadline.into();
        let mut wanted = READ;
        loop {
            // Nothing held and a short read emptied the socket: the recv would say EAGAIN.
            if wanted == READ && !self.readable_now() {
                wait_io(self.io, READ, deadline)?;
            }
            match self.ssl_read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => return Ok(0),
                Err(e) if e.code() == ErrorCode::SYSCALL && e.io_error().is_none() => return Ok(0),
                Err(e) => {
                    wanted = want(e)?;
                    wait_io(self.io, wanted, deadline)?;
                }
            }
        }
    }

    /// Reads decrypted bytes available now, without waiting: `Ok(None)` when there are none,
    /// `Ok(Some(0))` at the end of the session.
    pub fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>> {
        if !self.readable_now() {
            return Ok(None);
        }
        match self.ssl_read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.code() == ErrorCode::ZERO_RETURN => Ok(Some(0)),
            Err(e) if e.code() == ErrorCode::SYSCALL && e.io_error().is_none() => Ok(Some(0)),
            Err(e) => match want(e) {
                Ok(bits) => {
                    if let Some(m) = machine::current() {
                        m.reactor.clear_ready(self.io, bits);
                    }
                    Ok(None)
                }
                Err(e) => Err(e),
            },
        }
    }

    /// Whether a read may find bytes without waiting: OpenSSL holds some, or the socket has
    /// not been seen empty since the reactor last said it was readable.
    fn readable_now(&self) -> bool {
        self.pending() || machine::current().is_none_or(|m| m.reactor.is_ready(self.io, READ))
    }

    /// `SSL_read`, noting what its reads of the socket told: after a short read that left
    /// OpenSSL holding nothing, the socket's readiness is dropped (unless the peer closed,
    /// whose end of stream must still be read); after a WANT_READ, bytes OpenSSL holds are
    /// part of a record and wait for the socket.
    fn ssl_read(&mut self, buf: &mut [u8]) -> std::result::Result<usize, ssl::Error> {
        self.ssl.get_mut().drained = false;
        let r = self.ssl.ssl_read(buf);
        let starved = matches!(&r, Err(e) if e.code() == ErrorCode::WANT_READ);
        self.ssl.get_mut().starved = starved;
        if r.is_ok()
            && self.ssl.get_ref().drained
            && !self.pending()
            && let Some(m) = machine::current()
            && !m.reactor.is_ready(self.io, CLOSED)
        {
            m.reactor.clear_ready(self.io, READ);
        }
        r
    }

    /// Fills `buf`; the deadline covers the whole operation.
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

    /// Writes all of `buf`; the deadline covers the whole operation.
    pub fn write_all(&mut self, mut buf: &[u8], deadline: impl Into<Deadline>) -> Result<()> {
        let deadline = deadline.into();
        while !buf.is_empty() {
            match self.ssl.ssl_write(buf) {
                Ok(n) => buf = &buf[n..],
                Err(e) => wait_io(self.io, want(e)?, deadline)?,
            }
        }
        Ok(())
    }

    /// Sends close_notify and waits, within the deadline, for the peer's. A peer that closes
    /// the connection without answering is fine: ours was sent.
    pub fn shutdown(&mut self, deadline: impl Into<Deadline>) -> Result<()> {
        let deadline = deadline.into();
        let mut sent = false;
        loop {
            match self.ssl.shutdown() {
                Ok(ssl::ShutdownResult::Received) => return Ok(()),
                Ok(ssl::ShutdownResult::Sent) => sent = true,
                Err(e) => match want(e) {
                    Ok(bits) => wait_io(self.io, bits, deadline)?,
                    Err(Error::Closed) => return Ok(()),
                    Err(_) if sent => return Ok(()),
                    Err(e) => return Err(e),
                },
            }
        }
    }

    /// Whether OpenSSL holds bytes of the peer that the socket will not signal again:
    /// decrypted ones, or, with read-ahead on the context, records already taken from the
    /// socket and not yet decrypted (not when the last read found only part of a record).
    pub fn pending(&self) -> bool {
        let ssl = self.ssl.ssl();
        ssl.pending() > 0 || (!self.ssl.get_ref().starved && has_pending(ssl))
    }

    /// The peer's TCP address (None for Unix sockets).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match &self.ssl.get_ref().sock {
            Socket::Tcp(s) => s.peer_addr().ok(),
            Socket::Unix(_) => None,
        }
    }

    /// Sets TCP keepalive on the socket under the session (TCP only).
    pub fn set_keepalive(&self, ka: &crate::net::KeepAlive) -> Result<()> {
        match &self.ssl.get_ref().sock {
            s @ Socket::Tcp(_) => Ok(crate::net::socket::set_keepalive(s.fd(), ka)?),
            Socket::Unix(_) => Ok(()),
        }
    }

    /// A key to park this session with [`crate::net::park_any`]. Decrypted bytes already
    /// buffered in OpenSSL count as readable.
    pub fn park_key(&self) -> crate::net::ParkKey {
        let pending = self.pending();
        crate::net::park::key_for(self.io, self.ssl.get_ref().sock.fd(), pending)
    }

    /// The session: peer certificate, negotiated protocol, channel-binding data.
    pub fn ssl(&self) -> &SslRef {
        self.ssl.ssl()
    }

    /// Lets go of the session so that any machine may attach it; its socket stays
    /// registered here. Decrypted bytes still buffered in OpenSSL move with it; callers that
    /// must not lose track of them check [`TlsStream::pending`] first.
    pub fn detach(self) -> DetachedTlsStream {
        let me = std::mem::ManuallyDrop::new(self);
        // SAFETY: `me` is never used or dropped again (ManuallyDrop); the session is moved
        // out exactly once, so it is neither duplicated nor leaked.
        let ssl = unsafe { std::ptr::read(&me.ssl) };
        DetachedTlsStream {
            home: Home::here(me.io),
            ssl,
        }
    }

    /// Parks the session without a coroutine; see [`Stream::park`].
    pub fn park<F>(self, deadline: impl Into<Deadline>, f: F)
    where
        F: FnOnce(TlsStream, ParkEvent) + 'static,
    {
        let key = self.park_key();
        crate::net::park_any(&[key], deadline, move |_, ev| f(self, ev));
    }
}

// Not wrapped by the openssl crate. `SSL_pending` alone misses records that read-ahead took
// from the socket in one recv with an earlier one: a session parked on the socket with those
// inside would wait for bytes that already came.
unsafe extern "C" {
    fn SSL_has_pending(ssl: *const std::ffi::c_void) -> std::ffi::c_int;
}

fn has_pending(ssl: &SslRef) -> bool {
    // SAFETY: `ssl.as_ptr()` is the SSL object `ssl` borrows, alive for this call;
    // SSL_has_pending (OpenSSL >= 1.1.0, the library openssl-sys links) only reads the state
    // of its record layer and buffers.
    unsafe { SSL_has_pending(ssl.as_ptr().cast()) == 1 }
}

impl AsRawFd for TlsStream {
    fn as_raw_fd(&self) -> RawFd {
        self.ssl.get_ref().sock.raw_fd()
    }
}

impl Drop for TlsStream {
    fn drop(&mut self) {
        if let Some(m) = machine::current() {
            drop(m.reactor.deregister(self.as_raw_fd(), self.io));
        }
    }
}

// Socket must be Read + Write for SslStream; the impls live in socket.rs.
const _: fn() = || {
    fn assert_rw<T: Read + Write>() {}
    assert_rw::<Socket>();
};
