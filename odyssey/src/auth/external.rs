//! `authentication "external"` (spec §8): the client's cleartext password is handed to an
//! agent on the unix socket `external_auth_socket_path` (default `/tmp/external-auth.sock`),
//! as upstream does. Frames are an 8-byte little-endian length and a body: the pooler sends
//! the user and the password (each NUL-terminated), the agent answers a status frame (first
//! byte 1: allowed) and a frame with the client's external id (logged as `%x`). Each step
//! waits at most a second; any failure answers `FATAL 28P01 external authentication failed`.

use std::path::Path;
use std::time::Duration;

use kiwi::backend::Authentication;
use kiwi::sqlstate;
use machinarium::Deadline;
use machinarium::net::Stream;

use super::password::read_password;
use super::{AuthError, Authenticated, ClientAuth, send};
use crate::conn::Conn;
use crate::reply::Reply;
use crate::{od_error, od_info};

/// Where the agent listens unless `external_auth_socket_path` says otherwise.
const DEFAULT_SOCKET: &str = "/tmp/external-auth.sock";
/// Each connect, write and read.
const STEP_TIMEOUT: Duration = Duration::from_secs(1);
/// The largest frame body taken from the agent.
const MAX_BODY: u64 = 1024 * 1024;

/// Asks the agent about the client's password.
pub(super) fn external(conn: &mut Conn, a: &ClientAuth<'_>) -> Result<Authenticated, AuthError> {
    send(conn, a, &Authentication::CleartextPassword)?;
    let received = read_password(conn, a)?;
    let configured = a.pooler.and_then(|p| {
        p.inst
            .config()
            .config
            .global
            .external_auth_socket_path
            .clone()
    });
    let path = configured.unwrap_or_else(|| DEFAULT_SOCKET.to_string());
    let answer = ask(Path::new(&path), a.user.as_bytes(), &received);
    let (allowed, external_id) = match answer {
        Ok(answer) => answer,
        Err(why) => {
            if let Some(p) = a.pooler {
                od_error!(
                    p.inst.logger,
                    "auth",
                    Some(p.info),
                    None,
                    "external auth via {path}: {why}"
                );
            }
            return Err(failed(a));
        }
    };
    if let Some(p) = a.pooler
        && p.inst.config().config.global.log.session
    {
        od_info!(
            p.inst.logger,
            "auth",
            Some(p.info),
            None,
            "user '{}.{}' was authenticated with external_id: {external_id}{}",
            a.database,
            a.user,
            if allowed { "" } else { " (denied)" }
        );
    }
    if !allowed {
        return Err(failed(a));
    }
    let keep = a.rule.auth.password_passthrough;
    Ok(Authenticated {
        password: keep.then_some(received),
        external_id: Some(external_id),
        ..Authenticated::default()
    })
}

/// One exchange with the agent: whether it allows the login, and the external id.
fn ask(path: &Path, user: &[u8], password: &[u8]) -> Result<(bool, String), String> {
    let mut s = Stream::connect_unix(path, Deadline::after(STEP_TIMEOUT))
        .map_err(|e| format!("connect: {e}"))?;
    for body in [user, password] {
        let mut frame = Vec::with_capacity(body.len() + 9);
        frame.extend_from_slice(&(body.len() as u64 + 1).to_le_bytes());
        frame.extend_from_slice(body);
        frame.push(0);
        s.write_all(&frame, Deadline::after(STEP_TIMEOUT))
            .map_err(|e| format!("send: {e}"))?;
    }
    let status = read_frame(&mut s)?;
    let allowed = match status.first() {
        Some(&b) => b == 1,
        None => return Err("empty status from the agent".to_string()),
    };
    let id = read_frame(&mut s)?;
    let id = String::from_utf8_lossy(&id);
    Ok((allowed, id.trim_end_matches('\0').to_string()))
}

fn read_frame(s: &mut Stream) -> Result<Vec<u8>, String> {
    let mut header = [0u8; 8];
    s.read_exact(&mut header, Deadline::after(STEP_TIMEOUT))
        .map_err(|e| format!("receive: {e}"))?;
    let len = u64::from_le_bytes(header);
    if len > MAX_BODY {
        return Err(format!("a frame of {len} bytes from the agent"));
    }
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body, Deadline::after(STEP_TIMEOUT))
        .map_err(|e| format!("receive: {e}"))?;
    Ok(body)
}

/// `FATAL 28P01 external authentication failed for user "u"`.
fn failed(a: &ClientAuth<'_>) -> AuthError {
    AuthError::Rejected(Reply::fatal(
        sqlstate::INVALID_PASSWORD,
        format!("external authentication failed for user \"{}\"", a.user),
    ))
}
