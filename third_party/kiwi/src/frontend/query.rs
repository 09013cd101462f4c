//! Query: the simple-query protocol's one message, a string of SQL.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer;

use super::tag;

/// `Q`: one or more SQL statements, run as a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    /// The SQL text, in the client encoding, without its NUL.
    pub sql: &'a [u8],
}

impl<'a> Query<'a> {
    /// Decodes a Query body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "Query.sql");
        let sql = r.cstr()?;
        r.finish()?;
        Ok(Self { sql })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::QUERY, |w| {
            w.cstr(self.sql);
        });
    }
}
