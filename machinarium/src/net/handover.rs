//! Handing listening sockets to a new process (online restart): the old process marks its
//! listeners inheritable and names them in an environment variable (`key=fd;...`); the new
//! process, started by exec, takes them over once. Both then hold the same sockets, so a
//! connection waiting in the accept queue is never refused: whichever process accepts it serves
//! it, and the old one stops accepting.

use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Result;
use crate::net::listener::Listener;
use crate::process::set_inheritable;

/// Marks `listeners` inheritable and returns the environment value that names them; the
/// caller passes it to the new process and calls [`keep_private`] once it has started.
pub fn export(listeners: &[(String, RawFd)]) -> io::Result<String> {
    let mut value = Vec::new();
    for (key, fd) in listeners {
        set_inheritable(*fd, true)?;
        value.push(format!("{key}={fd}"));
    }
    Ok(value.join(";"))
}

/// Makes exported descriptors close-on-exec again (after the new process was spawned).
pub fn keep_private(listeners: &[(String, RawFd)]) {
    for (_, fd) in listeners {
        let _ = set_inheritable(*fd, false);
    }
}

/// Whether this process has taken over its inherited sockets already.
static IMPORTED: AtomicBool = AtomicBool::new(false);

/// Takes over the listening sockets named by environment variable `var`, each with its key:
/// once per process (a second call gets nothing). Entries that are not listening sockets are
/// left alone.
pub fn import(var: &str) -> Vec<(String, OwnedFd)> {
    let Some(value) = std::env::var_os(var) else {
        return Vec::new();
    };
    if IMPORTED.swap(true, Ordering::AcqRel) {
        return Vec::new();
    }
    let value = value.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in value.split(';').filter(|e| !e.is_empty()) {
        let Some((key, fd)) = entry.rsplit_once('=') else {
            continue;
        };
        let Ok(fd) = fd.parse::<RawFd>() else {
            continue;
        };
        if !is_listening_socket(fd) {
            continue;
        }
        // SAFETY: the descriptor came through exec from the parent, which named it in `var`
        // for us alone; it was open when the process began, so nothing here opened it, and
        // only this function takes ownership, once per process (`IMPORTED`). It was checked
        // to be an open listening socket.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = set_inheritable(owned.as_raw_fd(), false);
        out.push((key.to_string(), owned));
    }
    out
}

/// Whether `fd` is an open socket in the listening state.
fn is_listening_socket(fd: RawFd) -> bool {
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `on`, which is that large; a
    // descriptor that is not an open socket makes it fail, which is the answer.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0 && on != 0
}

impl Listener {
    /// A listener from a socket taken over with [`import`]: a Unix socket when `unix`, else TCP.
    pub fn adopt(fd: OwnedFd, unix: bool) -> Result<Listener> {
        if unix {
            let l = UnixListener::from(fd);
            l.set_nonblocking(true)?;
            Listener::from_unix(l)
        } else {
            let l = TcpListener::from(fd);
            l.set_nonblocking(true)?;
            Listener::from_tcp(l)
        }
    }
}
