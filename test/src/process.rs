//! Processes the harness did not spawn itself (a postmaster and its children): find them in
//! `/proc`, signal them with `kill(1)`, and wait for them to go, all without libc.

use std::fs;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// A signal the harness sends, by its `kill -s` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGHUP: reload the configuration.
    Hup,
    /// SIGINT: fast shutdown for PostgreSQL.
    Int,
    /// SIGTERM: graceful shutdown.
    Term,
    /// SIGQUIT: immediate shutdown for PostgreSQL.
    Quit,
    /// SIGKILL: cannot be caught.
    Kill,
    /// SIGUSR2: online restart for odyssey.
    Usr2,
}

impl Signal {
    /// The name `kill -s` takes.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Hup => "HUP",
            Signal::Int => "INT",
            Signal::Term => "TERM",
            Signal::Quit => "QUIT",
            Signal::Kill => "KILL",
            Signal::Usr2 => "USR2",
        }
    }
}

/// Sends `signal` to `pid` with `kill(1)`; true if `kill` reported success.
pub fn send_signal(pid: u32, signal: Signal) -> bool {
    Command::new("kill")
        .args(["-s", signal.name(), &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Whether `pid` is a live process (exists in `/proc` and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the command name, which is wrapped in parentheses and may
        // itself contain spaces or parentheses, so look after the last ')'.
        Ok(stat) => match stat.rfind(')') {
            Some(end) => !matches!(stat[end + 1..].trim_start().chars().next(), Some('Z' | 'X')),
            None => true,
        },
        Err(_) => false,
    }
}

/// The live processes whose parent is `parent`.
pub fn children(parent: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| parent_of(pid) == Some(parent) && alive(pid))
        .collect()
}

/// The live processes whose command line contains `needle` (what `pgrep -f` matches).
pub fn matching_cmdline(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me && alive(pid))
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    let line: Vec<u8> = raw
                        .into_iter()
                        .map(|b| if b == 0 { b' ' } else { b })
                        .collect();
                    String::from_utf8_lossy(&line).contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Waits until none of `pids` is alive, polling until `timeout`; true if they all went.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|&pid| !alive(pid)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Stops the process it names when dropped (SIGTERM, then SIGKILL after 10 s): for processes
/// a test started indirectly, such as the new process of an online restart.
pub struct Stopper(pub Option<u32>);

impl Drop for Stopper {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            send_signal(pid, Signal::Term);
            if !wait_gone(&[pid], Duration::from_secs(10)) {
                kill_all(&[pid], Duration::from_secs(5));
            }
        }
    }
}

/// SIGKILLs every live process in `pids` and waits (bounded) for them to go.
pub fn kill_all(pids: &[u32], timeout: Duration) -> bool {
    for &pid in pids.iter().filter(|&&pid| alive(pid)) {
        send_signal(pid, Signal::Kill);
    }
    wait_gone(pids, timeout)
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

fn parent_of(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("PPid:"))
        .and_then(|ppid| ppid.trim().parse().ok())
}
