//! A raw protocol client over a blocking socket, built on kiwi: for tests that need exact
//! bytes (logins by hand, malformed packets, pipelines with a Flush in the middle).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use kiwi::backend::{Authentication, BackendMessage, ErrorFields};
use kiwi::header::Header;

use crate::error::{Error, Result};

/// One backend message, copied out of the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The tag byte.
    pub tag: u8,
    /// The body (without tag and length).
    pub body: Vec<u8>,
}

impl Message {
    /// Decodes the message with kiwi.
    pub fn decode(&self) -> Result<BackendMessage<'_>> {
        BackendMessage::decode(self.tag, &self.body)
            .map_err(|e| Error::Protocol(format!("decode: {e}")))
    }

    /// SQLSTATE and message of an ErrorResponse, if this is one.
    pub fn error(&self) -> Option<(String, String)> {
        if self.tag != b'E' {
            return None;
        }
        let fields = ErrorFields::decode(&self.body).ok()?;
        let code = fields.code()?.as_str().to_string();
        let msg = String::from_utf8_lossy(fields.message().unwrap_or_default()).into_owned();
        Some((code, msg))
    }
}

/// A blocking connection speaking the protocol by hand.
pub struct RawConn {
    sock: TcpStream,
    buf: Vec<u8>,
    reads: usize,
}

impl RawConn {
    /// The client's own port (to find the connection in `ss`).
    pub fn local_port(&self) -> u16 {
        self.sock.local_addr().map_or(0, |a| a.port())
    }

    /// How many reads of the socket brought bytes so far (the packets the peer's writes
    /// arrived in, give or take how the reads met them).
    pub fn reads(&self) -> usize {
        self.reads
    }

    /// Connects to `127.0.0.1:port` with read and write timeouts.
    pub fn connect(port: u16, timeout: Duration) -> Result<RawConn> {
        let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| Error::io("connect", e))?;
        sock.set_read_timeout(Some(timeout))
            .map_err(|e| Error::io("timeout", e))?;
        sock.set_write_timeout(Some(timeout))
            .map_err(|e| Error::io("timeout", e))?;
        Ok(RawConn {
            sock,
            buf: Vec::new(),
            reads: 0,
        })
    }

    /// A second handle on the same socket (nothing buffered), to write from another thread
    /// while this one reads.
    pub fn try_clone(&self) -> Result<RawConn> {
        let sock = self.sock.try_clone().map_err(|e| Error::io("clone", e))?;
        Ok(RawConn {
            sock,
            buf: Vec::new(),
            reads: 0,
        })
    }

    /// Sends bytes as they are.
    pub fn send(&mut self, bytes: &[u8]) -> Result<()> {
        self.sock
            .write_all(bytes)
            .map_err(|e| Error::io("write", e))
    }

    /// Sends a StartupMessage (protocol 3.0) with these parameters.
    pub fn startup(&mut self, params: &[(&str, &str)]) -> Result<()> {
        self.startup_version(kiwi::startup::ProtocolVersion::V3_0, params)
    }

    /// Sends a StartupMessage asking for `version` with these parameters.
    pub fn startup_version(
        &mut self,
        version: kiwi::startup::ProtocolVersion,
        params: &[(&str, &str)],
    ) -> Result<()> {
        let startup = kiwi::startup::Startup {
            version,
            params: params
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
                .collect(),
        };
        let mut out = Vec::new();
        startup.encode(&mut out);
        self.send(&out)
    }

    /// Reads one whole backend message; `Ok(None)` at end of stream.
    pub fn recv(&mut self) -> Result<Option<Message>> {
        loop {
            if let Some(h) =
                Header::parse(&self.buf, 1 << 30).map_err(|e| Error::Protocol(format!("{e}")))?
            {
                let total = h.frame_len();
                if self.buf.len() >= total {
                    let body = self.buf[5..total].to_vec();
                    self.buf.drain(..total);
                    return Ok(Some(Message { tag: h.tag, body }));
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self
                .sock
                .read(&mut chunk)
                .map_err(|e| Error::io("read", e))?;
            if n == 0 {
                return Ok(None);
            }
            self.reads += 1;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads one byte (the answer to SSLRequest / GSSENCRequest).
    pub fn recv_byte(&mut self) -> Result<Option<u8>> {
        if !self.buf.is_empty() {
            return Ok(Some(self.buf.remove(0)));
        }
        let mut b = [0u8; 1];
        match self.sock.read(&mut b).map_err(|e| Error::io("read", e))? {
            0 => Ok(None),
            _ => Ok(Some(b[0])),
        }
    }

    /// Reads messages until ReadyForQuery (included) or an error/EOF; returns them all.
    pub fn until_ready(&mut self) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        while let Some(m) = self.recv()? {
            let done = m.tag == b'Z';
            out.push(m);
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// Answers the server's authentication requests (cleartext, MD5, SCRAM-SHA-256) with
    /// `password`, up to AuthenticationOk or an ErrorResponse, which is returned as Err.
    pub fn authenticate(&mut self, user: &str, password: &str) -> Result<()> {
        let mut scram: Option<kiwi::scram::ScramClient> = None;
        loop {
            let m = self
                .recv()?
                .ok_or_else(|| Error::Protocol("connection closed during auth".into()))?;
            if let Some((code, msg)) = m.error() {
                return Err(Error::Protocol(format!("{code}: {msg}")));
            }
            let BackendMessage::Authentication(auth) = m.decode()? else {
                return Err(Error::Protocol(format!(
                    "unexpected message {:?} during auth",
                    m.tag as char
                )));
            };
            let mut out = Vec::new();
            match auth {
                Authentication::Ok => return Ok(()),
                Authentication::CleartextPassword => kiwi::frontend::PasswordMessage {
                    password: password.as_bytes(),
                }
                .encode(&mut out),
                Authentication::Md5Password { salt } => {
                    let resp = kiwi::md5::md5_response(user.as_bytes(), password.as_bytes(), salt);
                    kiwi::frontend::PasswordMessage {
                        password: resp.as_bytes(),
                    }
                    .encode(&mut out)
                }
                Authentication::Sasl { mechanisms } => {
                    let mut c = kiwi::scram::ScramClient::new(password.as_bytes())
                        .map_err(|e| Error::Protocol(format!("scram: {e}")))?;
                    if !mechanisms.contains(&c.mechanism()) {
                        return Err(Error::Protocol(format!("server offers {mechanisms:?}")));
                    }
                    let first = c.client_first();
                    kiwi::frontend::SaslInitialResponse {
                        mechanism: c.mechanism(),
                        data: Some(&first),
                    }
                    .encode(&mut out);
                    scram = Some(c);
                }
                Authentication::SaslContinue { data } => {
                    let c = scram
                        .as_mut()
                        .ok_or_else(|| Error::Protocol("SASLContinue before SASL".into()))?;
                    let fin = c
                        .handle_server_first(data)
                        .map_err(|e| Error::Protocol(format!("scram: {e}")))?;
                    kiwi::frontend::AuthResponse { data: &fin }.encode(&mut out);
                }
                Authentication::SaslFinal { data } => {
                    let c = scram
                        .as_mut()
                        .ok_or_else(|| Error::Protocol("SASLFinal before SASL".into()))?;
                    c.verify_server_final(data)
                        .map_err(|e| Error::Protocol(format!("scram final: {e}")))?;
                }
                other => {
                    return Err(Error::Protocol(format!(
                        "unsupported auth request {other:?}"
                    )));
                }
            }
            if !out.is_empty() {
                self.send(&out)?;
            }
        }
    }
}
