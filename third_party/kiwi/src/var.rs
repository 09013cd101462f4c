//! Vars: the session parameters a pooler tracks for a client and for a server, and the `SET`
//! statements that make a server's match a client's ("deploy").
//!
//! A client's vars come from its StartupMessage (and rule overrides); a server's from the
//! ParameterStatus messages it sends. Only the names in [`TRACKED`] are kept, compared without
//! regard to case, with values up to [`MAX_VALUE_LEN`] bytes.

use std::fmt;

use crate::backend::ParameterStatus;
use crate::startup::Startup;

/// Longest value kept; a longer one is refused.
///
/// Values are boxed, so the limit is not about storage layout: it is high enough for any
/// realistic value (a `search_path` of many schemas; PostgreSQL accepts long values) and keeps
/// what a client can make the pooler hold bounded: at most `TRACKED.len()` values of this size
/// per client or server. Upstream Odyssey refuses values over 128 bytes (`KIWI_MAX_VAR_SIZE`).
pub const MAX_VALUE_LEN: usize = 64 * 1024;

/// Parameter names tracked for deploy, in their canonical spelling.
pub const TRACKED: &[&str] = &[
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "standard_conforming_strings",
    "application_name",
    "compression",
    "search_path",
    "statement_timeout",
    "work_mem",
    "lock_timeout",
    "log_statement",
    "log_min_messages",
    "log_min_error_statement",
    "log_min_duration_statement",
    "idle_in_transaction_session_timeout",
    "default_table_access_method",
    "default_toast_compression",
    "check_function_bodies",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "default_transaction_deferrable",
    "transaction_isolation",
    "transaction_read_only",
    "idle_session_timeout",
    "is_hot_standby",
    "role",
    "spqrguard.prevent_distributed_table_modify",
    "spqrguard.prevent_reference_table_modify",
    "_pq_.test_protocol_negotiation",
    "gp_session_role",
    "odyssey_catchup_timeout",
    "odyssey.target_session_attrs",
];

/// `Vars` stores a tracked name's index in a byte.
const _: () = assert!(TRACKED.len() <= 256);

/// Tracked names never sent as `SET`: `compression` and the `odyssey` options are the
/// pooler's own, `_pq_.` names are protocol options, and `is_hot_standby` is read-only.
const NOT_DEPLOYED: &[&str] = &[
    "compression",
    "is_hot_standby",
    "_pq_.test_protocol_negotiation",
    "odyssey_catchup_timeout",
    "odyssey.target_session_attrs",
];

/// Why a parameter was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarError {
    /// The name is not in [`TRACKED`]; such parameters are passed on but not deployed.
    Untracked,
    /// The value is longer than [`MAX_VALUE_LEN`].
    TooLong {
        /// Canonical parameter name.
        name: &'static str,
        /// Length of the refused value.
        len: usize,
    },
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Untracked => f.write_str("parameter is not tracked"),
            Self::TooLong { name, len } => {
                write!(
                    f,
                    "value of {name} is {len} bytes, over the limit of {MAX_VALUE_LEN}"
                )
            }
        }
    }
}

impl std::error::Error for VarError {}

/// A set of tracked parameters and their values.
///
/// Invariant: `values` holds only parameters that are set, each once, sorted by their index in
/// [`TRACKED`] (so iteration is in `TRACKED` order). A session usually sets a handful, so an
/// idle client carries a few dozen bytes here rather than a slot per tracked name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Vars {
    values: Vec<(u8, Box<[u8]>)>,
}

impl Vars {
    /// An empty set.
    pub fn new() -> Self {
        Self { values: Vec::new() }
    }

    fn find(&self, index: usize) -> Result<usize, usize> {
        self.values
            .binary_search_by_key(&index, |(i, _)| usize::from(*i))
    }

    /// The tracked parameters of a StartupMessage; others are ignored.
    pub fn from_startup(startup: &Startup<'_>) -> Self {
        let mut vars = Self::new();
        for (name, value) in &startup.params {
            // Untracked names and overlong values are left to the server, which gets them in
            // the startup packet or not at all; the pooler only deploys what it tracks.
            let _ = vars.set(name, value);
        }
        vars
    }

    /// Sets `name` (any case) to `value`.
    pub fn set(&mut self, name: &[u8], value: &[u8]) -> Result<(), VarError> {
        let index = index_of(name).ok_or(VarError::Untracked)?;
        if value.len() > MAX_VALUE_LEN {
            let name = TRACKED.get(index).copied().unwrap_or_default();
            return Err(VarError::TooLong {
                name,
                len: value.len(),
            });
        }
        let value: Box<[u8]> = value.into();
        match self.find(index) {
            Ok(pos) => self.values[pos].1 = value,
            // TRACKED has fewer than 256 names, so the index fits a u8.
            Err(pos) => self.values.insert(pos, (index as u8, value)),
        }
        Ok(())
    }

    /// Records a server's ParameterStatus.
    pub fn set_status(&mut self, status: &ParameterStatus<'_>) -> Result<(), VarError> {
        self.set(status.name, status.value)
    }

    /// Forgets `name`.
    pub fn unset(&mut self, name: &[u8]) {
        if let Some(pos) = index_of(name).and_then(|i| self.find(i).ok()) {
            self.values.remove(pos);
        }
    }

    /// The value of `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let pos = self.find(index_of(name.as_bytes())?).ok()?;
        Some(&self.values[pos].1)
    }

    /// The parameters that are set, with canonical names, in [`TRACKED`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &[u8])> + '_ {
        self.values
            .iter()
            .filter_map(|(i, v)| Some((*TRACKED.get(usize::from(*i))?, &v[..])))
    }

    /// The parameters set here whose value `server` lacks or holds differently, leaving out
    /// those never deployed (see [`Vars::deploy`]).
    pub fn diff<'s>(&'s self, server: &Vars) -> Vec<(&'static str, &'s [u8])> {
        self.iter()
            .filter(|(name, _)| !NOT_DEPLOYED.contains(name))
            .filter(|&(name, value)| server.get(name) != Some(value))
            .collect()
    }

    /// The SQL that makes `server` match this client: one `SET name=E'value';` per differing
    /// parameter, or an empty string when nothing differs.
    ///
    /// With `smart_search_path`, a `search_path` that is a plain list of identifiers is sent
    /// unquoted, so that `a, b` stays two schemas instead of becoming one named "a, b".
    pub fn deploy(&self, server: &Vars, smart_search_path: bool) -> Vec<u8> {
        let mut sql = Vec::new();
        for (name, value) in self.diff(server) {
            sql.extend_from_slice(b"SET ");
            sql.extend_from_slice(name.as_bytes());
            sql.push(b'=');
            if smart_search_path && name == "search_path" && is_identifier_list(value) {
                sql.extend_from_slice(value);
            } else {
                quote_literal(&mut sql, value);
            }
            sql.push(b';');
        }
        sql
    }
}

/// Whether `name` (any case) is one of the [`TRACKED`] parameters.
pub fn is_tracked(name: &str) -> bool {
    index_of(name.as_bytes()).is_some()
}

/// Whether the pooler sends this tracked name to servers as `SET` (see [`Vars::deploy`]).
pub fn is_deployed(name: &str) -> bool {
    !NOT_DEPLOYED.contains(&name)
}

fn index_of(name: &[u8]) -> Option<usize> {
    TRACKED
        .iter()
        .position(|t| t.as_bytes().eq_ignore_ascii_case(name))
}

/// Appends `value` as an escape string constant, `E'...'`, doubling quotes and backslashes.
pub fn quote_literal(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(b"E'");
    for &b in value {
        match b {
            b'\'' => out.extend_from_slice(b"''"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b => out.push(b),
        }
    }
    out.push(b'\'');
}

/// Whether `value` is a comma-separated list of plain (`[A-Za-z_][A-Za-z0-9_$]*`) or
/// double-quoted identifiers (no `"` inside), with optional spaces: safe to send unquoted.
fn is_identifier_list(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    !text.trim().is_empty()
        && text.split(',').all(|item| {
            let item = item.trim_matches(' ');
            match item.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
                Some(inner) => !inner.is_empty() && !inner.contains('"') && !inner.contains(';'),
                None => {
                    let mut chars = item.chars();
                    chars
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
                }
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::startup::ProtocolVersion;

    #[test]
    fn names_are_case_insensitive_and_untracked_ignored() {
        let mut v = Vars::new();
        v.set(b"datestyle", b"ISO, MDY").unwrap();
        assert_eq!(v.get("DateStyle"), Some(&b"ISO, MDY"[..]));
        assert_eq!(v.iter().next(), Some(("DateStyle", &b"ISO, MDY"[..])));
        assert_eq!(v.set(b"user", b"alice"), Err(VarError::Untracked));
        let long = vec![b'x'; MAX_VALUE_LEN + 1];
        assert_eq!(
            v.set(b"application_name", &long),
            Err(VarError::TooLong {
                name: "application_name",
                len: MAX_VALUE_LEN + 1
            })
        );
        v.unset(b"DATESTYLE");
        assert_eq!(v.get("DateStyle"), None);
    }

    /// Regression: values over 128 bytes were refused, so a tracked `SET search_path` of a
    /// few hundred bytes was not recorded (and not deployed on the next server).
    #[test]
    fn long_realistic_values_are_kept() {
        let schemas: Vec<String> = (0..30).map(|i| format!("tenant_schema_{i:04}")).collect();
        let search_path = schemas.join(", ");
        assert!(search_path.len() > 300);
        let mut v = Vars::new();
        v.set(b"search_path", search_path.as_bytes()).unwrap();
        assert_eq!(v.get("search_path"), Some(search_path.as_bytes()));
        let at_limit = vec![b'x'; MAX_VALUE_LEN];
        v.set(b"application_name", &at_limit).unwrap();
        assert_eq!(v.get("application_name"), Some(&at_limit[..]));
        let deployed = v.deploy(&Vars::new(), true);
        assert!(
            deployed
                .windows(search_path.len())
                .any(|w| w == search_path.as_bytes())
        );
    }

    #[test]
    fn deploy_sets_only_what_differs() {
        let startup = Startup {
            version: ProtocolVersion::V3_0,
            params: vec![
                (&b"user"[..], &b"alice"[..]),
                (b"application_name", b"it's \\ me"),
                (b"TimeZone", b"UTC"),
                (b"compression", b"on"),
            ],
        };
        let client = Vars::from_startup(&startup);
        let mut server = Vars::new();
        server
            .set_status(&ParameterStatus {
                name: b"TimeZone",
                value: b"UTC",
            })
            .unwrap();
        assert_eq!(
            client.diff(&server),
            vec![("application_name", &b"it's \\ me"[..])]
        );
        assert_eq!(
            client.deploy(&server, false),
            b"SET application_name=E'it''s \\\\ me';"
        );
        server.set(b"application_name", b"it's \\ me").unwrap();
        assert!(client.deploy(&server, false).is_empty());
    }

    #[test]
    fn smart_search_path_keeps_lists_unquoted() {
        let mut client = Vars::new();
        client.set(b"search_path", b"\"$user\", public").unwrap();
        let server = Vars::new();
        assert_eq!(
            client.deploy(&server, true),
            b"SET search_path=\"$user\", public;"
        );
        assert_eq!(
            client.deploy(&server, false),
            b"SET search_path=E'\"$user\", public';"
        );
        client.set(b"search_path", b"a; DROP TABLE t").unwrap();
        assert_eq!(
            client.deploy(&server, true),
            b"SET search_path=E'a; DROP TABLE t';"
        );
        client.set(b"search_path", b"").unwrap();
        assert_eq!(client.deploy(&server, true), b"SET search_path=E'';");
    }
}
