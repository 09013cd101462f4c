//! Query results: RowDescription, DataRow, CommandComplete, and ParameterDescription.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer::{self, counted};

use super::tag;

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    /// Column name.
    pub name: &'a [u8],
    /// OID of the source table, or 0.
    pub table_oid: u32,
    /// Attribute number in that table, or 0.
    pub column: i16,
    /// OID of the data type.
    pub type_oid: u32,
    /// `pg_type.typlen`; negative for variable width.
    pub type_size: i16,
    /// `pg_attribute.atttypmod`.
    pub type_modifier: i32,
    /// Format code: 0 text, 1 binary.
    pub format: i16,
}

/// `T`: the columns of the rows that follow.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowDescription<'a> {
    /// Columns in order.
    pub fields: Vec<FieldDescription<'a>>,
}

impl<'a> RowDescription<'a> {
    /// Decodes a RowDescription body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "RowDescription.count");
        let n = r.count()?;
        let fields = (0..n)
            .map(|_| {
                Ok(FieldDescription {
                    name: r.context("RowDescription.name").cstr()?,
                    table_oid: r.context("RowDescription.field").u32()?,
                    column: r.i16()?,
                    type_oid: r.u32()?,
                    type_size: r.i16()?,
                    type_modifier: r.i32()?,
                    format: r.i16()?,
                })
            })
            .collect::<Result<_, DecodeError>>()?;
        r.context("RowDescription").finish()?;
        Ok(Self { fields })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::ROW_DESCRIPTION, |w| {
            let fields = counted(&self.fields);
            w.count(fields.len());
            for f in fields {
                w.cstr(f.name)
                    .u32(f.table_oid)
                    .i16(f.column)
                    .u32(f.type_oid);
                w.i16(f.type_size).i32(f.type_modifier).i16(f.format);
            }
        });
    }
}

/// `D`: one row of values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataRow<'a> {
    /// Column values in order; `None` is SQL NULL.
    pub values: Vec<Option<&'a [u8]>>,
}

impl<'a> DataRow<'a> {
    /// Decodes a DataRow body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "DataRow.count");
        let n = r.count()?;
        r.context("DataRow.value");
        // Each value takes at least its 4-byte length, which bounds the allocation by the body.
        let mut values = Vec::with_capacity(usize::from(n).min(r.remaining() / 4));
        for _ in 0..n {
            values.push(r.nullable()?);
        }
        r.context("DataRow").finish()?;
        Ok(Self { values })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Self::encode_values(out, &self.values);
    }

    /// Appends a DataRow straight from values, without building the struct.
    pub fn encode_values(out: &mut Vec<u8>, values: &[Option<&[u8]>]) {
        writer::message(out, tag::DATA_ROW, |w| {
            let values = counted(values);
            w.count(values.len());
            for v in values {
                w.nullable(*v);
            }
        });
    }
}

/// `C`: a statement finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandComplete<'a> {
    /// Command tag, such as `SELECT 5`, `INSERT 0 1`, `BEGIN`.
    pub tag: &'a [u8],
}

impl<'a> CommandComplete<'a> {
    /// Decodes a CommandComplete body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "CommandComplete.tag");
        let tag = r.cstr()?;
        r.finish()?;
        Ok(Self { tag })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::COMMAND_COMPLETE, |w| {
            w.cstr(self.tag);
        });
    }
}

/// `t`: parameter types of a prepared statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParameterDescription {
    /// Parameter type OIDs in order.
    pub types: Vec<u32>,
}

impl ParameterDescription {
    /// Decodes a ParameterDescription body.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "ParameterDescription.count");
        let n = r.count()?;
        let types = (0..n)
            .map(|_| r.context("ParameterDescription.type").u32())
            .collect::<Result<_, _>>()?;
        r.context("ParameterDescription").finish()?;
        Ok(Self { types })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::PARAMETER_DESCRIPTION, |w| {
            let types = counted(&self.types);
            w.count(types.len());
            for &t in types {
                w.u32(t);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_row_bytes() {
        let mut out = Vec::new();
        DataRow::encode_values(&mut out, &[Some(b"42"), None]);
        assert_eq!(
            out,
            b"D\x00\x00\x00\x10\x00\x02\x00\x00\x00\x0242\xff\xff\xff\xff"
        );
        let row = DataRow::decode(&out[5..]).unwrap();
        assert_eq!(row.values, vec![Some(&b"42"[..]), None]);
    }

    #[test]
    fn data_row_count_larger_than_body_is_truncated() {
        assert_eq!(
            DataRow::decode(b"\xff\xff\x00\x00\x00\x00"),
            Err(DecodeError::Truncated {
                context: "DataRow.value"
            })
        );
    }
}
