//! How a rule authenticates its clients: method, password sources, auth_query, PAM, LDAP,
//! external modules.

use super::convert::{Reader, Seen, put, put_some};
use super::model::{Item, Value};
use super::storage::section_name;

/// A rule's `authentication` method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Accept without a password.
    None,
    /// Refuse everyone.
    Block,
    /// Cleartext password.
    ClearText,
    /// MD5 password.
    Md5,
    /// SCRAM-SHA-256.
    ScramSha256,
    /// TLS client certificate.
    Cert,
    /// External auth agent.
    External,
}

impl AuthMethod {
    /// The upstream spelling.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::Block => "block",
            AuthMethod::ClearText => "clear_text",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Cert => "cert",
            AuthMethod::External => "external",
        }
    }

    /// Parses the upstream spelling.
    pub fn parse(s: &str) -> Option<AuthMethod> {
        Some(match s {
            "none" => AuthMethod::None,
            "block" => AuthMethod::Block,
            "clear_text" => AuthMethod::ClearText,
            "md5" => AuthMethod::Md5,
            "scram-sha-256" => AuthMethod::ScramSha256,
            "cert" => AuthMethod::Cert,
            "external" => AuthMethod::External,
            _ => return None,
        })
    }
}

/// Allowed client-certificate common names for `cert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommonName {
    /// `auth_common_name default`: the rule's user name.
    RuleUser,
    /// A literal name.
    Name(String),
}

/// A backend credential set chosen by an LDAP attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapStorageCredentials {
    /// The set's name, matched inside the attribute value.
    pub name: String,
    /// Backend user.
    pub username: String,
    /// Backend password.
    pub password: String,
}

/// Authentication settings of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSettings {
    /// The method; `None` only while the config has an error for it.
    pub method: Option<AuthMethod>,
    /// Plain, `md5...` or SCRAM verifier.
    pub password: Option<String>,
    /// Common names accepted by `cert`.
    pub common_names: Vec<CommonName>,
    /// Password lookup query (`$1` = user).
    pub query: Option<String>,
    /// Database of the auth_query route.
    pub query_db: Option<String>,
    /// User of the auth_query route.
    pub query_user: Option<String>,
    /// PAM service (PAM builds only).
    pub pam_service: Option<String>,
    /// Loaded auth module name.
    pub module: Option<String>,
    /// Delegate cleartext checks to the MDB IAM proxy.
    pub mdb_iamproxy: bool,
    /// The IAM proxy socket.
    pub mdb_iamproxy_socket_path: Option<String>,
    /// Reuse the client's cleartext password towards the backend.
    pub password_passthrough: bool,
    /// LDAP endpoint for cleartext auth.
    pub ldap_endpoint: Option<String>,
    /// LDAP attribute that picks backend credentials.
    pub ldap_storage_credentials_attr: Option<String>,
    /// Backend credential sets for LDAP users.
    pub ldap_storage_credentials: Vec<LdapStorageCredentials>,
}

/// Applies one authentication directive; false when `item` is none of them.
pub fn read(r: &mut Reader, a: &mut AuthSettings, item: &Item, rule: &str) -> bool {
    match item.name() {
        "authentication" => put_some(&mut a.method, method(r, item, rule)),
        "password" => put_some(&mut a.password, r.string(item)),
        "auth_common_name" => a.common_names.extend(common_name(r, item)),
        "auth_query" => put_some(&mut a.query, r.string(item)),
        "auth_query_db" => put_some(&mut a.query_db, r.string(item)),
        "auth_query_user" => put_some(&mut a.query_user, r.string(item)),
        "auth_pam_service" => put_some(&mut a.pam_service, r.string(item)),
        "auth_module" => put_some(&mut a.module, r.string(item)),
        "enable_mdb_iamproxy_auth" => put(&mut a.mdb_iamproxy, r.bool(item)),
        "mdb_iamproxy_socket_path" => put_some(&mut a.mdb_iamproxy_socket_path, r.string(item)),
        "password_passthrough" => put(&mut a.password_passthrough, r.bool(item)),
        "ldap_endpoint_name" => put_some(&mut a.ldap_endpoint, r.string(item)),
        "ldap_storage_credentials_attr" => {
            put_some(&mut a.ldap_storage_credentials_attr, r.string(item))
        }
        "ldap_storage_credentials" => {
            if let Some(c) = ldap_credentials(r, item) {
                if a.ldap_storage_credentials.iter().any(|o| o.name == c.name) {
                    r.error(
                        item.pos(),
                        format!("redefinition of LDAP storage creds \"{}\"", c.name),
                    );
                }
                a.ldap_storage_credentials.push(c);
            }
        }
        _ => return false,
    }
    true
}

fn method(r: &mut Reader, item: &Item, rule: &str) -> Option<AuthMethod> {
    let s = r.string(item)?;
    let m = AuthMethod::parse(&s);
    if m.is_none() {
        let what = format!(
            "{rule}: an authentication mode (none, block, clear_text, md5, scram-sha-256, cert, external)"
        );
        r.expected(
            &item.args[0].pos,
            what,
            format!("unknown authentication mode \"{s}\""),
        );
    }
    m
}

fn common_name(r: &mut Reader, item: &Item) -> Option<CommonName> {
    let arg = r.one(item, "a quoted name or default")?;
    match &arg.value {
        Value::Word(w) if w == "default" => Some(CommonName::RuleUser),
        _ => r.string_value(item, arg).map(CommonName::Name),
    }
}

fn ldap_credentials(r: &mut Reader, item: &Item) -> Option<LdapStorageCredentials> {
    let name = section_name(r, item, "ldap_storage_credentials")?;
    let block = r.block(item)?;
    let (mut username, mut password) = (String::new(), String::new());
    let mut seen = Seen::default();
    for it in &block.items {
        r.note(&mut seen, it);
        match it.name() {
            "ldap_storage_username" => put(&mut username, r.string(it)),
            "ldap_storage_password" => put(&mut password, r.string(it)),
            _ => r.unexpected(it, "ldap_storage_credentials"),
        }
    }
    if username.is_empty() || password.is_empty() {
        let msg = format!(
            "username/password in ldap_storage_credentials '{name}' is not defined or is empty"
        );
        r.error(item.pos(), msg);
        return None;
    }
    Some(LdapStorageCredentials {
        name,
        username,
        password,
    })
}
