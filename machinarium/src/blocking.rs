//! A pool of OS threads for calls that block the thread (DNS, PAM, LDAP). The calling
//! coroutine parks until the answer or its deadline; a late answer is dropped harmlessly
//! (upstream's task manager had to wait forever instead).

use std::collections::VecDeque;
use std::ffi::{CStr, c_char, c_int};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crate::coroutine::{Oneshot, lock};
use crate::error::{Error, Result};
use crate::timer::Deadline;

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    jobs: Mutex<(VecDeque<Job>, bool)>,
    ready: Condvar,
}

/// A fixed set of threads running blocking jobs. Cloning shares the pool; the threads exit
/// when the last clone is dropped.
#[derive(Clone)]
pub struct BlockingPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    queue: Arc<Queue>,
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        lock(&self.queue.jobs).1 = true;
        self.queue.ready.notify_all();
    }
}

impl BlockingPool {
    /// Starts `threads` threads (at least one), named `name`.
    pub fn new(name: &str, threads: usize) -> std::io::Result<BlockingPool> {
        let queue = Arc::new(Queue {
            jobs: Mutex::new((VecDeque::new(), false)),
            ready: Condvar::new(),
        });
        for i in 0..threads.max(1) {
            let q = queue.clone();
            thread::Builder::new()
                .name(format!("{name}{i}"))
                .spawn(move || worker(&q))?;
        }
        Ok(BlockingPool {
            inner: Arc::new(PoolInner { queue }),
        })
    }

    /// Runs `f` on a pool thread; the calling coroutine waits until it is done or the deadline.
    pub fn run<F, R>(&self, deadline: impl Into<Deadline>, f: F) -> Result<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let slot = Oneshot::new();
        let out = slot.clone();
        let job: Job =
            Box::new(
                move || match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                    Ok(v) => out.send(v),
                    Err(_) => out.close(),
                },
            );
        {
            let mut jobs = lock(&self.inner.queue.jobs);
            jobs.0.push_back(job);
        }
        self.inner.queue.ready.notify_one();
        slot.recv(deadline.into())
    }

    /// Resolves `host:port` on the pool, within the deadline.
    pub fn resolve(
        &self,
        host: &str,
        port: u16,
        deadline: impl Into<Deadline>,
    ) -> Result<Vec<SocketAddr>> {
        let target = format!("{host}:{port}");
        self.run(deadline, move || {
            target.to_socket_addrs().map(|it| it.collect::<Vec<_>>())
        })?
        .map_err(Error::Io)
    }

    /// The host name of `ip` by reverse DNS (getnameinfo, a name required) on the pool,
    /// within the deadline; `None` when the address has no name.
    pub fn reverse(&self, ip: IpAddr, deadline: impl Into<Deadline>) -> Result<Option<String>> {
        self.run(deadline, move || reverse_lookup(ip))
    }
}

// getnameinfo(3), which the libc crate does not declare for every Linux target.
unsafe extern "C" {
    fn getnameinfo(
        sa: *const libc::sockaddr,
        salen: libc::socklen_t,
        host: *mut c_char,
        hostlen: libc::socklen_t,
        serv: *mut c_char,
        servlen: libc::socklen_t,
        flags: c_int,
    ) -> c_int;
}

/// `NI_NAMEREQD` of glibc and musl: fail rather than answer the address itself.
const NI_NAMEREQD: c_int = 8;

/// getnameinfo for `ip` (blocking).
fn reverse_lookup(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => name_of(&libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.octets()),
            },
            sin_zero: [0; 8],
        }),
        IpAddr::V6(v6) => name_of(&libc::sockaddr_in6 {
            sin6_family: libc::AF_INET6 as libc::sa_family_t,
            sin6_port: 0,
            sin6_flowinfo: 0,
            sin6_addr: libc::in6_addr {
                s6_addr: v6.octets(),
            },
            sin6_scope_id: 0,
        }),
    }
}

/// The socket address types getnameinfo takes here (a sealed list).
trait SockAddr {}
impl SockAddr for libc::sockaddr_in {}
impl SockAddr for libc::sockaddr_in6 {}

/// The name getnameinfo gives `sa`, if it has one.
fn name_of<T: SockAddr>(sa: &T) -> Option<String> {
    // NI_MAXHOST.
    let mut host = [0 as c_char; 1025];
    let len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `sa` is a whole sockaddr_in or sockaddr_in6 (the only SockAddr types) of `len`
    // bytes whose family field matches; `host` is a writable buffer of its length; no
    // service buffer is asked for.
    let rc = unsafe {
        getnameinfo(
            (sa as *const T).cast(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo left a NUL-terminated name inside `host`.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

fn worker(q: &Queue) {
    block_all_signals();
    loop {
        let job = {
            let mut jobs = lock(&q.jobs);
            loop {
                if let Some(job) = jobs.0.pop_front() {
                    break job;
                }
                if jobs.1 {
                    return;
                }
                jobs = q.ready.wait(jobs).unwrap_or_else(|p| p.into_inner());
            }
        };
        job();
    }
}

/// Pool threads take no signals: those belong to the machine that waits for them.
fn block_all_signals() {
    // SAFETY: sigfillset fills a local set; pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigdelset(&mut set, libc::SIGSEGV);
        libc::sigdelset(&mut set, libc::SIGBUS);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
