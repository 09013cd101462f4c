//! DecodeError: why bytes from the network are not a valid message.
//!
//! "Need more bytes" is never an error: the framing functions return `Ok(None)` for that.
//! Every variant names where in the protocol the problem was found (`context`), so a log line
//! says which message and field a peer got wrong.

use std::fmt;

/// Which peer sent the bytes that failed to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A client (psql, a driver): frontend messages.
    Frontend,
    /// A PostgreSQL server: backend messages.
    Backend,
}

/// A message that is complete but not valid, or a frame that may not be read at all.
///
/// `context` is a static `"Message.field"` label such as `"Bind.parameter_formats"`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A field runs past the end of the message body.
    Truncated {
        /// Message and field being read.
        context: &'static str,
    },
    /// The message body holds bytes after its last field.
    TrailingBytes {
        /// Message whose body was too long.
        context: &'static str,
        /// How many bytes were left over.
        count: usize,
    },
    /// A string has no NUL terminator before the end of the message.
    MissingNul {
        /// Message and field being read.
        context: &'static str,
    },
    /// A field that must be UTF-8 (SASL mechanism, SCRAM attribute) is not.
    InvalidUtf8 {
        /// Message and field being read.
        context: &'static str,
    },
    /// A field holds a value outside its allowed set (a format code, a status byte, a count).
    InvalidValue {
        /// Message and field being read.
        context: &'static str,
        /// The offending value.
        value: i64,
    },
    /// The message type byte is not one this side may send.
    UnknownTag {
        /// Who sent it.
        side: Side,
        /// The type byte.
        tag: u8,
    },
    /// A length field is below the minimum (4 for a tagged message, 8 for a startup packet).
    LengthTooShort {
        /// Message type byte, `None` for a startup-phase packet.
        tag: Option<u8>,
        /// Length as sent, including itself.
        length: u32,
    },
    /// A length field exceeds the configured limit.
    TooLarge {
        /// Message type byte, `None` for a startup-phase packet.
        tag: Option<u8>,
        /// Length as sent, including itself.
        length: u32,
        /// The limit in force.
        limit: u32,
    },
    /// A StartupMessage asks for a protocol major version other than 3.
    UnsupportedProtocol {
        /// Requested major version.
        major: u16,
        /// Requested minor version.
        minor: u16,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { context } => write!(f, "{context}: message ends inside the field"),
            Self::TrailingBytes { context, count } => {
                write!(
                    f,
                    "{context}: {count} unexpected bytes after the last field"
                )
            }
            Self::MissingNul { context } => write!(f, "{context}: string is not NUL-terminated"),
            Self::InvalidUtf8 { context } => write!(f, "{context}: string is not valid UTF-8"),
            Self::InvalidValue { context, value } => write!(f, "{context}: invalid value {value}"),
            Self::UnknownTag { side, tag } => {
                let who = match side {
                    Side::Frontend => "client",
                    Side::Backend => "server",
                };
                write!(f, "unknown {who} message type {}", DisplayTag(*tag))
            }
            Self::LengthTooShort { tag, length } => {
                write!(f, "{}: length {length} is too short", DisplayKind(*tag))
            }
            Self::TooLarge { tag, length, limit } => write!(
                f,
                "{}: length {length} exceeds the limit of {limit} bytes",
                DisplayKind(*tag)
            ),
            Self::UnsupportedProtocol { major, minor } => {
                write!(f, "unsupported frontend protocol {major}.{minor}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Shows a type byte as `'Q'` when printable, `0x00` otherwise.
struct DisplayTag(u8);

impl fmt::Display for DisplayTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

/// Names a frame by its tag, or as the startup packet when it has none.
struct DisplayKind(Option<u8>);

impl fmt::Display for DisplayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(tag) => write!(f, "message {}", DisplayTag(tag)),
            None => f.write_str("startup packet"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_message_and_field() {
        let e = DecodeError::Truncated {
            context: "Bind.parameters",
        };
        assert_eq!(
            e.to_string(),
            "Bind.parameters: message ends inside the field"
        );
        let e = DecodeError::UnknownTag {
            side: Side::Frontend,
            tag: 0,
        };
        assert_eq!(e.to_string(), "unknown client message type 0x00");
        let e = DecodeError::TooLarge {
            tag: None,
            length: 20000,
            limit: 10000,
        };
        assert_eq!(
            e.to_string(),
            "startup packet: length 20000 exceeds the limit of 10000 bytes"
        );
    }
}
