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

/// Sets the nice value of the calling thread (`setpriority(PRIO_PROCESS, 0, nice)`). Linux
/// keeps a nice value per thread and new threads inherit their creator's, so called before
/// any thread starts this sets the whole process.
pub fn set_priority(nice: i32) -> io::Result<()> {
    // SAFETY: setpriority(2) takes plain integers and has no memory effects in this process;
    // `0` names the calling thread.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to the CPUs numbered in `cpus` (`sched_setaffinity`).
pub fn pin_to_cpus(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array for which all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: CPU_SET writes one bit of `set`; `cpu` is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
