//! The few SQL statements the pooler recognises in a client's simple Query: a bare `BEGIN`
//! (deferred until the transaction does something), a bare `COMMIT`/`ROLLBACK` of such an empty
//! transaction, `SET` of a tracked session parameter (so that it follows the client to its
//! next server in transaction pooling, even when PostgreSQL does not report it), and `SHOW` of
//! one name (`virtual_processing`).

/// What a Query's text is, as far as the pooler cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Statement<'a> {
    /// `BEGIN [WORK|TRANSACTION]`, `START TRANSACTION` — with nothing else.
    Begin,
    /// `COMMIT`/`END`/`ABORT`/`ROLLBACK` [WORK|TRANSACTION], bare.
    End {
        /// The command tag PostgreSQL answers with: `COMMIT` or `ROLLBACK`.
        tag: &'static str,
    },
    /// `SET [SESSION] name {=|TO} value`, one statement.
    Set {
        /// The parameter name as written.
        name: &'a str,
        /// The value without quotes (a single literal or identifier list as written).
        value: String,
    },
    /// `DEALLOCATE [PREPARE] name` (`Some`) or `DEALLOCATE [PREPARE] ALL` (`None`).
    Deallocate(Option<String>),
    /// `SHOW name`, one name.
    Show(&'a str),
    /// `PREPARE name [(types)] AS statement`: the name (folded as PostgreSQL folds it) and
    /// everything after it, from the parameter types or `AS` on.
    Prepare {
        /// The statement's name.
        name: String,
        /// `(types) AS ...` or `AS ...`.
        rest: &'a str,
    },
    /// `EXECUTE name [(arguments)]`: the name and the arguments as written (maybe empty).
    Execute {
        /// The statement's name.
        name: String,
        /// `(arguments)` or nothing.
        args: &'a str,
    },
    /// `LISTEN channel`: the channel's name (folded as PostgreSQL folds it).
    Listen(String),
    /// `UNLISTEN channel` (`Some`) or `UNLISTEN *` (`None`).
    Unlisten(Option<String>),
    /// Anything else.
    Other,
}

/// Whether `sql` may be one of the statements [`classify`] recognises: a cheap look at its
/// first word, so ordinary queries cost nothing more.
pub fn may_matter(sql: &[u8]) -> bool {
    let start = sql
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(sql.len());
    let word = &sql[start..sql.len().min(start + 5)];
    const FIRST: &[&[u8]] = &[
        b"BEGIN", b"START", b"COMMI", b"END", b"ROLLB", b"ABORT", b"SET", b"DEALL", b"SHOW",
        b"PREPA", b"EXECU", b"LISTE", b"UNLIS",
    ];
    FIRST
        .iter()
        .any(|f| word.len() >= f.len() && word[..f.len()].eq_ignore_ascii_case(f))
}

/// Classifies the SQL of a Query message (its body without the trailing NUL).
pub fn classify(sql: &[u8]) -> Statement<'_> {
    if !may_matter(sql) {
        return Statement::Other;
    }
    let Ok(text) = std::str::from_utf8(sql) else {
        return Statement::Other;
    };
    let text = text
        .trim_end_matches('\0')
        .trim()
        .trim_end_matches(';')
        .trim();
    if text.contains(';') {
        return Statement::Other;
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let u: Vec<&str> = upper.iter().map(String::as_str).collect();
    match u.as_slice() {
        ["BEGIN"] | ["BEGIN", "WORK" | "TRANSACTION"] | ["START", "TRANSACTION"] => {
            Statement::Begin
        }
        ["COMMIT" | "END"] | ["COMMIT" | "END", "WORK" | "TRANSACTION"] => {
            Statement::End { tag: "COMMIT" }
        }
        ["ROLLBACK" | "ABORT"] | ["ROLLBACK" | "ABORT", "WORK" | "TRANSACTION"] => {
            Statement::End { tag: "ROLLBACK" }
        }
        ["SET", ..] => parse_set(text),
        ["PREPARE", ..] => parse_prepare(text),
        ["EXECUTE", ..] => parse_execute(text),
        ["SHOW", _] => Statement::Show(words[1]),
        ["LISTEN", ..] => channel(text, "listen").map_or(Statement::Other, Statement::Listen),
        ["UNLISTEN", "*"] => Statement::Unlisten(None),
        ["UNLISTEN", ..] => {
            channel(text, "unlisten").map_or(Statement::Other, |c| Statement::Unlisten(Some(c)))
        }
        ["DEALLOCATE", "ALL"] | ["DEALLOCATE", "PREPARE", "ALL"] => Statement::Deallocate(None),
        ["DEALLOCATE", _] | ["DEALLOCATE", "PREPARE", _] => {
            // An unquoted name folds to lower case, as in PostgreSQL.
            let raw = words[words.len() - 1];
            let name = raw
                .strip_prefix('"')
                .and_then(|n| n.strip_suffix('"'))
                .map_or_else(|| raw.to_ascii_lowercase(), str::to_string);
            Statement::Deallocate(Some(name))
        }
        _ => Statement::Other,
    }
}

/// Whether a Query's text (maybe only its start) begins with `PREPARE`: such a query must be
/// seen whole by the prepared-statements relay.
pub fn starts_prepare(sql: &[u8]) -> bool {
    let start = sql
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(sql.len());
    sql[start..]
        .get(..7)
        .is_some_and(|w| w.eq_ignore_ascii_case(b"PREPARE"))
}

/// `PREPARE name [(types)] AS statement`.
fn parse_prepare(text: &str) -> Statement<'_> {
    let Some((name, rest)) = keyword_and_name(text, "prepare") else {
        return Statement::Other;
    };
    let rest = rest.trim_start();
    let as_next = strip_prefix_ci(rest, "as").is_some_and(|r| r.starts_with(char::is_whitespace));
    if !(rest.starts_with('(') || as_next) {
        return Statement::Other;
    }
    Statement::Prepare { name, rest }
}

/// `EXECUTE name [(arguments)]`.
fn parse_execute(text: &str) -> Statement<'_> {
    let Some((name, args)) = keyword_and_name(text, "execute") else {
        return Statement::Other;
    };
    let args = args.trim();
    if !(args.is_empty() || args.starts_with('(') && args.ends_with(')')) {
        return Statement::Other;
    }
    Statement::Execute { name, args }
}

/// `keyword name ...`: the name and what follows it.
fn keyword_and_name<'t>(text: &'t str, keyword: &str) -> Option<(String, &'t str)> {
    identifier(strip_prefix_ci(text, keyword)?.trim_start())
}

/// The channel of `LISTEN channel` / `UNLISTEN channel`: one name and nothing after it.
fn channel(text: &str, keyword: &str) -> Option<String> {
    let (name, rest) = keyword_and_name(text, keyword)?;
    rest.trim().is_empty().then_some(name)
}

/// A name at the start of `s` (unquoted: folded to lower case; quoted: `""` unescaped) and
/// what follows it. An unquoted name must end at a space or `(`.
fn identifier(s: &str) -> Option<(String, &str)> {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                name.push(c);
                continue;
            }
            if quoted[i + 1..].starts_with('"') {
                name.push('"');
                chars.next();
                continue;
            }
            return (!name.is_empty()).then(|| (name, &quoted[i + 1..]));
        }
        return None;
    }
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(end);
    let first_ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    let ends_ok = rest.is_empty() || rest.starts_with(char::is_whitespace) || rest.starts_with('(');
    (first_ok && ends_ok).then(|| (name.to_ascii_lowercase(), rest))
}

/// `SET [SESSION] name {=|TO} value`; `SET LOCAL` and anything fancier are `Other`.
///
/// `text` is client input: it is only cut after ASCII prefixes ([`strip_prefix_ci`]), never
/// at a byte offset that could fall inside a multi-byte character.
fn parse_set(text: &str) -> Statement<'_> {
    let Some(rest) = strip_prefix_ci(text, "set") else {
        return Statement::Other;
    };
    let rest = rest.trim_start();
    let rest = strip_prefix_ci(rest, "session ").map_or(rest, str::trim_start);
    let name_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    let (name, after) = rest.split_at(name_end);
    if name.is_empty() || name.eq_ignore_ascii_case("local") {
        return Statement::Other;
    }
    let after = after.trim_start();
    let value = if let Some(v) = after.strip_prefix('=') {
        v
    } else if let Some(v) = strip_prefix_ci(after, "to")
        && v.starts_with(char::is_whitespace)
    {
        v
    } else {
        return Statement::Other;
    };
    match unquote(value.trim()) {
        Some(value) => Statement::Set { name, value },
        None => Statement::Other,
    }
}

/// `s` without its first `prefix.len()` bytes when they spell the ASCII `prefix` in any case.
fn strip_prefix_ci<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    debug_assert!(prefix.is_ascii());
    let head = s.as_bytes().get(..prefix.len())?;
    // An ASCII match ends on a character boundary, so `get` cannot fail after it.
    head.eq_ignore_ascii_case(prefix.as_bytes())
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// A single-quoted literal (with `''` escapes), or a bare word / identifier list as written.
fn unquote(v: &str) -> Option<String> {
    if let Some(inner) = v.strip_prefix('\'') {
        let inner = inner.strip_suffix('\'')?;
        if inner.replace("''", "").contains('\'') {
            return None;
        }
        return Some(inner.replace("''", "'"));
    }
    if v.is_empty() || v.contains(['\'', '"', '$', '(', ')']) || v.eq_ignore_ascii_case("DEFAULT") {
        return None;
    }
    Some(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_and_unlisten_forms() {
        assert_eq!(classify(b"LISTEN ch"), Statement::Listen("ch".into()));
        assert_eq!(
            classify(b" listen Jobs_1 ;\0"),
            Statement::Listen("jobs_1".into())
        );
        assert_eq!(
            classify(b"LISTEN \"Mixed Case\""),
            Statement::Listen("Mixed Case".into())
        );
        assert_eq!(
            classify(b"unlisten ch"),
            Statement::Unlisten(Some("ch".into()))
        );
        assert_eq!(classify(b"UNLISTEN *"), Statement::Unlisten(None));
        assert_eq!(classify(b"LISTEN"), Statement::Other);
        assert_eq!(classify(b"LISTEN a b"), Statement::Other);
        assert_eq!(classify(b"LISTEN a; SELECT 1"), Statement::Other);
        assert_eq!(classify(b"LISTEN 1a"), Statement::Other);
    }

    #[test]
    fn begin_and_end_forms() {
        assert_eq!(classify(b"BEGIN"), Statement::Begin);
        assert_eq!(classify(b" begin work ;\0"), Statement::Begin);
        assert_eq!(classify(b"start transaction"), Statement::Begin);
        assert_eq!(
            classify(b"BEGIN ISOLATION LEVEL SERIALIZABLE"),
            Statement::Other
        );
        assert_eq!(classify(b"BEGIN; SELECT 1"), Statement::Other);
        assert_eq!(classify(b"commit"), Statement::End { tag: "COMMIT" });
        assert_eq!(
            classify(b"END TRANSACTION"),
            Statement::End { tag: "COMMIT" }
        );
        assert_eq!(classify(b"abort"), Statement::End { tag: "ROLLBACK" });
    }

    #[test]
    fn prepare_and_execute_forms() {
        assert_eq!(
            classify(b"PREPARE Q1 (int, text) AS select $1, $2"),
            Statement::Prepare {
                name: "q1".into(),
                rest: "(int, text) AS select $1, $2"
            }
        );
        assert_eq!(
            classify(b"  prepare \"My \"\"s\"\"\" as select 1;"),
            Statement::Prepare {
                name: "My \"s\"".into(),
                rest: "as select 1"
            }
        );
        assert_eq!(classify(b"PREPARE q1"), Statement::Other);
        assert_eq!(classify(b"PREPARE q1 ASselect 1"), Statement::Other);
        assert_eq!(classify(b"PREPARE TRANSACTION 'x'"), Statement::Other);
        assert_eq!(
            classify(b"execute q1(1, 'a')"),
            Statement::Execute {
                name: "q1".into(),
                args: "(1, 'a')"
            }
        );
        assert_eq!(
            classify(b"EXECUTE q1"),
            Statement::Execute {
                name: "q1".into(),
                args: ""
            }
        );
        assert_eq!(classify(b"EXECUTE q1 junk"), Statement::Other);
        assert_eq!(
            classify(b"PREPARE a AS select 1; EXECUTE a"),
            Statement::Other
        );
        assert!(starts_prepare(b" \nprepare x"));
        assert!(!starts_prepare(b"prep"));
    }

    #[test]
    fn deallocate_forms() {
        assert_eq!(classify(b"DEALLOCATE ALL"), Statement::Deallocate(None));
        assert_eq!(
            classify(b"deallocate prepare S_1"),
            Statement::Deallocate(Some("s_1".into()))
        );
        assert_eq!(
            classify(b"DEALLOCATE \"Mixed\""),
            Statement::Deallocate(Some("Mixed".into()))
        );
    }

    #[test]
    fn set_forms() {
        assert_eq!(
            classify(b"SET statement_timeout = 1000"),
            Statement::Set {
                name: "statement_timeout",
                value: "1000".into()
            }
        );
        assert_eq!(
            classify(b"set search_path to 'a''b'"),
            Statement::Set {
                name: "search_path",
                value: "a'b".into()
            }
        );
        assert_eq!(
            classify(b"SET SESSION work_mem TO '64MB';"),
            Statement::Set {
                name: "work_mem",
                value: "64MB".into()
            }
        );
        assert_eq!(classify(b"SET LOCAL work_mem = 1"), Statement::Other);
        assert_eq!(classify(b"SET work_mem = DEFAULT"), Statement::Other);
        assert_eq!(classify(b"SET x = 1; SET y = 2"), Statement::Other);
        assert_eq!(classify(b"SET TIME ZONE 'UTC'"), Statement::Other);
    }

    /// A multi-byte character right after the name, or where `TO` or `SESSION` would be, once
    /// made the byte-offset slicing panic.
    #[test]
    fn set_with_non_ascii_text_is_classified_without_panicking() {
        let other = [
            "SET x tö",
            "SET a€b",
            "SET x é",
            "SET x€",
            "SET sessio€ x = 1",
            "SET sessionö x = 1",
            "SET x t€ 1",
            "SET €",
            "SET x tö = 1",
        ];
        for sql in other {
            assert_eq!(classify(sql.as_bytes()), Statement::Other, "{sql}");
        }
        assert_eq!(
            classify("SET application_name TO 'café €'".as_bytes()),
            Statement::Set {
                name: "application_name",
                value: "café €".into()
            }
        );
        assert_eq!(
            classify("set session x to ö".as_bytes()),
            Statement::Set {
                name: "x",
                value: "ö".into()
            }
        );
    }

    proptest::proptest! {
        /// Client SQL is network input: no text or byte string makes classification panic.
        #[test]
        fn classify_never_panics_on_text(sql in proptest::prelude::any::<String>()) {
            let _ = classify(sql.as_bytes());
            let _ = classify(format!("SET {sql}").as_bytes());
            let _ = classify(format!("SET x {sql}").as_bytes());
            let _ = classify(format!("SET SESSION {sql}").as_bytes());
        }

        /// SET-shaped text mixing ASCII with multi-byte characters where the parser looks.
        #[test]
        fn classify_never_panics_on_set_like_text(
            sql in "(SET|set) (SESSION |sEssIo|)[a-zé€_.]{0,3} {0,2}(to|TO|t|=|)[ tTö€é'=]{0,4}"
        ) {
            let _ = classify(sql.as_bytes());
        }

        #[test]
        fn classify_never_panics_on_bytes(sql in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = classify(&sql);
            let mut set = b"SET ".to_vec();
            set.extend_from_slice(&sql);
            let _ = classify(&set);
        }
    }
}
