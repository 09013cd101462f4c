//! LDAP password checks for `clear_text` rules with `ldap_endpoint_name` (spec §2.5, §8): the
//! client's password is bound as its DN on the rule's `ldap_endpoint`, on the pooler's auth
//! thread pool so that a slow or dead LDAP server never stalls a worker.
//!
//! Simple bind: the DN is `ldapprefix` + user + `ldapsuffix`. Search+bind (`ldapbasedn` set):
//! bind as `ldapbinddn`/`ldapbindpasswd` (anonymous when unset), search the subtree for
//! `(<ldapsearchattribute, default uid>=<user>)`, ANDed with `ldapsearchfilter`, which must find
//! exactly one entry, then bind as that entry. Every failure, from a wrong password to an
//! unreachable server, answers the client like a wrong password; the log says why.

use std::time::{Duration, Instant};

use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry, ldap_escape};

use kiwi::sqlstate;

use super::{AuthError, ClientAuth, password_failed};
use crate::config::auth::LdapStorageCredentials;
use crate::config::sections::LdapEndpoint;
use crate::od_error;
use crate::reply::Reply;

/// How long one LDAP step (connect, bind, search) may take, as upstream; the client's login
/// deadline cuts it shorter.
const LDAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks `password` for the client's user on the endpoint named `name`. With
/// `ldap_storage_credentials_attr`, returns the `ldap_storage_credentials` set the user's
/// entry names for this storage and database (spec §8): the first value holding
/// `<storage host>_<database>` and a set holding `<storage host>_<database>_<set name>`.
pub(super) fn verify(
    a: &ClientAuth<'_>,
    name: &str,
    password: &[u8],
) -> Result<Option<LdapStorageCredentials>, AuthError> {
    let Some(p) = a.pooler else {
        return Err(AuthError::Rejected(password_failed(a)));
    };
    let refuse = |why: &str| {
        od_error!(
            p.inst.logger,
            "auth_ldap",
            Some(p.info),
            None,
            "ldap authentication on \"{name}\" failed: {why}"
        );
        AuthError::Rejected(password_failed(a))
    };
    let snapshot = p.inst.config();
    let Some(endpoint) = snapshot
        .config
        .ldap_endpoints
        .iter()
        .find(|e| e.name == name)
    else {
        return Err(refuse("no such ldap_endpoint"));
    };
    if a.user.contains(['*', '(', ')', '\\', '/', '\0']) {
        return Err(refuse(
            "invalid character in user name for LDAP authentication",
        ));
    }
    // An empty password would be an unauthenticated bind, which servers accept.
    let password = match std::str::from_utf8(password) {
        Ok("") => return Err(refuse("empty password")),
        Ok(p) => p.to_string(),
        Err(_) => return Err(refuse("the password is not UTF-8")),
    };
    let endpoint = endpoint.clone();
    let user = a.user.to_string();
    let attr = a.rule.auth.ldap_storage_credentials_attr.clone();
    let timeout = a.deadline.instant().map_or(LDAP_TIMEOUT, |at| {
        LDAP_TIMEOUT.min(at.saturating_duration_since(Instant::now()))
    });
    let values = match p.inst.auth_pool.run(a.deadline, move || {
        bind_as_user(&endpoint, &user, &password, attr.as_deref(), timeout)
    }) {
        Ok(Ok(values)) => values,
        Ok(Err(why)) => return Err(refuse(&why)),
        Err(e) => return Err(refuse(&format!("no answer in time: {e}"))),
    };
    if a.rule.auth.ldap_storage_credentials_attr.is_none() {
        return Ok(None);
    }
    let host = snapshot
        .config
        .storages
        .iter()
        .find(|s| s.name == a.rule.storage)
        .and_then(|s| s.host.as_deref())
        .unwrap_or("");
    let host_db = format!("{host}_{}", a.database);
    let chosen = values
        .iter()
        .filter(|v| v.contains(&host_db))
        .find_map(|v| {
            let sets = &a.rule.auth.ldap_storage_credentials;
            sets.iter()
                .find(|c| v.contains(&format!("{host_db}_{}", c.name)))
        });
    match chosen {
        Some(c) => Ok(Some(c.clone())),
        None => {
            refuse(&format!(
                "no value of the entry's storage credentials attribute names {host_db}_<set>"
            ));
            Err(AuthError::Rejected(Reply::fatal(
                sqlstate::SYSTEM_ERROR,
                format!(
                    "ldap authentication failed for user \"{}\": insufficient access",
                    a.user
                ),
            )))
        }
    }
}

/// Binds as the user's DN with `password` (on a pool thread); returns the values of `attr` in
/// the user's entry (search+bind only).
fn bind_as_user(
    e: &LdapEndpoint,
    user: &str,
    password: &str,
    attr: Option<&str>,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let mut conn = connect(e, timeout)?;
    let outcome = user_dn(&mut conn, e, user, attr, timeout).and_then(|(dn, values)| {
        conn.with_timeout(timeout)
            .simple_bind(&dn, password)
            .and_then(|r| r.success())
            .map(|_| values)
            .map_err(|err| format!("bind as \"{dn}\": {err}"))
    });
    let _ = conn.unbind();
    outcome
}

/// A connection to the first of the endpoint's servers that answers (TLS verified against
/// `ldapcafile` or the system's trust store; StartTLS first under `ldaptls`). A server that
/// cannot be reached, or whose TLS fails, is skipped; a bind that fails is not retried on the
/// next server, which holds the same directory.
fn connect(e: &LdapEndpoint, timeout: Duration) -> Result<LdapConn, String> {
    let connector = tls_connector(e)?;
    let mut failures = Vec::new();
    for url in urls(e) {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(timeout)
            .set_starttls(e.starttls)
            .set_connector(connector.clone());
        match LdapConn::with_settings(settings, &url) {
            Ok(conn) => return Ok(conn),
            Err(err) => failures.push(format!("cannot connect to {url}: {err}")),
        }
    }
    Err(failures.join("; "))
}

/// The TLS settings for `ldaps` and StartTLS: the endpoint's CA added to the trusted roots.
fn tls_connector(e: &LdapEndpoint) -> Result<native_tls::TlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(file) = &e.ca_file {
        let pem = std::fs::read(file).map_err(|err| format!("ldapcafile {file}: {err}"))?;
        let ca = native_tls::Certificate::from_pem(&pem)
            .map_err(|err| format!("ldapcafile {file}: {err}"))?;
        builder.add_root_certificate(ca);
    }
    builder
        .build()
        .map_err(|err| format!("TLS settings: {err}"))
}

/// The DN to bind as: made from prefix and suffix, or found by a search (with the values of
/// `attr` in the entry found).
fn user_dn(
    conn: &mut LdapConn,
    e: &LdapEndpoint,
    user: &str,
    attr: Option<&str>,
    timeout: Duration,
) -> Result<(String, Vec<String>), String> {
    let Some(base) = &e.basedn else {
        let prefix = e.prefix.as_deref().unwrap_or("");
        let suffix = e.suffix.as_deref().unwrap_or("");
        return Ok((format!("{prefix}{user}{suffix}"), Vec::new()));
    };
    let binddn = e.binddn.as_deref().unwrap_or("");
    conn.with_timeout(timeout)
        .simple_bind(binddn, e.bindpasswd.as_deref().unwrap_or(""))
        .and_then(|r| r.success())
        .map_err(|err| format!("initial bind as \"{binddn}\": {err}"))?;
    let filter = search_filter(e, user);
    let (entries, _) = conn
        .with_timeout(timeout)
        .search(base, Scope::Subtree, &filter, vec![attr.unwrap_or("1.1")])
        .and_then(|r| r.success())
        .map_err(|err| format!("search {filter} under \"{base}\": {err}"))?;
    match <[_; 1]>::try_from(entries) {
        Ok([entry]) => {
            let mut entry = SearchEntry::construct(entry);
            let values = attr
                .and_then(|a| {
                    let key = entry
                        .attrs
                        .keys()
                        .find(|k| k.eq_ignore_ascii_case(a))?
                        .clone();
                    entry.attrs.remove(&key)
                })
                .unwrap_or_default();
            Ok((entry.dn, values))
        }
        Err(entries) => Err(format!(
            "search {filter} under \"{base}\" found {} entries, expected one",
            entries.len()
        )),
    }
}

/// `(<attribute>=<user>)`, ANDed with `ldapsearchfilter` when set; the user is escaped.
fn search_filter(e: &LdapEndpoint, user: &str) -> String {
    let attribute = match e.search_attribute.as_str() {
        "" => "uid",
        a => a,
    };
    let own = format!("({attribute}={})", ldap_escape(user));
    match &e.search_filter {
        Some(extra) => format!("(&{own}{extra})"),
        None => own,
    }
}

/// `<scheme>://<server>:<port>` for each server of `ldapserver` (separated by spaces or
/// commas, tried in order, as PostgreSQL's `ldapserver`); port 0 is the scheme's default.
fn urls(e: &LdapEndpoint) -> Vec<String> {
    let scheme = match e.scheme.as_str() {
        "" => "ldap",
        s => s,
    };
    let port = match (e.port, scheme) {
        (0, "ldaps") => 636,
        (0, _) => 389,
        (p, _) => p,
    };
    e.server
        .as_deref()
        .unwrap_or("localhost")
        .split([' ', ',', '\t'])
        .filter(|s| !s.is_empty())
        .map(|server| format!("{scheme}://{server}:{port}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_urls() {
        let mut e = LdapEndpoint {
            server: Some("127.0.0.1".into()),
            ..LdapEndpoint::default()
        };
        assert_eq!(urls(&e), ["ldap://127.0.0.1:389"]);
        assert_eq!(search_filter(&e, "a*b"), "(uid=a\\2ab)");
        e.scheme = "ldaps".into();
        e.search_attribute = "cn".into();
        e.search_filter = Some("(objectClass=person)".into());
        assert_eq!(urls(&e), ["ldaps://127.0.0.1:636"]);
        e.server = Some("ldap1.example, ldap2.example  10.0.0.3".into());
        e.port = 1636;
        assert_eq!(
            urls(&e),
            [
                "ldaps://ldap1.example:1636",
                "ldaps://ldap2.example:1636",
                "ldaps://10.0.0.3:1636"
            ]
        );
        assert_eq!(search_filter(&e, "u"), "(&(cn=u)(objectClass=person))");
    }
}
