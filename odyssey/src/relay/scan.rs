//! Where messages begin and end in the two byte streams, and the few messages that change what
//! the pooler may do with a server (ReadyForQuery and its transaction status, ParameterStatus,
//! CommandComplete, ErrorResponse, COPY). Bytes are forwarded as they come, in bulk; a message is
//! never decoded unless it is one of those. Headers are read through kiwi only.
//!
//! A [`Scanner`] keeps the one piece of state a stream needs between reads: how many body
//! bytes of the current message are still to pass.

use kiwi::backend::{TransactionStatus, tag as be};
use kiwi::frontend::tag as fe;
use kiwi::header::{HEADER_LEN, Header};

/// Position in a stream of messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scanner {
    /// Body bytes of the current message not seen yet (0: the next byte starts a message).
    need: usize,
}

/// A client broke the framing rules: a tag that is no message type, or a length below 4 or
/// above the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFrame {
    /// The tag byte.
    pub tag: u8,
    /// The length field as sent.
    pub length: u32,
}

impl std::fmt::Display for BadFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "message '{}' with length {}",
            self.tag.escape_ascii(),
            self.length
        )
    }
}

impl Scanner {
    /// Whether the stream is at a message boundary.
    pub fn at_boundary(&self) -> bool {
        self.need == 0
    }

    /// Body bytes of the current message still to pass.
    pub fn remaining(&self) -> usize {
        self.need
    }

    /// Passes what is left of the current message's body from `*pos`, then returns the header
    /// of the next message when its 5 bytes are all in `buf` (`*pos` stays at that header).
    /// Lengths are checked against `max`.
    fn next_header(
        &mut self,
        buf: &[u8],
        pos: &mut usize,
        max: u32,
    ) -> Result<Option<Header>, BadFrame> {
        let n = self.need.min(buf.len() - *pos);
        *pos += n;
        self.need -= n;
        if self.need > 0 {
            return Ok(None);
        }
        let rest = &buf[*pos..];
        match Header::parse(rest, max) {
            Ok(Some(h)) if h.tag >= 0x20 => Ok(Some(h)),
            Ok(None) => Ok(None),
            Ok(Some(h)) => Err(BadFrame {
                tag: h.tag,
                length: h.length,
            }),
            Err(_) => Err(BadFrame::at(rest)),
        }
    }

    /// Moves past the header at `*pos`; the body is still to pass.
    fn enter(&mut self, header: Header, pos: &mut usize) {
        *pos += HEADER_LEN;
        self.need = header.body_len();
    }
}

impl BadFrame {
    /// The header at the start of `buf` as it was sent, lengths unchecked (for the error).
    pub fn at(buf: &[u8]) -> BadFrame {
        match Header::parse(buf, u32::MAX) {
            Ok(Some(h)) => BadFrame {
                tag: h.tag,
                length: h.length,
            },
            Err(kiwi::error::DecodeError::LengthTooShort { tag, length }) => BadFrame {
                tag: tag.unwrap_or(0),
                length,
            },
            _ => BadFrame {
                tag: buf.first().copied().unwrap_or(0),
                length: 0,
            },
        }
    }
}

/// What a client sent that can go to the server now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ClientScan {
    /// Bytes from the start of the buffer to forward.
    pub forward: usize,
    /// Messages answered by a ReadyForQuery: Query, Sync, FunctionCall.
    pub requests: u32,
    /// A Terminate follows the forwarded bytes.
    pub terminate: bool,
    /// Whether the forwarded bytes end inside an extended-protocol sequence (Parse, Bind,
    /// Describe, Execute, Close or Flush after the last Sync or Query): `None` when they hold
    /// neither kind.
    pub unsynced: Option<bool>,
}

/// Messages of an extended-protocol sequence, which a Sync closes. COPY data is not one: it
/// belongs to the request that started the COPY (a Query, or an Execute inside a sequence).
pub fn opens_sequence(tag: u8) -> bool {
    matches!(
        tag,
        fe::PARSE | fe::BIND | fe::DESCRIBE | fe::EXECUTE | fe::CLOSE | fe::FLUSH
    )
}

/// Messages a logged-in client may send. Any other type is refused here, as PostgreSQL
/// refuses it (08P01, connection closed): forwarded, it would draw a FATAL from a server the
/// pooler had already released as idle, and the client would wait for an answer forever.
fn after_login(tag: u8) -> bool {
    matches!(
        tag,
        fe::QUERY
            | fe::PARSE
            | fe::BIND
            | fe::DESCRIBE
            | fe::EXECUTE
            | fe::CLOSE
            | fe::FLUSH
            | fe::SYNC
            | fe::FUNCTION_CALL
            | fe::COPY_DATA
            | fe::COPY_DONE
            | fe::COPY_FAIL
            | fe::TERMINATE
    )
}

/// Messages a client may send that are answered with ReadyForQuery.
pub fn answered_by_ready(tag: u8) -> bool {
    matches!(tag, fe::QUERY | fe::SYNC | fe::FUNCTION_CALL)
}

/// Walks client bytes: every message whose 5-byte header is in `buf` may be forwarded (its
/// body can stream); a Terminate stops the walk. Lengths are checked against `max`. `on` sees
/// each message that starts here: its tag and, when it is all in `buf`, its body.
pub fn scan_client(
    sc: &mut Scanner,
    buf: &[u8],
    max: u32,
    mut on: impl FnMut(u8, Option<&[u8]>),
) -> Result<ClientScan, BadFrame> {
    let mut out = ClientScan::default();
    let mut pos = 0;
    while let Some(header) = sc.next_header(buf, &mut pos, max)? {
        let tag = header.tag;
        if tag == fe::TERMINATE {
            out.terminate = true;
            break;
        }
        if !after_login(tag) {
            return Err(BadFrame {
                tag,
                length: header.length,
            });
        }
        if answered_by_ready(tag) {
            out.requests += 1;
            out.unsynced = Some(false);
        } else if opens_sequence(tag) {
            out.unsynced = Some(true);
        }
        let body = pos + HEADER_LEN;
        on(tag, buf.get(body..body + header.body_len()));
        sc.enter(header, &mut pos);
    }
    out.forward = pos;
    Ok(out)
}

/// Offset of the first whole-header message in `buf` that `pred` picks by its tag and as much
/// of its body as is in `buf`, walking from a
/// message boundary (`buf.len()` when there is none).
pub fn first_message(buf: &[u8], pred: impl Fn(u8, &[u8]) -> bool) -> usize {
    let mut pos = 0;
    while let Ok(Some(header)) = Header::parse(&buf[pos..], u32::MAX) {
        let body_end = buf.len().min(pos + header.frame_len());
        let body = buf.get(pos + HEADER_LEN..body_end).unwrap_or_default();
        if pred(header.tag, body) {
            return pos;
        }
        pos += header.frame_len();
        if pos >= buf.len() {
            break;
        }
    }
    buf.len()
}

/// What a server said that matters to the pooler.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerEvent<'a> {
    /// ReadyForQuery with this status.
    Ready(TransactionStatus),
    /// A ParameterStatus body (name, value).
    Parameter(&'a [u8]),
    /// CopyInResponse or CopyBothResponse: the client will send COPY data.
    CopyIn,
    /// An ErrorResponse (its body).
    Error(&'a [u8]),
    /// A CommandComplete body (the command tag).
    Complete(&'a [u8]),
    /// Any message starts at this offset of the buffer (after the events above for it).
    Start {
        /// Its tag.
        tag: u8,
        /// Where its header begins in the scanned buffer.
        at: usize,
    },
}

/// Whether the server waits for the client's COPY data after `ev`, given whether it did before:
/// from CopyInResponse (or CopyBothResponse) until the copy's CommandComplete or ErrorResponse
/// (or a ReadyForQuery, which no copy outlives).
pub fn copy_in_after(waiting: bool, ev: &ServerEvent<'_>) -> bool {
    match ev {
        ServerEvent::CopyIn => true,
        ServerEvent::Ready(_) | ServerEvent::Error(_) | ServerEvent::Complete(_) => false,
        ServerEvent::Parameter(_) | ServerEvent::Start { .. } => waiting,
    }
}

/// Walks server bytes up to the last point where every message that matters has been seen
/// whole (a ReadyForQuery needs its status byte, a ParameterStatus its body); returns how many
/// bytes may be forwarded, calling `on` for each event. A length field below 4 or past kiwi's
/// protocol maximum is an error: the server is not speaking the protocol.
pub fn scan_server<'a>(
    sc: &mut Scanner,
    buf: &'a [u8],
    mut on: impl FnMut(ServerEvent<'a>),
) -> Result<usize, BadFrame> {
    scan_server_until(sc, buf, |ev| {
        on(ev);
        false
    })
}

/// [`scan_server`], stopping after the message whose event `on` answers true for (the bytes
/// after it are left for the next pass).
pub fn scan_server_until<'a>(
    sc: &mut Scanner,
    buf: &'a [u8],
    mut on: impl FnMut(ServerEvent<'a>) -> bool,
) -> Result<usize, BadFrame> {
    let mut pos = 0;
    while let Some(header) = sc.next_header(buf, &mut pos, kiwi::header::DEFAULT_MAX_MESSAGE)? {
        let at = pos;
        let body = buf.get(at + HEADER_LEN..at + HEADER_LEN + header.body_len());
        let event = match header.tag {
            be::READY_FOR_QUERY => {
                let Some(&status) = buf.get(at + HEADER_LEN) else {
                    break;
                };
                let status =
                    TransactionStatus::from_byte(status).unwrap_or(TransactionStatus::Idle);
                Some(ServerEvent::Ready(status))
            }
            be::PARAMETER_STATUS | be::COMMAND_COMPLETE | be::ERROR_RESPONSE => {
                let Some(body) = body else { break };
                Some(match header.tag {
                    be::PARAMETER_STATUS => ServerEvent::Parameter(body),
                    be::COMMAND_COMPLETE => ServerEvent::Complete(body),
                    _ => ServerEvent::Error(body),
                })
            }
            be::COPY_IN_RESPONSE | be::COPY_BOTH_RESPONSE => Some(ServerEvent::CopyIn),
            _ => None,
        };
        let stop = event.is_some_and(&mut on);
        on(ServerEvent::Start {
            tag: header.tag,
            at,
        });
        sc.enter(header, &mut pos);
        if stop {
            // The whole message, body too, is the client's.
            let n = sc.need.min(buf.len() - pos);
            pos += n;
            sc.need -= n;
            break;
        }
    }
    Ok(pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn client_scan_counts_requests_and_stops_at_terminate() {
        let mut buf = msg(b'Q', b"select 1\0");
        buf.extend(msg(b'P', b"\0select 1\0\0\0"));
        buf.extend(msg(b'S', b""));
        let forwardable = buf.len();
        buf.extend(msg(b'X', b""));
        let mut sc = Scanner::default();
        let mut tags = Vec::new();
        let r = scan_client(&mut sc, &buf, 1 << 30, |t, _| tags.push(t)).unwrap();
        let expected = ClientScan {
            forward: forwardable,
            requests: 2,
            terminate: true,
            unsynced: Some(false),
        };
        assert_eq!(r, expected);
        assert_eq!(tags, b"QPS");
    }

    #[test]
    fn client_scan_tracks_an_open_extended_sequence() {
        let mut buf = msg(b'P', b"\0select 1\0\0\0");
        buf.extend(msg(b'B', b"\0\0\0\0\0\0\0\0"));
        buf.extend(msg(b'E', b"\0\0\0\0\0"));
        buf.extend(msg(b'H', b""));
        let mut sc = Scanner::default();
        let r = scan_client(&mut sc, &buf, 1 << 30, |_, _| {}).unwrap();
        assert_eq!(
            r.unsynced,
            Some(true),
            "a Flush does not close the sequence"
        );
        assert_eq!(r.requests, 0);
    }

    #[test]
    fn client_scan_streams_a_long_body_across_reads() {
        let big = msg(b'd', &[7u8; 100]);
        let mut sc = Scanner::default();
        let first = scan_client(&mut sc, &big[..30], 1 << 30, |_, _| {}).unwrap();
        assert_eq!(
            first.forward, 30,
            "the header is known: the body may stream"
        );
        let rest = scan_client(&mut sc, &big[30..], 1 << 30, |_, _| {}).unwrap();
        assert_eq!(rest.forward, big.len() - 30);
        assert!(sc.at_boundary());
    }

    #[test]
    fn client_scan_keeps_a_partial_header() {
        let m = msg(b'Q', b"x\0");
        let mut sc = Scanner::default();
        assert_eq!(
            scan_client(&mut sc, &m[..3], 1 << 30, |_, _| {})
                .unwrap()
                .forward,
            0
        );
    }

    #[test]
    fn client_scan_rejects_bad_lengths() {
        let mut sc = Scanner::default();
        assert!(scan_client(&mut sc, &[b'Q', 0, 0, 0, 2], 1 << 30, |_, _| {}).is_err());
        assert!(scan_client(&mut sc, &[b'Q', 0x7f, 0, 0, 0], 1000, |_, _| {}).is_err());
        assert!(scan_client(&mut sc, &[1, 0, 0, 0, 4], 1000, |_, _| {}).is_err());
    }

    #[test]
    fn server_scan_reports_ready_status_and_waits_for_its_byte() {
        let mut buf = msg(b'C', b"SELECT 1\0");
        buf.extend(msg(b'Z', b"T"));
        let mut sc = Scanner::default();
        let mut events = Vec::new();
        let n = scan_server(&mut sc, &buf[..buf.len() - 1], |e| {
            events.push(format!("{e:?}"))
        })
        .unwrap();
        assert_eq!(
            n,
            buf.len() - 6,
            "stops before a ReadyForQuery without its status"
        );
        assert_eq!(
            events,
            [
                "Complete([83, 69, 76, 69, 67, 84, 32, 49, 0])",
                "Start { tag: 67, at: 0 }"
            ]
        );
        events.clear();
        let mut sc = Scanner::default();
        let n = scan_server(&mut sc, &buf, |e| events.push(format!("{e:?}"))).unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(events[2], "Ready(InTransaction)");
        assert_eq!(events[3], "Start { tag: 90, at: 14 }");
    }

    #[test]
    fn server_scan_hands_whole_parameter_status() {
        let buf = msg(b'S', b"application_name\0x\0");
        let mut sc = Scanner::default();
        let mut got = Vec::new();
        let n = scan_server(&mut sc, &buf, |e| {
            if let ServerEvent::Parameter(b) = e {
                got.push(b.to_vec())
            }
        })
        .unwrap();
        assert_eq!(n, buf.len());
        assert_eq!(got, vec![b"application_name\0x\0".to_vec()]);
    }
}
