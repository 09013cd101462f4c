//! Process-level helpers that need the OS directly: daemonizing.

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
