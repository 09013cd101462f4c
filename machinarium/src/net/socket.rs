//! The socket behind a stream (TCP or Unix) and the options machinarium sets on it.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// A connected, nonblocking socket.
#[derive(Debug)]
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    pub(crate) fn raw_fd(&self) -> RawFd {
        match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown(how),
            Socket::Unix(s) => s.shutdown(how),
        }
    }

    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Socket::Tcp(s) => s.take_error(),
            Socket::Unix(s) => s.take_error(),
        }
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write_vectored(bufs),
            Socket::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// TCP keepalive settings (Odyssey's `keepalive`, `keepalive_keep_interval`,
/// `keepalive_probes`, `keepalive_usr_timeout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeepAlive {
    /// Idle time before the first probe; `None` turns keepalive off.
    pub idle: Option<Duration>,
    /// Time between probes.
    pub interval: Option<Duration>,
    /// Probes before the connection is dropped.
    pub probes: Option<u32>,
    /// TCP_USER_TIMEOUT: how long sent data may stay unacknowledged.
    pub user_timeout: Option<Duration>,
}

pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: a valid fd and a pointer to an int of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn secs(d: Duration) -> libc::c_int {
    d.as_secs().clamp(1, i32::MAX as u64) as libc::c_int
}

/// Applies keepalive settings to a TCP socket.
pub(crate) fn set_keepalive(fd: BorrowedFd<'_>, ka: &KeepAlive) -> io::Result<()> {
    let Some(idle) = ka.idle else {
        return setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0);
    };
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs(idle))?;
    if let Some(i) = ka.interval {
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, secs(i))?;
    }
    if let Some(p) = ka.probes {
        setsockopt_int(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPCNT,
            p.min(i32::MAX as u32) as libc::c_int,
        )?;
    }
    if let Some(t) = ka.user_timeout {
        let ms = t.as_millis().min(i32::MAX as u128) as libc::c_int;
        setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, ms)?;
    }
    Ok(())
}

/// Keepalive settings on a listening socket, for the sockets it accepts to inherit. Unlike a
/// fresh socket, a listener may carry values from an earlier call: a setting left unset here
/// is written as the kernel's default (the sysctl's value now; a user timeout of 0). With
/// keepalive off the user timeout is the default too, as `set_keepalive` leaves it on a fresh
/// socket.
pub(crate) fn set_inherited_keepalive(fd: BorrowedFd<'_>, ka: &KeepAlive) -> io::Result<()> {
    let Some(idle) = ka.idle else {
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 0)?;
        return setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 0);
    };
    let sysctl = |name: &str| -> io::Result<u32> {
        let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))?;
        text.trim()
            .parse()
            .map_err(|_| io::Error::other(format!("{name}: not a number: {text:?}")))
    };
    let interval = match ka.interval {
        Some(i) => i,
        None => Duration::from_secs(sysctl("tcp_keepalive_intvl")?.into()),
    };
    let probes = match ka.probes {
        Some(p) => p,
        None => sysctl("tcp_keepalive_probes")?,
    };
    set_keepalive(
        fd,
        &KeepAlive {
            idle: Some(idle),
            interval: Some(interval),
            probes: Some(probes),
            user_timeout: Some(ka.user_timeout.unwrap_or_default()),
        },
    )
}

/// TCP_NODELAY, keepalive (unset values written as the kernel's defaults) and SO_LINGER, as
/// on a listener for the sockets it accepts, or on one such socket made before.
pub(crate) fn set_accepted_options(
    fd: BorrowedFd<'_>,
    o: &crate::net::AcceptedOptions,
) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, o.nodelay.into())?;
    set_inherited_keepalive(fd, &o.keepalive)?;
    set_linger(fd, o.nolinger)
}

pub(crate) fn set_reuse(fd: BorrowedFd<'_>, reuseport: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if reuseport {
        setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    }
    Ok(())
}

pub(crate) fn set_v6only(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on as libc::c_int)
}

/// SO_LINGER on with a zero timeout (close() resets the connection), or off (the default:
/// close() lingers in the background).
pub(crate) fn set_linger(fd: BorrowedFd<'_>, reset_on_close: bool) -> io::Result<()> {
    let l = libc::linger {
        l_onoff: reset_on_close.into(),
        l_linger: 0,
    };
    // SAFETY: a valid fd and a pointer to a linger struct of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether bytes (or EOF, or an error) are waiting on the socket, without consuming them.
pub(crate) fn has_input(fd: BorrowedFd<'_>) -> bool {
    let mut byte = 0u8;
    // SAFETY: a nonblocking peek of at most one byte into a local.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n >= 0 {
        return true;
    }
    let e = io::Error::last_os_error();
    e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted
}
