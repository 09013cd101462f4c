//! The nom grammar of odyssey.conf: `config := item*`, `item := head value* block?`,
//! `block := '{' item* '}'`. Which directives may stand where, and what values they take, is
//! checked later by `convert`; here only the shape is read.

use nom::branch::alt;
use nom::combinator::map;
use nom::{IResult, Parser};

use super::diag::Diagnostic;
use super::keywords;
use super::lexer::{self, Lex, Number, Source, SyntaxError};
use super::model::{Arg, Block, Item, Value};

/// Blocks nested deeper than this are refused, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// Parses a whole file into its top-level items.
pub fn parse(src: &Source<'_>) -> Result<Vec<Item>, Diagnostic> {
    let grammar = Grammar { src };
    let result = grammar.items(src.text(), 0).and_then(|(rest, items)| {
        let (rest, ()) = lexer::skip(rest)?;
        if lexer::at_end(rest) {
            Ok(items)
        } else if lexer::close(rest).is_ok() {
            lexer::fail(rest, "a directive (this '}' closes no block)").map(|(_, v)| v)
        } else {
            lexer::fail(rest, "a directive").map(|(_, v)| v)
        }
    });
    result.map_err(|e| match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => grammar.diagnostic(e),
        nom::Err::Incomplete(_) => grammar.diagnostic(SyntaxError {
            at: "",
            expected: "more input",
        }),
    })
}

struct Grammar<'s, 't> {
    src: &'s Source<'t>,
}

impl<'t> Grammar<'_, 't> {
    fn diagnostic(&self, e: SyntaxError<'_>) -> Diagnostic {
        Diagnostic::expected(&self.src.pos(e.at), e.expected, lexer::describe(e.at))
    }

    /// Items until `}` or the end of input (neither consumed).
    fn items(&self, mut i: &'t str, depth: usize) -> Lex<'t, Vec<Item>> {
        let mut items = Vec::new();
        loop {
            let (rest, ()) = lexer::skip(i)?;
            if lexer::at_end(rest) || lexer::close(rest).is_ok() {
                return Ok((rest, items));
            }
            let (rest, item) = self.item(rest, depth)?;
            items.push(item);
            i = rest;
        }
    }

    fn item(&self, i: &'t str, depth: usize) -> Lex<'t, Item> {
        let head = match self.arg(i) {
            Ok((rest, head)) => (rest, head),
            Err(nom::Err::Error(_)) => return lexer::fail(i, "a directive"),
            Err(e) => return Err(e),
        };
        let (mut i, head) = head;
        let name = match &head.value {
            Value::Word(w) => w.clone(),
            _ => String::new(),
        };
        let mut args = Vec::new();
        loop {
            let (rest, ()) = lexer::skip(i)?;
            if let Ok((after, _)) = lexer::open(rest) {
                if depth >= MAX_DEPTH {
                    return lexer::fail(rest, "less deeply nested blocks");
                }
                let open = self.src.pos(rest);
                let (after, items) = self.items(after, depth + 1)?;
                let (after, _) = match lexer::close(after) {
                    Ok(ok) => ok,
                    Err(_) => return lexer::fail(after, "'}' to close the block"),
                };
                let block = Some(Block { open, items });
                return Ok((after, Item { head, args, block }));
            }
            match self.value(rest, &name, args.is_empty()) {
                Ok((after, arg)) => {
                    args.push(arg);
                    i = after;
                }
                Err(nom::Err::Error(_)) => {
                    return Ok((
                        rest,
                        Item {
                            head,
                            args,
                            block: None,
                        },
                    ));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A value after `head`: string, number, or a bare word that cannot start a directive.
    /// Right after the head any word that is no directive is taken too (`tls disable`), so
    /// the complaint is about the value, not about a directive called `disable`.
    fn value(&self, i: &'t str, head: &str, first: bool) -> Lex<'t, Arg> {
        let (rest, arg) = self.arg(i)?;
        if let Value::Word(w) = &arg.value {
            let unknown_first = first && keywords::lookup(w).is_none();
            if !unknown_first && !keywords::is_value_word(head, w) {
                return Err(nom::Err::Error(SyntaxError {
                    at: i,
                    expected: "a value",
                }));
            }
        }
        Ok((rest, arg))
    }

    /// Any single token that can carry a value.
    fn arg(&self, i: &'t str) -> Lex<'t, Arg> {
        let pos = self.src.pos(i);
        let (rest, value) = token(i)?;
        Ok((rest, Arg { pos, value }))
    }
}

fn token(i: &str) -> IResult<&str, Value, SyntaxError<'_>> {
    alt((
        map(lexer::string, |(s, q)| Value::Str(s, q)),
        map(lexer::number, |n| match n {
            Number::Int(v) => Value::Int(v),
            Number::Size(v) => Value::Size(v),
        }),
        map(lexer::word, |w| Value::Word(w.to_string())),
    ))
    .parse(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lexer::Quote;

    fn parse_str(text: &str) -> Result<Vec<Item>, Diagnostic> {
        parse(&Source::new("t.conf".into(), text))
    }

    #[test]
    fn nested_blocks_and_selectors() {
        let items = parse_str(
            "workers 2 # two\ndatabase \"db\" {\n  user default \"10.0.0.0/8\" host {\n    pool \"session\"\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].args[0].value, Value::Int(2));
        let user = &items[1].block.as_ref().unwrap().items[0];
        assert_eq!(user.name(), "user");
        assert_eq!(user.args.len(), 3);
        assert_eq!(user.args[2].value, Value::Word("host".into()));
        let pool = &user.block.as_ref().unwrap().items[0];
        assert_eq!((pool.pos().line, pool.pos().column), (4, 5));
        assert_eq!(
            pool.args[0].value,
            Value::Str("session".into(), Quote::Double)
        );
    }

    #[test]
    fn host_after_an_option_starts_a_new_item() {
        let items = parse_str("listen { port 6432 host \"*\" }").unwrap();
        let inner = &items[0].block.as_ref().unwrap().items;
        assert_eq!(inner.len(), 2);
        assert_eq!(inner[1].name(), "host");
    }

    #[test]
    fn errors_name_the_place() {
        let e = parse_str("listen {\n  port 1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.conf:3:1: expected '}' to close the block, found end of file"
        );
        let e = parse_str("a }").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.conf:1:3: expected a directive")
        );
        let e = parse_str("x = 1").unwrap_err();
        assert_eq!(e.to_string(), "t.conf:1:3: expected a directive, found '='");
        let e = parse_str("s \"open").unwrap_err();
        assert!(e.to_string().contains("closing quote"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let text = "a {".repeat(100) + &"}".repeat(100);
        assert!(parse_str(&text).is_err());
    }
}
