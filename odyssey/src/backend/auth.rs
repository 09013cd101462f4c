//! Answering a PostgreSQL server's authentication requests after the StartupMessage:
//! cleartext (3), MD5 (5) and SASL SCRAM-SHA-256(-PLUS) (10/11/12, the server's signature
//! checked), up to AuthenticationOk (spec §8.1).

use std::fmt;

use kiwi::backend::{Authentication, ErrorFields};
use kiwi::frontend::{AuthResponse, PasswordMessage, SaslInitialResponse};
use kiwi::scram::{ScramClient, ScramKeys, tls_server_end_point_of};
use kiwi::{backend, md5};
use machinarium::Deadline;

use crate::conn::{Conn, ConnError, DEFAULT_MAX_MESSAGE};

/// What the pooler logs into a server with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendCredentials {
    /// The StartupMessage user: `storage_user`, else the client's user. MD5 hashes with it.
    pub user: String,
    /// `storage_password`, else the rule `password`, else the client's cleartext
    /// (`password_passthrough`). May be plain, an `md5…` hash or a SCRAM verifier.
    pub password: Option<Vec<u8>>,
    /// The client's SCRAM keys, used for SCRAM when no plain password is configured.
    pub scram_keys: Option<ScramKeys>,
}

/// Why logging into a server failed.
#[derive(Debug)]
pub enum BackendAuthError {
    /// The server sent an ErrorResponse: the raw message (for `client_fwd_error`) and its text
    /// for the log.
    Server(Vec<u8>, String),
    /// The server asked for a method the pooler cannot answer.
    Unsupported(String),
    /// The pooler could not answer (no usable password) or the server misbehaved (a wrong SCRAM
    /// signature, a message out of order).
    Failed(String),
    /// The server connection failed.
    Conn(ConnError),
}

impl fmt::Display for BackendAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendAuthError::Server(_, text) => write!(f, "server error: {text}"),
            BackendAuthError::Unsupported(text) | BackendAuthError::Failed(text) => {
                f.write_str(text)
            }
            BackendAuthError::Conn(e) => write!(f, "server connection: {e}"),
        }
    }
}

impl std::error::Error for BackendAuthError {}

impl From<ConnError> for BackendAuthError {
    fn from(e: ConnError) -> Self {
        BackendAuthError::Conn(e)
    }
}

/// Answers the server's requests until AuthenticationOk. The StartupMessage was sent already.
/// Returns the method the server asked for, as logs name it: `trust` (none), `password`,
/// `md5`, `SCRAM-SHA-256` or, bound to the server's TLS certificate, `SCRAM-SHA-256-PLUS`.
pub fn authenticate_server(
    conn: &mut Conn,
    cred: &BackendCredentials,
    deadline: Deadline,
) -> Result<&'static str, BackendAuthError> {
    let mut scram: Option<ScramClient> = None;
    let mut method = "trust";
    let cert_hash = server_cert_hash(conn);
    loop {
        let m = conn.read_message(deadline, DEFAULT_MAX_MESSAGE)?;
        match m.tag {
            backend::tag::AUTHENTICATION => {}
            backend::tag::ERROR_RESPONSE => return Err(server_error(m.bytes, m.body)),
            backend::tag::NOTICE_RESPONSE => continue,
            tag => {
                return Err(BackendAuthError::Failed(format!(
                    "unexpected message '{}' during authentication",
                    char::from(tag)
                )));
            }
        }
        let request = Authentication::decode(m.body).map_err(ConnError::from)?;
        let mut out = Vec::new();
        match request {
            Authentication::Ok => return finish(scram.as_ref()).map(|()| method),
            Authentication::CleartextPassword => {
                method = "password";
                let password = plain_password(cred, "cleartext")?;
                PasswordMessage { password }.encode(&mut out);
            }
            Authentication::Md5Password { salt } => {
                method = "md5";
                let answer = md5_answer(cred, salt)?;
                let password = answer.as_bytes();
                PasswordMessage { password }.encode(&mut out);
            }
            Authentication::Sasl { mechanisms } => {
                if scram.is_some() {
                    return Err(failed("AuthenticationSASL received twice"));
                }
                let mut client = scram_client(cred, &mechanisms, cert_hash.as_deref())?;
                let first = client.client_first();
                let mechanism = client.mechanism();
                method = mechanism;
                let data = Some(first.as_slice());
                SaslInitialResponse { mechanism, data }.encode(&mut out);
                scram = Some(client);
            }
            Authentication::SaslContinue { data } => {
                let client = scram.as_mut().ok_or(failed("SASLContinue before SASL"))?;
                let data = &client
                    .handle_server_first(data)
                    .map_err(|e| failed(&format!("SCRAM server-first: {e}")))?;
                AuthResponse { data }.encode(&mut out);
            }
            Authentication::SaslFinal { data } => {
                let client = scram.as_mut().ok_or(failed("SASLFinal before SASL"))?;
                client
                    .verify_server_final(data)
                    .map_err(|e| failed(&format!("SCRAM server-final: {e}")))?;
            }
            other => {
                return Err(BackendAuthError::Unsupported(format!(
                    "unsupported authentication method {}",
                    other.code()
                )));
            }
        }
        if !out.is_empty() {
            conn.write_all(&out, deadline)?;
        }
    }
}

/// AuthenticationOk is trusted only once a started SCRAM exchange proved the server.
fn finish(scram: Option<&ScramClient>) -> Result<(), BackendAuthError> {
    match scram {
        Some(client) if !client.is_done() => Err(failed(
            "AuthenticationOk before the server proved its SCRAM signature",
        )),
        Some(_) | None => Ok(()),
    }
}

/// The configured password, which cleartext and MD5 need and a SCRAM verifier cannot give.
fn plain_password<'c>(
    cred: &'c BackendCredentials,
    method: &str,
) -> Result<&'c [u8], BackendAuthError> {
    match cred.password.as_deref() {
        None => Err(failed(&format!(
            "server asked for {method} authentication, but no password is configured for user \"{}\"",
            cred.user
        ))),
        Some(p) if p.starts_with(b"SCRAM-SHA-256$") => Err(failed(&format!(
            "server asked for {method} authentication, but the password is a SCRAM verifier"
        ))),
        Some(p) => Ok(p),
    }
}

/// The MD5 answer. Hashed with the backend user (`storage_user`, else the client's user), the
/// name the server checks; upstream hashes with the rule's user name, which for `default` and
/// group rules is a placeholder, so such routes only worked with `storage_user` set.
fn md5_answer(cred: &BackendCredentials, salt: [u8; 4]) -> Result<String, BackendAuthError> {
    let password = plain_password(cred, "MD5")?;
    if md5::is_md5_hash(password) {
        let hash = String::from_utf8_lossy(password);
        return Ok(md5::md5_response_from_hash(&hash, salt));
    }
    Ok(md5::md5_response(cred.user.as_bytes(), password, salt))
}

/// Whether a configured password is one to log in with, rather than a SCRAM verifier (which
/// can answer no SCRAM challenge: the client's keys do that).
pub fn is_plain_password(p: &[u8]) -> bool {
    !p.starts_with(b"SCRAM-SHA-256$")
}

/// A SCRAM client: with the plain password when there is one, else with the client's keys.
fn scram_client(
    cred: &BackendCredentials,
    mechanisms: &[&str],
    cert_hash: Option<&[u8]>,
) -> Result<ScramClient, BackendAuthError> {
    let plain = cred.password.as_deref().filter(|p| is_plain_password(p));
    let client = match (plain, &cred.scram_keys) {
        (Some(password), _) => ScramClient::new(password),
        (None, Some(keys)) => ScramClient::with_keys(keys.clone()),
        (None, None) => {
            return Err(failed(&format!(
                "server asked for SCRAM, but there is no plain password or client SCRAM key for user \"{}\"",
                cred.user
            )));
        }
    };
    client
        .and_then(|c| c.select(mechanisms, cert_hash))
        .map_err(|e| {
            BackendAuthError::Unsupported(format!(
                "unsupported authentication method 10 ({}): {e}",
                mechanisms.join(", ")
            ))
        })
}

/// The `tls-server-end-point` hash of the server's certificate, when the connection is TLS.
fn server_cert_hash(conn: &Conn) -> Option<Vec<u8>> {
    let cert = conn.tls()?.ssl().peer_certificate()?;
    tls_server_end_point_of(&cert).ok()
}

/// The server's ErrorResponse, kept whole and summarized for the log.
fn server_error(bytes: &[u8], body: &[u8]) -> BackendAuthError {
    let text = match ErrorFields::decode(body) {
        Ok(fields) => format!(
            "{} {}: {}",
            fields.severity().map_or("ERROR", |s| s.as_str()),
            fields.code().map_or_else(String::new, |c| c.to_string()),
            String::from_utf8_lossy(fields.message().unwrap_or_default())
        ),
        Err(e) => format!("undecodable ErrorResponse: {e}"),
    };
    BackendAuthError::Server(bytes.to_vec(), text)
}

fn failed(text: &str) -> BackendAuthError {
    BackendAuthError::Failed(text.to_string())
}
