//! Password logins: `clear_text` (AuthenticationCleartextPassword) and `md5`
//! (AuthenticationMD5Password with a random salt), checked against the rule's `password` or
//! auth_query's answer; a clear_text password with `ldap_endpoint_name` goes to LDAP, with
//! `auth_pam_service` to PAM.
//!
//! The stored password may be plain or an `md5…` hash; for clear_text also a SCRAM verifier.
//! An md5 login cannot be checked against a SCRAM verifier.

use kiwi::backend::Authentication;
use kiwi::frontend::PasswordMessage;
use kiwi::md5;
use kiwi::scram::ScramVerifier;

use super::{
    AuthError, Authenticated, ClientAuth, bad_password_message, password_failed, read_response,
    rule_secret, send,
};
use crate::conn::{Conn, ConnError};

/// clear_text: asks for the password and compares it with the rule's.
pub(super) fn clear_text(conn: &mut Conn, a: &ClientAuth<'_>) -> Result<Authenticated, AuthError> {
    let keep = a.rule.auth.password_passthrough;
    let auth = &a.rule.auth;
    if auth.ldap_endpoint.is_some() || auth.pam_service.is_some() {
        send(conn, a, &Authentication::CleartextPassword)?;
        let received = read_password(conn, a)?;
        // Upstream's order: LDAP first.
        let storage = match (&auth.ldap_endpoint, &auth.pam_service) {
            (Some(endpoint), _) => super::ldap::verify(a, endpoint, &received)?,
            (None, Some(service)) => super::pam::verify(a, service, &received).map(|()| None)?,
            (None, None) => None,
        };
        return Ok(Authenticated {
            password: keep.then_some(received),
            ldap_storage: storage.map(|c| (c.username, c.password)),
            ..Authenticated::default()
        });
    }
    let secret = rule_secret(a, false)?;
    send(conn, a, &Authentication::CleartextPassword)?;
    let received = read_password(conn, a)?;
    if secret.is_fake() || !cleartext_matches(secret.value(), a.user, &received) {
        return Err(AuthError::Rejected(password_failed(a)));
    }
    Ok(Authenticated {
        password: keep.then_some(received),
        secret: secret.keep(),
        ..Authenticated::default()
    })
}

/// md5: sends a random salt and checks `md5(md5(password + user) + salt)`.
pub(super) fn md5(conn: &mut Conn, a: &ClientAuth<'_>) -> Result<Authenticated, AuthError> {
    let secret = rule_secret(a, false)?;
    let stored = secret.value();
    if stored.starts_with("SCRAM-SHA-256$") {
        return Err(AuthError::Misconfigured {
            reply: password_failed(a),
            reason: "the rule password is a SCRAM verifier, which md5 cannot check",
        });
    }
    let mut salt = [0u8; 4];
    openssl::rand::rand_bytes(&mut salt)
        .map_err(|e| ConnError::Io(std::io::Error::other(format!("random salt: {e}"))))?;
    send(conn, a, &Authentication::Md5Password { salt })?;
    let received = read_password(conn, a)?;
    let expected = if md5::is_md5_hash(stored.as_bytes()) {
        md5::md5_response_from_hash(stored, salt)
    } else {
        md5::md5_response(a.user.as_bytes(), stored.as_bytes(), salt)
    };
    if secret.is_fake() || !md5::md5_verify(&expected, &received) {
        return Err(AuthError::Rejected(password_failed(a)));
    }
    Ok(Authenticated {
        secret: secret.keep(),
        ..Authenticated::default()
    })
}

/// Reads a PasswordMessage: one NUL-terminated string (`read_response` bounds its length by
/// [`MAX_PASSWORD_MESSAGE`](super::MAX_PASSWORD_MESSAGE)).
pub(super) fn read_password(conn: &mut Conn, a: &ClientAuth<'_>) -> Result<Vec<u8>, AuthError> {
    let body = read_response(conn, a)?;
    match PasswordMessage::decode(&body) {
        Ok(m) => Ok(m.password.to_vec()),
        Err(_) => Err(bad_password_message()),
    }
}

/// Whether a cleartext password matches the stored one: plain (compared in constant time),
/// an `md5…` hash of password + user, or a SCRAM verifier derived from it.
fn cleartext_matches(stored: &str, user: &str, received: &[u8]) -> bool {
    if md5::is_md5_hash(stored.as_bytes()) {
        let hash = md5::md5_password_hash(user.as_bytes(), received);
        return md5::md5_verify(stored, hash.as_bytes());
    }
    if let Ok(v) = ScramVerifier::parse(stored) {
        return ScramVerifier::from_password(received, &v.salt, v.iterations)
            .is_ok_and(|derived| derived == v);
    }
    stored.len() == received.len() && openssl::memcmp::eq(stored.as_bytes(), received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleartext_matches_plain_md5_and_scram_secrets() {
        assert!(cleartext_matches("pw", "u", b"pw"));
        assert!(!cleartext_matches("pw", "u", b"pW"));
        assert!(!cleartext_matches("pw", "u", b"pw2"));
        let hash = md5::md5_password_hash(b"u", b"pw");
        assert!(cleartext_matches(&hash, "u", b"pw"));
        assert!(!cleartext_matches(&hash, "other", b"pw"));
        let verifier = ScramVerifier::from_password(b"pw", b"salt", 16)
            .unwrap()
            .to_string();
        assert!(cleartext_matches(&verifier, "u", b"pw"));
        assert!(!cleartext_matches(&verifier, "u", b"px"));
    }
}
