//! TLS settings shared by `listen` and `storage`: the mode and the key material files.

use super::convert::{Reader, put, put_some};
use super::model::Item;

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
    /// Parsed and not applied, as upstream.
    pub protocols: Option<String>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            mode: TlsMode::Disable,
            ca_file: None,
            key_file: None,
            cert_file: None,
            protocols: None,
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
        "tls_protocols" => put_some(&mut tls.protocols, r.string(item)),
        _ => return false,
    }
    true
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
