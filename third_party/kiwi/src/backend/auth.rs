//! Authentication requests (`R`): every method a server may ask for, and the SASL exchange.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer;

use super::tag;

/// `R`: an authentication request, SASL step, or the final AuthenticationOk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication<'a> {
    /// 0: authentication succeeded.
    Ok,
    /// 2: Kerberos V5 (no longer supported by PostgreSQL).
    KerberosV5,
    /// 3: send the password in clear text.
    CleartextPassword,
    /// 5: send `md5(md5(password + user) + salt)`.
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// 7: start GSSAPI.
    Gss,
    /// 8: GSSAPI or SSPI continuation data.
    GssContinue {
        /// Opaque data for the GSSAPI library.
        data: &'a [u8],
    },
    /// 9: start SSPI.
    Sspi,
    /// 10: SASL, with the mechanisms the server offers in its order of preference.
    Sasl {
        /// Mechanism names (non-empty), e.g. `SCRAM-SHA-256-PLUS`, `SCRAM-SHA-256`.
        mechanisms: Vec<&'a str>,
    },
    /// 11: a SASL challenge (for SCRAM, the server-first message).
    SaslContinue {
        /// Mechanism-specific data.
        data: &'a [u8],
    },
    /// 12: SASL outcome data (for SCRAM, the server-final message).
    SaslFinal {
        /// Mechanism-specific data.
        data: &'a [u8],
    },
}

impl<'a> Authentication<'a> {
    /// Decodes an Authentication body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "Authentication.code");
        let code = r.i32()?;
        let message = match code {
            0 => Self::Ok,
            2 => Self::KerberosV5,
            3 => Self::CleartextPassword,
            5 => Self::Md5Password {
                salt: r.context("AuthenticationMD5Password.salt").array()?,
            },
            7 => Self::Gss,
            8 => Self::GssContinue { data: r.rest() },
            9 => Self::Sspi,
            10 => {
                r.context("AuthenticationSASL.mechanisms");
                let mut mechanisms = Vec::new();
                loop {
                    let name = r.cstr_utf8()?;
                    if name.is_empty() {
                        break;
                    }
                    mechanisms.push(name);
                }
                Self::Sasl { mechanisms }
            }
            11 => Self::SaslContinue { data: r.rest() },
            12 => Self::SaslFinal { data: r.rest() },
            code => return Err(r.invalid(i64::from(code))),
        };
        r.context("Authentication").finish()?;
        Ok(message)
    }

    /// The request code on the wire.
    pub fn code(&self) -> i32 {
        match self {
            Self::Ok => 0,
            Self::KerberosV5 => 2,
            Self::CleartextPassword => 3,
            Self::Md5Password { .. } => 5,
            Self::Gss => 7,
            Self::GssContinue { .. } => 8,
            Self::Sspi => 9,
            Self::Sasl { .. } => 10,
            Self::SaslContinue { .. } => 11,
            Self::SaslFinal { .. } => 12,
        }
    }

    /// Appends the message. Empty mechanism names are skipped: one would end the list early.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::AUTHENTICATION, |w| {
            w.i32(self.code());
            match self {
                Self::Md5Password { salt } => {
                    w.bytes(salt);
                }
                Self::GssContinue { data }
                | Self::SaslContinue { data }
                | Self::SaslFinal { data } => {
                    w.bytes(data);
                }
                Self::Sasl { mechanisms } => {
                    for m in mechanisms.iter().filter(|m| !m.is_empty()) {
                        w.cstr(m.as_bytes());
                    }
                    w.u8(0);
                }
                Self::Ok | Self::KerberosV5 | Self::CleartextPassword | Self::Gss | Self::Sspi => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_request_bytes() {
        let mut out = Vec::new();
        Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"],
        }
        .encode(&mut out);
        assert_eq!(
            out,
            b"R\x00\x00\x00\x2a\x00\x00\x00\x0aSCRAM-SHA-256-PLUS\x00SCRAM-SHA-256\x00\x00"
        );
    }

    #[test]
    fn unknown_code_and_short_salt_are_errors() {
        assert_eq!(
            Authentication::decode(b"\x00\x00\x00\x04"),
            Err(DecodeError::InvalidValue {
                context: "Authentication.code",
                value: 4
            })
        );
        assert_eq!(
            Authentication::decode(b"\x00\x00\x00\x05ab"),
            Err(DecodeError::Truncated {
                context: "AuthenticationMD5Password.salt"
            })
        );
        assert!(matches!(
            Authentication::decode(b"\x00\x00\x00\x00x"),
            Err(DecodeError::TrailingBytes { .. })
        ));
    }
}
