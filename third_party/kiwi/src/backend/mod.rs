//! Messages a server sends, decoded from and encoded to whole frames.
//!
//! [`BackendMessage::decode`] dispatches on the tag; each family lives in its own file with
//! its `decode` and `encode` side by side. Messages without a body (ParseComplete, NoData, ...)
//! are plain enum variants.

mod auth;
mod copy;
mod error;
mod function;
mod key;
mod negotiate;
mod notification;
mod parameter;
mod ready;
mod result;

pub use auth::Authentication;
pub use copy::{CopyDirection, CopyResponse};
pub use error::{ErrorFields, Severity, field};
pub use function::FunctionCallResponse;
pub use key::BackendKeyData;
pub use negotiate::NegotiateProtocolVersion;
pub use notification::NotificationResponse;
pub use parameter::ParameterStatus;
pub use ready::{ReadyForQuery, TransactionStatus};
pub use result::{
    CommandComplete, DataRow, FieldDescription, ParameterDescription, RowDescription,
};

use crate::error::{DecodeError, Side};
use crate::frontend::{CopyData, empty};
use crate::header::{self, Frame};
use crate::writer;

/// Backend message type bytes.
pub mod tag {
    /// Authentication* requests.
    pub const AUTHENTICATION: u8 = b'R';
    /// BackendKeyData.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// BindComplete.
    pub const BIND_COMPLETE: u8 = b'2';
    /// CloseComplete.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// CommandComplete.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// CopyData (both directions).
    pub const COPY_DATA: u8 = b'd';
    /// CopyDone (both directions).
    pub const COPY_DONE: u8 = b'c';
    /// CopyInResponse.
    pub const COPY_IN_RESPONSE: u8 = b'G';
    /// CopyOutResponse.
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// CopyBothResponse.
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    /// DataRow.
    pub const DATA_ROW: u8 = b'D';
    /// EmptyQueryResponse.
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// ErrorResponse.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// FunctionCallResponse.
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    /// NegotiateProtocolVersion.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    /// NoData.
    pub const NO_DATA: u8 = b'n';
    /// NoticeResponse.
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// NotificationResponse.
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// ParameterDescription.
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    /// ParameterStatus.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// ParseComplete.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// PortalSuspended.
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// ReadyForQuery.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// RowDescription.
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// Any message a server may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    /// `R`: an authentication request or result.
    Authentication(Authentication<'a>),
    /// `K`: the key for cancelling this session's queries.
    BackendKeyData(BackendKeyData<'a>),
    /// `1`: Parse done.
    ParseComplete,
    /// `2`: Bind done.
    BindComplete,
    /// `3`: Close done.
    CloseComplete,
    /// `C`: a statement finished, with its command tag.
    CommandComplete(CommandComplete<'a>),
    /// `d`: COPY TO STDOUT data.
    CopyData(CopyData<'a>),
    /// `c`: COPY TO STDOUT finished.
    CopyDone,
    /// `G`, `H`, `W`: the server enters a COPY mode.
    CopyResponse(CopyResponse),
    /// `D`: one result row.
    DataRow(DataRow<'a>),
    /// `I`: the query string was empty.
    EmptyQueryResponse,
    /// `E`: an error.
    ErrorResponse(ErrorFields<'a>),
    /// `V`: the result of a FunctionCall.
    FunctionCallResponse(FunctionCallResponse<'a>),
    /// `v`: the server speaks an older minor version or lacks some `_pq_` options.
    NegotiateProtocolVersion(NegotiateProtocolVersion<'a>),
    /// `n`: the statement returns no rows.
    NoData,
    /// `N`: a notice, warning or informational message.
    NoticeResponse(ErrorFields<'a>),
    /// `A`: a LISTEN notification.
    NotificationResponse(NotificationResponse<'a>),
    /// `t`: the parameter types of a statement.
    ParameterDescription(ParameterDescription),
    /// `S`: a reported run-time parameter changed.
    ParameterStatus(ParameterStatus<'a>),
    /// `s`: Execute stopped at its row limit.
    PortalSuspended,
    /// `Z`: ready for a new query, with the transaction status.
    ReadyForQuery(ReadyForQuery),
    /// `T`: the columns of the rows that follow.
    RowDescription(RowDescription<'a>),
}

impl<'a> BackendMessage<'a> {
    /// Decodes the body of a message with type byte `tag`.
    pub fn decode(tag: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
        use copy::CopyDirection::{Both, In, Out};
        Ok(match tag {
            tag::AUTHENTICATION => Self::Authentication(Authentication::decode(body)?),
            tag::BACKEND_KEY_DATA => Self::BackendKeyData(BackendKeyData::decode(body)?),
            tag::PARSE_COMPLETE => empty(body, "ParseComplete", Self::ParseComplete)?,
            tag::BIND_COMPLETE => empty(body, "BindComplete", Self::BindComplete)?,
            tag::CLOSE_COMPLETE => empty(body, "CloseComplete", Self::CloseComplete)?,
            tag::COMMAND_COMPLETE => Self::CommandComplete(CommandComplete::decode(body)?),
            tag::COPY_DATA => Self::CopyData(CopyData::decode(body)),
            tag::COPY_DONE => empty(body, "CopyDone", Self::CopyDone)?,
            tag::COPY_IN_RESPONSE => Self::CopyResponse(CopyResponse::decode(In, body)?),
            tag::COPY_OUT_RESPONSE => Self::CopyResponse(CopyResponse::decode(Out, body)?),
            tag::COPY_BOTH_RESPONSE => Self::CopyResponse(CopyResponse::decode(Both, body)?),
            tag::DATA_ROW => Self::DataRow(DataRow::decode(body)?),
            tag::EMPTY_QUERY_RESPONSE => {
                empty(body, "EmptyQueryResponse", Self::EmptyQueryResponse)?
            }
            tag::ERROR_RESPONSE => Self::ErrorResponse(ErrorFields::decode(body)?),
            tag::FUNCTION_CALL_RESPONSE => {
                Self::FunctionCallResponse(FunctionCallResponse::decode(body)?)
            }
            tag::NEGOTIATE_PROTOCOL_VERSION => {
                Self::NegotiateProtocolVersion(NegotiateProtocolVersion::decode(body)?)
            }
            tag::NO_DATA => empty(body, "NoData", Self::NoData)?,
            tag::NOTICE_RESPONSE => Self::NoticeResponse(ErrorFields::decode(body)?),
            tag::NOTIFICATION_RESPONSE => {
                Self::NotificationResponse(NotificationResponse::decode(body)?)
            }
            tag::PARAMETER_DESCRIPTION => {
                Self::ParameterDescription(ParameterDescription::decode(body)?)
            }
            tag::PARAMETER_STATUS => Self::ParameterStatus(ParameterStatus::decode(body)?),
            tag::PORTAL_SUSPENDED => empty(body, "PortalSuspended", Self::PortalSuspended)?,
            tag::READY_FOR_QUERY => Self::ReadyForQuery(ReadyForQuery::decode(body)?),
            tag::ROW_DESCRIPTION => Self::RowDescription(RowDescription::decode(body)?),
            tag => {
                return Err(DecodeError::UnknownTag {
                    side: Side::Backend,
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
            Self::Authentication(m) => m.encode(out),
            Self::BackendKeyData(m) => m.encode(out),
            Self::ParseComplete => writer::empty(out, tag::PARSE_COMPLETE),
            Self::BindComplete => writer::empty(out, tag::BIND_COMPLETE),
            Self::CloseComplete => writer::empty(out, tag::CLOSE_COMPLETE),
            Self::CommandComplete(m) => m.encode(out),
            Self::CopyData(m) => m.encode(out),
            Self::CopyDone => writer::empty(out, tag::COPY_DONE),
            Self::CopyResponse(m) => m.encode(out),
            Self::DataRow(m) => m.encode(out),
            Self::EmptyQueryResponse => writer::empty(out, tag::EMPTY_QUERY_RESPONSE),
            Self::ErrorResponse(m) => m.encode_error(out),
            Self::FunctionCallResponse(m) => m.encode(out),
            Self::NegotiateProtocolVersion(m) => m.encode(out),
            Self::NoData => writer::empty(out, tag::NO_DATA),
            Self::NoticeResponse(m) => m.encode_notice(out),
            Self::NotificationResponse(m) => m.encode(out),
            Self::ParameterDescription(m) => m.encode(out),
            Self::ParameterStatus(m) => m.encode(out),
            Self::PortalSuspended => writer::empty(out, tag::PORTAL_SUSPENDED),
            Self::ReadyForQuery(m) => m.encode(out),
            Self::RowDescription(m) => m.encode(out),
        }
    }
}
