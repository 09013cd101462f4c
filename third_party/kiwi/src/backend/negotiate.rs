//! NegotiateProtocolVersion: the server answers a StartupMessage that asked for a newer minor
//! version or for `_pq_.` protocol options it does not know.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer::{self, counted};

use super::tag;

/// `v`: the newest minor version the server supports and the options it did not recognise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateProtocolVersion<'a> {
    /// Newest minor version of protocol 3 the server speaks.
    pub newest_minor: u32,
    /// Names of the `_pq_.` options it did not recognise.
    pub unrecognized: Vec<&'a [u8]>,
}

impl<'a> NegotiateProtocolVersion<'a> {
    /// Decodes a NegotiateProtocolVersion body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "NegotiateProtocolVersion.newest_minor");
        let newest_minor = r.u32()?;
        let n = r.context("NegotiateProtocolVersion.options").u32()?;
        // Each name takes at least its NUL, so a count beyond the bytes left is a lie; checking
        // first keeps a hostile count from sizing an allocation.
        if n as usize > r.remaining() {
            return Err(r.invalid(i64::from(n)));
        }
        let unrecognized = (0..n).map(|_| r.cstr()).collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self {
            newest_minor,
            unrecognized,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::NEGOTIATE_PROTOCOL_VERSION, |w| {
            let names = counted(&self.unrecognized);
            w.u32(self.newest_minor).u32(names.len() as u32);
            for name in names {
                w.cstr(name);
            }
        });
    }
}
