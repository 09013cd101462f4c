//! The extended-query protocol: Parse, Bind, Describe, Execute, Close (Sync and Flush have no
//! body and live in the enum).

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer::{self, counted};

use super::tag;

/// `P`: prepare a named (or the unnamed) statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Statement name; empty for the unnamed statement.
    pub name: &'a [u8],
    /// The SQL text.
    pub query: &'a [u8],
    /// Parameter type OIDs; 0 leaves a type unspecified.
    pub param_types: Vec<u32>,
}

impl<'a> Parse<'a> {
    /// Decodes a Parse body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "Parse.name");
        let name = r.cstr()?;
        let query = r.context("Parse.query").cstr()?;
        let n = r.context("Parse.param_types").count()?;
        let param_types = (0..n).map(|_| r.u32()).collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self {
            name,
            query,
            param_types,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::PARSE, |w| {
            let types = counted(&self.param_types);
            w.cstr(self.name).cstr(self.query).count(types.len());
            for &t in types {
                w.u32(t);
            }
        });
    }
}

/// `B`: bind parameter values to a statement, making a portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Portal name; empty for the unnamed portal.
    pub portal: &'a [u8],
    /// Statement name; empty for the unnamed statement.
    pub statement: &'a [u8],
    /// Parameter format codes: none (all text), one (for all) or one per parameter.
    pub param_formats: Vec<i16>,
    /// Parameter values; `None` is SQL NULL.
    pub params: Vec<Option<&'a [u8]>>,
    /// Result column format codes, with the same none/one/each rule.
    pub result_formats: Vec<i16>,
}

impl<'a> Bind<'a> {
    /// Decodes a Bind body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "Bind.portal");
        let portal = r.cstr()?;
        let statement = r.context("Bind.statement").cstr()?;
        let param_formats = formats(r.context("Bind.param_formats"))?;
        let n = r.context("Bind.params").count()?;
        let params = (0..n).map(|_| r.nullable()).collect::<Result<_, _>>()?;
        let result_formats = formats(r.context("Bind.result_formats"))?;
        r.context("Bind").finish()?;
        Ok(Self {
            portal,
            statement,
            param_formats,
            params,
            result_formats,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::BIND, |w| {
            w.cstr(self.portal).cstr(self.statement);
            write_formats(w, &self.param_formats);
            let params = counted(&self.params);
            w.count(params.len());
            for p in params {
                w.nullable(*p);
            }
            write_formats(w, &self.result_formats);
        });
    }
}

/// Reads a count and that many Int16 format codes (0 text, 1 binary).
pub(crate) fn formats(r: &mut Reader<'_>) -> Result<Vec<i16>, DecodeError> {
    let n = r.count()?;
    (0..n).map(|_| r.i16()).collect()
}

/// Writes a count and the format codes.
pub(crate) fn write_formats(w: &mut writer::Writer<'_>, formats: &[i16]) {
    let formats = counted(formats);
    w.count(formats.len());
    for &f in formats {
        w.i16(f);
    }
}

/// What Describe and Close act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `S`: a prepared statement.
    Statement,
    /// `P`: a portal.
    Portal,
}

impl Target {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            b'S' => Ok(Self::Statement),
            b'P' => Ok(Self::Portal),
            other => Err(r.invalid(i64::from(other))),
        }
    }

    fn byte(self) -> u8 {
        match self {
            Self::Statement => b'S',
            Self::Portal => b'P',
        }
    }
}

/// `D`: ask for the description of a statement or portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Describe<'a> {
    /// Statement or portal.
    pub target: Target,
    /// Its name; empty for the unnamed one.
    pub name: &'a [u8],
}

impl<'a> Describe<'a> {
    /// Decodes a Describe body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let (target, name) = target_and_name(body, "Describe.target", "Describe.name")?;
        Ok(Self { target, name })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::DESCRIBE, |w| {
            w.u8(self.target.byte()).cstr(self.name);
        });
    }
}

/// `C`: close a statement or portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close<'a> {
    /// Statement or portal.
    pub target: Target,
    /// Its name; empty for the unnamed one.
    pub name: &'a [u8],
}

impl<'a> Close<'a> {
    /// Decodes a Close body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let (target, name) = target_and_name(body, "Close.target", "Close.name")?;
        Ok(Self { target, name })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::CLOSE, |w| {
            w.u8(self.target.byte()).cstr(self.name);
        });
    }
}

fn target_and_name<'a>(
    body: &'a [u8],
    target_context: &'static str,
    name_context: &'static str,
) -> Result<(Target, &'a [u8]), DecodeError> {
    let mut r = Reader::new(body, target_context);
    let target = Target::decode(&mut r)?;
    let name = r.context(name_context).cstr()?;
    r.finish()?;
    Ok((target, name))
}

/// `E`: run a portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execute<'a> {
    /// Portal name; empty for the unnamed portal.
    pub portal: &'a [u8],
    /// Most rows to return; 0 means no limit.
    pub max_rows: i32,
}

impl<'a> Execute<'a> {
    /// Decodes an Execute body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "Execute.portal");
        let portal = r.cstr()?;
        let max_rows = r.context("Execute.max_rows").i32()?;
        r.finish()?;
        Ok(Self { portal, max_rows })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::EXECUTE, |w| {
            w.cstr(self.portal).i32(self.max_rows);
        });
    }
}
