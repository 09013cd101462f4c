//! The client's direction: what the client's bytes become. Three ways, tried in order: answered
//! by the pooler with no server (a deferred BEGIN, an empty transaction's end, a batch of
//! named Parse/Close), rewritten message by message (named prepared statements), or forwarded
//! in bulk (everything else; a long message streams).

use kiwi::backend::{CommandComplete, ReadyForQuery, TransactionStatus};
use kiwi::frontend::tag as fe;
use kiwi::header::{Frame, Header};
use kiwi::sqlstate;

use super::scan::{self, first_message, scan_client};
use super::statements::{self, Expect, SqlStep, Statements};
use super::{ClientStep, MAX_MESSAGE, Relay, Violation};
use crate::config::PoolMode;
use crate::reply::Reply;
use crate::server::ServerInfo;
use crate::sql::{self, Statement};

/// The server a client's bytes may go to: what the relay reads and updates of it.
pub struct Attached<'a> {
    /// Its identity, parameters and prepared statements.
    pub info: &'a mut ServerInfo,
    /// Its transaction status from the last ReadyForQuery.
    pub tx: TransactionStatus,
}

impl Relay {
    /// What to do with the client's buffered bytes `buf`, given the server the client holds.
    pub fn client(
        &mut self,
        buf: &[u8],
        server: Option<Attached<'_>>,
    ) -> Result<ClientStep, Violation> {
        let Some(server) = server else {
            return self.client_without_server(buf);
        };
        if let Some(step) = self.virtual_tsa(buf, server.tx) {
            return Ok(step);
        }
        if let Some(step) = self.listen_step(buf, server.tx) {
            return Ok(step);
        }
        if self.uses_statements_relay(buf) {
            if self.statements_on()
                && !self.statements.as_deref().is_some_and(Statements::owed)
                && self.pending > 0
            {
                // Replies to bulk-relayed requests first: the queue of owed replies starts
                // empty.
                return Ok(ClientStep::Wait);
            }
            return self.rewrite_statements(buf, server);
        }
        let step = self.forward_bulk(buf);
        if server.tx == TransactionStatus::Failed && self.ended == Some("COMMIT") {
            self.ended = Some("ROLLBACK");
        }
        step
    }

    /// No server attached: answer what the pooler can, else ask for a server.
    fn client_without_server(&mut self, buf: &[u8]) -> Result<ClientStep, Violation> {
        let tx = if self.deferred_begin {
            TransactionStatus::InTransaction
        } else {
            TransactionStatus::Idle
        };
        if let Some(step) = self.virtual_tsa(buf, tx) {
            return Ok(step);
        }
        if let Some(step) = self.listen_step(buf, tx) {
            return Ok(step);
        }
        if let Some(step) = self.virtual_transaction(buf)? {
            return Ok(step);
        }
        // Only a run of Parse/Close/Flush ending in Sync is answered here (a relay with
        // nothing in it answers a bare Sync too, as a fresh one did): nothing else needs one.
        let local = buf
            .first()
            .is_some_and(|t| matches!(*t, fe::PARSE | fe::CLOSE | fe::FLUSH | fe::SYNC));
        if local && let Some(statements) = self.statements_mut() {
            // Preparing needs no server: a client waiting for one to prepare would hold up
            // nothing, but a client that prepares synchronously while others of its thread
            // hold every server would wait for ever (pgbench -M prepared does).
            if let Some((client, used)) = statements.answer_locally(buf, tx) {
                return Ok(ClientStep::Rewrite {
                    used,
                    server: Vec::new(),
                    client,
                });
            }
        }
        match Header::parse(buf, MAX_MESSAGE) {
            Ok(None) => Ok(ClientStep::Wait),
            Ok(Some(h)) if h.tag == fe::TERMINATE => Ok(ClientStep::Terminate),
            Ok(Some(h)) if h.tag >= 0x20 => Ok(ClientStep::NeedServer),
            Ok(Some(_)) | Err(_) => Err(scan::BadFrame::at(buf).into()),
        }
    }

    /// Whether the client's next messages go through the statements relay: it has named
    /// statements, replies are owed, or the next message is one the relay rewrites.
    fn uses_statements_relay(&self, buf: &[u8]) -> bool {
        if !self.statements_on() {
            return false;
        }
        self.client_scan.at_boundary()
            && (self
                .statements
                .as_deref()
                .is_some_and(|s| s.has_names() || s.owed())
                || buf.first().is_some_and(|t| Statements::needed_for(*t))
                || (self.settings.parse_queries && sql_prepare_first(buf)))
    }

    /// Forwards whole headers (bodies may stream) up to the first message the statements
    /// relay must see; counts requests, follows extended sequences, notes tracked SETs.
    fn forward_bulk(&mut self, buf: &[u8]) -> Result<ClientStep, Violation> {
        let limit = if self.statements_on() {
            let rest = self.client_scan.remaining().min(buf.len());
            let parse_queries = self.settings.parse_queries;
            rest + first_message(&buf[rest..], |tag, body| {
                Statements::needed_for(tag)
                    || (parse_queries && tag == fe::QUERY && sql::starts_prepare(body))
            })
        } else {
            buf.len()
        };
        let mut sets: Vec<(String, String)> = Vec::new();
        let mut ended = None;
        let mut unnamed = None;
        let mut parses = 0;
        let parse_queries = self.settings.parse_queries;
        let scan = scan_client(
            &mut self.client_scan,
            &buf[..limit],
            MAX_MESSAGE,
            |tag, body| {
                parses += u32::from(tag == fe::PARSE);
                if let (fe::PARSE, Some(body), true) = (tag, body, parse_queries)
                    && let Some(op) = super::listen::unnamed_parse(body)
                {
                    unnamed = Some(op);
                }
                // Tracked even when PostgreSQL does not report it, so it follows the client.
                if let (fe::QUERY, Some(body), true) = (tag, body, parse_queries) {
                    match sql::classify(body) {
                        Statement::Set { name, value } if kiwi::var::is_tracked(name) => {
                            sets.push((name.to_string(), value));
                        }
                        Statement::End { tag } => ended = Some(tag),
                        _ => {}
                    }
                }
            },
        )?;
        if scan.forward == 0 {
            return Ok(if scan.terminate {
                ClientStep::Terminate
            } else {
                ClientStep::Wait
            });
        }
        for setting in sets {
            self.sets.sent(setting);
        }
        if ended.is_some() {
            self.ended = ended;
        }
        if let Some(op) = unnamed {
            self.unnamed_listen = op;
        }
        self.parses += parses;
        self.pending += scan.requests;
        if let Some(unsynced) = scan.unsynced {
            self.unsynced = unsynced;
        }
        Ok(ClientStep::Forward(scan.forward))
    }

    /// `virtual_transaction`: a bare BEGIN outside a transaction is answered here and sent to a
    /// server only when the transaction does something; a bare COMMIT/ROLLBACK of such an
    /// empty transaction is answered here too. In statement pooling a bare BEGIN is refused.
    fn virtual_transaction(&mut self, buf: &[u8]) -> Result<Option<ClientStep>, Violation> {
        let mode = self.settings.mode;
        if mode == PoolMode::Session || !self.client_scan.at_boundary() {
            return Ok(None);
        }
        let Some((frame, _)) = Frame::split(buf, MAX_MESSAGE).ok().flatten() else {
            return Ok(None);
        };
        if frame.tag() != fe::QUERY {
            return Ok(None);
        }
        let statement = sql::classify(frame.body);
        // Refused even with query_parsing disabled: statement pooling would lose the
        // transaction's writes, which no setting should allow.
        if mode == PoolMode::Statement && statement == Statement::Begin {
            return Ok(Some(self.refuse_transaction_block(frame.bytes.len())));
        }
        if !self.settings.virtual_transaction || !self.settings.parse_queries {
            return Ok(None);
        }
        let (tag, status) = match statement {
            Statement::Begin if !self.deferred_begin => ("BEGIN", TransactionStatus::InTransaction),
            Statement::End { tag } if self.deferred_begin => (tag, TransactionStatus::Idle),
            _ => return Ok(None),
        };
        let mut client = Vec::new();
        CommandComplete {
            tag: tag.as_bytes(),
        }
        .encode(&mut client);
        ReadyForQuery { status }.encode(&mut client);
        self.deferred_begin = status == TransactionStatus::InTransaction;
        if let Statement::End { tag } = statement {
            self.ended = Some(tag);
        }
        Ok(Some(ClientStep::Rewrite {
            used: frame.bytes.len(),
            server: Vec::new(),
            client,
        }))
    }

    /// Statement pooling gives the server back after every statement, so a transaction block
    /// cannot work: a bare BEGIN is refused and the session goes on. Upstream does not refuse
    /// it: it answers BEGIN (or lets it through), detaches the server after the next
    /// statement and rolls the open transaction back in its reset (`pool_rollback`), so the
    /// client's writes are silently lost. PgBouncer refuses too (it closes the server with
    /// "transaction blocks not allowed in statement pooling mode").
    fn refuse_transaction_block(&mut self, used: usize) -> ClientStep {
        let reply = Reply::error(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "transaction blocks are not supported in statement pooling mode",
        );
        let mut client = Vec::new();
        reply.encode(self.settings.client, self.settings.show_id, &mut client);
        ReadyForQuery {
            status: TransactionStatus::Idle,
        }
        .encode(&mut client);
        ClientStep::Rewrite {
            used,
            server: Vec::new(),
            client,
        }
    }

    /// The relay for clients with prepared statements: whole messages, Parse/Bind/Describe/
    /// Close rewritten to the pooler's statement names (see `statements`), replies owed queued
    /// in order. Other messages pass as they are; a long one (COPY data) streams.
    fn rewrite_statements(
        &mut self,
        buf: &[u8],
        server: Attached<'_>,
    ) -> Result<ClientStep, Violation> {
        let mut out = Vec::new();
        // Replies the pooler gives at once (DEALLOCATE), before anything queued after them.
        let mut direct = Vec::new();
        let mut used = 0;
        let mut terminate = false;
        while let Some(header) = Header::parse(&buf[used..], MAX_MESSAGE)
            .map_err(|_| scan::BadFrame::at(&buf[used..]))?
        {
            let rest = &buf[used..];
            if header.tag < 0x20 {
                return Err(scan::BadFrame::at(rest).into());
            }
            if header.tag == fe::TERMINATE {
                terminate = true;
                break;
            }
            let Some((frame, _)) = Frame::split(rest, MAX_MESSAGE).ok().flatten() else {
                // Not all here: a long message other than the ones rewritten may stream.
                if used == 0 && !rewritten(header.tag) {
                    let scan = scan_client(&mut self.client_scan, rest, MAX_MESSAGE, |_, _| {})?;
                    out.extend_from_slice(&rest[..scan.forward]);
                    used = scan.forward;
                    // Its reply is owed like a whole one's.
                    if let Some(statements) = self.statements_mut() {
                        statements.expect.extend(expect_for(header.tag));
                    }
                    self.pending += scan.requests;
                    if let Some(unsynced) = scan.unsynced {
                        self.unsynced = unsynced;
                    }
                }
                break;
            };
            match self.rewrite_one(frame, &mut *server.info, server.tx, &mut out, &mut direct)? {
                Handled::Yes => used += frame.bytes.len(),
                Handled::Later => break,
            }
        }
        let Some(statements) = self.statements_mut() else {
            return Ok(ClientStep::Wait);
        };
        let mut client = direct;
        statements::take_synthetic(&mut statements.expect, &mut client);
        if used == 0 && out.is_empty() && client.is_empty() {
            return Ok(if terminate {
                ClientStep::Terminate
            } else {
                ClientStep::Wait
            });
        }
        Ok(ClientStep::Rewrite {
            used,
            server: out,
            client,
        })
    }

    /// One whole message of the statements relay.
    fn rewrite_one(
        &mut self,
        frame: Frame<'_>,
        info: &mut ServerInfo,
        tx: TransactionStatus,
        out: &mut Vec<u8>,
        direct: &mut Vec<u8>,
    ) -> Result<Handled, Violation> {
        self.note_unnamed_parse(frame.tag(), frame.body);
        // Made if need be, then borrowed as a field (the rest of `self` stays usable).
        if self.statements_mut().is_none() {
            return Ok(Handled::Later);
        }
        let statements = self.statements.as_deref_mut().expect("made above");
        let (tag, body) = (frame.tag(), frame.body);
        let prepared = &mut info.prepared;
        let result = match tag {
            fe::PARSE => statements.parse(body, |k| prepared.contains(&k), out),
            fe::BIND => statements.bind(body, |k| prepared.contains(&k), out),
            fe::DESCRIBE => statements.describe(body, |k| prepared.contains(&k), out),
            fe::CLOSE => statements.close(body, out).map(|()| None),
            fe::QUERY => {
                let statement = if self.settings.parse_queries {
                    sql::classify(body)
                } else {
                    Statement::Other
                };
                let maybe_here = matches!(
                    statement,
                    Statement::Prepare { .. } | Statement::Deallocate(_)
                );
                if maybe_here && (statements.owed() || !out.is_empty()) {
                    // It may be answered here: in turn, once what came before is answered.
                    return Ok(Handled::Later);
                }
                let has = |k| prepared.contains(&k);
                let (step, injected) = match statement {
                    Statement::Set { name, value } if kiwi::var::is_tracked(name) => {
                        self.sets.sent((name.to_string(), value));
                        (SqlStep::Pass, None)
                    }
                    Statement::Prepare { name, rest } if tx != TransactionStatus::Failed => {
                        let (client, show_id) = (self.settings.client, self.settings.show_id);
                        let reply = |r: Reply| {
                            let mut out = Vec::new();
                            r.encode(client, show_id, &mut out);
                            out
                        };
                        statements.sql_prepare(&name, rest, has, reply, tx)
                    }
                    Statement::Execute { name, args } => statements.sql_execute(&name, args, has),
                    Statement::Deallocate(name) => {
                        let reply = statements::deallocate(statements, name.as_deref(), tx);
                        (SqlStep::Answer(reply), None)
                    }
                    _ => (SqlStep::Pass, None),
                };
                match step {
                    SqlStep::Answer(reply) => {
                        direct.extend_from_slice(&reply);
                        return Ok(Handled::Yes);
                    }
                    SqlStep::Send(query) => {
                        // Our PREPARE's CommandComplete leaves no state of the client's.
                        self.sql_prepares += u32::from(injected.is_some());
                        out.extend_from_slice(&query);
                    }
                    SqlStep::Pass => {
                        statements.expect.push_back(Expect::Query);
                        out.extend_from_slice(frame.bytes);
                    }
                }
                Ok(injected)
            }
            _ => {
                statements.expect.extend(expect_for(tag));
                out.extend_from_slice(frame.bytes);
                Ok(None)
            }
        };
        let injected = result.map_err(|error| Violation::Message { tag, error })?;
        if let Some(key) = injected {
            prepared.insert(key, self.settings.prepared_max);
        }
        if scan::answered_by_ready(tag) {
            self.pending += 1;
            self.unsynced = false;
        } else if scan::opens_sequence(tag) {
            self.unsynced = true;
        }
        Ok(Handled::Yes)
    }
}

/// Whether a message was taken by the statements relay, or must wait for replies before it.
enum Handled {
    Yes,
    Later,
}

/// The reply owed for a message the statements relay passes unchanged.
fn expect_for(tag: u8) -> Option<Expect> {
    match tag {
        fe::EXECUTE => Some(Expect::Execute),
        fe::SYNC => Some(Expect::Sync),
        fe::FUNCTION_CALL => Some(Expect::Query),
        _ => None,
    }
}

/// Whether the first message in `buf` is a Query that starts with `PREPARE` (maybe not all
/// in yet): the statements relay maps its name.
fn sql_prepare_first(buf: &[u8]) -> bool {
    buf.first() == Some(&fe::QUERY) && buf.get(5..).is_some_and(sql::starts_prepare)
}

/// Messages the statements relay rewrites (or reads), so they must be whole.
fn rewritten(tag: u8) -> bool {
    Statements::needed_for(tag) || tag == fe::QUERY
}
