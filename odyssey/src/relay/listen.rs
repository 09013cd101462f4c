//! LISTEN and UNLISTEN in transaction and statement pools: never forwarded (a pooled server
//! must not LISTEN for a client), but handed to the session, which registers the client with
//! the route's listener and answers as PostgreSQL would. Recognised as a simple Query of that
//! one statement, or as one extended sequence Parse/Bind/[Describe portal]/Execute/Sync of the
//! unnamed statement and portal (how libpq-based drivers send a query without parameters).
//! Anything else with LISTEN in it (a multi-statement query, a named statement) goes to the
//! server as before, where the reset undoes it.

use kiwi::backend::TransactionStatus;
use kiwi::frontend::tag as fe;
use kiwi::frontend::{Bind, Describe, Execute, Parse, Target};
use kiwi::header::Frame;

use super::{ClientStep, MAX_MESSAGE, Relay};
use crate::config::PoolMode;
use crate::listen::ListenOp;
use crate::sql::{self, Statement};

/// ParseComplete, BindComplete and NoData: what the extended sequence gets before its
/// command's outcome.
const PARSE_COMPLETE: [u8; 5] = [b'1', 0, 0, 0, 4];
const BIND_COMPLETE: [u8; 5] = [b'2', 0, 0, 0, 4];
const NO_DATA: [u8; 5] = [b'n', 0, 0, 0, 4];

impl Relay {
    /// LISTEN goes to the route's listener (transaction and statement pooling, queries
    /// parsed, no `pool_pin_on_listen`).
    pub(super) fn listen_hub(&self) -> bool {
        self.settings.mode != PoolMode::Session
            && self.settings.parse_queries
            && !self.settings.pin_on_listen
    }

    /// A Parse of the unnamed statement, seen on its way to the server: remember whether it
    /// is a LISTEN/UNLISTEN (a second round trip may run it).
    pub(super) fn note_unnamed_parse(&mut self, tag: u8, body: &[u8]) {
        if tag == fe::PARSE
            && self.settings.parse_queries
            && let Some(op) = unnamed_parse(body)
        {
            self.unnamed_listen = op;
        }
    }

    /// A LISTEN/UNLISTEN a server ran for the client (an unnamed statement parsed in an
    /// earlier round trip), for the session to take over before the client hears of it.
    pub fn take_listened(&mut self) -> Option<ListenOp> {
        self.listened.take()
    }

    /// The client's LISTEN/UNLISTEN for the session to carry out, if its next messages are
    /// one (`tx`: the transaction status the client is in).
    pub(super) fn listen_step(&self, buf: &[u8], tx: TransactionStatus) -> Option<ClientStep> {
        let handled = self.listen_hub()
            && self.client_scan.at_boundary()
            && self.pending == 0
            && !self.unsynced
            && self.statements.as_ref().is_none_or(|s| !s.owed())
            // In a failed transaction the server refuses it as it refuses everything.
            && tx != TransactionStatus::Failed;
        let first = buf.first().copied();
        let bind_first = first == Some(fe::BIND) && self.unnamed_listen.is_some();
        if !handled || !(first == Some(fe::QUERY) || first == Some(fe::PARSE) || bind_first) {
            return None;
        }
        let (frame, _) = Frame::split(buf, MAX_MESSAGE).ok().flatten()?;
        if frame.tag() == fe::QUERY {
            let op = op_of(frame.body)?;
            return Some(ClientStep::Listen {
                used: frame.bytes.len(),
                op,
                status: tx,
                prefix: Vec::new(),
            });
        }
        extended(buf, tx, self.unnamed_listen.as_ref())
    }
}

/// The operation a statement's text asks for.
fn op_of(sql_text: &[u8]) -> Option<ListenOp> {
    match sql::classify(sql_text) {
        Statement::Listen(ch) => Some(ListenOp::Listen(ch)),
        Statement::Unlisten(Some(ch)) => Some(ListenOp::Unlisten(ch)),
        Statement::Unlisten(None) => Some(ListenOp::UnlistenAll),
        _ => None,
    }
}

/// For a Parse going to the server: `Some` when it parses the unnamed statement, with the
/// LISTEN/UNLISTEN it is (or `None`: something else). Cheap for other statements: the name's
/// first byte, then the first word of the text.
pub(super) fn unnamed_parse(body: &[u8]) -> Option<Option<ListenOp>> {
    if body.first() != Some(&0) {
        return None;
    }
    let query = &body[1..];
    if !sql::may_matter(query) {
        return Some(None);
    }
    Some(Parse::decode(body).ok().and_then(|p| op_of(p.query)))
}

/// [Parse]/Bind/[Describe portal]/Execute/Sync of the unnamed statement and portal, with no
/// parameters, all buffered; without the Parse, the unnamed statement parsed before must be
/// the LISTEN (`parsed`).
fn extended(buf: &[u8], tx: TransactionStatus, parsed: Option<&ListenOp>) -> Option<ClientStep> {
    let mut used = 0;
    let mut prefix = Vec::new();
    let op = match frame_at(buf, 0, fe::PARSE) {
        Some((body, n)) => {
            let parse = Parse::decode(body).ok()?;
            if !parse.name.is_empty() || !parse.param_types.is_empty() {
                return None;
            }
            used = n;
            prefix.extend_from_slice(&PARSE_COMPLETE);
            op_of(parse.query)?
        }
        None => parsed?.clone(),
    };
    let (body, n) = frame_at(buf, used, fe::BIND)?;
    let bind = Bind::decode(body).ok()?;
    if !bind.portal.is_empty() || !bind.statement.is_empty() || !bind.params.is_empty() {
        return None;
    }
    used += n;
    prefix.extend_from_slice(&BIND_COMPLETE);
    if let Some((body, n)) = frame_at(buf, used, fe::DESCRIBE) {
        let d = Describe::decode(body).ok()?;
        if d.target != Target::Portal || !d.name.is_empty() {
            return None;
        }
        prefix.extend_from_slice(&NO_DATA);
        used += n;
    }
    let (body, n) = frame_at(buf, used, fe::EXECUTE)?;
    if !Execute::decode(body).ok()?.portal.is_empty() {
        return None;
    }
    used += n;
    let (_, n) = frame_at(buf, used, fe::SYNC)?;
    Some(ClientStep::Listen {
        used: used + n,
        op,
        status: tx,
        prefix,
    })
}

/// The body and length of the whole message at `at` in `buf`, if it is a `want`.
fn frame_at(buf: &[u8], at: usize, want: u8) -> Option<(&[u8], usize)> {
    let (frame, _) = Frame::split(&buf[at..], MAX_MESSAGE).ok().flatten()?;
    (frame.tag() == want).then_some((frame.body, frame.bytes.len()))
}
