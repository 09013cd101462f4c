//! The admin console (spec §5): a client routed to a `storage` of `type "local"` talks to the
//! pooler itself. Its queries are console commands; the simple and the extended protocol both
//! work (psql, drivers, pgbench `-f`). The rule's `role` limits what it may do: `stat` only
//! looks, `admin` also acts, `notallow` may do nothing.

pub mod command;
pub mod extended;
pub mod show;
pub mod show_activity;
pub mod table;

use std::sync::Arc;
use std::time::Duration;

use kiwi::backend::{ErrorFields, ParameterStatus, ReadyForQuery, Severity, TransactionStatus};
use kiwi::frontend::FrontendMessage;
use kiwi::sqlstate;
use machinarium::Deadline;

use crate::client::Client;
use crate::clients::ClientEntry;
use crate::config::rule::{Role, Rule};
use crate::conn::ConnError;
use crate::instance::Instance;
use crate::reply::Reply;
use crate::{control, od_info};
use command::{Command, Unknown};
use extended::Extended;
use table::Table;

/// Most bytes a console message may have.
const MAX_MESSAGE: u32 = 1 << 20;
/// How often a console session looks for a kill or a shutdown while its client is quiet.
const CHECK_EVERY: Duration = Duration::from_millis(200);

/// Why a console session ended.
#[derive(Debug)]
pub enum ConsoleEnd {
    /// The client sent Terminate.
    Quit,
    /// The connection failed or closed.
    Gone(ConnError),
    /// The client sent bytes that are not the protocol.
    Protocol,
    /// `KILL_CLIENT` named it.
    Killed,
    /// The pooler is shutting down.
    Shutdown,
}

/// A console client's session.
pub struct Console<'a> {
    inst: &'a Arc<Instance>,
    client: &'a mut Client,
    role: Role,
    /// The rule's `quantiles` (SHOW POOLS_EXTENDED).
    quantiles: Vec<f64>,
    entry: &'a ClientEntry,
    extended: Extended,
}

/// Greets a logged-in console client and serves it until it leaves.
pub fn serve(
    inst: &Arc<Instance>,
    client: &mut Client,
    rule: &Rule,
    entry: &ClientEntry,
) -> ConsoleEnd {
    let mut console = Console {
        inst,
        client,
        role: rule.role,
        quantiles: rule.quantiles.clone(),
        entry,
        extended: Extended::default(),
    };
    let mut out = Vec::new();
    greeting(&mut out);
    if let Err(e) = console.write(&out) {
        return ConsoleEnd::Gone(e);
    }
    let end = console.run();
    if let ConsoleEnd::Killed | ConsoleEnd::Shutdown = end {
        console.farewell(&end);
    }
    end
}

/// ParameterStatus as upstream's console sends them, then ReadyForQuery (no BackendKeyData).
fn greeting(out: &mut Vec<u8>) {
    let params: [(&[u8], &[u8]); 5] = [
        (b"server_version", env!("CARGO_PKG_VERSION").as_bytes()),
        (b"server_encoding", b"UTF-8"),
        (b"client_encoding", b"UTF-8"),
        (b"DateStyle", b"ISO"),
        (b"TimeZone", b"GMT"),
    ];
    for (name, value) in params {
        ParameterStatus { name, value }.encode(out);
    }
    ready(out);
}

fn ready(out: &mut Vec<u8>) {
    ReadyForQuery {
        status: TransactionStatus::Idle,
    }
    .encode(out);
}

impl Console<'_> {
    /// Reads and answers messages until the client goes, is killed, or the pooler stops.
    fn run(&mut self) -> ConsoleEnd {
        loop {
            if self.entry.killed() {
                return ConsoleEnd::Killed;
            }
            if self.inst.is_shutting_down() {
                return ConsoleEnd::Shutdown;
            }
            let parsed = FrontendMessage::parse(self.client.conn.buffered(), MAX_MESSAGE);
            let (bytes, used) = match parsed.map(|m| m.map(|(_, used)| used)) {
                Ok(Some(used)) => {
                    // The message is copied out: answering it may use the connection.
                    let frame = self.client.conn.buffered()[..used].to_vec();
                    let Ok(Some((message, _))) = FrontendMessage::parse(&frame, MAX_MESSAGE) else {
                        return ConsoleEnd::Protocol;
                    };
                    let mut out = Vec::new();
                    if let Some(end) = self.answer(message, &mut out) {
                        return end;
                    }
                    (out, used)
                }
                Ok(None) => match self.client.conn.fill(Deadline::after(CHECK_EVERY)) {
                    Ok(_) | Err(ConnError::TimedOut) => continue,
                    Err(e) => return ConsoleEnd::Gone(e),
                },
                Err(_) => return ConsoleEnd::Protocol,
            };
            self.client.conn.consume(used);
            if let Err(e) = self.write(&bytes) {
                return ConsoleEnd::Gone(e);
            }
        }
    }

    /// Answers one message into `out`; Some when the session ends.
    fn answer(&mut self, message: FrontendMessage<'_>, out: &mut Vec<u8>) -> Option<ConsoleEnd> {
        match message {
            FrontendMessage::Query(q) => {
                let sql = String::from_utf8_lossy(q.sql).into_owned();
                let table = self.execute(&sql);
                self.encode_result(table, out);
                ready(out);
            }
            FrontendMessage::Terminate => return Some(ConsoleEnd::Quit),
            FrontendMessage::Sync => {
                self.extended.sync();
                ready(out);
            }
            FrontendMessage::Flush => {}
            other => {
                let result = extended::handle(self, other, out);
                if let Err(reply) = result {
                    self.extended.fail();
                    self.encode_reply(&reply, out);
                }
            }
        }
        None
    }

    /// Runs a console query: its rows, or the error to send.
    pub fn execute(&mut self, sql: &str) -> Result<Table, Reply> {
        if self.inst.logger.flags().query {
            od_info!(
                self.inst.logger,
                "console",
                Some(&self.client.info),
                None,
                "{sql}"
            );
        }
        let command = command::parse(sql).map_err(|Unknown| {
            Reply::error(
                sqlstate::SYNTAX_ERROR,
                format!("console command error: {}", sql.trim()),
            )
        })?;
        if !self.may(&command) {
            return Err(Reply::error(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "Unsuitable user role to emit console command",
            ));
        }
        self.act(command, sql)
    }

    /// Whether the rule's role allows the command.
    fn may(&self, command: &Command) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Stat | Role::Undef => command.read_only(),
            Role::NotAllow => false,
        }
    }

    /// Does what the command says.
    fn act(&mut self, command: Command, sql: &str) -> Result<Table, Reply> {
        let inst = self.inst;
        let syntax = || {
            Reply::error(
                sqlstate::SYNTAX_ERROR,
                format!("console command error: {}", sql.trim()),
            )
        };
        Ok(match command {
            Command::Show(what) => show::show(inst, what, &self.quantiles)?,
            Command::KillClient(id) => {
                // Upstream's id check: `c` and 12 hex digits; no CommandComplete.
                if id.len() != 13 {
                    return Err(syntax());
                }
                control::kill(inst, &id);
                Table::default()
            }
            Command::Reload => {
                od_info!(
                    inst.logger,
                    "console",
                    None,
                    None,
                    "RELOAD command received"
                );
                control::reload_from_console(inst);
                Table::done("RELOAD")
            }
            Command::Set => Table::done("SET"),
            Command::Pause(db) => {
                control::pause(inst, db.as_deref());
                Table::done("PAUSE")
            }
            Command::Resume(db) => {
                control::resume(inst, db.as_deref());
                Table::done("RESUME")
            }
            Command::DropServers => {
                control::drop_servers(inst);
                Table::default()
            }
            Command::Module => {
                return Err(Reply::error(
                    sqlstate::SYSTEM_ERROR,
                    "modules are not supported by this build",
                ));
            }
        })
    }

    /// A simple-protocol result: description, rows, tag; or the error.
    fn encode_result(&self, table: Result<Table, Reply>, out: &mut Vec<u8>) {
        match table {
            Ok(table) => {
                if let Some(notice) = &table.notice {
                    let code = sqlstate::SUCCESSFUL_COMPLETION;
                    ErrorFields::new(Severity::Notice, &code, notice).encode_notice(out);
                }
                table.encode_description(out);
                table.encode_rows(out);
            }
            Err(reply) => self.encode_reply(&reply, out),
        }
    }

    fn encode_reply(&self, reply: &Reply, out: &mut Vec<u8>) {
        reply.encode(self.client.info.id, self.client.show_id, out);
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.client
            .conn
            .write_all(bytes, Deadline::after(Duration::from_secs(10)))
    }

    /// The FATAL a killed or shut-out console client gets.
    fn farewell(&mut self, end: &ConsoleEnd) {
        let reply = match end {
            ConsoleEnd::Killed => Reply::killed(),
            _ => Reply::shutting_down(self.inst.drain()),
        };
        let mut out = Vec::new();
        self.encode_reply(&reply, &mut out);
        let _ = self.write(&out);
    }
}
