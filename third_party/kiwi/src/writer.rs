//! Writer: appends one message to a `Vec<u8>` and back-patches its length when done.
//!
//! Encoding cannot fail. Values beyond what the protocol can express are clamped so that the
//! framing stays valid: a string is cut at its first NUL, a count stops at 65535 items, and the
//! caller keeps a message under 1 GiB (PostgreSQL's own limit).

/// Appends the fields of one message; created by [`message`] or [`startup_packet`].
///
/// Invariant: `out[start..start + 4]` is the length slot patched by `finish`.
pub(crate) struct Writer<'o> {
    out: &'o mut Vec<u8>,
    start: usize,
}

/// Writes a tagged message: `tag`, Int32 length, then whatever `body` writes.
pub(crate) fn message(out: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Writer<'_>)) {
    out.push(tag);
    framed(out, body);
}

/// Writes an untagged startup-phase packet: Int32 length, then `body`.
pub(crate) fn startup_packet(out: &mut Vec<u8>, body: impl FnOnce(&mut Writer<'_>)) {
    framed(out, body);
}

/// Writes a message with an empty body (Sync, Flush, ParseComplete, ...).
pub(crate) fn empty(out: &mut Vec<u8>, tag: u8) {
    out.push(tag);
    out.extend_from_slice(&4i32.to_be_bytes());
}

fn framed(out: &mut Vec<u8>, body: impl FnOnce(&mut Writer<'_>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    let mut w = Writer { out, start };
    body(&mut w);
    w.finish();
}

impl Writer<'_> {
    fn finish(self) {
        let len = self.out.len() - self.start;
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        if let Some(slot) = self.out.get_mut(self.start..self.start + 4) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    pub(crate) fn i16(&mut self, v: i16) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn i32(&mut self, v: i32) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A 16-bit item count, clamped to 65535 (the caller writes no more items than this).
    pub(crate) fn count(&mut self, n: usize) -> &mut Self {
        let n = u16::try_from(n).unwrap_or(u16::MAX);
        self.out.extend_from_slice(&n.to_be_bytes());
        self
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.out.extend_from_slice(v);
        self
    }

    /// A NUL-terminated string; anything from an embedded NUL on is dropped.
    pub(crate) fn cstr(&mut self, v: &[u8]) -> &mut Self {
        let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
        self.out.extend_from_slice(v.get(..end).unwrap_or_default());
        self.out.push(0);
        self
    }

    /// Int32 length then the bytes, or length -1 for SQL NULL.
    pub(crate) fn nullable(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.i32(-1),
            Some(v) => self
                .i32(i32::try_from(v.len()).unwrap_or(i32::MAX))
                .bytes(v),
        }
    }
}

/// Limits an item list to what a 16-bit count can announce, so count and items agree.
pub(crate) fn counted<T>(items: &[T]) -> &[T] {
    items.get(..usize::from(u16::MAX)).unwrap_or(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_back_patched() {
        let mut out = b"prefix".to_vec();
        message(&mut out, b'Q', |w| {
            w.cstr(b"select 1");
        });
        assert_eq!(&out[6..], b"Q\x00\x00\x00\x0dselect 1\x00");
    }

    #[test]
    fn embedded_nul_is_cut() {
        let mut out = Vec::new();
        startup_packet(&mut out, |w| {
            w.cstr(b"ab\0cd");
        });
        assert_eq!(out, b"\x00\x00\x00\x07ab\x00");
    }
}
