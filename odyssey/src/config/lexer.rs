//! Tokens of odyssey.conf as nom parsers: blanks and `#` comments, words, quoted strings,
//! numbers with optional size suffixes, braces; and `Source`, which maps a position in the text
//! back to `file:line:column`.

use std::sync::Arc;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, digit1, satisfy};
use nom::combinator::{opt, recognize};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use super::diag::Pos;

/// One config text with its name, able to turn a remaining input slice into a position.
pub struct Source<'t> {
    name: Arc<str>,
    text: &'t str,
    line_starts: Vec<usize>,
}

impl<'t> Source<'t> {
    /// Wraps `text`, read from the file called `name`.
    pub fn new(name: Arc<str>, text: &'t str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source {
            name,
            text,
            line_starts,
        }
    }

    /// The whole text.
    pub fn text(&self) -> &'t str {
        self.text
    }

    /// The file name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The position where `rest` (a suffix of the text) begins.
    pub fn pos(&self, rest: &str) -> Pos {
        let offset = self.text.len().saturating_sub(rest.len());
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        Pos {
            file: self.name.clone(),
            line: line as u32,
            column: column as u32,
        }
    }
}

/// Why the text could not be read: where, and what was wanted there.
#[derive(Debug, PartialEq)]
pub struct SyntaxError<'t> {
    /// The input at the point of failure.
    pub at: &'t str,
    /// What was expected there.
    pub expected: &'static str,
}

impl<'t> ParseError<&'t str> for SyntaxError<'t> {
    fn from_error_kind(input: &'t str, _kind: ErrorKind) -> Self {
        SyntaxError {
            at: input,
            expected: "a directive, a value, '{' or '}'",
        }
    }

    fn append(_input: &'t str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// The result type of every token parser.
pub type Lex<'t, O> = IResult<&'t str, O, SyntaxError<'t>>;

/// Gives up for good at `at`, saying what was expected.
pub fn fail<'t, O>(at: &'t str, expected: &'static str) -> Lex<'t, O> {
    Err(nom::Err::Failure(SyntaxError { at, expected }))
}

/// How a string was quoted. Single quotes are a released-version leniency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// `"..."`, the only form upstream HEAD accepts.
    Double,
    /// `'...'`, accepted with a warning.
    Single,
}

/// A number as written: plain, or with a size suffix (`k`, `kb`, `m`, `mb`, `g`, `gb`, `b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Number {
    /// A plain integer.
    Int(i64),
    /// A byte count given with a suffix, already multiplied out.
    Size(i64),
}

/// Skips blanks and `#` comments.
pub fn skip(i: &str) -> Lex<'_, ()> {
    let mut rest = i;
    loop {
        rest = rest.trim_start();
        match rest.strip_prefix('#') {
            Some(comment) => rest = comment.find('\n').map_or("", |n| &comment[n..]),
            None => return Ok((rest, ())),
        }
    }
}

/// A bare word: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn word(i: &str) -> Lex<'_, &str> {
    recognize((
        satisfy(|c| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(i)
}

/// A quoted string. Inside, `\"` (or `\'` for single quotes) stands for the quote; every other
/// backslash is kept as written, as upstream does (`"%m\n"` keeps its backslash).
pub fn string(i: &str) -> Lex<'_, (String, Quote)> {
    let (body, quote) = match i.chars().next() {
        Some('"') => (&i[1..], Quote::Double),
        Some('\'') => (&i[1..], Quote::Single),
        _ => {
            return Err(nom::Err::Error(SyntaxError::from_error_kind(
                i,
                ErrorKind::Char,
            )));
        }
    };
    let q = if quote == Quote::Double { '"' } else { '\'' };
    let mut text = String::new();
    let mut chars = body.char_indices();
    while let Some((n, c)) = chars.next() {
        if c == q {
            return Ok((&body[n + 1..], (text, quote)));
        }
        if c == '\\' && body[n + 1..].starts_with(q) {
            chars.next();
            text.push(q);
        } else {
            text.push(c);
        }
    }
    fail(i, "a closing quote")
}

/// An integer, optionally negative, with an optional size suffix.
pub fn number(i: &str) -> Lex<'_, Number> {
    let (rest, digits) = recognize((opt(char('-')), digit1)).parse(i)?;
    let (rest, suffix) = take_while(|c: char| c.is_ascii_alphanumeric() || c == '_')(rest)?;
    let Ok(value) = digits.parse::<i64>() else {
        return fail(i, "a number in the 64-bit range");
    };
    if suffix.is_empty() {
        return Ok((rest, Number::Int(value)));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "b" => 0,
        "k" | "kb" => 10,
        "m" | "mb" => 20,
        "g" | "gb" => 30,
        _ => return fail(i, "a number or a size (k, kb, m, mb, g, gb, b)"),
    };
    match value.checked_mul(1 << shift) {
        Some(bytes) => Ok((rest, Number::Size(bytes))),
        None => fail(i, "a size in the 64-bit range"),
    }
}

/// `{`
pub fn open(i: &str) -> Lex<'_, char> {
    char('{').parse(i)
}

/// `}`
pub fn close(i: &str) -> Lex<'_, char> {
    char('}').parse(i)
}

/// True at the end of the input (after `skip`).
pub fn at_end(i: &str) -> bool {
    i.is_empty()
}

/// Describes the token that starts `i`, for "found ..." in diagnostics.
pub fn describe(i: &str) -> String {
    if i.is_empty() {
        return "end of file".to_string();
    }
    let token: Lex<'_, &str> = alt((
        recognize(string),
        recognize(number),
        word,
        tag("{"),
        tag("}"),
        take_while1(|c: char| !c.is_whitespace()),
    ))
    .parse(i);
    match token {
        Ok((_, t)) if t.chars().count() > 40 => {
            format!("'{}...'", t.chars().take(40).collect::<String>())
        }
        Ok((_, t)) => format!("'{t}'"),
        Err(_) => format!("'{}'", i.chars().next().unwrap_or(' ')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keep_backslashes_but_unescape_quotes() {
        assert_eq!(
            string(r#""a\"b\n" x"#),
            Ok((" x", ("a\"b\\n".to_string(), Quote::Double)))
        );
        assert_eq!(string("'s' "), Ok((" ", ("s".to_string(), Quote::Single))));
        assert!(matches!(string("\"open"), Err(nom::Err::Failure(_))));
    }

    #[test]
    fn numbers_and_sizes() {
        assert_eq!(number("42 "), Ok((" ", Number::Int(42))));
        assert_eq!(number("-1}"), Ok(("}", Number::Int(-1))));
        assert_eq!(number("2GB"), Ok(("", Number::Size(2 << 30))));
        assert_eq!(number("750mb"), Ok(("", Number::Size(750 << 20))));
        assert!(number("10s").is_err());
        assert!(number("99999999999999999999").is_err());
    }

    #[test]
    fn skip_eats_comments() {
        assert_eq!(skip("  # c\n # d\n  x"), Ok(("x", ())));
        assert_eq!(skip("# only"), Ok(("", ())));
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "a\n  bé c";
        let src = Source::new("f".into(), text);
        let p = src.pos(&text[text.len() - 1..]);
        assert_eq!((p.line, p.column), (2, 6));
        assert_eq!(src.pos(text).line, 1);
    }
}
