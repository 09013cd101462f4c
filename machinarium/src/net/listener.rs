//! Listening sockets (TCP v4/v6 and Unix) and accept with a deadline.
//!
//! `accept` returns a [`DetachedStream`]: the new socket is not registered with the accepting
//! machine, because it is usually handed straight to a worker machine.

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::machine;
use crate::net::socket::{self, KeepAlive, Socket};
use crate::net::stream::{DetachedStream, wait_io};
use crate::reactor::{IoKey, READ};
use crate::timer::Deadline;

/// How to set up a listening socket.
#[derive(Clone, Debug)]
pub struct ListenOptions {
    /// listen(2) backlog.
    pub backlog: i32,
    /// SO_REUSEPORT (Odyssey's `bindwith_reuseport`).
    pub reuseport: bool,
    /// For IPv6 addresses: accept IPv6 only (so that a v4 and a v6 socket can share a port).
    pub v6only: bool,
    /// For Unix sockets: the file mode (Odyssey's `unix_socket_mode`).
    pub unix_mode: Option<u32>,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: 128,
            reuseport: false,
            v6only: true,
            unix_mode: None,
        }
    }
}

/// Who connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A Unix-socket peer.
    Unix,
}

/// What every socket a TCP listener accepts starts with (see
/// [`Listener::set_accepted_options`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptedOptions {
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// TCP keepalive.
    pub keepalive: KeepAlive,
    /// SO_LINGER with a zero timeout (close resets), or lingering as usual.
    pub nolinger: bool,
}

// mio's listeners accept with accept4(SOCK_NONBLOCK): no fcntl per connection.
#[derive(Debug)]
enum ListenSocket {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener, PathBuf),
}

/// A listening socket registered with the current machine. `!Send`.
#[derive(Debug)]
pub struct Listener {
    sock: ListenSocket,
    io: IoKey,
    emptied: Cell<bool>,
    _local: PhantomData<*const ()>,
}

impl Listener {
    /// Binds a TCP listener on `addr` (port 0 picks a free port).
    pub fn bind(addr: SocketAddr, opts: &ListenOptions) -> Result<Listener> {
        let sock = ListenSocket::Tcp(mio::net::TcpListener::from_std(bind_tcp(addr, opts)?));
        Listener::register(sock)
    }

    /// Binds a Unix listener at `path`, replacing a stale socket file there.
    pub fn bind_unix(path: &Path, opts: &ListenOptions) -> Result<Listener> {
        if path.exists() {
            std::fs::remove_file(path)?;
        }
        let l = UnixListener::bind(path)?;
        l.set_nonblocking(true)?;
        // SAFETY: listen(2) on our own bound socket; re-listening only updates the backlog.
        if unsafe { libc::listen(l.as_raw_fd(), opts.backlog) } != 0 {
            return Err(io::Error::last_os_error().into());
        }
        if let Some(mode) = opts.unix_mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        }
        let l = mio::net::UnixListener::from_std(l);
        Listener::register(ListenSocket::Unix(l, path.to_path_buf()))
    }

    /// Registers a TCP listener set up elsewhere (nonblocking already).
    pub(crate) fn from_tcp(l: TcpListener) -> Result<Listener> {
        Listener::register(ListenSocket::Tcp(mio::net::TcpListener::from_std(l)))
    }

    /// Registers a Unix listener set up elsewhere (nonblocking already); its socket file is
    /// removed when the listener goes, unless `keep_file` was called.
    pub(crate) fn from_unix(l: UnixListener) -> Result<Listener> {
        let path = l
            .local_addr()?
            .as_pathname()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let l = mio::net::UnixListener::from_std(l);
        Listener::register(ListenSocket::Unix(l, path))
    }

    /// Leaves the socket file of a Unix listener in place when the listener goes (another
    /// process took the socket over).
    pub fn keep_file(&mut self) {
        if let ListenSocket::Unix(_, path) = &mut self.sock {
            *path = PathBuf::new();
        }
    }

    fn register(sock: ListenSocket) -> Result<Listener> {
        let m = machine::current().ok_or(Error::NotInCoroutine)?;
        let fd = match &sock {
            ListenSocket::Tcp(l) => l.as_raw_fd(),
            ListenSocket::Unix(l, _) => l.as_raw_fd(),
        };
        let io = m.reactor.register(fd)?;
        Ok(Listener {
            sock,
            io,
            emptied: Cell::new(false),
            _local: PhantomData,
        })
    }

    /// Sets TCP_NODELAY, keepalive and SO_LINGER on a TCP listener. Linux copies a listener's
    /// socket options into each socket it accepts, so these then cost no system call per
    /// connection; connections already waiting to be accepted keep what they had (see
    /// [`Listener::emptied_since`]). Values an earlier call set are all overwritten. Unix
    /// listeners: nothing to set.
    pub fn set_accepted_options(&self, o: &AcceptedOptions) -> Result<()> {
        match &self.sock {
            ListenSocket::Tcp(l) => Ok(socket::set_accepted_options(l.as_fd(), o)?),
            ListenSocket::Unix(..) => Ok(()),
        }
    }

    /// Whether an accept found no connection waiting since the last call: the connections
    /// accepted after that were all made after this call.
    pub fn emptied_since(&self) -> bool {
        self.emptied.replace(false)
    }

    /// The bound TCP address (None for Unix listeners).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.sock {
            ListenSocket::Tcp(l) => l.local_addr().ok(),
            ListenSocket::Unix(..) => None,
        }
    }

    /// Accepts one connection within the deadline. Transient errors (the peer reset before
    /// accept, network down) are retried; running out of descriptors waits a little and
    /// retries instead of spinning.
    pub fn accept(&self, deadline: impl Into<Deadline>) -> Result<(DetachedStream, PeerAddr)> {
        let deadline = deadline.into();
        loop {
            match self.try_accept() {
                Ok(pair) => return Ok(pair),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.emptied.set(true);
                    wait_io(self.io, READ, deadline)?
                }
                Err(e) if retryable(&e) => {}
                Err(e) if out_of_fds(&e) => {
                    if deadline.expired() {
                        return Err(Error::TimedOut);
                    }
                    crate::sleep(Duration::from_millis(10))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn try_accept(&self) -> io::Result<(DetachedStream, PeerAddr)> {
        match &self.sock {
            ListenSocket::Tcp(l) => {
                let (s, addr) = l.accept()?;
                let s = std::net::TcpStream::from(s);
                Ok((DetachedStream::new(Socket::Tcp(s)), PeerAddr::Tcp(addr)))
            }
            ListenSocket::Unix(l, _) => {
                let (s, _) = l.accept()?;
                let s = std::os::unix::net::UnixStream::from(s);
                Ok((DetachedStream::new(Socket::Unix(s)), PeerAddr::Unix))
            }
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match &self.sock {
            ListenSocket::Tcp(l) => l.as_raw_fd(),
            ListenSocket::Unix(l, _) => l.as_raw_fd(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(m) = machine::current() {
            drop(m.reactor.deregister(self.as_raw_fd(), self.io));
        }
        if let ListenSocket::Unix(_, path) = &self.sock
            && !path.as_os_str().is_empty()
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Errors after which accept should simply try again (machinarium's retryable set).
fn retryable(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::EINTR
                | libc::ECONNABORTED
                | libc::ENETDOWN
                | libc::EPROTO
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}

fn out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// socket + options + bind + listen, so that SO_REUSEPORT and IPV6_V6ONLY are set before bind.
fn bind_tcp(addr: SocketAddr, opts: &ListenOptions) -> io::Result<TcpListener> {
    let family = if addr.is_ipv6() {
        libc::AF_INET6
    } else {
        libc::AF_INET
    };
    // SAFETY: plain socket(2); the result is checked and owned right away.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nobody else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    socket::set_reuse(owned.as_fd(), opts.reuseport)?;
    if addr.is_ipv6() {
        socket::set_v6only(owned.as_fd(), opts.v6only)?;
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for this family.
    if unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen(2) on our bound socket.
    if unsafe { libc::listen(fd, opts.backlog) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(TcpListener::from(owned))
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}
