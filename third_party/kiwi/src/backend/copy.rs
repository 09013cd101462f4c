//! CopyInResponse, CopyOutResponse, CopyBothResponse: the server enters a COPY mode. The data
//! itself travels in CopyData and CopyDone (see `frontend::copy`).

use crate::error::DecodeError;
use crate::frontend::extended::{formats, write_formats};
use crate::reader::Reader;
use crate::writer;

use super::tag;

/// Which way COPY data flows; each has its own message tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyDirection {
    /// `G`: COPY FROM STDIN, the client sends data.
    In,
    /// `H`: COPY TO STDOUT, the server sends data.
    Out,
    /// `W`: both ways (streaming replication).
    Both,
}

impl CopyDirection {
    fn tag(self) -> u8 {
        match self {
            Self::In => tag::COPY_IN_RESPONSE,
            Self::Out => tag::COPY_OUT_RESPONSE,
            Self::Both => tag::COPY_BOTH_RESPONSE,
        }
    }
}

/// `G`, `H` or `W`: start of COPY, with the data formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponse {
    /// Direction, which selects the tag.
    pub direction: CopyDirection,
    /// Overall format: 0 text, 1 binary.
    pub format: u8,
    /// Per-column format codes.
    pub column_formats: Vec<i16>,
}

impl CopyResponse {
    /// Decodes the body of a copy response going `direction`.
    pub fn decode(direction: CopyDirection, body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "CopyResponse.format");
        let format = r.u8()?;
        let column_formats = formats(r.context("CopyResponse.column_formats"))?;
        r.finish()?;
        Ok(Self {
            direction,
            format,
            column_formats,
        })
    }

    /// Appends the message with the tag of its direction.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, self.direction.tag(), |w| {
            w.u8(self.format);
            write_formats(w, &self.column_formats);
        });
    }
}
