//! NotificationResponse: a NOTIFY delivered to a session that LISTENs.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::writer;

use super::tag;

/// `A`: a notification on a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationResponse<'a> {
    /// Process id of the notifying backend.
    pub pid: i32,
    /// Channel name.
    pub channel: &'a [u8],
    /// Payload (may be empty).
    pub payload: &'a [u8],
}

impl<'a> NotificationResponse<'a> {
    /// Decodes a NotificationResponse body.
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "NotificationResponse.pid");
        let pid = r.i32()?;
        let channel = r.context("NotificationResponse.channel").cstr()?;
        let payload = r.context("NotificationResponse.payload").cstr()?;
        r.finish()?;
        Ok(Self {
            pid,
            channel,
            payload,
        })
    }

    /// Appends the message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        writer::message(out, tag::NOTIFICATION_RESPONSE, |w| {
            w.i32(self.pid).cstr(self.channel).cstr(self.payload);
        });
    }
}
