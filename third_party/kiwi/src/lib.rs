//! kiwi: the PostgreSQL wire protocol (3.0 and 3.2), sans-io.
//!
//! Turns bytes into typed messages and back. It knows nothing of sockets, coroutines or
//! pooling: the caller owns the buffers and the connection.
//!
//! # Layout
//!
//! - [`header`]: the 5-byte tag + length of every message after startup; [`Frame::split`] cuts
//!   one whole message off a buffer (`Ok(None)` = need more bytes). The relay forwards frames
//!   by header alone.
//! - [`startup`]: the untagged first packets: StartupMessage, SSLRequest, GSSENCRequest,
//!   CancelRequest (protocol 3.2's longer keys included).
//! - [`frontend`]: messages a client sends ([`FrontendMessage`]), one family per file.
//! - [`backend`]: messages a server sends ([`BackendMessage`]), one family per file;
//!   [`backend::ErrorFields`] reads and builds ErrorResponse and NoticeResponse.
//! - [`var`]: the session parameters a client asked for and a server reports, and the `SET`s
//!   that make a server match a client (deploy).
//! - [`scram`]: SCRAM-SHA-256(-PLUS) for both roles: [`scram::ScramServer`] authenticates
//!   clients, [`scram::ScramClient`] logs into PostgreSQL.
//! - [`md5`]: MD5 password hashing.
//! - [`sqlstate`]: the SQLSTATE codes a pooler sends.
//! - [`error`]: [`DecodeError`], why bytes are not a valid message.
//!
//! Every decoder reads through a private checked cursor (`reader.rs`) that never panics and
//! rejects trailing bytes; every encoder appends to a `Vec<u8>` and back-patches the length
//! (`writer.rs`). Decoded messages borrow from the input buffer.
#![forbid(unsafe_code)]

pub mod backend;
pub mod error;
pub mod frontend;
pub mod header;
pub mod md5;
mod reader;
pub mod scram;
pub mod sqlstate;
pub mod startup;
pub mod var;
mod writer;

pub use backend::BackendMessage;
pub use error::DecodeError;
pub use frontend::FrontendMessage;
pub use header::{Frame, Header};
pub use startup::StartupPacket;
