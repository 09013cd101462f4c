//! A client or server connection at the message level: a socket (plain or TLS), a read
//! buffer, whole messages in and bytes out. Every call takes a deadline.
//!
//! The relay does not decode what it forwards: it reads what the socket has, walks the
//! message headers to follow the protocol state, and writes the same bytes on. Code that
//! needs a message (startup, auth, ReadyForQuery of an internal query) uses
//! [`Conn::read_message`].

use std::fmt;
use std::net::SocketAddr;

use kiwi::header::Header;
use kiwi::startup::StartupPacket;
use machinarium::net::{Stream, TlsStream};
use machinarium::{Deadline, Error as IoError};

/// The largest message accepted by default (kiwi's protocol maximum).
pub const DEFAULT_MAX_MESSAGE: u32 = kiwi::header::DEFAULT_MAX_MESSAGE;

/// The read buffer's first size; it doubles while reads fill it, up to [`MAX_READAHEAD`].
/// Small because it is let go of at every idle period; buffers of this size come from (and
/// go back to) the machine's cache, so a transaction neither allocates nor zeroes one.
const FIRST_CHUNK: usize = machinarium::BUFFER_SIZE;

/// The most one socket read asks for.
const MAX_READAHEAD: usize = 64 * 1024;

/// The socket under a connection.
pub enum Transport {
    /// Plain TCP or Unix socket.
    Plain(Stream),
    /// TLS over TCP.
    Tls(TlsStream),
}

/// Why a connection call failed.
#[derive(Debug)]
pub enum ConnError {
    /// The peer closed the connection.
    Closed,
    /// The deadline passed.
    TimedOut,
    /// The coroutine was cancelled (shutdown).
    Cancelled,
    /// The socket failed.
    Io(std::io::Error),
    /// The peer sent bytes that are not the protocol.
    Protocol(kiwi::error::DecodeError),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Closed => f.write_str("connection closed"),
            ConnError::TimedOut => f.write_str("timed out"),
            ConnError::Cancelled => f.write_str("cancelled"),
            ConnError::Io(e) => write!(f, "{e}"),
            ConnError::Protocol(e) => write!(f, "protocol violation: {e}"),
        }
    }
}

impl std::error::Error for ConnError {}

impl From<IoError> for ConnError {
    fn from(e: IoError) -> Self {
        match e {
            IoError::TimedOut => ConnError::TimedOut,
            IoError::Cancelled | IoError::Unwinding | IoError::NotInCoroutine => {
                ConnError::Cancelled
            }
            IoError::Closed => ConnError::Closed,
            IoError::Busy => ConnError::Io(std::io::Error::other("busy")),
            IoError::Io(e) => ConnError::Io(e),
        }
    }
}

impl From<kiwi::error::DecodeError> for ConnError {
    fn from(e: kiwi::error::DecodeError) -> Self {
        ConnError::Protocol(e)
    }
}

/// One whole message, borrowed from the connection's read buffer.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The body, without tag and length.
    pub body: &'a [u8],
    /// The whole message as it came (tag, length, body), for forwarding unchanged.
    pub bytes: &'a [u8],
}

/// A connection: transport plus read buffer (`buf[start..end]` holds unread bytes).
pub struct Conn {
    transport: Transport,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes that go out in front of the next write (see [`Conn::hold`]).
    held: Vec<u8>,
}

impl Conn {
    /// Wraps a transport with an empty buffer.
    pub fn new(transport: Transport) -> Conn {
        Conn {
            transport,
            buf: Vec::new(),
            start: 0,
            end: 0,
            held: Vec::new(),
        }
    }

    /// The transport (to upgrade it to TLS, or to park it).
    pub fn into_transport(self) -> (Transport, Vec<u8>) {
        let leftover = self.buf[self.start..self.end].to_vec();
        machinarium::give_buffer(self.buf);
        (self.transport, leftover)
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.transport, Transport::Tls(_))
    }

    /// The TLS session, if any.
    pub fn tls(&self) -> Option<&TlsStream> {
        match &self.transport {
            Transport::Tls(t) => Some(t),
            Transport::Plain(_) => None,
        }
    }

    /// The transport itself.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The peer's TCP address (None for Unix sockets).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.transport {
            Transport::Plain(s) => s.peer_addr(),
            Transport::Tls(t) => t.peer_addr(),
        }
    }

    /// Bytes received and not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops `n` buffered bytes (they were handled or forwarded).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Releases the read buffer's memory when it is empty (an idle client keeps none).
    pub fn shrink(&mut self) {
        if self.start == self.end {
            machinarium::give_buffer(std::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room for at least a quarter chunk after `end`, compacting or growing the buffer.
    fn reserve(&mut self) {
        if self.start > 0 && self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.buf.is_empty() {
            self.buf = machinarium::take_buffer();
        }
        let want = (self.buf.len() / 4).clamp(FIRST_CHUNK / 4, MAX_READAHEAD / 4);
        if self.buf.len() - self.end < want {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.buf.len() - self.end < want {
                let grown = (self.buf.len() * 2)
                    .clamp(FIRST_CHUNK, MAX_READAHEAD)
                    .max(self.end + want);
                self.buf.resize(grown, 0);
            }
        }
    }

    /// Reads more bytes into the buffer (at least one), waiting until the deadline.
    pub fn fill(&mut self, deadline: Deadline) -> Result<usize, ConnError> {
        self.reserve();
        let n = match &mut self.transport {
            Transport::Plain(s) => s.read(&mut self.buf[self.end..], deadline)?,
            Transport::Tls(t) => t.read(&mut self.buf[self.end..], deadline)?,
        };
        if n == 0 {
            return Err(ConnError::Closed);
        }
        self.end += n;
        Ok(n)
    }

    /// Reads what is there now, without waiting; false when nothing was.
    pub fn try_fill(&mut self) -> Result<bool, ConnError> {
        self.reserve();
        let n = match &mut self.transport {
            Transport::Plain(s) => s.try_read(&mut self.buf[self.end..])?,
            Transport::Tls(t) => t.try_read(&mut self.buf[self.end..])?,
        };
        match n {
            None => Ok(false),
            Some(0) => Err(ConnError::Closed),
            Some(n) => {
                self.end += n;
                Ok(true)
            }
        }
    }

    /// Makes sure the buffer holds `n` bytes.
    fn fill_to(&mut self, n: usize, deadline: Deadline) -> Result<(), ConnError> {
        while self.end - self.start < n {
            self.fill(deadline)?;
        }
        Ok(())
    }

    /// Reads one whole message (tag, length, body) of at most `max` bytes.
    pub fn read_message(&mut self, deadline: Deadline, max: u32) -> Result<Message<'_>, ConnError> {
        let header = loop {
            if let Some(h) = Header::parse(self.buffered(), max)? {
                break h;
            }
            self.fill(deadline)?;
        };
        let len = header.frame_len();
        self.fill_to(len, deadline)?;
        let bytes = &self.buf[self.start..self.start + len];
        // Positions reset lazily (in `fill`), so the borrow stays valid until the next read.
        self.start += len;
        Ok(Message {
            tag: header.tag,
            body: &bytes[kiwi::header::HEADER_LEN..],
            bytes,
        })
    }

    /// Reads the first packet of a client connection (no tag byte).
    pub fn read_startup(
        &mut self,
        deadline: Deadline,
    ) -> Result<(StartupPacket<'_>, usize), ConnError> {
        loop {
            // Two steps so the borrow of the buffer ends before the next fill.
            let complete = StartupPacket::parse(self.buffered())?.map(|(_, used)| used);
            if let Some(used) = complete {
                let start = self.start;
                self.start += used;
                let (packet, _) = StartupPacket::parse(&self.buf[start..start + used])?
                    .ok_or(ConnError::Closed)?;
                return Ok((packet, used));
            }
            self.fill(deadline)?;
        }
    }

    /// Keeps `bytes` to go out with the next write, in one packet with it: the end of a login
    /// (AuthenticationSASLFinal, AuthenticationOk) travels with the greeting or the error that
    /// follows, so the client wakes once for them, not three times.
    pub fn hold(&mut self, bytes: &[u8]) {
        self.held.extend_from_slice(bytes);
    }

    /// Writes the bytes held, if any, on their own.
    pub fn flush(&mut self, deadline: Deadline) -> Result<(), ConnError> {
        if self.held.is_empty() {
            return Ok(());
        }
        self.write_all(&[], deadline)
    }

    /// Writes all of `bytes` (after the bytes held, if any).
    pub fn write_all(&mut self, bytes: &[u8], deadline: Deadline) -> Result<(), ConnError> {
        if !self.held.is_empty() {
            let mut out = std::mem::take(&mut self.held);
            out.extend_from_slice(bytes);
            return self.write_all(&out, deadline);
        }
        match &mut self.transport {
            Transport::Plain(s) => s.write_all(bytes, deadline)?,
            Transport::Tls(t) => t.write_all(bytes, deadline)?,
        }
        Ok(())
    }

    /// Ends the connection after a last message: the peer is given until the deadline to read
    /// what was sent and close. Without this, a
    /// socket with SO_LINGER 0 (the default, as upstream) resets on close and the peer may lose
    /// the error it was just sent.
    pub fn close_gracefully(&mut self, deadline: Deadline) {
        // No shutdown(Write) here: some clients treat the FIN right behind the error as the
        // connection closing before they have read it. They close themselves after a FATAL.
        self.start = 0;
        self.end = 0;
        while self.fill(deadline).is_ok() {
            self.start = 0;
            self.end = 0;
        }
    }

    /// The key to park this connection's socket with (see `machinarium::net::park_any`).
    pub fn park_key(&self) -> machinarium::net::ParkKey {
        match &self.transport {
            Transport::Plain(s) => s.park_key(),
            Transport::Tls(t) => t.park_key(),
        }
    }

    /// Whether bytes are buffered in this connection (in our buffer or inside TLS).
    pub fn has_pending_input(&self) -> bool {
        self.start < self.end || self.tls().is_some_and(|t| t.pending())
    }
}

/// How long a write may wait for a peer that accepts no bytes before the connection is given
/// up: the time TCP keepalive (or `keepalive_usr_timeout`) takes to declare a peer dead, and
/// never less than five minutes, so that a slow but live reader is not cut off.
pub fn stall_timeout(g: &crate::config::Global) -> std::time::Duration {
    use std::time::Duration;
    let k = &g.keepalive;
    let keepalive = match k.usr_timeout_ms {
        ms if ms > 0 => Duration::from_millis(ms as u64),
        _ => k.idle + k.interval * k.probes,
    };
    keepalive.max(Duration::from_secs(300))
}
