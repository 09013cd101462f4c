//! The credentials the pooler logs into a server with, from the rule and what the client proved
//! (password pass-through, SCRAM keys). The exchange itself is `backend::auth`.

use super::Authenticated;
use crate::config::Rule;

pub use crate::backend::auth::{BackendAuthError, BackendCredentials, authenticate_server};

/// LDAP storage credentials, when LDAP chose a set, override all; else password precedence
/// of spec §8.1: an `md5…` hash
/// auth_query returned → `storage_password` → rule `password` → the client's cleartext when
/// `password_passthrough`; SCRAM keys from a SCRAM login (against a configured or an
/// auth_query verifier) are passed along for SCRAM when no plain password applies.
pub fn backend_credentials(
    rule: &Rule,
    client_user: &str,
    auth: &Authenticated,
) -> BackendCredentials {
    if let Some((user, password)) = &auth.ldap_storage {
        return BackendCredentials {
            user: user.clone(),
            password: Some(password.as_bytes().to_vec()),
            scram_keys: None,
        };
    }
    let looked_up = auth
        .secret
        .as_deref()
        .filter(|s| kiwi::md5::is_md5_hash(s.as_bytes()))
        .map(|s| s.as_bytes().to_vec());
    let configured = rule
        .storage_password
        .as_deref()
        .or(rule.auth.password.as_deref())
        .map(|p| p.as_bytes().to_vec());
    let passthrough = auth
        .password
        .clone()
        .filter(|_| rule.auth.password_passthrough);
    BackendCredentials {
        user: rule
            .storage_user
            .clone()
            .unwrap_or_else(|| client_user.to_string()),
        password: looked_up.or(configured).or(passthrough),
        scram_keys: auth.scram_keys.clone(),
    }
}
