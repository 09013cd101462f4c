//! Startup-phase packets, which have no type byte: StartupMessage, SSLRequest, GSSENCRequest,
//! CancelRequest.
//!
//! A client's first packet is one of these; so is a CancelRequest on a fresh connection. The
//! length is capped at [`MAX_STARTUP_PACKET`] as PostgreSQL does. Protocol 3.2 is accepted: its
//! CancelRequest carries a key of up to [`MAX_CANCEL_KEY`] bytes.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer;

/// Largest startup packet PostgreSQL accepts (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_PACKET: u32 = 10_000;

/// Longest cancel key of protocol 3.2; protocol 3.0 keys are 4 bytes.
pub const MAX_CANCEL_KEY: usize = 256;

/// Request code of an SSLRequest (1234.5679).
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// Request code of a GSSENCRequest (1234.5680).
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// Request code of a CancelRequest (1234.5678).
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// A protocol version as sent in a StartupMessage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProtocolVersion {
    /// Major version; only 3 is spoken.
    pub major: u16,
    /// Minor version: 0 for PostgreSQL up to 17, 2 adds longer cancel keys.
    pub minor: u16,
}

impl ProtocolVersion {
    /// Protocol 3.0.
    pub const V3_0: Self = Self { major: 3, minor: 0 };
    /// Protocol 3.2 (PostgreSQL 18).
    pub const V3_2: Self = Self { major: 3, minor: 2 };

    /// The version as the Int32 that carries it on the wire.
    pub fn code(self) -> u32 {
        (u32::from(self.major) << 16) | u32::from(self.minor)
    }

    fn from_code(code: u32) -> Self {
        Self {
            major: (code >> 16) as u16,
            minor: (code & 0xffff) as u16,
        }
    }
}

/// The first packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket<'a> {
    /// Start a session with parameters.
    Startup(Startup<'a>),
    /// Ask for TLS; the server answers a single byte `S` or `N`.
    SslRequest,
    /// Ask for GSSAPI encryption; the server answers `G` or `N`.
    GssEncRequest,
    /// Cancel the query running in another session.
    Cancel(CancelRequest<'a>),
}

/// StartupMessage: a protocol version and `name = value` parameters (`user`, `database`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup<'a> {
    /// Requested protocol version (major is always 3 after decoding).
    pub version: ProtocolVersion,
    /// Parameters in the order sent, names and values without NULs.
    pub params: Vec<(&'a [u8], &'a [u8])>,
}

/// CancelRequest: the process id and secret key a server gave in BackendKeyData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelRequest<'a> {
    /// Backend process id.
    pub pid: i32,
    /// Secret key: 4 bytes in protocol 3.0, up to 256 in 3.2.
    pub key: &'a [u8],
}

impl<'a> StartupPacket<'a> {
    /// Splits the first startup packet off `buf`.
    ///
    /// Returns the packet and the number of bytes it used, or `Ok(None)` when more bytes are
    /// needed. Lengths below 8 or above [`MAX_STARTUP_PACKET`] are errors, as is a
    /// StartupMessage whose major version is not 3 (the error carries the version so that the
    /// caller can answer with the right message).
    pub fn parse(buf: &'a [u8]) -> Result<Option<(StartupPacket<'a>, usize)>, DecodeError> {
        let Some(&[a, b, c, d]) = buf.get(..4) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes([a, b, c, d]);
        if length < 8 {
            return Err(DecodeError::LengthTooShort { tag: None, length });
        }
        if length > MAX_STARTUP_PACKET {
            return Err(DecodeError::TooLarge {
                tag: None,
                length,
                limit: MAX_STARTUP_PACKET,
            });
        }
        let Some(body) = buf.get(4..length as usize) else {
            return Ok(None);
        };
        Ok(Some((Self::decode(body)?, length as usize)))
    }

    /// Decodes a packet body (everything after the length).
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "StartupPacket.code");
        let code = r.u32()?;
        let packet = match code {
            SSL_REQUEST_CODE => StartupPacket::SslRequest,
            GSSENC_REQUEST_CODE => StartupPacket::GssEncRequest,
            CANCEL_REQUEST_CODE => {
                let pid = r.context("CancelRequest.pid").i32()?;
                let key = r.rest();
                if !(4..=MAX_CANCEL_KEY).contains(&key.len()) {
                    return Err(DecodeError::InvalidValue {
                        context: "CancelRequest.key",
                        value: key.len() as i64,
                    });
                }
                StartupPacket::Cancel(CancelRequest { pid, key })
            }
            code => {
                let version = ProtocolVersion::from_code(code);
                if version.major != 3 {
                    return Err(DecodeError::UnsupportedProtocol {
                        major: version.major,
                        minor: version.minor,
                    });
                }
                StartupPacket::Startup(Startup::decode_params(version, &mut r)?)
            }
        };
        r.finish()?;
        Ok(packet)
    }

    /// Appends the packet with its length.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            StartupPacket::Startup(s) => s.encode(out),
            StartupPacket::SslRequest => request(out, SSL_REQUEST_CODE),
            StartupPacket::GssEncRequest => request(out, GSSENC_REQUEST_CODE),
            StartupPacket::Cancel(c) => c.encode(out),
        }
    }
}

fn request(out: &mut Vec<u8>, code: u32) {
    writer::startup_packet(out, |w| {
        w.u32(code);
    });
}

impl<'a> Startup<'a> {
    fn decode_params(version: ProtocolVersion, r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let mut params = Vec::new();
        loop {
            let name = r.context("StartupMessage.name").cstr()?;
            if name.is_empty() {
                break;
            }
            let value = r.context("StartupMessage.value").cstr()?;
            params.push((name, value));
        }
        r.context("StartupMessage");
        Ok(Startup { version, params })
    }

    /// The value of parameter `name` (exact, case-sensitive match as PostgreSQL does).
    pub fn param(&self, name: &str) -> Option<&'a [u8]> {
        self.params
            .iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|&(_, v)| v)
    }

    /// Appends the StartupMessage with its length.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::startup_packet(out, |w| {
            w.u32(self.version.code());
            for (name, value) in &self.params {
                w.cstr(name).cstr(value);
            }
            w.u8(0);
        });
    }
}

impl CancelRequest<'_> {
    /// Appends the CancelRequest with its length.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::startup_packet(out, |w| {
            w.u32(CANCEL_REQUEST_CODE)
                .i32(self.pid)
                .bytes(counted_key(self.key));
        });
    }
}

/// A key longer than the protocol allows is cut rather than sent.
fn counted_key(key: &[u8]) -> &[u8] {
    key.get(..MAX_CANCEL_KEY).unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup_bytes() -> Vec<u8> {
        let s = Startup {
            version: ProtocolVersion::V3_0,
            params: vec![(&b"user"[..], &b"alice"[..]), (b"database", b"db")],
        };
        let mut out = Vec::new();
        s.encode(&mut out);
        out
    }

    #[test]
    fn startup_message_parses_and_partial_needs_more() {
        let bytes = startup_bytes();
        assert_eq!(&bytes[..8], b"\x00\x00\x00\x20\x00\x03\x00\x00");
        for n in 0..bytes.len() {
            assert_eq!(StartupPacket::parse(&bytes[..n]), Ok(None));
        }
        let (packet, used) = StartupPacket::parse(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        let StartupPacket::Startup(s) = packet else {
            panic!("not a startup")
        };
        assert_eq!(s.param("user"), Some(&b"alice"[..]));
        assert_eq!(s.param("database"), Some(&b"db"[..]));
        assert_eq!(s.param("User"), None);
    }

    #[test]
    fn ssl_gss_and_cancel_requests() {
        assert_eq!(
            StartupPacket::parse(b"\x00\x00\x00\x08\x04\xd2\x16\x2f").unwrap(),
            Some((StartupPacket::SslRequest, 8))
        );
        assert_eq!(
            StartupPacket::parse(b"\x00\x00\x00\x08\x04\xd2\x16\x30").unwrap(),
            Some((StartupPacket::GssEncRequest, 8))
        );
        let key = [7u8; 32]; // a protocol 3.2 key
        let mut out = Vec::new();
        CancelRequest { pid: 42, key: &key }.encode(&mut out);
        let (packet, _) = StartupPacket::parse(&out).unwrap().unwrap();
        assert_eq!(
            packet,
            StartupPacket::Cancel(CancelRequest { pid: 42, key: &key })
        );
    }

    #[test]
    fn size_limits_and_bad_packets() {
        assert_eq!(
            StartupPacket::parse(b"\x00\x00\x27\x11"),
            Err(DecodeError::TooLarge {
                tag: None,
                length: 10_001,
                limit: MAX_STARTUP_PACKET
            })
        );
        assert_eq!(
            StartupPacket::parse(b"\x00\x00\x00\x07"),
            Err(DecodeError::LengthTooShort {
                tag: None,
                length: 7
            })
        );
        // Protocol 2.0 is refused with its version, so the caller can name it.
        assert_eq!(
            StartupPacket::parse(b"\x00\x00\x00\x09\x00\x02\x00\x00\x00"),
            Err(DecodeError::UnsupportedProtocol { major: 2, minor: 0 })
        );
        // A parameter list without its final NUL.
        assert_eq!(
            StartupPacket::parse(b"\x00\x00\x00\x0a\x00\x03\x00\x00u\x00"),
            Err(DecodeError::MissingNul {
                context: "StartupMessage.value"
            })
        );
        // An SSLRequest with trailing bytes.
        assert!(matches!(
            StartupPacket::parse(b"\x00\x00\x00\x09\x04\xd2\x16\x2fx"),
            Err(DecodeError::TrailingBytes { .. })
        ));
        // A cancel key of 3 bytes.
        assert!(matches!(
            StartupPacket::parse(b"\x00\x00\x00\x0f\x04\xd2\x16\x2e\x00\x00\x00\x01abc"),
            Err(DecodeError::InvalidValue {
                context: "CancelRequest.key",
                value: 3
            })
        ));
    }

    #[test]
    fn protocol_3_2_is_accepted() {
        let mut out = Vec::new();
        Startup {
            version: ProtocolVersion::V3_2,
            params: vec![],
        }
        .encode(&mut out);
        let (packet, _) = StartupPacket::parse(&out).unwrap().unwrap();
        let StartupPacket::Startup(s) = packet else {
            panic!("not a startup")
        };
        assert_eq!(s.version, ProtocolVersion::V3_2);
        assert!(ProtocolVersion::V3_2 > ProtocolVersion::V3_0);
    }
}
