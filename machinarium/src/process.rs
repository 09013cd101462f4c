//! Process-level helpers that need the OS directly: daemonizing, descriptors kept across
//! exec, signals to other processes.

use std::io;

/// Forks into the background: the parent exits 0, the child starts a new session and points
/// stdin/stdout/stderr at /dev/null. Must be called before any thread is started (a fork
/// keeps only the calling thread).
pub fn daemonize() -> io::Result<()> {
    // SAFETY: fork(2) before any other thread exists (the caller's contract), so the child
    // has a consistent copy of the process; the parent leaves with _exit (no atexit handlers
    // or destructors run twice).
    match unsafe { libc::fork() } {
        -1 => return Err(io::Error::last_os_error()),
        0 => {}
        // SAFETY: _exit is always safe to call.
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: setsid in the child, which is not a process group leader after fork.
    if unsafe { libc::setsid() } == -1 {
        return Err(io::Error::last_os_error());
    }
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    use std::os::fd::AsRawFd;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, from a valid open fd.
        if unsafe { libc::dup2(devnull.as_raw_fd(), fd) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Lets a descriptor survive `exec` (`on`) or closes it there (the default for ours): how an
/// online restart hands its listening sockets to the new process.
pub fn set_inheritable(fd: std::os::fd::RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl F_GETFD/F_SETFD only read and set the close-on-exec flag of the
    // descriptor; an invalid fd makes it fail with EBADF, which is returned.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags & !libc::FD_CLOEXEC
    } else {
        flags | libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: u32, signal: i32) -> io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers and has no memory effects in this process.
    if unsafe { libc::kill(pid, signal) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
