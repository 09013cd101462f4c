//! Named prepared statements in transaction and statement pooling.
//!
//! A client prepares statements on "its" connection, but each transaction may run on another
//! server. So a client's Parse is kept (client name → statement), and the statement gets a
//! server-side name of our own derived from its text and parameter types
//! (`odyssey_<key>`, the key a hash made unique by [`StatementRegistry`]), shared by every
//! client that prepares the same statement. A server
//! remembers which of those it has. When a Bind or Describe for a statement lands on a server
//! that lacks it, the pooler sends the Parse first and swallows its ParseComplete; a Parse of a
//! statement the server already has is not sent at all, and the client gets its ParseComplete
//! from the pooler. A Close of a named statement only forgets the client's name.
//!
//! Every Parse of ours goes with a Close of the same name ahead of it (its CloseComplete
//! swallowed too): "the server lacks it" may only mean that its copy went stale after a
//! schema change and waits for a DEALLOCATE at the next reset, and a Parse of a name the
//! server still holds would fail with `prepared statement "odyssey_…" already exists`. A
//! client that prepares again as soon as it sees the stale-plan error gets there before that
//! reset (PostgreSQL flushes the ErrorResponse at once, the ReadyForQuery after the Sync).
//!
//! To keep the replies in the order the client expects, every message sent to the server
//! pushes what it will be answered with onto a queue; replies of our own (ParseComplete,
//! CloseComplete) are queue entries too, sent when they reach the front.
//!
//! Here: a client's statements and the reply queue. `registry`: the key of each text,
//! across the process. `server_statements`: what one server has, and what to deallocate.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use kiwi::backend::{CommandComplete, ReadyForQuery, TransactionStatus, tag as be};
use kiwi::error::DecodeError;
use kiwi::frontend::tag as fe;
use kiwi::frontend::{Bind, Close, Describe, Parse, Target};
use kiwi::header::{Frame, Frames};

use crate::reply::Reply;
use crate::server::registry::{StatementId, StatementRegistry};
use crate::server::statements::{ServerStatements, server_name};
use crate::sql::{self, Statement};

/// A statement as the pooler prepares it on servers.
#[derive(Debug)]
pub struct Prepared {
    /// Identifies the statement (text and parameter types).
    pub id: StatementId,
    /// What prepares it on a server: a Close of our server-side name (the server may still
    /// hold a stale copy), then the whole Parse message with that name.
    pub parse: Vec<u8>,
    /// Our server-side name.
    pub name: String,
    /// For a statement of SQL `PREPARE`: what follows its name (`(types) AS ...`). Such a
    /// statement is prepared on servers by SQL too (its types are names, not oids), and
    /// `parse` is empty.
    pub sql: Option<String>,
}

impl Prepared {
    /// Our statement for a client's Parse: the same text and types under our name.
    fn of(p: &Parse<'_>, registry: &StatementRegistry) -> Prepared {
        let id = registry.intern(p.query, &p.param_types);
        let name = server_name(id.key);
        let mut parse = Vec::new();
        Close {
            target: Target::Statement,
            name: name.as_bytes(),
        }
        .encode(&mut parse);
        Parse {
            name: name.as_bytes(),
            query: p.query,
            param_types: p.param_types.clone(),
        }
        .encode(&mut parse);
        Prepared {
            id,
            parse,
            name,
            sql: None,
        }
    }

    /// Our statement for a client's SQL `PREPARE name rest`. Its key comes from a text no
    /// Parse can carry (a NUL first), so it is never taken for a protocol-level statement.
    fn of_sql(rest: &str, registry: &StatementRegistry) -> Prepared {
        let mut text = b"\0sql ".to_vec();
        text.extend_from_slice(rest.as_bytes());
        let id = registry.intern(&text, &[]);
        let name = server_name(id.key);
        Prepared {
            id,
            parse: Vec::new(),
            name,
            sql: Some(rest.to_string()),
        }
    }

    /// The SQL that prepares this statement of SQL `PREPARE` on a server.
    fn prepare_sql(&self) -> String {
        format!(
            "PREPARE {} {}",
            self.name,
            self.sql.as_deref().unwrap_or_default()
        )
    }
}

/// What a message sent to the server will be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The client's Parse: ParseComplete forwarded. On error the server lacks `key`.
    Parse(Option<u64>),
    /// A Parse we sent ahead of a Bind/Describe: its ParseComplete is swallowed.
    Injected(u64),
    /// The Close we send ahead of each Parse of ours: its CloseComplete is swallowed.
    InjectedClose,
    /// Bind (of statement `key`, if named).
    Bind(Option<u64>),
    /// Describe of a statement (`key`, if named): ParameterDescription, then RowDescription
    /// or NoData.
    DescribeStatement(Option<u64>),
    /// Describe of a portal: RowDescription or NoData.
    DescribePortal,
    /// Execute: rows, then CommandComplete, EmptyQueryResponse or PortalSuspended.
    Execute,
    /// Close of a portal (or of the unnamed statement): CloseComplete.
    Close,
    /// Sync: ReadyForQuery.
    Sync,
    /// A simple Query or FunctionCall: everything up to ReadyForQuery.
    Query,
    /// A reply of our own, sent when it reaches the front: ParseComplete (`1`) or
    /// CloseComplete (`3`).
    Synthetic(u8),
    /// The client's SQL `PREPARE`, sent as ours: its CommandComplete is forwarded; on error
    /// the server lacks `key` and the client's name is forgotten.
    SqlPrepare(u64),
    /// Our SQL `PREPARE` ahead of the client's `EXECUTE` in one Query: its CommandComplete is
    /// swallowed; on error the server lacks `key`.
    InjectedSqlPrepare(u64),
}

/// What the pooler does with a client's SQL `PREPARE` or `EXECUTE`.
pub enum SqlStep {
    /// Send this Query to the server (the replies owed are queued).
    Send(Vec<u8>),
    /// Answer the client with this at once; nothing goes to the server.
    Answer(Vec<u8>),
    /// Not the pooler's business: pass the Query as it is.
    Pass,
}

/// A client's named statements and the replies it is owed.
pub struct Statements {
    by_name: HashMap<Vec<u8>, Rc<Prepared>>,
    /// The instance's statement texts: where our statements get their keys.
    registry: Arc<StatementRegistry>,
    /// Replies owed, in order.
    pub expect: VecDeque<Expect>,
    /// Parse messages seen since the counts were last taken.
    pub parses: ParseCounts,
    /// Names of SQL `PREPARE`s sent and not answered yet, oldest first: a failed one is
    /// forgotten, as PostgreSQL never created it.
    sql_prepares: VecDeque<Vec<u8>>,
}

/// Parse messages a client sent, and how many of them a server had prepared already.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseCounts {
    /// Parse messages.
    pub total: u32,
    /// Of those, answered without preparing on a server.
    pub reused: u32,
}

impl Statements {
    /// A client's statements, keyed through the instance's `registry`.
    pub fn new(registry: Arc<StatementRegistry>) -> Statements {
        Statements {
            by_name: HashMap::new(),
            registry,
            expect: VecDeque::new(),
            parses: ParseCounts::default(),
            sql_prepares: VecDeque::new(),
        }
    }

    /// The client's SQL `PREPARE name rest` (one statement in a Query). A name the client
    /// has is refused as PostgreSQL refuses it; a statement the server has is answered here;
    /// else our `PREPARE` goes to the server, whose answer (or error) the client gets.
    pub fn sql_prepare(
        &mut self,
        name: &str,
        rest: &str,
        has: impl Fn(u64) -> bool,
        reply: impl Fn(Reply) -> Vec<u8>,
        tx: TransactionStatus,
    ) -> (SqlStep, Option<StatementId>) {
        if self.by_name.contains_key(name.as_bytes()) {
            let refusal = Reply::error(
                kiwi::sqlstate::DUPLICATE_PREPARED_STATEMENT,
                format!("prepared statement \"{name}\" already exists"),
            );
            let mut out = reply(refusal);
            ReadyForQuery { status: tx }.encode(&mut out);
            return (SqlStep::Answer(out), None);
        }
        let prepared = Rc::new(Prepared::of_sql(rest, &self.registry));
        let key = prepared.id.key;
        self.by_name
            .insert(name.as_bytes().to_vec(), prepared.clone());
        if has(key) {
            let mut out = Vec::new();
            CommandComplete { tag: b"PREPARE" }.encode(&mut out);
            ReadyForQuery { status: tx }.encode(&mut out);
            return (SqlStep::Answer(out), None);
        }
        self.sql_prepares.push_back(name.as_bytes().to_vec());
        self.expect.push_back(Expect::SqlPrepare(key));
        self.expect.push_back(Expect::Query);
        let query = prepared.prepare_sql();
        (
            SqlStep::Send(query_message(&query)),
            Some(prepared.id.clone()),
        )
    }

    /// The client's SQL `EXECUTE name args`: our name in its place, with our `PREPARE` ahead
    /// in the same Query when the server lacks the statement. A statement of the protocol
    /// that this server lacks, or a name the client does not have, passes as it is (the
    /// server answers 26000).
    pub fn sql_execute(
        &mut self,
        name: &str,
        args: &str,
        has: impl Fn(u64) -> bool,
    ) -> (SqlStep, Option<StatementId>) {
        let Some(prepared) = self.by_name.get(name.as_bytes()).cloned() else {
            return (SqlStep::Pass, None);
        };
        let key = prepared.id.key;
        let execute = format!("EXECUTE {}{}", prepared.name, args);
        if has(key) {
            self.expect.push_back(Expect::Query);
            return (SqlStep::Send(query_message(&execute)), None);
        }
        if prepared.sql.is_none() {
            return (SqlStep::Pass, None);
        }
        self.expect.push_back(Expect::InjectedSqlPrepare(key));
        self.expect.push_back(Expect::Query);
        let query = format!("{}; {execute}", prepared.prepare_sql());
        (
            SqlStep::Send(query_message(&query)),
            Some(prepared.id.clone()),
        )
    }

    /// A reply to the client's SQL `PREPARE` arrived: an error means the name was never made.
    fn sql_prepare_answered(&mut self, failed: bool) {
        let Some(name) = self.sql_prepares.pop_front() else {
            return;
        };
        if failed {
            self.by_name.remove(&name);
        }
    }

    /// The client's Parse: returns the bytes to send to a server that has `has(key)`, and
    /// queues the reply.
    pub fn parse(
        &mut self,
        body: &[u8],
        has: impl Fn(u64) -> bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<StatementId>, DecodeError> {
        let p = Parse::decode(body)?;
        self.parses.total += 1;
        if p.name.is_empty() {
            kiwi::header::Header {
                tag: fe::PARSE,
                length: body.len() as u32 + 4,
            }
            .encode(out);
            out.extend_from_slice(body);
            self.expect.push_back(Expect::Parse(None));
            return Ok(None);
        }
        let prepared = Rc::new(Prepared::of(&p, &self.registry));
        let key = prepared.id.key;
        self.by_name.insert(p.name.to_vec(), prepared.clone());
        if has(key) {
            self.parses.reused += 1;
            self.expect.push_back(Expect::Synthetic(be::PARSE_COMPLETE));
            Ok(None)
        } else {
            out.extend_from_slice(&prepared.parse);
            self.expect.push_back(Expect::InjectedClose);
            self.expect.push_back(Expect::Parse(Some(key)));
            Ok(Some(prepared.id.clone()))
        }
    }

    /// Answers a batch of named Parse/Close messages closed by a Sync without any server:
    /// the statements are only recorded (each is prepared on a server when first used, where a
    /// mistake in it shows up as the error of that Bind or Describe). Returns the replies, or
    /// `None` when the batch holds anything else. `tx` is the transaction status to report.
    pub fn answer_locally(
        &mut self,
        buf: &[u8],
        tx: TransactionStatus,
    ) -> Option<(Vec<u8>, usize)> {
        let mut replies = Vec::new();
        let mut pending: Vec<(Vec<u8>, Option<Rc<Prepared>>)> = Vec::new();
        let mut frames = Frames::new(buf, kiwi::header::DEFAULT_MAX_MESSAGE);
        for frame in frames.by_ref() {
            let frame = frame.ok()?;
            match frame.tag() {
                fe::PARSE => {
                    let p = Parse::decode(frame.body).ok()?;
                    if p.name.is_empty() {
                        return None;
                    }
                    pending.push((
                        p.name.to_vec(),
                        Some(Rc::new(Prepared::of(&p, &self.registry))),
                    ));
                    replies.extend_from_slice(&synthetic(be::PARSE_COMPLETE));
                }
                fe::CLOSE => {
                    let c = Close::decode(frame.body).ok()?;
                    if c.target != Target::Statement || c.name.is_empty() {
                        return None;
                    }
                    pending.push((c.name.to_vec(), None));
                    replies.extend_from_slice(&synthetic(be::CLOSE_COMPLETE));
                }
                fe::FLUSH => {}
                fe::SYNC => {
                    for (name, prepared) in pending {
                        self.parses.total += u32::from(prepared.is_some());
                        match prepared {
                            Some(p) => self.by_name.insert(name, p),
                            None => self.by_name.remove(&name),
                        };
                    }
                    ReadyForQuery { status: tx }.encode(&mut replies);
                    let used = buf.len() - frames.rest().len();
                    return Some((replies, used));
                }
                _ => return None,
            }
        }
        None
    }

    /// A statement the server must have before `name` is used: the Parse to inject, if any.
    fn ensure(
        &mut self,
        name: &[u8],
        has: &dyn Fn(u64) -> bool,
        out: &mut Vec<u8>,
    ) -> Option<Rc<Prepared>> {
        let prepared = self.by_name.get(name)?.clone();
        if prepared.sql.is_some() {
            // Prepared by SQL, with type names the protocol cannot carry: the message goes
            // with the client's name, and the server says it has no such statement.
            return None;
        }
        if !has(prepared.id.key) {
            out.extend_from_slice(&prepared.parse);
            self.expect.push_back(Expect::InjectedClose);
            self.expect.push_back(Expect::Injected(prepared.id.key));
        }
        Some(prepared)
    }

    /// The client's Bind, rewritten to our statement name (a Parse injected ahead if needed).
    /// Returns the key of a statement injected on the server.
    pub fn bind(
        &mut self,
        body: &[u8],
        has: impl Fn(u64) -> bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<StatementId>, DecodeError> {
        let b = Bind::decode(body)?;
        match self.ensure(b.statement, &has, out) {
            Some(prepared) => {
                let injected = (!has(prepared.id.key)).then(|| prepared.id.clone());
                Bind {
                    statement: prepared.name.as_bytes(),
                    ..b
                }
                .encode(out);
                self.expect.push_back(Expect::Bind(Some(prepared.id.key)));
                Ok(injected)
            }
            None => {
                b.encode(out);
                self.expect.push_back(Expect::Bind(None));
                Ok(None)
            }
        }
    }

    /// The client's Describe.
    pub fn describe(
        &mut self,
        body: &[u8],
        has: impl Fn(u64) -> bool,
        out: &mut Vec<u8>,
    ) -> Result<Option<StatementId>, DecodeError> {
        let d = Describe::decode(body)?;
        if d.target == Target::Portal {
            d.encode(out);
            self.expect.push_back(Expect::DescribePortal);
            return Ok(None);
        }
        let prepared = self.ensure(d.name, &has, out);
        let injected = prepared
            .as_ref()
            .filter(|p| !has(p.id.key))
            .map(|p| p.id.clone());
        let name = prepared.as_ref().map_or(d.name, |p| p.name.as_bytes());
        Describe {
            target: Target::Statement,
            name,
        }
        .encode(out);
        self.expect
            .push_back(Expect::DescribeStatement(prepared.map(|p| p.id.key)));
        Ok(injected)
    }

    /// The client's Close: a named statement is only forgotten (other clients may share it
    /// on the server), and CloseComplete comes from the pooler.
    pub fn close(&mut self, body: &[u8], out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let c = Close::decode(body)?;
        if c.target == Target::Statement && !c.name.is_empty() {
            self.by_name.remove(c.name);
            self.expect.push_back(Expect::Synthetic(be::CLOSE_COMPLETE));
        } else {
            c.encode(out);
            self.expect.push_back(Expect::Close);
        }
        Ok(())
    }

    /// `DEALLOCATE name` / `DEALLOCATE ALL` from the client: forget its names.
    pub fn deallocate(&mut self, name: Option<&str>) {
        match name {
            Some(n) => {
                self.by_name.remove(n.as_bytes());
            }
            None => self.by_name.clear(),
        }
    }

    /// `DISCARD ALL` ran: the client's statements are gone, as in PostgreSQL.
    pub fn discard(&mut self) {
        self.by_name.clear();
    }

    /// Forgets the SQL `PREPARE`s waiting for an answer (the server is gone or reset).
    fn forget_sql_prepares(&mut self) {
        self.sql_prepares.clear();
    }

    /// Whether the client has named statements.
    pub fn has_names(&self) -> bool {
        !self.by_name.is_empty()
    }

    /// Whether a message of this tag needs the statements relay.
    pub fn needed_for(tag: u8) -> bool {
        matches!(tag, fe::PARSE | fe::BIND | fe::DESCRIBE | fe::CLOSE)
    }

    /// Whether replies are still owed.
    pub fn owed(&self) -> bool {
        !self.expect.is_empty()
    }

    /// Forgets owed replies (the server is gone or reset).
    pub fn forget_owed(&mut self) {
        self.expect.clear();
        self.forget_sql_prepares();
    }
}

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

/// A Query message with this text.
fn query_message(sql: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(sql.len() + 6);
    kiwi::frontend::Query {
        sql: sql.as_bytes(),
    }
    .encode(&mut out);
    out
}

/// The body of the ErrorResponse starting at `at` (empty if it is not all in `buf`).
fn error_body(buf: &[u8], at: usize) -> &[u8] {
    match Frame::split(&buf[at.min(buf.len())..], kiwi::header::DEFAULT_MAX_MESSAGE) {
        Ok(Some((frame, _))) => frame.body,
        _ => &[],
    }
}

/// `DEALLOCATE [PREPARE] name|ALL` from the client: its names are forgotten here (the server
/// keeps the statements other clients share), and the pooler answers.
pub fn deallocate(
    statements: &mut Statements,
    body: &[u8],
    tx: TransactionStatus,
) -> Option<Vec<u8>> {
    let Statement::Deallocate(name) = sql::classify(body) else {
        return None;
    };
    statements.deallocate(name.as_deref());
    let tag: &[u8] = if name.is_some() {
        b"DEALLOCATE"
    } else {
        b"DEALLOCATE ALL"
    };
    let mut out = Vec::new();
    CommandComplete { tag }.encode(&mut out);
    ReadyForQuery { status: tx }.encode(&mut out);
    Some(out)
}

#[cfg(test)]
mod tests;
