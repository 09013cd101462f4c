//! ReadyForQuery and the transaction status it carries, which tells a pooler when a server
//! may be detached.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer;

use super::tag;

/// The session's transaction state at a ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block; queries are rejected until it ends.
    Failed,
}

impl TransactionStatus {
    /// The status byte on the wire.
    pub fn byte(self) -> u8 {
        match self {
            Self::Idle => b'I',
            Self::InTransaction => b'T',
            Self::Failed => b'E',
        }
    }

    /// Reads a status byte; `None` for any other byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'I' => Some(Self::Idle),
            b'T' => Some(Self::InTransaction),
            b'E' => Some(Self::Failed),
            _ => None,
        }
    }
}

/// `Z`: the server is ready for the next query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyForQuery {
    /// Transaction state.
    pub status: TransactionStatus,
}

impl ReadyForQuery {
    /// Decodes a ReadyForQuery body.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "ReadyForQuery.status");
        let b = r.u8()?;
        let status = TransactionStatus::from_byte(b).ok_or_else(|| r.invalid(i64::from(b)))?;
        r.finish()?;
        Ok(Self { status })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::READY_FOR_QUERY, |w| {
            w.u8(self.status.byte());
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bytes() {
        let mut out = Vec::new();
        ReadyForQuery {
            status: TransactionStatus::InTransaction,
        }
        .encode(&mut out);
        assert_eq!(out, b"Z\x00\x00\x00\x05T");
        assert_eq!(
            ReadyForQuery::decode(b"X"),
            Err(DecodeError::InvalidValue {
                context: "ReadyForQuery.status",
                value: 88
            })
        );
    }
}
