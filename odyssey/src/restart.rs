//! Online restart (spec §9.6, and beyond it): SIGUSR2 starts the binary again, with the same
//! path and arguments, and hands it the listening sockets themselves
//! (`machinarium::net::handover`) rather than letting it bind new ones beside them: both
//! processes then hold the same sockets, so a connection in the accept queue is never refused.
//! Once the new process listens it sends SIGTERM to the old one, which stops accepting, leaves
//! the unix socket files to the new process and drains its clients as in a graceful shutdown.
//! A new process that fails (a broken config, say) changes nothing: the old one goes on.

use std::os::fd::{OwnedFd, RawFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use machinarium::net::handover;

use crate::instance::Instance;
use crate::{od_error, od_info};

/// The old process's pid, for the new one.
pub const PARENT_VAR: &str = "ODY_INHERIT_PPID";
/// The listening sockets handed over (`key=fd;...`).
pub const LISTENERS_VAR: &str = "ODY_INHERIT_LISTENERS";

/// What a process got from the one that started it, if any.
#[derive(Default)]
pub struct Inherited {
    /// The old process, to stop once this one listens.
    pub parent: Option<u32>,
    listeners: Mutex<Vec<(String, OwnedFd)>>,
}

impl Inherited {
    /// Reads what the environment hands over (the sockets are taken once per process).
    pub fn from_env() -> Inherited {
        let parent = std::env::var(PARENT_VAR).ok().and_then(|p| p.parse().ok());
        Inherited {
            parent,
            listeners: Mutex::new(handover::import(LISTENERS_VAR)),
        }
    }

    /// The socket handed over for `key` (`tcp:<addr>` or `unix:<path>`), if any.
    pub fn take(&self, key: &str) -> Option<OwnedFd> {
        let mut l = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        let i = l.iter().position(|(k, _)| k == key)?;
        Some(l.swap_remove(i).1)
    }

    /// Closes the sockets no listen section took (the config changed).
    pub fn close_rest(&self) {
        self.listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// The listening sockets a restart would hand over, and whether a new process runs.
pub struct Restarter {
    listeners: Vec<(String, RawFd)>,
    child: Arc<AtomicBool>,
    /// Set once a new process has taken over: the unix socket files are its now.
    pub handed_over: Arc<AtomicBool>,
}

impl Restarter {
    /// A restarter for the bound listeners (`key`, descriptor).
    pub fn new(listeners: Vec<(String, RawFd)>) -> Restarter {
        Restarter {
            listeners,
            child: Arc::default(),
            handed_over: Arc::default(),
        }
    }

    /// SIGUSR2: starts the new process, unless restarts are off, one is under way, or this
    /// process is itself new and its parent still runs.
    pub fn begin(&self, inst: &Instance, parent: Option<u32>) {
        let refusal = if !inst.config().config.global.enable_online_restart {
            Some("enable_online_restart is off")
        } else if self.child.load(Ordering::Acquire) {
            Some("a new process is already starting")
        } else if parent.is_some_and(|p| p == std::os::unix::process::parent_id()) {
            Some("the previous process has not finished yet")
        } else {
            None
        };
        if let Some(why) = refusal {
            od_error!(
                inst.logger,
                "restart",
                None,
                None,
                "online restart refused: {why}"
            );
            return;
        }
        match self.spawn() {
            Ok(child) => self.watch(inst, child),
            Err(e) => od_error!(
                inst.logger,
                "restart",
                None,
                None,
                "online restart failed: {e}"
            ),
        }
    }

    fn spawn(&self) -> std::io::Result<std::process::Child> {
        let mut args = std::env::args_os();
        let program = args.next().ok_or(std::io::ErrorKind::NotFound)?;
        let value = handover::export(&self.listeners)?;
        let child = Command::new(program)
            .args(args)
            .env(PARENT_VAR, std::process::id().to_string())
            .env(LISTENERS_VAR, value)
            .spawn();
        handover::keep_private(&self.listeners);
        child
    }

    /// Waits for the new process on a thread of its own: one that exits while this process
    /// still runs failed, and a later SIGUSR2 may try again.
    fn watch(&self, inst: &Instance, mut child: std::process::Child) {
        let pid = child.id();
        od_info!(
            inst.logger,
            "restart",
            None,
            None,
            "online restart: new process {pid} started"
        );
        self.child.store(true, Ordering::Release);
        let running = self.child.clone();
        let logger = inst.logger.clone();
        let spawned = std::thread::Builder::new()
            .name("restart".into())
            .spawn(move || {
                let status = child.wait();
                running.store(false, Ordering::Release);
                od_info!(
                    logger,
                    "restart",
                    None,
                    None,
                    "new process {pid} exited: {status:?}"
                );
            });
        if let Err(e) = spawned {
            od_error!(
                inst.logger,
                "restart",
                None,
                None,
                "cannot watch process {pid}: {e}"
            );
        }
    }

    /// SIGTERM arrived: if it came from a running new process, the sockets are its now;
    /// returns whether they are.
    pub fn stopping(&self) -> bool {
        let handed_over = self.child.load(Ordering::Acquire);
        if handed_over {
            self.handed_over.store(true, Ordering::Release);
        }
        handed_over
    }
}

/// The new process listens: the old one may go (`stop` is SIGTERM's number).
pub fn listening(inst: &Instance, parent: Option<u32>, stop: i32) {
    let Some(pid) = parent else {
        return;
    };
    match machinarium::process::send_signal(pid, stop) {
        Ok(()) => od_info!(
            inst.logger,
            "restart",
            None,
            None,
            "took over from process {pid}"
        ),
        Err(e) => od_error!(
            inst.logger,
            "restart",
            None,
            None,
            "cannot stop process {pid}: {e}"
        ),
    }
}
