//! FunctionCall: the fast-path interface (the answer is backend FunctionCallResponse).

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer::{self, counted};

use super::extended::{formats, write_formats};
use super::tag;

/// `F`: call a function by OID with arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall<'a> {
    /// OID of the function.
    pub function: u32,
    /// Argument format codes: none, one for all, or one per argument.
    pub arg_formats: Vec<i16>,
    /// Argument values; `None` is SQL NULL.
    pub args: Vec<Option<&'a [u8]>>,
    /// Format of the result (0 text, 1 binary).
    pub result_format: i16,
}

impl<'a> FunctionCall<'a> {
    /// Decodes a FunctionCall body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "FunctionCall.function");
        let function = r.u32()?;
        let arg_formats = formats(r.context("FunctionCall.arg_formats"))?;
        let n = r.context("FunctionCall.args").count()?;
        let args = (0..n).map(|_| r.nullable()).collect::<Result<_, _>>()?;
        let result_format = r.context("FunctionCall.result_format").i16()?;
        r.finish()?;
        Ok(Self {
            function,
            arg_formats,
            args,
            result_format,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::FUNCTION_CALL, |w| {
            w.u32(self.function);
            write_formats(w, &self.arg_formats);
            let args = counted(&self.args);
            w.count(args.len());
            for a in args {
                w.nullable(*a);
            }
            w.i16(self.result_format);
        });
    }
}
