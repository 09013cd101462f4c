//! The extended protocol on the console: Parse keeps a command's text, Bind makes a portal of
//! it, Describe runs a SHOW early to learn its columns (Execute then sends the rows it got),
//! Execute runs the command. After an error, messages are skipped until Sync, as PostgreSQL
//! does.

use std::collections::HashMap;

use kiwi::backend::{BackendMessage, ParameterDescription};
use kiwi::frontend::{FrontendMessage, Target};
use kiwi::sqlstate;

use super::Console;
use super::command::{self, Command};
use super::table::Table;
use crate::reply::Reply;

/// Statements and portals of a console session.
#[derive(Default)]
pub struct Extended {
    statements: HashMap<Vec<u8>, String>,
    portals: HashMap<Vec<u8>, Portal>,
    failed: bool,
}

/// A bound command, and its result once a Describe ran it.
struct Portal {
    sql: String,
    result: Option<Table>,
}

impl Extended {
    /// Sync: the batch ends; portals go (they live for a transaction, and the console has
    /// none).
    pub fn sync(&mut self) {
        self.failed = false;
        self.portals.clear();
    }

    /// A message failed: skip to the next Sync.
    pub fn fail(&mut self) {
        self.failed = true;
    }
}

/// Answers one extended-protocol message (or an unsupported one) into `out`.
pub fn handle(
    console: &mut Console<'_>,
    message: FrontendMessage<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Reply> {
    if console.extended.failed {
        return Ok(());
    }
    match message {
        FrontendMessage::Parse(p) => {
            let sql = String::from_utf8_lossy(p.query).into_owned();
            console.extended.statements.insert(p.name.to_vec(), sql);
            BackendMessage::ParseComplete.encode(out);
        }
        FrontendMessage::Bind(b) => {
            let sql = statement(console, b.statement)?;
            let portal = Portal { sql, result: None };
            console.extended.portals.insert(b.portal.to_vec(), portal);
            BackendMessage::BindComplete.encode(out);
        }
        FrontendMessage::Describe(d) => describe(console, d.target, d.name, out)?,
        FrontendMessage::Execute(e) => execute(console, e.portal, out)?,
        FrontendMessage::Close(c) => {
            match c.target {
                Target::Statement => console.extended.statements.remove(c.name),
                Target::Portal => console.extended.portals.remove(c.name).map(|p| p.sql),
            };
            BackendMessage::CloseComplete.encode(out);
        }
        other => return Err(unsupported(&other)),
    }
    Ok(())
}

fn statement(console: &Console<'_>, name: &[u8]) -> Result<String, Reply> {
    console
        .extended
        .statements
        .get(name)
        .cloned()
        .ok_or_else(|| {
            Reply::error(
                sqlstate::INVALID_SQL_STATEMENT_NAME,
                format!(
                    "prepared statement \"{}\" does not exist",
                    String::from_utf8_lossy(name)
                ),
            )
        })
}

/// Describe: a statement gets its (empty) parameter list first; then the columns of a SHOW,
/// or NoData for commands without rows.
fn describe(
    console: &mut Console<'_>,
    target: Target,
    name: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), Reply> {
    let sql = match target {
        Target::Statement => {
            let sql = statement(console, name)?;
            ParameterDescription { types: Vec::new() }.encode(out);
            sql
        }
        Target::Portal => portal(console, name)?.sql.clone(),
    };
    let shows_rows = matches!(command::parse(&sql), Ok(Command::Show(_)));
    if !shows_rows {
        BackendMessage::NoData.encode(out);
        return Ok(());
    }
    let table = console.execute(&sql)?;
    if !table.encode_description(out) {
        BackendMessage::NoData.encode(out);
    }
    if target == Target::Portal
        && let Some(p) = console.extended.portals.get_mut(name)
    {
        p.result = Some(table);
    }
    Ok(())
}

/// Execute: the rows a Describe got, or the command run now; no RowDescription.
fn execute(console: &mut Console<'_>, name: &[u8], out: &mut Vec<u8>) -> Result<(), Reply> {
    let p = portal(console, name)?;
    let (sql, ready) = (p.sql.clone(), p.result.take());
    let table = match ready {
        Some(t) => t,
        None => console.execute(&sql)?,
    };
    table.encode_rows(out);
    Ok(())
}

fn portal<'c>(console: &'c mut Console<'_>, name: &[u8]) -> Result<&'c mut Portal, Reply> {
    console.extended.portals.get_mut(name).ok_or_else(|| {
        Reply::error(
            sqlstate::INVALID_CURSOR_NAME,
            format!(
                "portal \"{}\" does not exist",
                String::from_utf8_lossy(name)
            ),
        )
    })
}

/// Upstream's answer to a message the console does not take.
fn unsupported(message: &FrontendMessage<'_>) -> Reply {
    let name = match message {
        FrontendMessage::CopyData(_) => "CopyData",
        FrontendMessage::CopyDone => "CopyDone",
        FrontendMessage::CopyFail(_) => "CopyFail",
        FrontendMessage::FunctionCall(_) => "FunctionCall",
        _ => "PasswordMessage",
    };
    Reply::error(
        sqlstate::FEATURE_NOT_SUPPORTED,
        format!("unsupported request '{name}'"),
    )
}
