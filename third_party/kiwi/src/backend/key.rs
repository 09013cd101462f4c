//! BackendKeyData: the process id and secret key a client needs to cancel its queries.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::startup::MAX_CANCEL_KEY;
use crate::writer;

use super::tag;

/// `K`: cancellation key of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendKeyData<'a> {
    /// Backend process id.
    pub pid: i32,
    /// Secret key: 4 bytes in protocol 3.0, 4 to 256 bytes in 3.2.
    pub key: &'a [u8],
}

impl<'a> BackendKeyData<'a> {
    /// Decodes a BackendKeyData body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "BackendKeyData.pid");
        let pid = r.i32()?;
        let key = r.rest();
        if !(4..=MAX_CANCEL_KEY).contains(&key.len()) {
            return Err(DecodeError::InvalidValue {
                context: "BackendKeyData.key",
                value: key.len() as i64,
            });
        }
        Ok(Self { pid, key })
    }

    /// Appends the message; a key longer than 256 bytes is cut to 256.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::BACKEND_KEY_DATA, |w| {
            w.i32(self.pid)
                .bytes(self.key.get(..MAX_CANCEL_KEY).unwrap_or(self.key));
        });
    }
}
