//! The syntax model: what a config file says, before any meaning is given to it. Every
//! directive is a `Item` (a head, its values, maybe a `{ }` block); every part keeps its `Pos`.

use super::diag::Pos;
use super::lexer::Quote;

/// One value as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A quoted string, unescaped.
    Str(String, Quote),
    /// A plain integer.
    Int(i64),
    /// A size with a suffix, in bytes.
    Size(i64),
    /// A bare word: a directive name in head position, else a value word (`yes`, `default`...).
    Word(String),
}

impl Value {
    /// How the value reads in a "found ..." message.
    pub fn describe(&self) -> String {
        match self {
            Value::Str(s, _) => format!("string \"{s}\""),
            Value::Int(n) => format!("number {n}"),
            Value::Size(n) => format!("size {n} bytes"),
            Value::Word(w) => format!("word '{w}'"),
        }
    }
}

/// A value with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// Where it starts.
    pub pos: Pos,
    /// What it is.
    pub value: Value,
}

/// One directive: `head value* [{ item* }]`. In `options { "k" "v" }` blocks the head is a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The directive name (or, in key/value blocks, the first string).
    pub head: Arg,
    /// The values after the head.
    pub args: Vec<Arg>,
    /// The `{ }` block, if any.
    pub block: Option<Block>,
}

impl Item {
    /// The directive name, or "" when the head is not a bare word.
    pub fn name(&self) -> &str {
        match &self.head.value {
            Value::Word(w) => w,
            _ => "",
        }
    }

    /// Where the directive starts.
    pub fn pos(&self) -> &Pos {
        &self.head.pos
    }
}

/// A `{ }` block and its directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Where `{` stands.
    pub open: Pos,
    /// The directives inside, in order.
    pub items: Vec<Item>,
}
