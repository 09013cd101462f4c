//! The server's direction: what the server's bytes mean for the pooler (transaction status,
//! reported parameters, SETs taking effect, state left behind, stale statements) and what the
//! client gets of them.

use kiwi::backend::{ParameterStatus, TransactionStatus};
use kiwi::var::Vars;

use super::scan::{BadFrame, ServerEvent, copy_in_after, scan_server_until};
use super::sets::Setting;
use super::statements::{self, Statements};
use super::{Relay, Reply, ServerStep};
use crate::config::PoolMode;
use crate::server::ServerInfo;

/// What one pass over the server's bytes saw, besides the bytes themselves.
#[derive(Default)]
struct Seen {
    /// Message starts (tag, offset), kept when the statements relay must filter replies.
    starts: Vec<(u8, usize)>,
    /// DISCARD ALL ran: the server's statements and parameters are back to nothing.
    discarded: bool,
    queries: u32,
    transactions: u32,
}

impl Relay {
    /// What to do with the server's buffered bytes `buf`. Follows the server's transaction
    /// status in `tx`, its parameters and statements in `info`, and the client's parameters in
    /// `client_vars`.
    pub fn server(
        &mut self,
        buf: &[u8],
        info: &mut ServerInfo,
        tx: &mut TransactionStatus,
        client_vars: &mut Vars,
    ) -> Result<ServerStep, BadFrame> {
        let track = self.statements.as_deref().is_some_and(Statements::owed);
        let mut seen = Seen::default();
        let used = self.follow_server(buf, track, info, tx, client_vars, &mut seen)?;
        if used == 0 {
            return Ok(ServerStep {
                used,
                reply: Reply::Same,
                queries: 0,
                transactions: 0,
            });
        }
        let reply = match self.statements.as_mut().filter(|_| track) {
            None => Reply::Same,
            Some(statements) => Reply::Rewritten(statements::filter_replies(
                statements,
                &buf[..used],
                &seen.starts,
                &mut info.prepared,
            )),
        };
        if seen.discarded
            && let Some(statements) = self.statements.as_mut()
        {
            statements.discard();
        }
        Ok(ServerStep {
            used,
            reply,
            queries: seen.queries,
            transactions: seen.transactions,
        })
    }

    /// Whether a ReadyForQuery that answers the last request gives the server back, given what
    /// the client has sent. Such a ReadyForQuery ends the pass: whatever the server says after
    /// it (a FATAL of pg_terminate_backend, a shutdown) is not the client's, who is idle now;
    /// left unread, it makes the pool close the server instead of reusing it.
    fn releases_at_ready(&self) -> bool {
        self.settings.mode != PoolMode::Session
            && self.client_scan.at_boundary()
            && !self.unsynced
            && !self.deferred_begin
    }

    /// Walks the server's messages and updates the state they change.
    fn follow_server(
        &mut self,
        buf: &[u8],
        track: bool,
        info: &mut ServerInfo,
        tx: &mut TransactionStatus,
        client_vars: &mut Vars,
        seen: &mut Seen,
    ) -> Result<usize, BadFrame> {
        let pin = self.settings.pin_on_listen;
        let hub = self.listen_hub();
        let releasing = self.releases_at_ready();
        let watch_plans = self.settings.drop_on_cached_plan_error && self.statements_on();
        let Relay {
            pending,
            copy_in,
            dirty,
            sets,
            server_scan,
            pinned,
            plan_broken,
            sql_prepares,
            unnamed_listen,
            listened,
            ..
        } = self;
        scan_server_until(server_scan, buf, |ev| {
            *copy_in = copy_in_after(*copy_in, &ev);
            match ev {
                ServerEvent::Ready(status) => {
                    *pending = pending.saturating_sub(1);
                    // Back outside a transaction: one ended (an autocommit statement is one too).
                    if status == TransactionStatus::Idle {
                        seen.transactions += 1;
                    }
                    *tx = status;
                    *sql_prepares = 0;
                    sets.ready(status);
                    seen.queries += 1;
                    return releasing
                        && !*pinned
                        && *pending == 0
                        && status == TransactionStatus::Idle;
                }
                ServerEvent::Parameter(body) => {
                    let recorded = ParameterStatus::decode(body).is_ok_and(|ps| {
                        // An untracked name is fine; a value that cannot be kept is state lost.
                        let server = info.vars.set_status(&ps);
                        let client = client_vars.set_status(&ps);
                        !matches!(server, Err(kiwi::var::VarError::TooLong { .. }))
                            && !matches!(client, Err(kiwi::var::VarError::TooLong { .. }))
                    });
                    *dirty |= !recorded;
                }
                ServerEvent::Complete(b"SET\0") => match sets.completed(*tx) {
                    (Some(setting), _) => *dirty |= !apply(client_vars, &mut info.vars, setting),
                    (None, true) => {}
                    (None, false) => *dirty = true,
                },
                ServerEvent::Complete(b"COMMIT\0") => {
                    for setting in sets.committed() {
                        *dirty |= !apply(client_vars, &mut info.vars, setting);
                    }
                }
                ServerEvent::Complete(b"DISCARD ALL\0") => {
                    info.prepared.clear();
                    info.vars = info.defaults.clone();
                    seen.discarded = true;
                }
                ServerEvent::Complete(b"PREPARE\0") if *sql_prepares > 0 => *sql_prepares -= 1,
                ServerEvent::Complete(b"LISTEN\0") => {
                    *dirty = true;
                    *pinned |= pin;
                    // The unnamed statement the client ran (asyncpg's two round trips): the
                    // route's listener takes it over; the reset undoes it on this server.
                    if hub {
                        *listened = unnamed_listen.clone();
                    }
                }
                ServerEvent::Complete(b"UNLISTEN\0") if hub => {
                    *listened = unnamed_listen.clone();
                }
                ServerEvent::Complete(tag) => *dirty |= leaves_state(tag),
                ServerEvent::Error(body) if watch_plans => {
                    *plan_broken |= statements::is_cached_plan_error(body);
                }
                ServerEvent::Start { tag, at } if track => seen.starts.push((tag, at)),
                ServerEvent::CopyIn | ServerEvent::Start { .. } | ServerEvent::Error(_) => {}
            }
            false
        })
    }
}

/// A tracked SET took effect: the client's next server gets it, and this server has it. False
/// when a value could not be recorded (then the server must be reset before another client).
fn apply(client: &mut Vars, server: &mut Vars, (name, value): Setting) -> bool {
    let c = client.set(name.as_bytes(), value.as_bytes());
    let s = server.set(name.as_bytes(), value.as_bytes());
    c.is_ok() && s.is_ok()
}

/// Whether a command tag means the session now holds state another client must not see.
pub fn leaves_state(tag: &[u8]) -> bool {
    const TAGS: &[&[u8]] = &[
        b"SET",
        b"RESET",
        b"PREPARE",
        b"LISTEN",
        b"DECLARE CURSOR",
        b"CREATE TABLE",
        b"SELECT INTO",
        b"LOAD",
        b"CREATE SEQUENCE",
        b"CREATE VIEW",
    ];
    let tag = tag.strip_suffix(b"\0").unwrap_or(tag);
    TAGS.iter()
        .any(|t| tag == *t || (tag.starts_with(t) && tag.get(t.len()) == Some(&b' ')))
}

#[cfg(test)]
mod tests {
    use super::leaves_state;

    #[test]
    fn tags_that_leave_state() {
        assert!(leaves_state(b"SET\0"));
        assert!(leaves_state(b"CREATE TABLE\0"));
        assert!(leaves_state(b"LISTEN\0"));
        assert!(!leaves_state(b"SELECT 1\0"));
        assert!(!leaves_state(b"SETTINGS\0"));
        assert!(!leaves_state(b"INSERT 0 1\0"));
    }
}
