//! A console result: columns with their types, rows of text values, a command tag, and
//! maybe a notice; and its wire form.

use kiwi::backend::{CommandComplete, DataRow, FieldDescription, RowDescription};

/// A column's type, as upstream declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// text.
    Text,
    /// int8.
    Int8,
    /// int4.
    Int4,
    /// bool.
    Bool,
    /// float4.
    Float4,
}

impl Type {
    fn oid_and_size(self) -> (u32, i16) {
        match self {
            Type::Text => (25, -1),
            Type::Int8 => (20, 8),
            Type::Int4 => (23, 4),
            Type::Bool => (16, 1),
            Type::Float4 => (700, 4),
        }
    }
}

/// A result to send.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Columns: name and type. None: the command returns no rows.
    pub columns: Option<Vec<(String, Type)>>,
    /// Rows of values (None is NULL).
    pub rows: Vec<Vec<Option<String>>>,
    /// CommandComplete tag; None sends none (upstream's KILL_CLIENT and DROP SERVERS).
    pub tag: Option<String>,
    /// A NOTICE before the result (`SHOW HELP`).
    pub notice: Option<String>,
}

impl Table {
    /// A table with these columns and tag `SHOW`.
    pub fn show(columns: &[(&str, Type)]) -> Table {
        Table {
            columns: Some(columns.iter().map(|(n, t)| (n.to_string(), *t)).collect()),
            rows: Vec::new(),
            tag: Some("SHOW".into()),
            notice: None,
        }
    }

    /// A result without rows, with tag `tag`.
    pub fn done(tag: &str) -> Table {
        Table {
            tag: Some(tag.into()),
            ..Table::default()
        }
    }

    /// Adds a column (for columns that depend on the config, such as quantiles).
    pub fn column(&mut self, name: String, ty: Type) {
        self.columns.get_or_insert_with(Vec::new).push((name, ty));
    }

    /// Adds a row.
    pub fn row(&mut self, values: Vec<Option<String>>) {
        self.rows.push(values);
    }

    /// RowDescription (or nothing when the command has no rows).
    pub fn encode_description(&self, out: &mut Vec<u8>) -> bool {
        let Some(columns) = &self.columns else {
            return false;
        };
        let fields = columns
            .iter()
            .map(|(name, ty)| {
                let (type_oid, type_size) = ty.oid_and_size();
                FieldDescription {
                    name: name.as_bytes(),
                    table_oid: 0,
                    column: 0,
                    type_oid,
                    type_size,
                    type_modifier: -1,
                    format: 0,
                }
            })
            .collect();
        RowDescription { fields }.encode(out);
        true
    }

    /// DataRows and CommandComplete.
    pub fn encode_rows(&self, out: &mut Vec<u8>) {
        for row in &self.rows {
            let values: Vec<Option<&[u8]>> = row
                .iter()
                .map(|v| v.as_deref().map(str::as_bytes))
                .collect();
            DataRow::encode_values(out, &values);
        }
        if let Some(tag) = &self.tag {
            CommandComplete {
                tag: tag.as_bytes(),
            }
            .encode(out);
        }
    }
}

/// A value as text.
pub fn v(x: impl ToString) -> Option<String> {
    Some(x.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiwi::backend::BackendMessage;

    #[test]
    fn a_table_encodes_as_description_rows_and_tag() {
        let mut t = Table::show(&[("name", Type::Text), ("n", Type::Int8)]);
        t.row(vec![v("a"), None]);
        let mut out = Vec::new();
        assert!(t.encode_description(&mut out));
        t.encode_rows(&mut out);
        let mut rest = &out[..];
        let mut tags = Vec::new();
        while let Some((m, n)) = BackendMessage::parse(rest, 1 << 20).unwrap() {
            if let BackendMessage::RowDescription(d) = &m {
                assert_eq!(d.fields[1].name, b"n");
                assert_eq!(d.fields[1].type_oid, 20);
            }
            if let BackendMessage::DataRow(r) = &m {
                assert_eq!(r.values, vec![Some(&b"a"[..]), None]);
            }
            tags.push(std::mem::discriminant(&m));
            rest = &rest[n..];
        }
        assert_eq!(tags.len(), 3);
        let mut empty = Vec::new();
        assert!(!Table::done("RELOAD").encode_description(&mut empty));
    }
}
