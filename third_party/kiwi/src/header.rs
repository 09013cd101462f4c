//! Header and Frame: the 5-byte tag + length that starts every message after startup, and
//! splitting a buffer into whole messages.
//!
//! The relay's hot path needs only this: read a [`Header`], then forward
//! [`Header::frame_len`] bytes without decoding them. A buffer holding part of a message gives
//! `Ok(None)` ("need more bytes"); a length below 4 or above the caller's limit is an error.

use crate::error::DecodeError;

/// Bytes in a header: one tag byte and an Int32 length.
pub const HEADER_LEN: usize = 5;

/// A default limit for a message's length field: PostgreSQL refuses messages of 1 GiB and more.
pub const DEFAULT_MAX_MESSAGE: u32 = 0x3fff_ffff;

/// The start of a tagged message.
///
/// Invariant: `4 <= length <= limit` given to [`Header::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Message type byte (`b'Q'`, `b'D'`, ...).
    pub tag: u8,
    /// Length as on the wire: counts itself (4 bytes) and the body, not the tag.
    pub length: u32,
}

impl Header {
    /// Reads a header from the start of `buf`; `Ok(None)` when fewer than 5 bytes are there.
    ///
    /// `max_len` bounds the length field; larger values give `DecodeError::TooLarge`.
    pub fn parse(buf: &[u8], max_len: u32) -> Result<Option<Header>, DecodeError> {
        let Some(&[tag, a, b, c, d]) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let length = u32::from_be_bytes([a, b, c, d]);
        if length < 4 {
            return Err(DecodeError::LengthTooShort {
                tag: Some(tag),
                length,
            });
        }
        if length > max_len {
            return Err(DecodeError::TooLarge {
                tag: Some(tag),
                length,
                limit: max_len,
            });
        }
        Ok(Some(Header { tag, length }))
    }

    /// Bytes of the body that follows the header.
    pub fn body_len(&self) -> usize {
        self.length as usize - 4 // length >= 4 by the type's invariant
    }

    /// Bytes of the whole message: tag, length and body.
    pub fn frame_len(&self) -> usize {
        (self.length as usize).saturating_add(1)
    }

    /// Appends the header as it appears on the wire.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag);
        out.extend_from_slice(&self.length.to_be_bytes());
    }
}

/// One whole message borrowed from a buffer: its header and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Tag and length.
    pub header: Header,
    /// The body: exactly `header.body_len()` bytes.
    pub body: &'a [u8],
    /// The whole message as on the wire, for forwarding unchanged.
    pub bytes: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Splits the first whole message off `buf`.
    ///
    /// Returns the frame and the bytes after it, or `Ok(None)` when `buf` holds only part of a
    /// message (call again with more bytes).
    pub fn split(
        buf: &'a [u8],
        max_len: u32,
    ) -> Result<Option<(Frame<'a>, &'a [u8])>, DecodeError> {
        let Some(header) = Header::parse(buf, max_len)? else {
            return Ok(None);
        };
        let Some(bytes) = buf.get(..header.frame_len()) else {
            return Ok(None);
        };
        let rest = buf.get(header.frame_len()..).unwrap_or_default();
        let body = bytes.get(HEADER_LEN..).unwrap_or_default();
        Ok(Some((
            Frame {
                header,
                body,
                bytes,
            },
            rest,
        )))
    }

    /// The message type byte.
    pub fn tag(&self) -> u8 {
        self.header.tag
    }
}

/// Splits the first whole message off `buf` and decodes it with `decode(tag, body)`; returns
/// the message and the bytes it used. Shared by the frontend and backend `parse`.
pub(crate) fn parse_first<'a, T>(
    buf: &'a [u8],
    max_len: u32,
    decode: impl FnOnce(u8, &'a [u8]) -> Result<T, DecodeError>,
) -> Result<Option<(T, usize)>, DecodeError> {
    match Frame::split(buf, max_len)? {
        None => Ok(None),
        Some((frame, _)) => Ok(Some((
            decode(frame.header.tag, frame.body)?,
            frame.bytes.len(),
        ))),
    }
}

/// Iterates over the whole messages at the start of a buffer, stopping at a partial one.
///
/// After the iterator is exhausted, [`Frames::rest`] is the unconsumed tail (a partial message
/// or nothing); an error ends the iteration.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    rest: &'a [u8],
    max_len: u32,
    failed: bool,
}

impl<'a> Frames<'a> {
    /// Starts splitting `buf` with a length limit of `max_len`.
    pub fn new(buf: &'a [u8], max_len: u32) -> Self {
        Self {
            rest: buf,
            max_len,
            failed: false,
        }
    }

    /// Bytes not yet returned as frames.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match Frame::split(self.rest, self.max_len) {
            Ok(Some((frame, rest))) => {
                self.rest = rest;
                Some(Ok(frame))
            }
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_header_and_body_need_more() {
        let msg = b"Q\x00\x00\x00\x0dselect 1\x00";
        for n in 0..msg.len() {
            assert_eq!(
                Frame::split(&msg[..n], DEFAULT_MAX_MESSAGE),
                Ok(None),
                "prefix {n}"
            );
        }
        let (frame, rest) = Frame::split(msg, DEFAULT_MAX_MESSAGE).unwrap().unwrap();
        assert_eq!(frame.tag(), b'Q');
        assert_eq!(frame.body, b"select 1\x00");
        assert_eq!(frame.bytes, msg);
        assert!(rest.is_empty());
    }

    #[test]
    fn header_is_enough_to_forward() {
        let h = Header::parse(b"D\x00\x00\x01\x00", 1000).unwrap().unwrap();
        assert_eq!((h.tag, h.body_len(), h.frame_len()), (b'D', 252, 257));
        let mut out = Vec::new();
        h.encode(&mut out);
        assert_eq!(out, b"D\x00\x00\x01\x00");
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert_eq!(
            Header::parse(b"Q\x00\x00\x00\x03", 100),
            Err(DecodeError::LengthTooShort {
                tag: Some(b'Q'),
                length: 3
            })
        );
        assert_eq!(
            Header::parse(b"Q\x00\x00\x01\x00", 100),
            Err(DecodeError::TooLarge {
                tag: Some(b'Q'),
                length: 256,
                limit: 100
            })
        );
    }

    #[test]
    fn frames_iterates_and_keeps_tail() {
        let buf = b"S\x00\x00\x00\x04H\x00\x00\x00\x04Q\x00\x00";
        let mut frames = Frames::new(buf, 100);
        let tags: Vec<u8> = frames.by_ref().map(|f| f.unwrap().tag()).collect();
        assert_eq!(tags, b"SH");
        assert_eq!(frames.rest(), b"Q\x00\x00");
    }
}
