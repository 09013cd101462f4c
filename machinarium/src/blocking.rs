//! A pool of OS threads for calls that block the thread (DNS, PAM, LDAP). The calling
//! coroutine parks until the answer or its deadline; a late answer is dropped harmlessly
//! (upstream's task manager had to wait forever instead).

use std::collections::VecDeque;
use std::net::{SocketAddr, ToSocketAddrs};
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
