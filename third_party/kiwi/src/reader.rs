//! Reader: a checked cursor over one message body; it never panics and never reads past the end.
//!
//! Every read returns `DecodeError::Truncated` when the body is too short, and `finish` rejects
//! trailing bytes, so a decoder that ends with `finish()` accepts exactly its format.

use crate::error::DecodeError;

/// Cursor over a complete message body.
///
/// Invariant: `pos <= buf.len()`.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    context: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf`; `context` names the message in errors.
    pub(crate) fn new(buf: &'a [u8], context: &'static str) -> Self {
        Self {
            buf,
            pos: 0,
            context,
        }
    }

    /// Renames the field being read, for error messages.
    pub(crate) fn context(&mut self, context: &'static str) -> &mut Self {
        self.context = context;
        self
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.buf.len());
        let end = end.ok_or(DecodeError::Truncated {
            context: self.context,
        })?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated {
            context: self.context,
        })?;
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Result<i16, DecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    /// A 16-bit count, which PostgreSQL treats as unsigned (up to 65535 items).
    pub(crate) fn count(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A NUL-terminated string, without its terminator.
    pub(crate) fn cstr(&mut self) -> Result<&'a [u8], DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(DecodeError::MissingNul {
                context: self.context,
            })?;
        let out = self.bytes(len)?;
        self.pos += 1; // the NUL found above lies inside `buf`
        Ok(out)
    }

    /// A NUL-terminated string that must be UTF-8.
    pub(crate) fn cstr_utf8(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.cstr()?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8 {
            context: self.context,
        })
    }

    /// An Int32 length followed by that many bytes; length -1 is SQL NULL.
    pub(crate) fn nullable(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.i32()?;
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(self.invalid(i64::from(n))),
            n => self.bytes(n as usize).map(Some), // n >= 0 here
        }
    }

    /// Everything left in the body.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        out
    }

    /// An `InvalidValue` error for the current field.
    pub(crate) fn invalid(&self, value: i64) -> DecodeError {
        DecodeError::InvalidValue {
            context: self.context,
            value,
        }
    }

    /// Ends decoding: the body must be fully consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes {
                context: self.context,
                count,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_rejects_short_input() {
        let mut r = Reader::new(b"\x00\x01abc\x00\xff\xff\xff\xffz", "T");
        assert_eq!(r.i16(), Ok(1));
        assert_eq!(r.cstr(), Ok(&b"abc"[..]));
        assert_eq!(r.nullable(), Ok(None));
        assert_eq!(
            r.finish(),
            Err(DecodeError::TrailingBytes {
                context: "T",
                count: 1
            })
        );
        assert_eq!(r.i32(), Err(DecodeError::Truncated { context: "T" }));
        assert_eq!(r.u8(), Ok(b'z'));
        assert_eq!(r.finish(), Ok(()));
    }

    #[test]
    fn string_without_nul_is_an_error() {
        let mut r = Reader::new(b"abc", "T.s");
        assert_eq!(r.cstr(), Err(DecodeError::MissingNul { context: "T.s" }));
    }

    #[test]
    fn negative_length_other_than_null_is_invalid() {
        let mut r = Reader::new(b"\xff\xff\xff\xfe", "T.v");
        assert_eq!(
            r.nullable(),
            Err(DecodeError::InvalidValue {
                context: "T.v",
                value: -2
            })
        );
        let mut r = Reader::new(b"\x7f\xff\xff\xff", "T.v");
        assert_eq!(r.nullable(), Err(DecodeError::Truncated { context: "T.v" }));
    }
}
