//! FunctionCallResponse: the result of a fast-path FunctionCall.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer;

use super::tag;

/// `V`: the function's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCallResponse<'a> {
    /// Result value; `None` is SQL NULL.
    pub result: Option<&'a [u8]>,
}

impl<'a> FunctionCallResponse<'a> {
    /// Decodes a FunctionCallResponse body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "FunctionCallResponse.result");
        let result = r.nullable()?;
        r.finish()?;
        Ok(Self { result })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::FUNCTION_CALL_RESPONSE, |w| {
            w.nullable(self.result);
        });
    }
}
