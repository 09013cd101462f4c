//! The configuration: reading odyssey.conf (and its includes and hba_file) into an immutable
//! `Config`, or into diagnostics that say where and what is wrong.
//!
//! Pipeline: `lexer` + `parser` (nom) turn text into the syntax `model`; `include`s are expanded
//! here; `top` and the section readers (`global`, `listen`, `storage`, `rule`, `auth`, `pool`,
//! `sections`, `selector`, `tls`, `address`) give it types through `convert`'s `Reader`; `validate` checks
//! the whole; `hba` reads the hba_file. Everything but the file reading in `load` is pure.

pub mod address;
pub mod affinity;
pub mod auth;
pub mod autogen;
pub mod convert;
pub mod diag;
pub mod dump;
pub mod global;
pub mod hba;
pub mod keywords;
pub mod lexer;
pub mod listen;
pub mod model;
pub mod parser;
pub mod pool;
pub mod rule;
pub mod sections;
pub mod selector;
pub mod storage;
pub mod support;
pub mod tls;
pub mod tls_protocols;
pub mod top;
pub mod validate;

use std::io;
use std::path::Path;
use std::sync::Arc;

pub use diag::{Diagnostic, Pos, Severity};
pub use global::{Global, Keepalive, Logging, Workers};
pub use hba::HbaRule;
pub use listen::Listen;
pub use pool::PoolMode;
pub use rule::Rule;
pub use sections::{ConnDrop, LdapEndpoint, QueryParsing, QueryParsingMode, SharedPool, SoftOom};
pub use storage::Storage;
pub use storage::StorageType;
pub use tls::TlsMode;

use convert::Reader;
use model::{Item, Value};

/// How deep includes may nest, as upstream.
pub const MAX_INCLUDE_DEPTH: usize = 16;

/// A loaded, validated configuration. Never changed after load; a reload builds a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Top-level options.
    pub global: Global,
    /// Listening endpoints, in config order (at least one).
    pub listen: Vec<Listen>,
    /// Backends, in config order.
    pub storages: Vec<Storage>,
    /// LDAP servers (read and checked; this build cannot use them).
    pub ldap_endpoints: Vec<LdapEndpoint>,
    /// Shared server pools.
    pub shared_pools: Vec<SharedPool>,
    /// Drop policy for online restart and shutdown.
    pub conn_drop: ConnDrop,
    /// Memory watchdog, if configured.
    pub soft_oom: Option<SoftOom>,
    /// Query interception settings.
    pub query_parsing: QueryParsing,
    /// Rules in config order; `crate::rules::RuleTable` orders them for matching.
    pub rules: Vec<Rule>,
    /// The hba_file's lines, when `hba_file` is set.
    pub hba: Option<Vec<HbaRule>>,
}

impl Config {
    /// The servers a rule's clients want unless their listen says: the rule's
    /// `target_session_attrs`, else its storage's, else any.
    pub fn rule_tsa(&self, rule: &Rule) -> storage::TargetSessionAttrs {
        rule.target_session_attrs
            .or_else(|| {
                let storage = self.storages.iter().find(|s| s.name == rule.storage);
                storage.and_then(|s| s.target_session_attrs)
            })
            .unwrap_or_default()
    }
}

/// A successful load: the config and the warnings met on the way.
pub type Loaded = (Config, Vec<Diagnostic>);

/// Reads, checks and returns the config at `path`, or every error found (warnings included
/// with errors, in file order).
pub fn load(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    load_with(path, &|p: &Path| std::fs::read_to_string(p))
}

/// As `load`, reading files through `read` (tests use an in-memory file system).
pub fn load_with(
    path: &Path,
    read: &dyn Fn(&Path) -> io::Result<String>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let name: Arc<str> = path.display().to_string().into();
    let text = read(path).map_err(|e| {
        vec![Diagnostic::error(
            &Pos::start_of(&name),
            format!("can't open config file '{name}': {e}"),
        )]
    })?;
    load_text(name, &text, read)
}

/// Parses one file without following includes or checking the whole: for include fragments,
/// which need not stand alone. Errors are syntax and per-directive ones only.
pub fn parse_fragment(name: &str, text: &str) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
    let name: Arc<str> = name.into();
    let mut r = Reader::default();
    let src = lexer::Source::new(name, text);
    let items = parser::parse(&src).map_err(|e| vec![e])?;
    top::read(&mut r, &items);
    let (errors, warnings) = r.diags.split();
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(errors)
    }
}

/// Parses a text as a config file named `name` and checks it, with includes read from disk.
pub fn load_str(name: &str, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    load_text(name.into(), text, &|p: &Path| std::fs::read_to_string(p))
}

fn load_text(
    name: Arc<str>,
    text: &str,
    read: &dyn Fn(&Path) -> io::Result<String>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let top = Pos::start_of(&name);
    let mut r = Reader::default();
    let items = expand(&mut r, name, text, read, 0)?;
    let mut parts = top::read(&mut r, &items);
    support::check(&mut r, &items);
    validate::check(&mut r, &mut parts, &top);
    load_tls(&mut r, &mut parts);
    let hba = parts
        .global
        .hba_file
        .as_ref()
        .map(|file| load_hba(&mut r, file, read, &top));
    finish(r, parts, hba.flatten())
}

/// The TLS contexts of every listen and storage, from their files.
fn load_tls(r: &mut Reader, parts: &mut top::Parts) {
    for l in &mut parts.listen {
        tls::load_context(r, &mut l.tls, tls::Side::Listen, &l.pos, "listen");
    }
    for s in &mut parts.storages {
        let section = format!("storage '{}'", s.name);
        tls::load_context(r, &mut s.tls, tls::Side::Storage, &s.pos, &section);
    }
}

fn finish(r: Reader, p: top::Parts, hba: Option<Vec<HbaRule>>) -> Result<Loaded, Vec<Diagnostic>> {
    if r.diags.has_errors() {
        let (mut errors, warnings) = r.diags.split();
        errors.extend(warnings);
        return Err(errors);
    }
    let config = Config {
        global: p.global,
        listen: p.listen,
        storages: p.storages,
        ldap_endpoints: p.ldap_endpoints,
        shared_pools: p.shared_pools,
        conn_drop: p.conn_drop.unwrap_or_default(),
        soft_oom: p.soft_oom,
        query_parsing: p.query_parsing.unwrap_or_default(),
        rules: p.rules,
        hba,
    };
    Ok((config, r.diags.split().1))
}

/// Parses `text` and splices the files its top-level `include`s name, recursively. Paths are
/// taken as written: relative ones are relative to the working directory, as upstream does.
fn expand(
    r: &mut Reader,
    name: Arc<str>,
    text: &str,
    read: &dyn Fn(&Path) -> io::Result<String>,
    depth: usize,
) -> Result<Vec<Item>, Vec<Diagnostic>> {
    let src = lexer::Source::new(name, text);
    let items = parser::parse(&src).map_err(|e| vec![e])?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        if item.name() != "include" {
            out.push(item);
            continue;
        }
        let Some(path) = include_path(r, &item) else {
            continue;
        };
        if depth + 1 >= MAX_INCLUDE_DEPTH {
            let msg = format!(
                "include depth limit ({MAX_INCLUDE_DEPTH}) exceeded - possible circular include"
            );
            return Err(vec![Diagnostic::error(item.pos(), msg)]);
        }
        let text = read(Path::new(&path)).map_err(|e| {
            vec![Diagnostic::error(
                item.pos(),
                format!("can't open include file '{path}': {e}"),
            )]
        })?;
        out.extend(expand(r, path.into(), &text, read, depth + 1)?);
    }
    Ok(out)
}

fn include_path(r: &mut Reader, item: &Item) -> Option<String> {
    if let (Some(Value::Str(..)), None) = (item.args.first().map(|a| &a.value), &item.block) {
        return r.string(item);
    }
    r.expected(item.pos(), "a quoted path after include", "something else");
    None
}

fn load_hba(
    r: &mut Reader,
    file: &str,
    read: &dyn Fn(&Path) -> io::Result<String>,
    top: &Pos,
) -> Option<Vec<HbaRule>> {
    let text = match read(Path::new(file)) {
        Ok(text) => text,
        Err(e) => {
            r.error(top, format!("can't open hba_file '{file}': {e}"));
            return None;
        }
    };
    match hba::parse(&file.into(), &text) {
        Ok(rules) => Some(rules),
        Err(d) => {
            r.diags.push(d);
            None
        }
    }
}

#[cfg(test)]
mod tests;
