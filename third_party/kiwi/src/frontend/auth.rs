//! The client's answers to authentication requests, all sent with tag `p`: PasswordMessage,
//! SASLInitialResponse, SASLResponse and GSSResponse.
//!
//! The tag alone does not say which one it is; the request the server made does. So decoding
//! gives an [`AuthResponse`] holding the raw body, read further with [`AuthResponse::password`]
//! or [`AuthResponse::sasl_initial`]. A SASLResponse or GSSResponse is the raw body itself.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer;

use super::tag;

/// `p`: a client's answer to an authentication request, not yet interpreted.
///
/// Also the SASLResponse and GSSResponse messages, whose body is opaque data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResponse<'a> {
    /// The message body.
    pub data: &'a [u8],
}

impl<'a> AuthResponse<'a> {
    /// Reads the body as a PasswordMessage (cleartext or MD5 answer).
    pub fn password(&self) -> Result<PasswordMessage<'a>, DecodeError> {
        PasswordMessage::decode(self.data)
    }

    /// Reads the body as a SASLInitialResponse.
    pub fn sasl_initial(&self) -> Result<SaslInitialResponse<'a>, DecodeError> {
        SaslInitialResponse::decode(self.data)
    }

    /// Appends the message with the body unchanged (a SASLResponse or GSSResponse).
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::AUTH_RESPONSE, |w| {
            w.bytes(self.data);
        });
    }
}

/// PasswordMessage: a cleartext password, or `md5` + 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordMessage<'a> {
    /// The password or hash, without its NUL.
    pub password: &'a [u8],
}

impl<'a> PasswordMessage<'a> {
    /// Decodes a PasswordMessage body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "PasswordMessage.password");
        let password = r.cstr()?;
        r.finish()?;
        Ok(Self { password })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::AUTH_RESPONSE, |w| {
            w.cstr(self.password);
        });
    }
}

/// SASLInitialResponse: the chosen mechanism and the client-first message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    /// Mechanism name, such as `SCRAM-SHA-256`.
    pub mechanism: &'a str,
    /// Initial response; `None` when the client sent length -1.
    pub data: Option<&'a [u8]>,
}

impl<'a> SaslInitialResponse<'a> {
    /// Decodes a SASLInitialResponse body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "SASLInitialResponse.mechanism");
        let mechanism = r.cstr_utf8()?;
        let data = r.context("SASLInitialResponse.data").nullable()?;
        r.finish()?;
        Ok(Self { mechanism, data })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::AUTH_RESPONSE, |w| {
            w.cstr(self.mechanism.as_bytes()).nullable(self.data);
        });
    }
}
