//! TLS on a connection: a client's SSLRequest turned into a session with its listen's context,
//! and a server connection turned into one with its storage's (SSLRequest, handshake, the
//! certificate and, for `verify_full`, the host name).
//!
//! Bytes that follow an SSLRequest (or the server's `S`) before the handshake are never read
//! as protocol: such a peer is refused (the CVE-2021-23214 and CVE-2021-23222 class).

use std::fmt;
use std::net::IpAddr;

use kiwi::startup::StartupPacket;
use machinarium::Deadline;
use machinarium::net::TlsStream;
use openssl::error::ErrorStack;
use openssl::ssl::Ssl;
use openssl::x509::verify::X509CheckFlags;

use crate::config::TlsMode;
use crate::config::tls::{ALPN, TlsContext};
use crate::conn::{Conn, ConnError, Transport};

/// Why a connection could not be given TLS.
#[derive(Debug)]
pub enum TlsError {
    /// The peer sent bytes after asking for TLS (or after agreeing to it) and before the
    /// handshake.
    ExtraneousData,
    /// The connection already is TLS.
    AlreadyTls,
    /// The handshake failed or timed out: OpenSSL's reason (a refused certificate says why).
    Handshake(ConnError),
    /// The server answered `N` and the storage's mode demands TLS.
    Refused,
    /// The server answered the SSLRequest with neither `S` nor `N`.
    UnexpectedReply(u8),
    /// Sending the SSLRequest or reading its answer failed.
    Conn(ConnError),
    /// The session could not be set up (server name, host to verify).
    Setup(ErrorStack),
    /// A client opened with TLS directly and negotiated no `postgresql` ALPN protocol.
    DirectWithoutAlpn,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::ExtraneousData => f.write_str("extraneous data before the TLS handshake"),
            TlsError::AlreadyTls => f.write_str("the connection is TLS already"),
            TlsError::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            TlsError::Refused => f.write_str("the server does not support TLS"),
            TlsError::UnexpectedReply(b) => write!(
                f,
                "unexpected answer '{}' to the SSLRequest",
                b.escape_ascii()
            ),
            TlsError::Conn(e) => write!(f, "SSLRequest: {e}"),
            TlsError::Setup(e) => write!(f, "TLS session setup: {e}"),
            TlsError::DirectWithoutAlpn => f.write_str(
                "direct TLS connection without ALPN protocol negotiation of \"postgresql\"",
            ),
        }
    }
}

impl std::error::Error for TlsError {}

/// The server side of a client's TLS: `S` has been sent; nothing may be buffered behind the
/// SSLRequest. Returns the connection over the session.
pub fn accept(conn: Conn, ctx: &TlsContext, deadline: Deadline) -> Result<Conn, TlsError> {
    let (transport, leftover) = conn.into_transport();
    if !leftover.is_empty() {
        return Err(TlsError::ExtraneousData);
    }
    let Transport::Plain(stream) = transport else {
        return Err(TlsError::AlreadyTls);
    };
    let tls = TlsStream::accept(stream, ctx.ssl(), deadline)
        .map_err(|e| TlsError::Handshake(e.into()))?;
    Ok(Conn::new(Transport::Tls(tls)))
}

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Whether a client opens with a TLS ClientHello (PostgreSQL 17's `sslnegotiation=direct`)
/// instead of a packet, whose first byte is the high byte of its length (0 for any packet a
/// client sends). Looks without consuming, so the handshake reads the hello itself; a Unix
/// socket never carries TLS.
pub fn opens_with_tls(conn: &Conn, deadline: Deadline) -> Result<bool, TlsError> {
    let Transport::Plain(stream) = conn.transport() else {
        return Ok(false);
    };
    if !conn.buffered().is_empty() || stream.is_unix() {
        return Ok(false);
    }
    let mut first = [0u8; 1];
    let n = stream
        .peek(&mut first, deadline)
        .map_err(|e| TlsError::Conn(e.into()))?;
    Ok(n == 1 && first[0] == TLS_HANDSHAKE)
}

/// The server side of a direct TLS connection: the handshake at once, which must negotiate
/// the `postgresql` ALPN protocol (a client offering only others is refused by the handshake;
/// one offering none, here, as PostgreSQL 17 does).
pub fn accept_direct(conn: Conn, ctx: &TlsContext, deadline: Deadline) -> Result<Conn, TlsError> {
    let conn = accept(conn, ctx, deadline)?;
    let alpn = conn.tls().and_then(|t| t.ssl().selected_alpn_protocol());
    if alpn != ALPN.get(1..) {
        return Err(TlsError::DirectWithoutAlpn);
    }
    Ok(conn)
}

/// How a server connection gets TLS: its storage's mode and context, and the host name the
/// storage names (sent as SNI; checked against the certificate under `verify_full`).
#[derive(Clone, Copy)]
pub struct ServerTls<'a> {
    /// The storage's mode (not `disable`).
    pub mode: TlsMode,
    /// The storage's client context.
    pub context: &'a TlsContext,
    /// The storage's host as written (a name or an address).
    pub host: &'a str,
}

/// A server connection's TLS settings, kept with the server so that a CancelRequest for it
/// goes over TLS too (as libpq 17 does), never showing the key in plaintext.
#[derive(Debug, Clone)]
pub struct CancelTls {
    mode: TlsMode,
    context: TlsContext,
    host: String,
}

impl CancelTls {
    /// The settings `t` made a TLS connection with.
    pub fn of(t: &ServerTls<'_>) -> CancelTls {
        CancelTls {
            mode: t.mode,
            context: t.context.clone(),
            host: t.host.to_string(),
        }
    }

    /// As [`connect`] takes them.
    pub fn server_tls(&self) -> ServerTls<'_> {
        ServerTls {
            mode: self.mode,
            context: &self.context,
            host: &self.host,
        }
    }
}

/// The client side towards a server: SSLRequest, then the handshake on `S`. On `N` the
/// connection stays plaintext for `allow` and `prefer` and fails otherwise.
pub fn connect(mut conn: Conn, t: &ServerTls<'_>, deadline: Deadline) -> Result<Conn, TlsError> {
    let mut request = Vec::with_capacity(8);
    StartupPacket::SslRequest.encode(&mut request);
    conn.write_all(&request, deadline).map_err(TlsError::Conn)?;
    conn.fill(deadline).map_err(TlsError::Conn)?;
    let answer = conn.buffered().first().copied();
    if conn.buffered().len() > 1 {
        return Err(TlsError::ExtraneousData);
    }
    conn.consume(1);
    match answer {
        Some(b'S') => handshake(conn, t, deadline),
        Some(b'N') if matches!(t.mode, TlsMode::Allow | TlsMode::Prefer) => Ok(conn),
        Some(b'N') => Err(TlsError::Refused),
        Some(other) => Err(TlsError::UnexpectedReply(other)),
        None => Err(TlsError::Conn(ConnError::Closed)),
    }
}

fn handshake(conn: Conn, t: &ServerTls<'_>, deadline: Deadline) -> Result<Conn, TlsError> {
    let (transport, _) = conn.into_transport();
    let Transport::Plain(stream) = transport else {
        return Err(TlsError::AlreadyTls);
    };
    let ssl = session(t).map_err(TlsError::Setup)?;
    let tls = TlsStream::connect_with(stream, ssl, deadline)
        .map_err(|e| TlsError::Handshake(e.into()))?;
    Ok(Conn::new(Transport::Tls(tls)))
}

/// A session for `t`: SNI for a host name (never for an address), and under `verify_full`
/// the name or address the certificate must carry (upstream checks no name; libpq does).
fn session(t: &ServerTls<'_>) -> Result<Ssl, ErrorStack> {
    let mut ssl = Ssl::new(t.context.ssl())?;
    let ip = t.host.parse::<IpAddr>().ok();
    if ip.is_none() && !t.host.is_empty() {
        ssl.set_hostname(t.host)?;
    }
    if t.mode == TlsMode::VerifyFull {
        let param = ssl.param_mut();
        match ip {
            Some(ip) => param.set_ip(ip)?,
            None => {
                param.set_hostflags(X509CheckFlags::NO_PARTIAL_WILDCARDS);
                param.set_host(t.host)?;
            }
        }
    }
    Ok(ssl)
}
