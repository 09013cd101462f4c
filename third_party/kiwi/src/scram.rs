//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677) as PostgreSQL uses them.
//!
//! Both roles are sans-io state machines fed with the SASL message bodies:
//!
//! ```text
//!  client (ScramClient)                          server (ScramServer)
//!  client_first()            -- SASLInitialResponse -->  handle_client_first()
//!  handle_server_first()     <-- AuthenticationSASLContinue --
//!                            -- SASLResponse -->         handle_client_final()
//!  verify_server_final()     <-- AuthenticationSASLFinal --
//! ```
//!
//! The server's secret is a [`ScramVerifier`], parsed from PostgreSQL's stored form or derived
//! from a plaintext password. `-PLUS` binds the exchange to the TLS session with
//! `tls-server-end-point`: both sides take the hash of the server certificate
//! ([`tls_server_end_point`]). Proofs and signatures are compared in constant time.
//!
//! Passwords are used as given; PostgreSQL runs SASLprep on them first, which changes only
//! non-ASCII passwords that are not already in normalized form.

mod client;
mod server;

pub use client::{ChannelBinding, ScramClient};
pub use server::ScramServer;

use std::fmt;

use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::sha::{Sha256, sha256};
use openssl::x509::{X509, X509Ref};

/// SASL name of SCRAM-SHA-256 without channel binding.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// SASL name of SCRAM-SHA-256 with channel binding.
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// Channel binding type PostgreSQL supports.
pub const TLS_SERVER_END_POINT: &str = "tls-server-end-point";

/// PBKDF2 iterations PostgreSQL uses by default (`scram_iterations`).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Bytes of random salt in a verifier made here, as PostgreSQL makes them.
const SALT_LEN: usize = 16;

/// Random bytes in a nonce; base64 makes them 24 printable characters without commas.
const NONCE_LEN: usize = 18;

/// Length of a SHA-256 digest, and so of every SCRAM key, proof and signature.
pub const KEY_LEN: usize = 32;

/// A SHA-256-sized key.
pub type Key = [u8; KEY_LEN];

/// Why a SCRAM exchange failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ScramError {
    /// A SCRAM message does not follow the RFC 5802 grammar.
    Malformed {
        /// Which message: `"client-first"`, `"server-first"`, ...
        message: &'static str,
        /// What was wrong with it.
        reason: &'static str,
    },
    /// The client chose a mechanism the server did not offer.
    UnsupportedMechanism {
        /// The mechanism name sent.
        mechanism: String,
    },
    /// The client asked for an authorization identity (`a=`), which PostgreSQL does not support.
    AuthorizationIdentity,
    /// A message carried a mandatory extension (`m=`).
    MandatoryExtension,
    /// Channel binding was used, refused or negotiated inconsistently (a possible downgrade).
    ChannelBinding {
        /// What went wrong.
        reason: &'static str,
    },
    /// The nonce in a later message is not the one agreed.
    NonceMismatch,
    /// The client's proof is wrong: wrong password (or wrong verifier).
    InvalidProof,
    /// The server's signature is wrong: it does not know the password.
    InvalidServerSignature,
    /// The server ended the exchange with `e=<reason>`.
    Server {
        /// The server's error value, e.g. `invalid-proof`.
        reason: String,
    },
    /// A stored verifier could not be parsed.
    InvalidVerifier {
        /// What was wrong with it.
        reason: &'static str,
    },
    /// A method was called in the wrong state (e.g. the final message before the first).
    OutOfOrder {
        /// The method called.
        step: &'static str,
    },
    /// The certificate's signature algorithm has no usable digest.
    UnsupportedCertificate,
    /// OpenSSL failed (random bytes, HMAC, PBKDF2, certificate parsing).
    Crypto(ErrorStack),
}

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed { message, reason } => write!(f, "malformed SCRAM {message}: {reason}"),
            Self::UnsupportedMechanism { mechanism } => {
                write!(f, "unsupported SASL mechanism {mechanism:?}")
            }
            Self::AuthorizationIdentity => f.write_str("authorization identity is not supported"),
            Self::MandatoryExtension => f.write_str("mandatory SCRAM extensions are not supported"),
            Self::ChannelBinding { reason } => write!(f, "SCRAM channel binding: {reason}"),
            Self::NonceMismatch => f.write_str("SCRAM nonce does not match"),
            Self::InvalidProof => f.write_str("SCRAM client proof is invalid"),
            Self::InvalidServerSignature => f.write_str("SCRAM server signature is invalid"),
            Self::Server { reason } => write!(f, "server rejected SCRAM: {reason}"),
            Self::InvalidVerifier { reason } => write!(f, "invalid SCRAM secret: {reason}"),
            Self::OutOfOrder { step } => write!(f, "SCRAM {step} called out of order"),
            Self::UnsupportedCertificate => {
                f.write_str("certificate signature algorithm has no digest for channel binding")
            }
            Self::Crypto(e) => write!(f, "SCRAM crypto failure: {e}"),
        }
    }
}

impl std::error::Error for ScramError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Crypto(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ErrorStack> for ScramError {
    fn from(e: ErrorStack) -> Self {
        Self::Crypto(e)
    }
}

/// The two keys derived from a password; enough to log in without the password.
///
/// A server that authenticated a client by SCRAM can recover the client's `client_key`, and
/// with the verifier's `server_key` log into a PostgreSQL that stores the same verifier
/// ("SCRAM pass-through").
#[derive(Clone, PartialEq, Eq)]
pub struct ScramKeys {
    /// HMAC(SaltedPassword, "Client Key").
    pub client_key: Key,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: Key,
}

impl fmt::Debug for ScramKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScramKeys { .. }")
    }
}

impl ScramKeys {
    /// Derives the keys from a password, salt and iteration count.
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Result<Self, ScramError> {
        let mut salted = [0u8; KEY_LEN];
        let iterations = usize::try_from(iterations).unwrap_or(usize::MAX);
        openssl::pkcs5::pbkdf2_hmac(
            password,
            salt,
            iterations,
            MessageDigest::sha256(),
            &mut salted,
        )?;
        Ok(Self {
            client_key: hmac(&salted, b"Client Key")?,
            server_key: hmac(&salted, b"Server Key")?,
        })
    }
}

/// A server's SCRAM secret, as PostgreSQL stores it in `pg_authid.rolpassword`:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64 fields).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// PBKDF2 iteration count (at least 1).
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// H(ClientKey): checks a client's proof.
    pub stored_key: Key,
    /// HMAC(SaltedPassword, "Server Key"): signs the server-final message.
    pub server_key: Key,
}

impl fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScramVerifier {{ iterations: {}, .. }}", self.iterations)
    }
}

impl ScramVerifier {
    /// Parses PostgreSQL's stored form.
    pub fn parse(secret: &str) -> Result<Self, ScramError> {
        let bad = |reason| ScramError::InvalidVerifier { reason };
        let rest = secret
            .strip_prefix("SCRAM-SHA-256$")
            .ok_or(bad("not a SCRAM-SHA-256 secret"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or(bad("missing '$' before the keys"))?;
        let (iterations, salt) = params
            .split_once(':')
            .ok_or(bad("missing iteration count"))?;
        let (stored_key, server_key) = keys.split_once(':').ok_or(bad("missing server key"))?;
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| bad("iteration count is not a number"))?;
        if iterations == 0 {
            return Err(bad("iteration count is zero"));
        }
        let salt = base64_decode(salt).ok_or(bad("salt is not base64"))?;
        let key = |text| {
            let bytes = base64_decode(text).ok_or(bad("key is not base64"))?;
            Key::try_from(bytes.as_slice()).map_err(|_| bad("key is not 32 bytes"))
        };
        Ok(Self {
            iterations,
            salt,
            stored_key: key(stored_key)?,
            server_key: key(server_key)?,
        })
    }

    /// Derives a verifier from a password, as `CREATE ROLE ... PASSWORD` would.
    pub fn from_password(
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, ScramError> {
        let keys = ScramKeys::derive(password, salt, iterations.max(1))?;
        Ok(Self {
            iterations: iterations.max(1),
            salt: salt.to_vec(),
            stored_key: openssl::sha::sha256(&keys.client_key),
            server_key: keys.server_key,
        })
    }

    /// Derives a verifier from a password with a fresh random salt and the default iterations.
    pub fn generate(password: &[u8]) -> Result<Self, ScramError> {
        let mut salt = [0u8; SALT_LEN];
        openssl::rand::rand_bytes(&mut salt)?;
        Self::from_password(password, &salt, DEFAULT_ITERATIONS)
    }

    /// Whether `secret` looks like a stored SCRAM verifier rather than a plaintext password.
    pub fn is_verifier(secret: &str) -> bool {
        Self::parse(secret).is_ok()
    }
}

/// Shows the stored form, `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`.
impl fmt::Display for ScramVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            base64_encode(&self.salt),
            base64_encode(&self.stored_key),
            base64_encode(&self.server_key)
        )
    }
}

/// The `tls-server-end-point` channel binding data of a DER certificate (RFC 5929 §4.1):
/// its hash with the digest of its signature algorithm, SHA-256 when that is MD5 or SHA-1.
pub fn tls_server_end_point(cert_der: &[u8]) -> Result<Vec<u8>, ScramError> {
    let cert = X509::from_der(cert_der)?;
    tls_server_end_point_of(&cert)
}

/// [`tls_server_end_point`] for a certificate openssl already parsed.
pub fn tls_server_end_point_of(cert: &X509Ref) -> Result<Vec<u8>, ScramError> {
    let signature = cert.signature_algorithm().object().nid();
    let digest = signature
        .signature_algorithms()
        .ok_or(ScramError::UnsupportedCertificate)?
        .digest;
    let md = match digest {
        Nid::MD5 | Nid::SHA1 => MessageDigest::sha256(),
        nid => MessageDigest::from_nid(nid).ok_or(ScramError::UnsupportedCertificate)?,
    };
    Ok(cert.digest(md)?.to_vec())
}

fn hmac(key: &[u8], data: &[u8]) -> Result<Key, ScramError> {
    hmac_parts(key, &[data])
}

/// HMAC-SHA-256 (RFC 2104) over the concatenation of `parts`, on OpenSSL's plain SHA-256:
/// an HMAC key object and signer cost OpenSSL 3 provider look-ups and allocations that took
/// more time than the hashing, several times per login.
fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> Result<Key, ScramError> {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..KEY_LEN].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let mut inner = Sha256::new();
    inner.update(&pad(0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(&pad(0x5c));
    outer.update(&inner.finish());
    Ok(outer.finish())
}

/// The AuthMessage both sides sign: client-first-bare, server-first, client-final-without-proof.
fn auth_message_hmac(
    key: &[u8],
    client_first_bare: &str,
    server_first: &str,
    client_final: &str,
) -> Result<Key, ScramError> {
    let parts: [&[u8]; 5] = [
        client_first_bare.as_bytes(),
        b",",
        server_first.as_bytes(),
        b",",
        client_final.as_bytes(),
    ];
    hmac_parts(key, &parts)
}

fn xor(a: &Key, b: &Key) -> Key {
    let mut out = *a;
    out.iter_mut().zip(b).for_each(|(o, b)| *o ^= b);
    out
}

/// Constant-time equality; unequal lengths are unequal (openssl's `eq` demands equal lengths).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a, b)
}

fn nonce() -> Result<String, ScramError> {
    let mut raw = [0u8; NONCE_LEN];
    openssl::rand::rand_bytes(&mut raw)?;
    Ok(base64_encode(&raw))
}

fn base64_encode(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    openssl::base64::encode_block(bytes)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let strict = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
    if !strict || !text.len().is_multiple_of(4) {
        return None;
    }
    if text.is_empty() {
        return Some(Vec::new());
    }
    openssl::base64::decode_block(text).ok()
}

/// A SCRAM message as text; the grammar is ASCII apart from the user name.
fn text<'a>(data: &'a [u8], message: &'static str) -> Result<&'a str, ScramError> {
    std::str::from_utf8(data).map_err(|_| ScramError::Malformed {
        message,
        reason: "not UTF-8",
    })
}

/// Reads the value of attribute `name` from one comma-separated part of a SCRAM message.
fn attribute<'a>(
    part: Option<&'a str>,
    name: char,
    message: &'static str,
    reason: &'static str,
) -> Result<&'a str, ScramError> {
    part.and_then(|p| p.strip_prefix(name))
        .and_then(|p| p.strip_prefix('='))
        .ok_or(ScramError::Malformed { message, reason })
}

/// A nonce is printable ASCII without commas (RFC 5802 `printable`).
fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

#[cfg(test)]
mod tests;
