//! Messages a client sends after startup, decoded from and encoded to whole frames.
//!
//! [`FrontendMessage::decode`] dispatches on the tag; each family lives in its own file with
//! its `decode` and `encode` side by side. Tag `p` answers whichever authentication request the
//! server made, so it decodes to the raw [`AuthResponse`], which the caller then reads as the
//! message it expects (password, SASLInitialResponse, SASLResponse).

mod auth;
mod copy;
pub(crate) mod extended;
mod function;
mod query;

pub use auth::{AuthResponse, PasswordMessage, SaslInitialResponse};
pub use copy::{CopyData, CopyFail};
pub use extended::{Bind, Close, Describe, Execute, Parse, Target};
pub use function::FunctionCall;
pub use query::Query;

use crate::error::{DecodeError, Side};
use crate::header::{self, Frame};
use crate::writer;

/// Frontend message type bytes.
pub mod tag {
    /// Bind.
    pub const BIND: u8 = b'B';
    /// Close.
    pub const CLOSE: u8 = b'C';
    /// CopyData (both directions).
    pub const COPY_DATA: u8 = b'd';
    /// CopyDone (both directions).
    pub const COPY_DONE: u8 = b'c';
    /// CopyFail.
    pub const COPY_FAIL: u8 = b'f';
    /// Describe.
    pub const DESCRIBE: u8 = b'D';
    /// Execute.
    pub const EXECUTE: u8 = b'E';
    /// Flush.
    pub const FLUSH: u8 = b'H';
    /// FunctionCall.
    pub const FUNCTION_CALL: u8 = b'F';
    /// Parse.
    pub const PARSE: u8 = b'P';
    /// PasswordMessage, GSSResponse, SASLInitialResponse, SASLResponse.
    pub const AUTH_RESPONSE: u8 = b'p';
    /// Query.
    pub const QUERY: u8 = b'Q';
    /// Sync.
    pub const SYNC: u8 = b'S';
    /// Terminate.
    pub const TERMINATE: u8 = b'X';
}

/// Any message a client may send after the startup packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage<'a> {
    /// `Q`: simple query.
    Query(Query<'a>),
    /// `P`: prepare a statement.
    Parse(Parse<'a>),
    /// `B`: bind parameters to a statement, making a portal.
    Bind(Bind<'a>),
    /// `D`: describe a statement or portal.
    Describe(Describe<'a>),
    /// `E`: run a portal.
    Execute(Execute<'a>),
    /// `C`: close a statement or portal.
    Close(Close<'a>),
    /// `S`: end of an extended-query batch.
    Sync,
    /// `H`: ask the server to send what it has.
    Flush,
    /// `d`: COPY FROM STDIN data.
    CopyData(CopyData<'a>),
    /// `c`: COPY FROM STDIN finished.
    CopyDone,
    /// `f`: COPY FROM STDIN aborted.
    CopyFail(CopyFail<'a>),
    /// `F`: fast-path function call.
    FunctionCall(FunctionCall<'a>),
    /// `p`: an answer to an authentication request.
    AuthResponse(AuthResponse<'a>),
    /// `X`: the client is leaving.
    Terminate,
}

impl<'a> FrontendMessage<'a> {
    /// Decodes the body of a message with type byte `tag`.
    pub fn decode(tag: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(match tag {
            tag::QUERY => Self::Query(Query::decode(body)?),
            tag::PARSE => Self::Parse(Parse::decode(body)?),
            tag::BIND => Self::Bind(Bind::decode(body)?),
            tag::DESCRIBE => Self::Describe(Describe::decode(body)?),
            tag::EXECUTE => Self::Execute(Execute::decode(body)?),
            tag::CLOSE => Self::Close(Close::decode(body)?),
            tag::SYNC => empty(body, "Sync", Self::Sync)?,
            tag::FLUSH => empty(body, "Flush", Self::Flush)?,
            tag::COPY_DATA => Self::CopyData(CopyData::decode(body)),
            tag::COPY_DONE => empty(body, "CopyDone", Self::CopyDone)?,
            tag::COPY_FAIL => Self::CopyFail(CopyFail::decode(body)?),
            tag::FUNCTION_CALL => Self::FunctionCall(FunctionCall::decode(body)?),
            tag::AUTH_RESPONSE => Self::AuthResponse(AuthResponse { data: body }),
            tag::TERMINATE => empty(body, "Terminate", Self::Terminate)?,
            tag => {
                return Err(DecodeError::UnknownTag {
                    side: Side::Frontend,
                    tag,
                });
            }
        })
    }

    /// Decodes a frame split off by [`Frame::split`].
    pub fn from_frame(frame: &Frame<'a>) -> Result<Self, DecodeError> {
        Self::decode(frame.header.tag, frame.body)
    }

    /// Splits and decodes the first message of `buf`.
    ///
    /// Returns the message and the bytes it used, or `Ok(None)` when `buf` holds only part of
    /// one. `max_len` bounds the length field.
    pub fn parse(buf: &'a [u8], max_len: u32) -> Result<Option<(Self, usize)>, DecodeError> {
        header::parse_first(buf, max_len, Self::decode)
    }

    /// Appends the whole message: tag, length, body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Query(m) => m.encode(out),
            Self::Parse(m) => m.encode(out),
            Self::Bind(m) => m.encode(out),
            Self::Describe(m) => m.encode(out),
            Self::Execute(m) => m.encode(out),
            Self::Close(m) => m.encode(out),
            Self::Sync => writer::empty(out, tag::SYNC),
            Self::Flush => writer::empty(out, tag::FLUSH),
            Self::CopyData(m) => m.encode(out),
            Self::CopyDone => writer::empty(out, tag::COPY_DONE),
            Self::CopyFail(m) => m.encode(out),
            Self::FunctionCall(m) => m.encode(out),
            Self::AuthResponse(m) => m.encode(out),
            Self::Terminate => writer::empty(out, tag::TERMINATE),
        }
    }
}

/// Accepts an empty body for a message that has none.
pub(crate) fn empty<T>(body: &[u8], context: &'static str, message: T) -> Result<T, DecodeError> {
    match body.len() {
        0 => Ok(message),
        count => Err(DecodeError::TrailingBytes { context, count }),
    }
}
