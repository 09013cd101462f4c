//! SQL `PREPARE` / `EXECUTE` in transaction pooling: a client's SQL names live in the same
//! map as its protocol-level ones (as in PostgreSQL, where both share one namespace), and map
//! to statements of ours prepared by SQL on servers (their parameter types are type names,
//! which a Parse cannot carry). A server that lacks one gets our `PREPARE` in the same Query
//! as the client's `EXECUTE`: one round trip, and an error in it is the error of the Query.

use std::rc::Rc;

use kiwi::backend::{CommandComplete, ReadyForQuery, TransactionStatus};

use super::{Expect, Prepared, Statements};
use crate::reply::Reply;
use crate::server::registry::{StatementId, StatementRegistry};
use crate::server::statements::server_name;

impl Prepared {
    /// Our statement for a client's SQL `PREPARE name rest`. Its key comes from a text no
    /// Parse can carry (a NUL first), so it is never taken for a protocol-level statement.
    pub(super) fn of_sql(rest: &str, registry: &StatementRegistry) -> Prepared {
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
    pub(super) fn prepare_sql(&self) -> String {
        format!(
            "PREPARE {} {}",
            self.name,
            self.sql.as_deref().unwrap_or_default()
        )
    }
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

impl Statements {
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
    pub(super) fn sql_prepare_answered(&mut self, failed: bool) {
        let Some(name) = self.sql_prepares.pop_front() else {
            return;
        };
        if failed {
            self.by_name.remove(&name);
        }
    }
}

/// A Query message with this text.
pub(super) fn query_message(sql: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(sql.len() + 6);
    kiwi::frontend::Query {
        sql: sql.as_bytes(),
    }
    .encode(&mut out);
    out
}
