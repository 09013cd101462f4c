//! `auth_query`: the stored password of the client's user (an md5 hash or a SCRAM verifier),
//! asked of PostgreSQL through the internal route `auth_query_db`.`auth_query_user` (an
//! `internal` rule; spec §3, §8), cached on the client's route for 10–15 s.
//!
//! The query runs on the unnamed statement with the user bound as `$1`; `%u` (the user, its
//! single quotes doubled so it stays inside a quoted literal) and `%h` (the client's address)
//! are substituted first, as upstream does. It must return at most one row of two columns
//! (`usename, passwd`). No row, or a NULL password, is an unknown user: the caller runs the
//! exchange against a fake secret, so that the client cannot tell it from a wrong password.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use kiwi::scram::ScramVerifier;
use kiwi::sqlstate;

use super::backend::backend_credentials;
use super::{AuthError, ClientAuth, Pooler};
use crate::backend::rows::Row;
use crate::internal::{self, InternalQuery};
use crate::reply::Reply;
use crate::{od_debug, od_error};

/// How long a looked-up secret is used without asking again (plus up to [`JITTER`]).
const FRESH_FOR: Duration = Duration::from_secs(10);
/// The random part of the freshness, so that routes do not all ask at once.
const JITTER_MS: u64 = 5_000;
/// The iterations of the fake SCRAM verifier of unknown users (PostgreSQL's default).
const FAKE_ITERATIONS: u32 = 4096;

/// The password an `auth_query` rule checks the client against.
pub(super) enum Secret {
    /// What the query returned: an `md5…` hash, a SCRAM verifier or (rarely) plain text.
    Stored(String),
    /// No such user (or no password): a secret no password matches.
    Fake(String),
}

impl Secret {
    /// The secret to run the exchange with.
    pub(super) fn value(&self) -> &str {
        match self {
            Secret::Stored(s) | Secret::Fake(s) => s,
        }
    }

    /// What the login leaves for backend authentication: the stored secret.
    pub(super) fn keep(self) -> Option<String> {
        match self {
            Secret::Stored(s) => Some(s),
            Secret::Fake(_) => None,
        }
    }

    /// Whether this is the fake secret of an unknown user.
    pub(super) fn is_fake(&self) -> bool {
        matches!(self, Secret::Fake(_))
    }
}

/// The client's secret: the route's cached one while fresh, else asked of PostgreSQL (a stale
/// one is used when asking fails). `ERROR 28000 failed to make auth query` when there is none.
pub(super) fn lookup(a: &ClientAuth<'_>, scram: bool) -> Result<Secret, AuthError> {
    let Some(p) = a.pooler else {
        return Err(failed(a, None, "no pooler to ask"));
    };
    let Some(route) = p.route else {
        return Err(failed(a, Some(&p), "the client has no route"));
    };
    let cached = route.cached_secret();
    if let Some((value, true)) = cached {
        return Ok(Secret::Stored(value));
    }
    match fetch(a, &p) {
        Ok(Some(value)) => {
            route.cache_secret(value.clone(), Instant::now() + fresh_for());
            Ok(Secret::Stored(value))
        }
        Ok(None) => {
            od_debug!(
                p.inst.logger,
                "auth_query",
                Some(p.info),
                None,
                "no password"
            );
            Ok(Secret::Fake(fake_secret(a.user, scram)))
        }
        Err(why) => match cached {
            Some((stale, false)) => {
                od_error!(
                    p.inst.logger,
                    "auth_query",
                    Some(p.info),
                    None,
                    "{why}; using the password cached before"
                );
                Ok(Secret::Stored(stale))
            }
            _ => Err(failed(a, Some(&p), &why)),
        },
    }
}

/// Runs the query on a server of the internal route; `None` for an unknown user.
fn fetch(a: &ClientAuth<'_>, p: &Pooler<'_>) -> Result<Option<String>, String> {
    let auth = &a.rule.auth;
    let (Some(query), Some(db), Some(user)) = (&auth.query, &auth.query_db, &auth.query_user)
    else {
        return Err("auth_query, auth_query_db or auth_query_user is not set".to_string());
    };
    let sql = format_query(query, a.user, a.peer);
    let q = InternalQuery {
        database: db,
        user,
        sql: &sql,
        params: &[a.user.as_bytes()],
        deadline: a.deadline,
        credentials: &|rule, user| backend_credentials(rule, user, None),
    };
    let rows = internal::rows(p.inst, Some(p.info), &q).map_err(|e| format!("auth {e}"))?;
    password_of(&rows)
}

/// The password of the query's answer: no row or a NULL password is an unknown user.
fn password_of(rows: &[Row]) -> Result<Option<String>, String> {
    match rows {
        [] => Ok(None),
        [row] if row.len() == 2 => match &row[1] {
            None => Ok(None),
            Some(p) if p.is_empty() => Ok(None),
            Some(p) => String::from_utf8(p.clone())
                .map(Some)
                .map_err(|_| "auth query returned a password that is not UTF-8".to_string()),
        },
        [row] => Err(format!(
            "auth query returned {} columns, expected 2 (usename, passwd)",
            row.len()
        )),
        _ => Err(format!(
            "auth query returned {} rows, expected one",
            rows.len()
        )),
    }
}

/// The query text with `%u` (the user, quotes doubled) and `%h` (the client's address, empty
/// for unix sockets) substituted; any other `%x` is kept.
fn format_query(query: &str, user: &str, peer: Option<IpAddr>) -> String {
    let mut out = String::with_capacity(query.len() + user.len());
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => out.push_str(&user.replace('\'', "''")),
            Some('h') => out.push_str(&peer.map_or(String::new(), |ip| ip.to_string())),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => {}
        }
    }
    out
}

/// A secret nothing matches: a random md5 hash, or a SCRAM verifier with random keys (no
/// password derives them) whose salt is derived from the user name, so that asking twice
/// gives the same salt, as a real user's would. Made without PBKDF2, so an unknown user costs
/// no more time than a known one.
fn fake_secret(user: &str, scram: bool) -> String {
    let mut random = [0u8; 64];
    // A failure leaves zeros: still no hash or proof a client can produce.
    let _ = openssl::rand::rand_bytes(&mut random);
    if !scram {
        let hex: String = random[..16].iter().map(|b| format!("{b:02x}")).collect();
        return format!("md5{hex}");
    }
    let salt = &openssl::sha::sha256(&[FAKE_SALT_KEY.as_slice(), user.as_bytes()].concat())[..16];
    let mut stored_key = [0u8; 32];
    let mut server_key = [0u8; 32];
    stored_key.copy_from_slice(&random[..32]);
    server_key.copy_from_slice(&random[32..]);
    ScramVerifier {
        iterations: FAKE_ITERATIONS,
        salt: salt.to_vec(),
        stored_key,
        server_key,
    }
    .to_string()
}

/// Mixed into fake salts; fixed, as the salt only has to look like a stored one.
const FAKE_SALT_KEY: &[u8; 16] = b"odyssey-fake-slt";

/// How long a fresh secret lives: [`FRESH_FOR`] plus a random jitter.
fn fresh_for() -> Duration {
    let mut b = [0u8; 8];
    let _ = openssl::rand::rand_bytes(&mut b);
    FRESH_FOR + Duration::from_millis(u64::from_le_bytes(b) % JITTER_MS)
}

/// `ERROR 28000 failed to make auth query` (with SCRAM's `frontend auth: ` prefix), the reason
/// logged.
fn failed(a: &ClientAuth<'_>, p: Option<&Pooler<'_>>, why: &str) -> AuthError {
    if let Some(p) = p {
        od_error!(p.inst.logger, "auth_query", Some(p.info), None, "{why}");
    }
    let text = if a.rule.auth.method == Some(crate::config::auth::AuthMethod::ScramSha256) {
        "frontend auth: failed to make auth query"
    } else {
        "failed to make auth query"
    };
    AuthError::Rejected(Reply::error(
        sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
        text,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_query_substitutes_user_and_host() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            format_query("select '%u', '%h', %x, $1 %", "o'neil", Some(ip)),
            "select 'o''neil', '10.1.2.3', %x, $1 "
        );
        assert_eq!(format_query("%h", "u", None), "");
    }

    #[test]
    fn password_of_rows() {
        let row = |p: Option<&str>| vec![Some(b"u".to_vec()), p.map(|p| p.as_bytes().to_vec())];
        assert_eq!(password_of(&[]), Ok(None));
        assert_eq!(password_of(&[row(None)]), Ok(None));
        assert_eq!(password_of(&[row(Some("md5x"))]), Ok(Some("md5x".into())));
        assert!(password_of(&[row(Some("a")), row(Some("b"))]).is_err());
        assert!(password_of(&[vec![None]]).is_err());
    }

    #[test]
    fn fake_secrets_match_nothing_and_keep_their_salt() {
        let a = fake_secret("ghost", true);
        let b = fake_secret("ghost", true);
        let (va, vb) = (
            ScramVerifier::parse(&a).unwrap(),
            ScramVerifier::parse(&b).unwrap(),
        );
        assert_eq!(va.salt, vb.salt);
        assert_ne!(va.stored_key, vb.stored_key);
        assert!(kiwi::md5::is_md5_hash(
            fake_secret("ghost", false).as_bytes()
        ));
    }
}
