//! `log_query` (global or the rule's): one line per request message the client sends — Query,
//! Parse, Bind, Describe, Execute, Close, Sync, Flush — worded as upstream's `od_frontend`
//! words them. Fed the bytes the relay consumed, which may split a message; it keeps the framing.

use kiwi::frontend::{FrontendMessage, Target};

/// Messages longer than this are not held for logging (a line is cut at 1024 bytes anyway).
const HOLD_MAX: usize = 64 * 1024;

/// Framing state over the client's consumed bytes, kept only while logging is on (the session
/// holds none when off): it starts at a message boundary, and is dropped when logging is
/// turned off.
#[derive(Default)]
pub struct QueryLog {
    /// The start of the current message (header and body so far), while it is short enough.
    held: Vec<u8>,
    /// Bytes of a long message still to pass unlogged.
    skip: usize,
}

impl QueryLog {
    /// Takes the next consumed client bytes; returns `(context, message)` for each request
    /// message completed in them (nothing when `log` is false, but the framing is kept).
    pub fn consumed(&mut self, mut bytes: &[u8], log: bool) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        loop {
            let n = self.skip.min(bytes.len());
            self.skip -= n;
            bytes = &bytes[n..];
            if self.held.is_empty() {
                if bytes.is_empty() {
                    return lines;
                }
                // Fast path: a whole message in `bytes` (no copy).
                if let Some(total) = whole(bytes) {
                    if log && let Some(line) = line(bytes[0], &bytes[5..total]) {
                        lines.push(line);
                    }
                    bytes = &bytes[total..];
                    continue;
                }
            }
            if self.held.len() < 5 {
                let take = (5 - self.held.len()).min(bytes.len());
                self.held.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if self.held.len() < 5 {
                    return lines;
                }
            }
            let total = length(&self.held);
            if total > HOLD_MAX {
                self.skip = total - self.held.len();
                self.held.clear();
                continue;
            }
            let take = (total - self.held.len()).min(bytes.len());
            self.held.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.held.len() < total {
                return lines;
            }
            if log && let Some(line) = line(self.held[0], &self.held[5..]) {
                lines.push(line);
            }
            self.held.clear();
        }
    }
}

/// The whole length (tag included) of the message whose header starts `bytes` (5 bytes or more;
/// the relay has checked the length already).
fn length(bytes: &[u8]) -> usize {
    kiwi::header::Header::parse(bytes, u32::MAX)
        .ok()
        .flatten()
        .map_or(kiwi::header::HEADER_LEN, |h| h.frame_len())
}

/// The length of the message at the start of `bytes`, if it is all there.
fn whole(bytes: &[u8]) -> Option<usize> {
    (bytes.len() >= 5)
        .then(|| length(bytes))
        .filter(|&total| total <= bytes.len())
}

/// Upstream's line for one message, if it logs that kind.
fn line(tag: u8, body: &[u8]) -> Option<(&'static str, String)> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let kind = |t: Target| match t {
        Target::Portal => "portal",
        Target::Statement => "statement",
    };
    Some(match FrontendMessage::decode(tag, body).ok()? {
        FrontendMessage::Query(q) => ("query", text(q.sql)),
        FrontendMessage::Parse(p) => ("parse", format!("{} {}", text(p.name), text(p.query))),
        FrontendMessage::Bind(b) => (
            "bind",
            format!(
                "bind stmt '{}' to portal '{}'",
                text(b.statement),
                text(b.portal)
            ),
        ),
        FrontendMessage::Describe(d) => (
            "describe",
            format!("({}) name: {}", kind(d.target), text(d.name)),
        ),
        FrontendMessage::Execute(e) => ("execute", format!("name: {}", text(e.portal))),
        FrontendMessage::Close(c) => (
            "close",
            match c.target {
                Target::Portal => format!("portal, name: {}", text(c.name)),
                Target::Statement => format!("prepared statement, name: {}", text(c.name)),
            },
        ),
        FrontendMessage::Sync => ("sync", "sync".to_string()),
        FrontendMessage::Flush => ("flush", "flush".to_string()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_messages_are_logged_once_whole() {
        let mut wire = Vec::new();
        kiwi::frontend::Query { sql: b"select 1" }.encode(&mut wire);
        wire.extend_from_slice(&[b'S', 0, 0, 0, 4]);
        let mut log = QueryLog::default();
        let mut lines = Vec::new();
        for chunk in wire.chunks(3) {
            lines.extend(log.consumed(chunk, true));
        }
        assert_eq!(
            lines,
            vec![
                ("query", "select 1".to_string()),
                ("sync", "sync".to_string())
            ]
        );
        // Off: nothing, and the framing still holds for the next message.
        let query_len = wire.len() - 5;
        assert!(log.consumed(&wire[..query_len + 2], false).is_empty());
        assert_eq!(
            log.consumed(&wire[query_len + 2..], true),
            vec![("sync", "sync".to_string())]
        );
    }

    #[test]
    fn long_messages_pass_unlogged() {
        let sql = vec![b'x'; HOLD_MAX];
        let mut wire = Vec::new();
        kiwi::frontend::Query { sql: &sql }.encode(&mut wire);
        wire.extend_from_slice(&[b'H', 0, 0, 0, 4]);
        let mut log = QueryLog::default();
        let lines: Vec<_> = wire
            .chunks(1000)
            .flat_map(|c| log.consumed(c, true))
            .collect();
        assert_eq!(lines, vec![("flush", "flush".to_string())]);
    }
}
