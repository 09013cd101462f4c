//! COPY data messages: CopyData and CopyDone flow both ways, CopyFail only from the client.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer;

use super::tag;

/// `d`: a chunk of COPY data; the same message in both directions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyData<'a> {
    /// The data, opaque to the protocol.
    pub data: &'a [u8],
}

impl<'a> CopyData<'a> {
    /// Decodes a CopyData body (any bytes are valid).
    pub fn decode(body: &'a [u8]) -> Self {
        Self { data: body }
    }

    /// Appends the message (tag `d` in both directions).
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::COPY_DATA, |w| {
            w.bytes(self.data);
        });
    }
}

/// `f`: the client aborts COPY FROM STDIN with a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFail<'a> {
    /// Why the copy failed, reported in the server's error.
    pub message: &'a [u8],
}

impl<'a> CopyFail<'a> {
    /// Decodes a CopyFail body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "CopyFail.message");
        let message = r.cstr()?;
        r.finish()?;
        Ok(Self { message })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::COPY_FAIL, |w| {
            w.cstr(self.message);
        });
    }
}
