//! TLS settings shared by `listen` and `storage`: the mode, the key material files, and the
//! OpenSSL context made from them at load (so a bad file is a config error, in `--test` too,
//! and a reload reads the files again).

use std::fmt;
use std::path::Path;

use openssl::pkey::PKey;
use openssl::ssl::{
    AlpnError, SslContext, SslContextBuilder, SslMethod, SslMode, SslOptions, SslSessionCacheMode,
    SslVerifyMode, select_next_proto,
};
use openssl::x509::X509Name;

use super::convert::{Reader, put, put_some};
use super::diag::Pos;
use super::model::Item;
use super::tls_protocols::{EXPECTED, Protocols};

/// The ALPN protocol of PostgreSQL 17 (RFC 7301 wire form: length, then the name).
pub const ALPN: &[u8] = b"\x0apostgresql";

/// How TLS is used on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// Listen: TLS optional. Storage: plaintext first, TLS on retry.
    Allow,
    /// TLS preferred, plaintext accepted.
    Prefer,
    /// TLS mandatory.
    Require,
    /// TLS mandatory with a verified peer certificate.
    VerifyCa,
    /// As `VerifyCa` (upstream does no hostname check either).
    VerifyFull,
}

impl TlsMode {
    /// Parses the upstream spelling.
    pub fn parse(s: &str) -> Option<TlsMode> {
        Some(match s {
            "disable" => TlsMode::Disable,
            "allow" => TlsMode::Allow,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify_ca" => TlsMode::VerifyCa,
            "verify_full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

/// A TLS mode with its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// The mode; `disable` by default.
    pub mode: TlsMode,
    /// CA bundle for verifying the peer.
    pub ca_file: Option<String>,
    /// Our private key.
    pub key_file: Option<String>,
    /// Our certificate chain.
    pub cert_file: Option<String>,
    /// The `tls_protocols` list as written.
    pub protocols: Option<String>,
    /// The versions it allows; `None` for OpenSSL's defaults.
    pub versions: Option<Protocols>,
    /// The context made from the files at load; `None` when the mode is `disable`.
    pub context: Option<TlsContext>,
}

/// An OpenSSL context built at load: a server context for a `listen`, a client context for a
/// `storage`. Cheap to clone (reference counted).
#[derive(Clone)]
pub struct TlsContext(SslContext);

impl TlsContext {
    /// The OpenSSL context.
    pub fn ssl(&self) -> &SslContext {
        &self.0
    }
}

impl fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsContext")
    }
}

/// Two configs compare equal when they were made from the same text; the files' contents
/// are not compared, so contexts are equal when both exist.
impl PartialEq for TlsContext {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for TlsContext {}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            mode: TlsMode::Disable,
            ca_file: None,
            key_file: None,
            cert_file: None,
            protocols: None,
            versions: None,
            context: None,
        }
    }
}

/// Applies a `tls*` directive of `section`; false when `item` is none of them.
pub fn read(r: &mut Reader, tls: &mut Tls, item: &Item, section: &str) -> bool {
    match item.name() {
        "tls" => put(&mut tls.mode, mode(r, item, section)),
        "tls_ca_file" => put_some(&mut tls.ca_file, r.string(item)),
        "tls_key_file" => put_some(&mut tls.key_file, r.string(item)),
        "tls_cert_file" => put_some(&mut tls.cert_file, r.string(item)),
        "tls_protocols" => protocols(r, tls, item),
        _ => return false,
    }
    true
}

/// `tls_protocols`: a list of versions; an unknown name is an error at its position.
fn protocols(r: &mut Reader, tls: &mut Tls, item: &Item) {
    let Some(list) = r.string(item) else {
        return;
    };
    match Protocols::parse(&list) {
        Ok(versions) => {
            tls.versions = versions;
            tls.protocols = Some(list);
        }
        Err(e) => r.expected(&item.args[0].pos, EXPECTED, e.to_string()),
    }
}

/// Which end of the connection a context is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A `listen`: we are the TLS server, clients may show certificates.
    Listen,
    /// A `storage`: we are the TLS client of PostgreSQL.
    Storage,
}

/// Builds the context of `tls` (unless its mode is `disable`), reporting at `pos` what is
/// missing or which file cannot be used.
pub fn load_context(r: &mut Reader, tls: &mut Tls, side: Side, pos: &Pos, section: &str) {
    if tls.mode == TlsMode::Disable {
        return;
    }
    let verify = matches!(tls.mode, TlsMode::VerifyCa | TlsMode::VerifyFull);
    if side == Side::Listen && (tls.cert_file.is_none() || tls.key_file.is_none()) {
        // Accepted by upstream too: it cannot serve TLS either.
        let refused = if tls.mode == TlsMode::Allow || tls.mode == TlsMode::Prefer {
            ""
        } else {
            ", so every TCP client is refused"
        };
        r.warn(
            pos,
            format!(
                "{section}: tls without tls_cert_file and tls_key_file: SSLRequest is answered 'N'{refused}"
            ),
        );
        return;
    }
    if verify && tls.ca_file.is_none() {
        let consequence = match side {
            Side::Listen => "no client certificate can be verified, so every client is refused",
            Side::Storage => "server certificates are verified against OpenSSL's default CA paths",
        };
        r.warn(
            pos,
            format!("{section}: tls verify_ca/verify_full without tls_ca_file: {consequence}"),
        );
    }
    match build(tls, side) {
        Ok(ctx) => tls.context = Some(TlsContext(ctx)),
        Err(e) => r.error(pos, format!("{section}: {e}")),
    }
}

/// A file that could not be used, and why.
struct FileError {
    directive: &'static str,
    path: String,
    reason: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (directive, path, reason) = (self.directive, &self.path, &self.reason);
        write!(f, "cannot use {directive} \"{path}\": {reason}")
    }
}

fn build(tls: &Tls, side: Side) -> Result<SslContext, FileError> {
    let method = match side {
        Side::Listen => SslMethod::tls_server(),
        Side::Storage => SslMethod::tls_client(),
    };
    let fail = |directive, path: &str, e: &dyn fmt::Display| FileError {
        directive,
        path: path.to_string(),
        reason: e.to_string(),
    };
    let mut b = SslContextBuilder::new(method).map_err(|e| fail("tls", "", &e))?;
    b.set_options(SslOptions::NO_SSLV2 | SslOptions::NO_SSLV3);
    // Idle connections keep no read and write buffers inside OpenSSL.
    b.set_mode(SslMode::RELEASE_BUFFERS);
    // One recv takes whole records (or several) instead of a 5-byte header and then the body:
    // two system calls fewer per message each way. The stream counts bytes read ahead as
    // pending (SSL_has_pending), so nothing waits on a socket for bytes already here.
    b.set_read_ahead(true);
    if let Some(versions) = tls.versions {
        versions
            .apply(&mut b)
            .map_err(|e| fail("tls_protocols", tls.protocols.as_deref().unwrap_or(""), &e))?;
    }
    if let Some(cert) = &tls.cert_file {
        readable("tls_cert_file", cert)?;
        b.set_certificate_chain_file(cert)
            .map_err(|e| fail("tls_cert_file", cert, &e))?;
    }
    if let Some(key) = &tls.key_file {
        let pem = std::fs::read(key).map_err(|e| fail("tls_key_file", key, &e))?;
        let pkey = PKey::private_key_from_pem(&pem).map_err(|e| fail("tls_key_file", key, &e))?;
        let mismatch = "the key does not match the certificate of tls_cert_file";
        b.set_private_key(&pkey)
            .and_then(|()| b.check_private_key())
            .map_err(|_| fail("tls_key_file", key, &mismatch))?;
    }
    if let Some(ca) = &tls.ca_file {
        readable("tls_ca_file", ca)?;
        b.set_ca_file(ca).map_err(|e| fail("tls_ca_file", ca, &e))?;
        if side == Side::Listen {
            let names =
                X509Name::load_client_ca_file(ca).map_err(|e| fail("tls_ca_file", ca, &e))?;
            b.set_client_ca_list(names);
        }
    }
    if tls.ca_file.is_none() && side == Side::Storage {
        b.set_default_verify_paths()
            .map_err(|e| fail("tls_ca_file", "", &e))?;
    }
    b.set_verify(verify_mode(tls, side));
    alpn(&mut b, side).map_err(|e| fail("tls", "", &e))?;
    if side == Side::Listen {
        b.set_options(SslOptions::CIPHER_SERVER_PREFERENCE | SslOptions::NO_TICKET);
        // No resumption, as PostgreSQL: libpq never resumes, so caching sessions and sending
        // TLS 1.3 tickets after every handshake would be work for nothing.
        b.set_session_cache_mode(SslSessionCacheMode::OFF);
        b.set_num_tickets(0).map_err(|e| fail("tls", "", &e))?;
        // A context id all the same: OpenSSL refuses client certificates without one.
        b.set_session_id_context(b"odyssey")
            .map_err(|e| fail("tls", "", &e))?;
    }
    Ok(b.build())
}

/// Listen: `allow`/`prefer` ask no certificate; `require` checks one the client shows (with
/// a CA to check it against); `verify_ca`/`verify_full` demand one. Storage: as libpq's
/// sslmode, `require` verifies only with a CA given, `verify_*` always (`verify_full` adds
/// the host name, per connection).
fn verify_mode(tls: &Tls, side: Side) -> SslVerifyMode {
    let has_ca = tls.ca_file.is_some();
    match (tls.mode, side) {
        (TlsMode::VerifyCa | TlsMode::VerifyFull, Side::Listen) => {
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
        }
        (TlsMode::VerifyCa | TlsMode::VerifyFull, Side::Storage) => SslVerifyMode::PEER,
        (TlsMode::Require, _) if has_ca => SslVerifyMode::PEER,
        _ => SslVerifyMode::NONE,
    }
}

/// ALPN as PostgreSQL 17: a listen selects `postgresql` and refuses a client offering only
/// other protocols (a client offering none is served); a storage offers `postgresql`, as
/// libpq 17 does (older servers ignore it).
fn alpn(b: &mut SslContextBuilder, side: Side) -> Result<(), openssl::error::ErrorStack> {
    match side {
        Side::Listen => {
            b.set_alpn_select_callback(|_, offered| {
                select_next_proto(ALPN, offered).ok_or(AlpnError::ALERT_FATAL)
            });
            Ok(())
        }
        Side::Storage => b.set_alpn_protos(ALPN),
    }
}

/// A clear error for a missing or unreadable file (OpenSSL's own says little).
fn readable(directive: &'static str, path: &str) -> Result<(), FileError> {
    std::fs::File::open(Path::new(path))
        .map(drop)
        .map_err(|e| FileError {
            directive,
            path: path.to_string(),
            reason: e.to_string(),
        })
}

fn mode(r: &mut Reader, item: &Item, section: &str) -> Option<TlsMode> {
    let s = r.string(item)?;
    let mode = TlsMode::parse(&s);
    if mode.is_none() {
        r.expected(
            &item.args[0].pos,
            format!(
                "a tls mode for {section} (disable, allow, prefer, require, verify_ca, verify_full)"
            ),
            format!("unknown tls mode \"{s}\""),
        );
    }
    mode
}
