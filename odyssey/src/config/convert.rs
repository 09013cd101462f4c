//! From the syntax model to typed values: the `Reader` that every section reader uses to take
//! one value of the right kind (bool, integer in range, string, duration, size), to notice
//! repeated and unknown directives, and to collect diagnostics on the way.

use std::collections::HashSet;
use std::time::Duration;

use super::diag::{Diagnostic, Diagnostics, Pos};
use super::keywords::{self, Status};
use super::lexer::Quote;
use super::model::{Arg, Block, Item, Value};

/// Directives that may appear more than once in one block, each adding something.
const REPEATABLE: &[&str] = &[
    "include",
    "listen",
    "storage",
    "database",
    "user",
    "group",
    "ldap_endpoint",
    "shared_pool",
    "auth_common_name",
    "ldap_storage_credentials",
];

/// Reads values out of items, collecting diagnostics.
#[derive(Default)]
pub struct Reader {
    /// Everything said so far.
    pub diags: Diagnostics,
}

/// Directive names already seen in one block, to warn about repeats.
#[derive(Default)]
pub struct Seen {
    names: HashSet<String>,
}

impl Reader {
    /// Records an error.
    pub fn error(&mut self, pos: &Pos, message: impl Into<String>) {
        self.diags.error(pos, message);
    }

    /// Records a warning.
    pub fn warn(&mut self, pos: &Pos, message: impl Into<String>) {
        self.diags.warn(pos, message);
    }

    /// Records "expected X, found Y".
    pub fn expected(&mut self, pos: &Pos, expected: impl Into<String>, found: impl Into<String>) {
        self.diags.push(Diagnostic::expected(pos, expected, found));
    }

    /// Notes `item` in `seen`; warns when a non-repeatable directive comes again (the last one
    /// wins, as in released versions; upstream HEAD refuses the file).
    pub fn note(&mut self, seen: &mut Seen, item: &Item) {
        let name = item.name();
        if name.is_empty() || REPEATABLE.contains(&name) {
            return;
        }
        if !seen.names.insert(name.to_string()) {
            self.warn(
                item.pos(),
                format!("duplicate option '{name}', the last one wins"),
            );
        }
    }

    /// Says what is wrong with a directive that its section does not take: a removed or
    /// deprecated keyword (warning, ignored), one that belongs elsewhere, or an unknown one.
    pub fn unexpected(&mut self, item: &Item, section: &str) {
        let name = item.name();
        if name.is_empty() {
            self.expected(
                item.pos(),
                format!("a directive in {section}"),
                item.head.value.describe(),
            );
            return;
        }
        match keywords::lookup(name) {
            Some(Status::Deprecated) => self.warn(
                item.pos(),
                format!("option '{name}' is deprecated and ignored"),
            ),
            Some(Status::Removed) => self.warn(
                item.pos(),
                format!("option '{name}' was removed after odyssey 1.5.2 and is ignored"),
            ),
            Some(Status::Current) => {
                self.error(item.pos(), format!("'{name}' is not allowed in {section}"))
            }
            None => {
                let d = Diagnostic::error(item.pos(), format!("unknown directive '{name}'"));
                let d = match keywords::suggest(name) {
                    Some(k) => d.with_hint(format!("did you mean '{k}'?")),
                    None => d,
                };
                self.diags.push(d);
            }
        }
    }

    /// The block of a section directive, which takes no values (`listen { ... }`).
    pub fn section<'i>(&mut self, item: &'i Item) -> Option<&'i Block> {
        if let Some(arg) = item.args.first() {
            let what = format!("'{{' after {}", item.name());
            self.expected(&arg.pos, what, arg.value.describe());
            return None;
        }
        self.block(item)
    }

    /// The block of `item`, or an error when it has none.
    pub fn block<'i>(&mut self, item: &'i Item) -> Option<&'i Block> {
        if item.block.is_none() {
            let what = format!("a '{{ ... }}' block for {}", item.name());
            self.expected(item.pos(), what, "none");
        }
        item.block.as_ref()
    }

    /// The single value of an option; complains about none, several, or a block.
    pub fn one<'i>(&mut self, item: &'i Item, kind: &str) -> Option<&'i Arg> {
        let name = item.name();
        if let Some(block) = &item.block {
            self.expected(&block.open, format!("{kind} for {name}"), "'{'");
            return None;
        }
        match item.args.as_slice() {
            [arg] => Some(arg),
            [] => {
                self.expected(item.pos(), format!("{kind} after {name}"), "nothing");
                None
            }
            [_, extra, ..] => {
                self.expected(
                    &extra.pos,
                    format!("one value for {name}"),
                    extra.value.describe(),
                );
                None
            }
        }
    }

    /// A `yes`/`no` option. Quoted and `on/off/true/false` forms are accepted with a warning.
    pub fn bool(&mut self, item: &Item) -> Option<bool> {
        let arg = self.one(item, "yes or no")?;
        let (word, quoted) = match &arg.value {
            Value::Word(w) => (w.as_str(), false),
            Value::Str(s, _) => (s.as_str(), true),
            other => return self.mismatch(arg, item, "yes or no", other),
        };
        let value = match word {
            "yes" => true,
            "no" => false,
            "on" | "true" => true,
            "off" | "false" => false,
            _ => return self.mismatch(arg, item, "yes or no", &arg.value),
        };
        if quoted || !matches!(word, "yes" | "no") {
            self.warn(
                &arg.pos,
                format!(
                    "{} for {}: write yes or no",
                    arg.value.describe(),
                    item.name()
                ),
            );
        }
        Some(value)
    }

    /// A plain integer option.
    pub fn int(&mut self, item: &Item) -> Option<i64> {
        let arg = self.one(item, "a number")?;
        match &arg.value {
            Value::Int(n) => Some(*n),
            other => self.mismatch(arg, item, "a number", other),
        }
    }

    /// An integer option within `lo..=hi`.
    pub fn int_in(&mut self, item: &Item, lo: i64, hi: i64) -> Option<i64> {
        let n = self.int(item)?;
        if (lo..=hi).contains(&n) {
            return Some(n);
        }
        let what = format!(
            "value for option '{}' must be between {lo} and {hi}",
            item.name()
        );
        self.error(&item.args[0].pos, format!("{what}, found {n}"));
        None
    }

    /// A non-negative integer that fits in `u32`.
    pub fn count(&mut self, item: &Item) -> Option<u32> {
        self.int_in(item, 0, i64::from(u32::MAX)).map(|n| n as u32)
    }

    /// A non-negative number of milliseconds.
    pub fn millis(&mut self, item: &Item) -> Option<Duration> {
        self.int_in(item, 0, i64::MAX)
            .map(|n| Duration::from_millis(n as u64))
    }

    /// A non-negative number of seconds.
    pub fn secs(&mut self, item: &Item) -> Option<Duration> {
        self.int_in(item, 0, i64::MAX)
            .map(|n| Duration::from_secs(n as u64))
    }

    /// A byte count written with or without a size suffix.
    pub fn size(&mut self, item: &Item) -> Option<u64> {
        let arg = self.one(item, "a size")?;
        match &arg.value {
            Value::Size(n) | Value::Int(n) if *n >= 0 => Some(*n as u64),
            other => self.mismatch(arg, item, "a non-negative size", other),
        }
    }

    /// A quoted string option. Single quotes are accepted with a warning.
    pub fn string(&mut self, item: &Item) -> Option<String> {
        let arg = self.one(item, "a quoted string")?;
        self.string_value(item, arg)
    }

    /// A string option where released versions took a bare word (`role admin`, `SIGTERM`).
    pub fn string_or_word(&mut self, item: &Item) -> Option<String> {
        let arg = self.one(item, "a quoted string")?;
        if let Value::Word(w) = &arg.value {
            self.warn(
                &arg.pos,
                format!("bare word '{w}' for {}: quote it", item.name()),
            );
            return Some(w.clone());
        }
        self.string_value(item, arg)
    }

    /// `arg` as a string, complaining in terms of `item`.
    pub fn string_value(&mut self, item: &Item, arg: &Arg) -> Option<String> {
        match &arg.value {
            Value::Str(s, quote) => {
                if *quote == Quote::Single {
                    self.warn(
                        &arg.pos,
                        "single-quoted string: upstream HEAD takes only \"...\"",
                    );
                }
                Some(s.clone())
            }
            other => self.mismatch(arg, item, "a quoted string", other),
        }
    }

    fn mismatch<T>(&mut self, arg: &Arg, item: &Item, kind: &str, found: &Value) -> Option<T> {
        self.expected(
            &arg.pos,
            format!("{kind} for {}", item.name()),
            found.describe(),
        );
        None
    }
}

/// Stores `value` into `slot` when reading succeeded.
pub fn put<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Stores `value` into an optional `slot` when reading succeeded.
pub fn put_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// Reads a `{ "key" "value" ... }` block into ordered pairs.
pub fn key_values(r: &mut Reader, item: &Item) -> Vec<(String, String)> {
    let Some(block) = r.section(item) else {
        return Vec::new();
    };
    let mut strings = Vec::new();
    for inner in &block.items {
        for arg in std::iter::once(&inner.head).chain(&inner.args) {
            if let Some(s) = r.string_value(item, arg) {
                strings.push((arg.pos.clone(), s));
            }
        }
        if let Some(b) = &inner.block {
            r.expected(
                &b.open,
                format!("\"key\" \"value\" pairs in {}", item.name()),
                "'{'",
            );
        }
    }
    if strings.len() % 2 == 1 {
        let (pos, key) = &strings[strings.len() - 1];
        r.expected(pos, format!("a value after \"{key}\""), "'}'");
    }
    strings
        .chunks_exact(2)
        .map(|kv| (kv[0].1.clone(), kv[1].1.clone()))
        .collect()
}
