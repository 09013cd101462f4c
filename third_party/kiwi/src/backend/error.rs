//! ErrorResponse and NoticeResponse: typed fields (severity, SQLSTATE, message, ...), read and
//! built. Both messages share one body format, [`ErrorFields`].

use std::fmt;

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::sqlstate::SqlState;
use crate::writer;

use super::tag;

/// Field type bytes of ErrorResponse and NoticeResponse.
pub mod field {
    /// Severity, possibly localized.
    pub const SEVERITY: u8 = b'S';
    /// Severity, never localized (PostgreSQL 9.6 and later).
    pub const SEVERITY_NONLOCALIZED: u8 = b'V';
    /// SQLSTATE code.
    pub const CODE: u8 = b'C';
    /// Primary message.
    pub const MESSAGE: u8 = b'M';
    /// Detail.
    pub const DETAIL: u8 = b'D';
    /// Hint.
    pub const HINT: u8 = b'H';
    /// Cursor position in the query string (1-based, in characters).
    pub const POSITION: u8 = b'P';
    /// Position in an internally generated query.
    pub const INTERNAL_POSITION: u8 = b'p';
    /// The internally generated query.
    pub const INTERNAL_QUERY: u8 = b'q';
    /// Call-stack context.
    pub const WHERE: u8 = b'W';
    /// Schema name.
    pub const SCHEMA: u8 = b's';
    /// Table name.
    pub const TABLE: u8 = b't';
    /// Column name.
    pub const COLUMN: u8 = b'c';
    /// Data type name.
    pub const DATA_TYPE: u8 = b'd';
    /// Constraint name.
    pub const CONSTRAINT: u8 = b'n';
    /// Source file that raised it.
    pub const FILE: u8 = b'F';
    /// Source line.
    pub const LINE: u8 = b'L';
    /// Source routine.
    pub const ROUTINE: u8 = b'R';
}

/// Severity of an error or notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The statement failed.
    Error,
    /// The session ends.
    Fatal,
    /// All sessions end.
    Panic,
    /// Notice-level warning.
    Warning,
    /// Notice.
    Notice,
    /// Debugging output.
    Debug,
    /// Information requested by the user.
    Info,
    /// Log-level message.
    Log,
}

impl Severity {
    /// The non-localized name as sent in fields `S` and `V`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
            Self::Panic => "PANIC",
            Self::Warning => "WARNING",
            Self::Notice => "NOTICE",
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Log => "LOG",
        }
    }

    /// Reads a non-localized severity name.
    pub fn parse(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"ERROR" => Self::Error,
            b"FATAL" => Self::Fatal,
            b"PANIC" => Self::Panic,
            b"WARNING" => Self::Warning,
            b"NOTICE" => Self::Notice,
            b"DEBUG" => Self::Debug,
            b"INFO" => Self::Info,
            b"LOG" => Self::Log,
            _ => return None,
        })
    }
}

/// The body of an ErrorResponse or NoticeResponse: `(field type, value)` pairs in order.
///
/// Decoding keeps every field, known or not, so a message re-encodes byte for byte. Field type
/// 0 cannot be encoded (it ends the list) and is skipped; so is anything after a NUL in a value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorFields<'a> {
    /// Fields in the order sent; see [`field`] for the type bytes.
    pub fields: Vec<(u8, &'a [u8])>,
}

impl<'a> ErrorFields<'a> {
    /// Starts a message the way PostgreSQL builds one: severity (`S` and `V`), SQLSTATE, text.
    pub fn new(severity: Severity, code: &'a SqlState, message: &'a str) -> Self {
        let severity = severity.as_str().as_bytes();
        Self {
            fields: vec![
                (field::SEVERITY, severity),
                (field::SEVERITY_NONLOCALIZED, severity),
                (field::CODE, code.as_str().as_bytes()),
                (field::MESSAGE, message.as_bytes()),
            ],
        }
    }

    /// Adds a field; see [`field`] for the type bytes.
    pub fn with(mut self, field: u8, value: &'a [u8]) -> Self {
        self.fields.push((field, value));
        self
    }

    /// Replaces the value of `field` (or adds the field when absent).
    pub fn set(mut self, field: u8, value: &'a [u8]) -> Self {
        match self.fields.iter_mut().find(|(kind, _)| *kind == field) {
            Some(entry) => entry.1 = value,
            None => self.fields.push((field, value)),
        }
        self
    }

    /// Adds a `D` (detail) field.
    pub fn detail(self, detail: &'a str) -> Self {
        self.with(field::DETAIL, detail.as_bytes())
    }

    /// Adds an `H` (hint) field.
    pub fn hint(self, hint: &'a str) -> Self {
        self.with(field::HINT, hint.as_bytes())
    }

    /// Decodes the body of an ErrorResponse or NoticeResponse.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "ErrorResponse.field");
        let mut fields = Vec::new();
        loop {
            let kind = r.context("ErrorResponse.field").u8()?;
            if kind == 0 {
                break;
            }
            fields.push((kind, r.context("ErrorResponse.value").cstr()?));
        }
        r.context("ErrorResponse").finish()?;
        Ok(Self { fields })
    }

    /// Appends the fields as an ErrorResponse (`E`).
    pub fn encode_error(&self, out: &mut Vec<u8>) {
        self.encode(out, tag::ERROR_RESPONSE);
    }

    /// Appends the fields as a NoticeResponse (`N`).
    pub fn encode_notice(&self, out: &mut Vec<u8>) {
        self.encode(out, tag::NOTICE_RESPONSE);
    }

    fn encode(&self, out: &mut Vec<u8>, tag: u8) {
        writer::message(out, tag, |w| {
            for &(kind, value) in self.fields.iter().filter(|(kind, _)| *kind != 0) {
                w.u8(kind).cstr(value);
            }
            w.u8(0);
        });
    }

    /// The first value of field `kind`.
    pub fn field(&self, kind: u8) -> Option<&'a [u8]> {
        self.fields
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|&(_, v)| v)
    }

    /// Severity, from `V` when present (never localized), else from `S`.
    pub fn severity(&self) -> Option<Severity> {
        let parsed = |kind| self.field(kind).and_then(Severity::parse);
        parsed(field::SEVERITY_NONLOCALIZED).or_else(|| parsed(field::SEVERITY))
    }

    /// The SQLSTATE code (`C`).
    pub fn code(&self) -> Option<SqlState> {
        self.field(field::CODE).and_then(SqlState::from_bytes)
    }

    /// The primary message (`M`).
    pub fn message(&self) -> Option<&'a [u8]> {
        self.field(field::MESSAGE)
    }

    /// The detail (`D`).
    pub fn detail_text(&self) -> Option<&'a [u8]> {
        self.field(field::DETAIL)
    }

    /// The hint (`H`).
    pub fn hint_text(&self) -> Option<&'a [u8]> {
        self.field(field::HINT)
    }

    /// The cursor position (`P`), when it is a number.
    pub fn position(&self) -> Option<u32> {
        let p = self.field(field::POSITION)?;
        std::str::from_utf8(p).ok()?.parse().ok()
    }
}

/// Shows `SEVERITY CODE: message` for logs (non-UTF-8 bytes replaced).
impl fmt::Display for ErrorFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |kind| String::from_utf8_lossy(self.field(kind).unwrap_or_default());
        write!(
            f,
            "{} {}: {}",
            text(field::SEVERITY),
            text(field::CODE),
            text(field::MESSAGE)
        )?;
        if let Some(detail) = self.detail_text() {
            write!(f, " (detail: {})", String::from_utf8_lossy(detail))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlstate;

    #[test]
    fn built_error_bytes_and_accessors() {
        let e = ErrorFields::new(Severity::Fatal, &sqlstate::INVALID_PASSWORD, "bad")
            .detail("d")
            .hint("h");
        let mut out = Vec::new();
        e.encode_error(&mut out);
        assert_eq!(
            out,
            b"E\x00\x00\x00\x25SFATAL\x00VFATAL\x00C28P01\x00Mbad\x00Dd\x00Hh\x00\x00"
        );
        let back = ErrorFields::decode(&out[5..]).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.severity(), Some(Severity::Fatal));
        assert_eq!(back.code(), Some(sqlstate::INVALID_PASSWORD));
        assert_eq!(back.message(), Some(&b"bad"[..]));
        assert_eq!(back.to_string(), "FATAL 28P01: bad (detail: d)");
    }

    #[test]
    fn localized_severity_falls_back_to_v() {
        let e = ErrorFields::decode(b"SFEHLER\x00VERROR\x00P12\x00\x00").unwrap();
        assert_eq!(e.severity(), Some(Severity::Error));
        assert_eq!(e.position(), Some(12));
    }

    #[test]
    fn missing_terminator_is_an_error() {
        assert_eq!(
            ErrorFields::decode(b"SERROR\x00"),
            Err(DecodeError::Truncated {
                context: "ErrorResponse.field"
            })
        );
    }
}
