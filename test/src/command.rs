//! Running a program to completion under a deadline, with its output captured.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How often a running child is polled for exit.
const POLL: Duration = Duration::from_millis(10);

/// What a finished program printed, and how it exited.
#[derive(Debug)]
pub struct Output {
    /// The exit status.
    pub status: ExitStatus,
    /// Everything written to stdout, lossily decoded as UTF-8.
    pub stdout: String,
    /// Everything written to stderr, lossily decoded as UTF-8.
    pub stderr: String,
}

impl Output {
    /// Whether the program exited with status 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// stderr then stdout, for error messages.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stderr, self.stdout)
    }

    /// `Ok(self)` on success, else [`Error::Failed`] naming `program`.
    pub fn check(self, program: &str) -> Result<Output> {
        if self.success() {
            Ok(self)
        } else {
            Err(Error::Failed {
                program: program.to_string(),
                status: self.status,
                output: self.combined(),
            })
        }
    }
}

/// Runs `cmd` with stdin closed, waits at most `timeout` for it to exit, and returns its
/// output whatever the exit status. On timeout the child is killed and [`Error::Timeout`] is
/// returned. `program` names it in errors.
pub fn run(mut cmd: Command, program: &str, timeout: Duration) -> Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io(format!("spawn {program}"), e))?;
    // Pipes are drained on threads so a chatty child never blocks on a full pipe.
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => thread::sleep(POLL),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::io(format!("wait for {program}"), e));
            }
        }
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    // The child is gone, but a grandchild it left behind may still hold the pipes open;
    // give the readers a bounded time and take what they have.
    let stdout = stdout.map(join).unwrap_or_default();
    let stderr = stderr.map(join).unwrap_or_default();
    match status {
        Some(status) => Ok(Output {
            status,
            stdout,
            stderr,
        }),
        None => Err(Error::Timeout {
            program: program.to_string(),
            after: timeout,
            output: format!("{stdout}{stderr}"),
        }),
    }
}

/// A pipe being read to its end on its own thread.
struct Drain {
    handle: thread::JoinHandle<Vec<u8>>,
}

fn drain(mut pipe: impl Read + Send + 'static) -> Drain {
    let handle = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    });
    Drain { handle }
}

/// How long a reader may outlive its child (a grandchild holding the pipe).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

fn join(drain: Drain) -> String {
    let deadline = Instant::now() + DRAIN_GRACE;
    while !drain.handle.is_finished() && Instant::now() < deadline {
        thread::sleep(POLL);
    }
    if !drain.handle.is_finished() {
        // Leave the thread blocked on the pipe; it ends when the grandchild closes it.
        return String::from("<output still open: a child process kept the pipe>");
    }
    match drain.handle.join() {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    }
}
