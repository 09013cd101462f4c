//! The startup phase: SSLRequest answered (`S` when the listen has TLS, the caller then runs
//! the handshake; else `N`), GSSENCRequest answered `N`, a CancelRequest recognised, the
//! StartupMessage read with its parameters.

use kiwi::backend::NegotiateProtocolVersion;
use kiwi::error::DecodeError;
use kiwi::startup::{ProtocolVersion, StartupPacket};
use kiwi::var::Vars;
use machinarium::Deadline;

use super::end::{End, StartupError};
use crate::config::TlsMode;
use crate::conn::{Conn, ConnError};

/// What a client asked for in its first packet.
pub enum Hello {
    /// TLS: `S` was sent; the handshake comes next, then the packets again.
    Tls,
    /// A session.
    Session(SessionRequest),
    /// Cancel the query of the session with this key.
    Cancel {
        /// The pid we gave that session.
        pid: i32,
        /// The secret we gave it.
        secret: Vec<u8>,
    },
}

/// A StartupMessage, reduced to what the pooler keeps.
pub struct SessionRequest {
    /// `user` (mandatory).
    pub user: String,
    /// `database` (defaults to the user).
    pub database: String,
    /// Tracked parameters (`options` `-c` settings included); others are dropped, as upstream.
    pub vars: Vars,
    /// `replication` as sent, if any.
    pub replication: Option<String>,
    /// The protocol version we speak with the client (what it asked for, or the newest we
    /// speak below that).
    pub protocol: ProtocolVersion,
}

/// Which encryption requests a client made: each may come once.
#[derive(Debug, Default)]
pub struct Asked {
    ssl: bool,
    gss: bool,
}

impl Asked {
    /// The connection is TLS already (direct TLS): an SSLRequest inside it is one too many.
    pub fn encrypted(&mut self) {
        self.ssl = true;
    }
}

/// Reads packets until a StartupMessage, a CancelRequest, or an SSLRequest the listen can
/// serve (`can_encrypt`: its `tls` is on and has a certificate). A StartupMessage without TLS
/// is refused when the listen's `tls` mode demands TLS.
pub fn read(
    conn: &mut Conn,
    tls: TlsMode,
    can_encrypt: bool,
    asked: &mut Asked,
    deadline: Deadline,
) -> Result<Hello, End> {
    let encrypted = conn.is_tls();
    loop {
        let packet = match conn.read_startup(deadline) {
            Ok((packet, _)) => packet,
            Err(ConnError::Protocol(DecodeError::UnsupportedProtocol { major, minor, .. })) => {
                return Err(End::UnsupportedProtocol { major, minor });
            }
            Err(e) => return Err(End::Startup(StartupError::Conn(e))),
        };
        match packet {
            StartupPacket::SslRequest if !asked.ssl => {
                asked.ssl = true;
                if !can_encrypt {
                    answer(conn, b'N', deadline)?;
                } else {
                    answer(conn, b'S', deadline)?;
                    return Ok(Hello::Tls);
                }
            }
            StartupPacket::GssEncRequest if !asked.gss => {
                asked.gss = true;
                answer(conn, b'N', deadline)?;
            }
            StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                return Err(End::Startup(StartupError::EncryptionTwice));
            }
            StartupPacket::Cancel(c) => {
                return Ok(Hello::Cancel {
                    pid: c.pid,
                    secret: c.key.to_vec(),
                });
            }
            StartupPacket::Startup(s) => {
                if !encrypted
                    && matches!(
                        tls,
                        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull
                    )
                {
                    return Err(End::TlsRequired);
                }
                let unsupported: Vec<Vec<u8>> = s
                    .params
                    .iter()
                    .filter(|(n, _)| n.starts_with(b"_pq_."))
                    .map(|(n, _)| n.to_vec())
                    .collect();
                let request = session_request(&s)?;
                if request.protocol != s.version || !unsupported.is_empty() {
                    negotiate(conn, request.protocol, &unsupported, deadline)?;
                }
                return Ok(Hello::Session(request));
            }
        }
    }
}

fn answer(conn: &mut Conn, byte: u8, deadline: Deadline) -> Result<(), End> {
    conn.write_all(&[byte], deadline)
        .map_err(|e| End::Startup(StartupError::Conn(e)))
}

/// The version we speak with a client that asked for `asked` (major 3): 3.2 (PostgreSQL 18's
/// longer cancel keys) or 3.0. 3.1 was never defined (the protocol skipped it), so a client
/// asking for it gets 3.0, and one asking for more than 3.2 gets 3.2.
fn spoken(asked: ProtocolVersion) -> ProtocolVersion {
    if asked >= ProtocolVersion::V3_2 {
        ProtocolVersion::V3_2
    } else {
        ProtocolVersion::V3_0
    }
}

/// Tells a client that asked for another minor version (or `_pq_` options, none of which we
/// know) which version we speak.
fn negotiate(
    conn: &mut Conn,
    spoken: ProtocolVersion,
    unsupported: &[Vec<u8>],
    deadline: Deadline,
) -> Result<(), End> {
    let mut out = Vec::new();
    NegotiateProtocolVersion {
        newest_minor: u32::from(spoken.minor),
        unrecognized: unsupported.iter().map(Vec::as_slice).collect(),
    }
    .encode(&mut out);
    conn.write_all(&out, deadline)
        .map_err(|e| End::Startup(StartupError::Conn(e)))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn session_request(s: &kiwi::startup::Startup<'_>) -> Result<SessionRequest, End> {
    let user = s
        .param("user")
        .map(text)
        .ok_or(End::Startup(StartupError::NoUser))?;
    let database = s
        .param("database")
        .map(text)
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());
    let mut vars = Vars::from_startup(s);
    if let Some(options) = s.param("options") {
        for (name, value) in parse_options(options) {
            let _ = vars.set(&name, &value);
        }
    }
    Ok(SessionRequest {
        user,
        database,
        vars,
        replication: s.param("replication").map(text),
        protocol: spoken(s.version),
    })
}

/// Settings in the `options` parameter, as libpq's PGOPTIONS: `-c name=value`, `-cname=value`,
/// `--name=value` (dashes in the name become underscores); a backslash escapes the next byte,
/// so values may contain spaces.
pub fn parse_options(options: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let words = split_words(options);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let setting: Option<Vec<u8>> = if w.as_slice() == b"-c" {
            i += 1;
            words.get(i).cloned()
        } else if let Some(rest) = w.strip_prefix(b"-c") {
            Some(rest.to_vec())
        } else if let Some(rest) = w.strip_prefix(b"--") {
            let mut rest = rest.to_vec();
            let eq = rest.iter().position(|&b| b == b'=').unwrap_or(rest.len());
            rest[..eq]
                .iter_mut()
                .filter(|b| **b == b'-')
                .for_each(|b| *b = b'_');
            Some(rest)
        } else {
            None
        };
        if let Some(s) = setting
            && let Some(eq) = s.iter().position(|&b| b == b'=')
        {
            out.push((s[..eq].to_vec(), s[eq + 1..].to_vec()));
        }
        i += 1;
    }
    out
}

fn split_words(s: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = s.iter().copied();
    while let Some(b) = bytes.next() {
        match b {
            b'\\' => cur.extend(bytes.next()),
            b' ' | b'\t' | b'\n' => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(b),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::parse_options;

    #[test]
    fn options_forms_and_escapes() {
        let got =
            parse_options(br"-c search_path=a\,\ b --statement-timeout=5s -cwork_mem=64MB junk");
        let got: Vec<(String, String)> = got
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("search_path".into(), "a, b".into()),
                ("statement_timeout".into(), "5s".into()),
                ("work_mem".into(), "64MB".into()),
            ]
        );
    }
}
