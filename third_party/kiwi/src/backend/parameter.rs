//! ParameterStatus: the server reports the value of a run-time parameter.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer;

use super::tag;

/// `S`: a reported parameter (`client_encoding`, `TimeZone`, ...) and its current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterStatus<'a> {
    /// Parameter name.
    pub name: &'a [u8],
    /// Its new value.
    pub value: &'a [u8],
}

impl<'a> ParameterStatus<'a> {
    /// Decodes a ParameterStatus body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "ParameterStatus.name");
        let name = r.cstr()?;
        let value = r.context("ParameterStatus.value").cstr()?;
        r.finish()?;
        Ok(Self { name, value })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::PARAMETER_STATUS, |w| {
            w.cstr(self.name).cstr(self.value);
        });
    }
}
