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
use kiwi::header::Frames;

use crate::server::registry::{StatementId, StatementRegistry};
use crate::server::statements::server_name;

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

    /// Whether it holds nothing: no names, no replies owed, no SQL `PREPARE` in flight, no
    /// Parse counts not taken yet. Such a relay is the same as a new one.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
            && self.expect.is_empty()
            && self.sql_prepares.is_empty()
            && self.parses == ParseCounts::default()
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

/// `DEALLOCATE [PREPARE] name|ALL` (`None`: ALL) from the client: its names are forgotten
/// here (the server keeps the statements other clients share), and the pooler answers.
pub fn deallocate(
    statements: &mut Statements,
    name: Option<&str>,
    tx: TransactionStatus,
) -> Vec<u8> {
    statements.deallocate(name);
    let tag: &[u8] = if name.is_some() {
        b"DEALLOCATE"
    } else {
        b"DEALLOCATE ALL"
    };
    let mut out = Vec::new();
    CommandComplete { tag }.encode(&mut out);
    ReadyForQuery { status: tx }.encode(&mut out);
    out
}

mod replies;
mod sql_prepare;
#[cfg(test)]
mod tests;

pub use replies::{
    Verdict, filter_replies, is_cached_plan_error, on_server_message, synthetic, take_synthetic,
};
pub use sql_prepare::SqlStep;
