//! The server's replies as the client must see them: the queue of owed replies moved past
//! each server message, replies to our own messages swallowed, the pooler's own put in.

use std::collections::VecDeque;

use kiwi::backend::tag as be;
use kiwi::header::Frame;

use super::{Expect, Statements};
use crate::server::statements::ServerStatements;

/// What to do with one server message, given the queue of owed replies.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it to the client.
    Forward,
    /// Drop it (the ParseComplete of a Parse we injected, the CloseComplete of our Close).
    Swallow,
}

/// Bytes of a reply of our own.
pub fn synthetic(tag: u8) -> [u8; 5] {
    [tag, 0, 0, 0, 4]
}

/// Moves the queue past the server message `tag` (an ErrorResponse skips every owed reply up
/// to the next Sync, as the server does). `lost` is told about statements a failed Parse did
/// not create.
pub fn on_server_message(
    expect: &mut VecDeque<Expect>,
    tag: u8,
    mut lost: impl FnMut(u64),
) -> Verdict {
    let front = expect.front().copied();
    match (tag, front) {
        (be::ERROR_RESPONSE, Some(Expect::Query)) => Verdict::Forward,
        (be::ERROR_RESPONSE, Some(Expect::SqlPrepare(k) | Expect::InjectedSqlPrepare(k))) => {
            // The Query's error: its ReadyForQuery ends the Query owed next.
            lost(k);
            expect.pop_front();
            Verdict::Forward
        }
        (be::COMMAND_COMPLETE, Some(Expect::SqlPrepare(_))) => {
            expect.pop_front();
            Verdict::Forward
        }
        (be::COMMAND_COMPLETE, Some(Expect::InjectedSqlPrepare(_))) => {
            expect.pop_front();
            Verdict::Swallow
        }
        (be::ERROR_RESPONSE, _) => {
            while let Some(e) = expect.front().copied() {
                if e == Expect::Sync {
                    break;
                }
                if let Expect::Parse(Some(k)) | Expect::Injected(k) = e {
                    lost(k);
                }
                expect.pop_front();
            }
            Verdict::Forward
        }
        (be::READY_FOR_QUERY, _) => {
            expect.pop_front();
            Verdict::Forward
        }
        (be::PARSE_COMPLETE, Some(Expect::Injected(_)))
        | (be::CLOSE_COMPLETE, Some(Expect::InjectedClose)) => {
            expect.pop_front();
            Verdict::Swallow
        }
        (be::PARSE_COMPLETE, Some(Expect::Parse(_)))
        | (be::BIND_COMPLETE, Some(Expect::Bind(_)))
        | (be::CLOSE_COMPLETE, Some(Expect::Close)) => {
            expect.pop_front();
            Verdict::Forward
        }
        (
            be::ROW_DESCRIPTION | be::NO_DATA,
            Some(Expect::DescribeStatement(_) | Expect::DescribePortal),
        )
        | (
            be::COMMAND_COMPLETE | be::EMPTY_QUERY_RESPONSE | be::PORTAL_SUSPENDED,
            Some(Expect::Execute),
        ) => {
            expect.pop_front();
            Verdict::Forward
        }
        _ => Verdict::Forward,
    }
}

/// Takes the replies of our own now at the front of the queue.
pub fn take_synthetic(expect: &mut VecDeque<Expect>, out: &mut Vec<u8>) {
    while let Some(Expect::Synthetic(tag)) = expect.front().copied() {
        out.extend_from_slice(&synthetic(tag));
        expect.pop_front();
    }
}

/// "cached plan must not change result type" (0A000): the server's copy of a statement went
/// stale after a schema change.
pub fn is_cached_plan_error(body: &[u8]) -> bool {
    kiwi::backend::ErrorFields::decode(body).is_ok_and(|f| {
        f.code().is_some_and(|c| c.as_str() == "0A000")
            && f.message()
                .is_some_and(|m| m.windows(11).any(|w| w == b"cached plan"))
    })
}

/// The server's bytes as the client must see them: ParseCompletes of injected Parses (and
/// CloseCompletes of our Closes) taken out, the pooler's own replies put in where they are
/// owed. `starts` are the messages starting in `buf`; an ErrorResponse among them is whole.
pub fn filter_replies(
    statements: &mut Statements,
    buf: &[u8],
    starts: &[(u8, usize)],
    server: &mut ServerStatements,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + 16);
    let mut cursor = 0;
    for &(tag, at) in starts {
        if matches!(statements.expect.front(), Some(Expect::Synthetic(_))) {
            out.extend_from_slice(&buf[cursor..at]);
            cursor = at;
            take_synthetic(&mut statements.expect, &mut out);
        }
        if tag == be::ERROR_RESPONSE
            && let Some(Expect::Bind(Some(key)) | Expect::DescribeStatement(Some(key))) =
                statements.expect.front().copied()
            && is_cached_plan_error(error_body(buf, at))
        {
            // This server's copy is not used again; the next use prepares it afresh (a Close
            // ahead of the Parse drops the stale copy), else the next reset deallocates it.
            server.mark_stale(key);
        }
        if let Some(Expect::SqlPrepare(_)) = statements.expect.front()
            && matches!(tag, be::COMMAND_COMPLETE | be::ERROR_RESPONSE)
        {
            statements.sql_prepare_answered(tag == be::ERROR_RESPONSE);
        }
        let verdict = on_server_message(&mut statements.expect, tag, |key| server.remove(&key));
        if verdict == Verdict::Swallow {
            out.extend_from_slice(&buf[cursor..at]);
            // A server that gives a bodiless reply a body is wrong, but never out of bounds.
            cursor = (at + frame_len(buf, at)).min(buf.len());
        }
    }
    out.extend_from_slice(&buf[cursor..]);
    take_synthetic(&mut statements.expect, &mut out);
    out
}

/// The length of the whole message starting at `at` (swallowed ones are whole: the server
/// scan reports a CommandComplete only when its body is in).
fn frame_len(buf: &[u8], at: usize) -> usize {
    buf.get(at + 1..at + 5)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(5, |len| 1 + u32::from_be_bytes(len) as usize)
}

/// The body of the ErrorResponse starting at `at` (empty if it is not all in `buf`).
fn error_body(buf: &[u8], at: usize) -> &[u8] {
    match Frame::split(&buf[at.min(buf.len())..], kiwi::header::DEFAULT_MAX_MESSAGE) {
        Ok(Some((frame, _))) => frame.body,
        _ => &[],
    }
}
