//! A parameterised query of the pooler's own (auth_query) over the extended protocol: Parse,
//! Bind (text parameters), Describe, Execute, Sync on the unnamed statement and portal, and
//! the rows it returns, read up to ReadyForQuery.

use kiwi::backend::{DataRow, ReadyForQuery, tag as be};
use kiwi::frontend::{Bind, Describe, Execute, Parse, Target, tag as fe};
use kiwi::header::Header;
use machinarium::Deadline;

use super::BackendError;
use crate::conn::DEFAULT_MAX_MESSAGE;
use crate::server::Server;

/// One row: its column values as text, `None` for SQL NULL.
pub type Row = Vec<Option<Vec<u8>>>;

/// Runs `sql` with `params` bound as text `$1`, `$2`... and returns every row it produced.
/// An ErrorResponse is returned as [`BackendError::Server`] once its ReadyForQuery is read,
/// so the server is left idle either way (unless the connection failed).
pub fn query_rows(
    server: &mut Server,
    sql: &[u8],
    params: &[&[u8]],
    deadline: Deadline,
) -> Result<Vec<Row>, BackendError> {
    let mut out = Vec::new();
    Parse {
        name: b"",
        query: sql,
        param_types: Vec::new(),
    }
    .encode(&mut out);
    Bind {
        portal: b"",
        statement: b"",
        param_formats: Vec::new(),
        params: params.iter().map(|p| Some(*p)).collect(),
        result_formats: Vec::new(),
    }
    .encode(&mut out);
    Describe {
        target: Target::Portal,
        name: b"",
    }
    .encode(&mut out);
    Execute {
        portal: b"",
        max_rows: 0,
    }
    .encode(&mut out);
    Header {
        tag: fe::SYNC,
        length: 4,
    }
    .encode(&mut out);
    server.conn.write_all(&out, deadline)?;
    read_rows(server, deadline)
}

fn read_rows(server: &mut Server, deadline: Deadline) -> Result<Vec<Row>, BackendError> {
    let mut rows = Vec::new();
    let mut failed = None;
    loop {
        let m = server.conn.read_message(deadline, DEFAULT_MAX_MESSAGE)?;
        match m.tag {
            be::DATA_ROW => {
                let row = DataRow::decode(m.body)?;
                rows.push(row.values.iter().map(|v| v.map(<[u8]>::to_vec)).collect());
            }
            be::ERROR_RESPONSE => failed = Some(BackendError::Server(m.bytes.to_vec())),
            be::READY_FOR_QUERY => {
                server.tx = ReadyForQuery::decode(m.body)?.status;
                return failed.map_or(Ok(rows), Err);
            }
            // ParseComplete, BindComplete, RowDescription, CommandComplete, notices.
            _ => {}
        }
    }
}
