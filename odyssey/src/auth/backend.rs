//! The credentials the pooler logs into a server with, from the rule and what the client proved
//! (password pass-through, SCRAM keys). The exchange itself is `backend::auth`.

use super::Authenticated;
use crate::config::Rule;

pub use crate::backend::auth::{
    BackendAuthError, BackendCredentials, authenticate_server, is_plain_password,
};

/// LDAP storage credentials, when LDAP chose a set, override all; else password precedence
/// of spec §8.1: an `md5…` hash
/// auth_query returned → `storage_password` → rule `password` → the client's cleartext when
/// `password_passthrough`; SCRAM keys from a SCRAM login (against a configured or an
/// auth_query verifier) are passed along for SCRAM when no plain password applies.
pub fn backend_credentials(
    rule: &Rule,
    client_user: &str,
    auth: Option<&Authenticated>,
) -> BackendCredentials {
    let nothing = Authenticated::default();
    let auth = auth.unwrap_or(&nothing);
    if let Some((user, password)) = &auth.ldap_storage {
        return BackendCredentials {
            user: user.clone(),
            password: Some(password.as_bytes().to_vec()),
            scram_keys: None,
        };
    }
    BackendCredentials {
        user: rule
            .storage_user
            .clone()
            .unwrap_or_else(|| client_user.to_string()),
        password: chosen_password(rule, auth).map(<[u8]>::to_vec),
        scram_keys: auth.scram_keys.clone(),
    }
}

/// The password servers are logged into with, by the precedence above (LDAP's aside).
fn chosen_password<'a>(rule: &'a Rule, auth: &'a Authenticated) -> Option<&'a [u8]> {
    let looked_up = auth
        .secret
        .as_deref()
        .filter(|s| kiwi::md5::is_md5_hash(s.as_bytes()));
    let configured = rule
        .storage_password
        .as_deref()
        .or(rule.auth.password.as_deref());
    let passthrough = auth
        .password
        .as_deref()
        .filter(|_| rule.auth.password_passthrough);
    looked_up.or(configured).map(str::as_bytes).or(passthrough)
}

/// What of a login the session's server logins will use under `rule` (a route's rule does not
/// change): `None` when that is nothing — the common case of configured storage credentials
/// — so that an idle session keeps no room for it. Drops the secrets nothing will read: an
/// auth_query secret that is not an `md5…` hash, the cleartext password without
/// `password_passthrough`, the SCRAM keys when a plain password will be used.
pub fn retained_for_servers(rule: &Rule, auth: Authenticated) -> Option<Box<Authenticated>> {
    if auth.ldap_storage.is_some() {
        return Some(Box::new(Authenticated {
            ldap_storage: auth.ldap_storage,
            ..Authenticated::default()
        }));
    }
    let mut kept = Authenticated {
        password: auth.password.filter(|_| rule.auth.password_passthrough),
        secret: auth.secret.filter(|s| kiwi::md5::is_md5_hash(s.as_bytes())),
        scram_keys: auth.scram_keys,
        ..Authenticated::default()
    };
    if chosen_password(rule, &kept).is_some_and(is_plain_password) {
        kept.scram_keys = None;
    }
    let any = kept.password.is_some() || kept.secret.is_some() || kept.scram_keys.is_some();
    any.then(|| Box::new(kept))
}
