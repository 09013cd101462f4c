//! `cert` logins: the client must be on TLS with a certificate whose Common Name matches the
//! user (`auth_common_name default`) or one of the rule's `auth_common_name`s.
//!
//! Matching is upstream's: case-insensitive, and a CN of `*.domain.tld` matches one host
//! label in front of `.domain.tld` (`*`, `*foo`, `*.tld` never match).

use kiwi::sqlstate;
use openssl::nid::Nid;

use super::{AuthError, ClientAuth};
use crate::config::auth::CommonName;
use crate::conn::Conn;
use crate::reply::Reply;

/// Checks the client certificate's CN against the rule.
pub(super) fn cert(conn: &Conn, a: &ClientAuth<'_>) -> Result<(), AuthError> {
    let Some(tls) = conn.tls() else {
        return Err(AuthError::Rejected(Reply::error(
            sqlstate::INVALID_AUTHORIZATION_SPECIFICATION,
            "TLS connection required",
        )));
    };
    let cn = tls.ssl().peer_certificate().and_then(|c| {
        let entry = c.subject_name().entries_by_nid(Nid::COMMONNAME).next()?;
        entry.data().to_string().ok()
    });
    let accepted = cn.is_some_and(|cn| {
        a.rule.auth.common_names.iter().any(|name| match name {
            // Upstream compares with the rule's user name; for a `default` or group rule that
            // is a placeholder no certificate carries, so the client's user is used.
            CommonName::RuleUser => cn_matches(&cn, a.user),
            CommonName::Name(name) => cn_matches(&cn, name),
        })
    });
    if accepted {
        return Ok(());
    }
    Err(AuthError::Rejected(Reply::fatal(
        sqlstate::INVALID_PASSWORD,
        format!("certificate authentication failed for user \"{}\"", a.user),
    )))
}

/// Whether the certificate's CN `cn` names `name`.
fn cn_matches(cn: &str, name: &str) -> bool {
    if cn.contains('\0') {
        return false; // a NUL in a CN is an attack on C string handling
    }
    if cn.eq_ignore_ascii_case(name) {
        return true;
    }
    let Some(cert_domain) = cn.strip_prefix('*') else {
        return false;
    };
    // The wildcard stands for one label and at least two labels follow it: `*.a.b`.
    let Some(after_dot) = cert_domain.strip_prefix('.') else {
        return false;
    };
    let valid = after_dot
        .split_once('.')
        .is_some_and(|(first, rest)| !first.is_empty() && !rest.is_empty());
    if !valid {
        return false;
    }
    match name.find('.') {
        Some(0) | None => false,
        Some(i) => {
            let domain = &name[i..];
            domain.len() > 1 && domain.eq_ignore_ascii_case(cert_domain)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cn_matches;

    #[test]
    fn common_names_match_case_insensitively() {
        assert!(cn_matches("Alice", "alice"));
        assert!(!cn_matches("alice", "alice2"));
        assert!(!cn_matches("ali\0ce", "ali\0ce"));
    }

    #[test]
    fn wildcards_cover_one_host_label() {
        assert!(cn_matches("*.example.com", "db.example.com"));
        assert!(cn_matches("*.Example.COM", "DB.example.com"));
        assert!(!cn_matches("*.example.com", "a.db.example.com"));
        assert!(!cn_matches("*.example.com", "example.com"));
        assert!(!cn_matches("*.example.com", ".example.com"));
        assert!(!cn_matches("*.com", "example.com"));
        assert!(!cn_matches("*", "anything"));
        assert!(!cn_matches("*example.com", "db.example.com"));
        assert!(!cn_matches("*..com", "a..com"));
    }
}
