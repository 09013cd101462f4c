//! The system machine: listeners and accept loops handing clients round-robin to the worker
//! machines, the cron coroutine, signals (reload, log reopen, graceful shutdown).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use machinarium::net::{AcceptedOptions, ListenOptions, Listener};
use machinarium::{Deadline, MachineConfig, MachineHandle, SignalFd};

use crate::config::Global;
use crate::frontend::{self, Accepted};
use crate::instance::Instance;
use crate::logger::Logger;
use crate::restart::{self, Inherited, Restarter};
use crate::{control, cron, host_watcher, listeners, metrics, notify, oom, watchdog};
use crate::{od_error, od_info};

/// The signals the pooler handles; blocked in every thread, read through a signalfd.
pub const SIGNALS: &[i32] = &[
    libc_signals::SIGHUP,
    libc_signals::SIGTERM,
    libc_signals::SIGINT,
    libc_signals::SIGUSR1,
    libc_signals::SIGUSR2,
];

/// Signal numbers (Linux), without a libc dependency in this crate.
pub mod libc_signals {
    /// Reload the config.
    pub const SIGHUP: i32 = 1;
    /// Graceful shutdown.
    pub const SIGINT: i32 = 2;
    /// Reopen the log file.
    pub const SIGUSR1: i32 = 10;
    /// Graceful shutdown.
    pub const SIGTERM: i32 = 15;
    /// Online restart.
    pub const SIGUSR2: i32 = 12;
}

fn machine_config(g: &Global) -> MachineConfig {
    MachineConfig {
        stack_pages: g.coroutine_stack_size.max(4) as usize,
        coroutine_cache: g.cache_coroutine as usize,
        ..MachineConfig::default()
    }
}

/// `cpu_affinity`: pins the calling worker's thread; a failure is logged, as upstream.
fn pin_worker(logger: &Logger, worker: usize, cpus: &[usize]) {
    match machinarium::process::pin_to_cpus(cpus) {
        Ok(()) => od_info!(
            logger,
            "worker_init",
            None,
            None,
            "pin worker {worker} to cpu {cpus:?}"
        ),
        Err(e) => od_error!(
            logger,
            "worker_init",
            None,
            None,
            "can't set worker cpu affinity: {e}"
        ),
    }
}

/// Starts the worker machines and the system machine; returns the exit code when the system
/// machine is done (graceful shutdown: 0; startup failure: 1; shutdown timeout: 124).
pub fn run(inst: Arc<Instance>, inherited: Inherited) -> i32 {
    let snapshot = inst.config();
    let g = &snapshot.config.global;
    let count = g.worker_threads() as usize;
    let mut workers = Vec::with_capacity(count);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for i in 0..count {
        let pin = g
            .cpu_affinity
            .as_ref()
            .and_then(|a| a.worker(i as u32, cpus));
        let logger = inst.logger.clone();
        match machinarium::machine_create(&format!("worker: {i}"), machine_config(g), move || {
            if let Some(set) = pin {
                pin_worker(&logger, i, &set);
            }
            // Workers wait for clients; their work arrives as spawns.
            let _ = machinarium::sleep(Duration::MAX);
        }) {
            Ok(w) => workers.push(w),
            Err(e) => {
                od_error!(
                    inst.logger,
                    "system",
                    None,
                    None,
                    "cannot start worker {i}: {e}"
                );
                return 1;
            }
        }
    }
    inst.set_machines(workers.clone(), None);
    let (code_tx, code_rx) = std::sync::mpsc::channel();
    let sys_inst = inst.clone();
    let sys_workers = workers.clone();
    let system = machinarium::machine_create("system", machine_config(g), move || {
        let code = system_main(sys_inst, sys_workers, inherited);
        let _ = code_tx.send(code);
    });
    let code = match system {
        Ok(system) => {
            inst.set_machines(Vec::new(), Some(system.clone()));
            let _ = system.join();
            code_rx.recv().unwrap_or(1)
        }
        Err(e) => {
            od_error!(
                inst.logger,
                "system",
                None,
                None,
                "cannot start the system machine: {e}"
            );
            1
        }
    };
    for w in &workers {
        w.stop();
    }
    for w in &workers {
        let _ = w.join();
    }
    code
}

fn system_main(inst: Arc<Instance>, workers: Vec<MachineHandle>, inherited: Inherited) -> i32 {
    let signals = match SignalFd::new(SIGNALS) {
        Ok(s) => s,
        Err(e) => {
            od_error!(inst.logger, "system", None, None, "signalfd: {e}");
            return 1;
        }
    };
    let listeners = match listeners::bind_all(&inst, &inherited) {
        Ok(l) => l,
        Err(e) => {
            od_error!(inst.logger, "system", None, None, "{e}");
            return 1;
        }
    };
    inherited.close_rest();
    let restarter = Restarter::new(
        listeners
            .iter()
            .map(|(_, key, l)| (key.clone(), l.as_raw_fd()))
            .collect(),
    );
    let workers: Arc<[MachineHandle]> = workers.into();
    let accepts = start_accepting(&inst, listeners, &workers, &restarter.handed_over);
    // systemd must learn the new MAINPID before the old process says STOPPING=1, or it
    // takes the whole service for stopping: ready first, then the predecessor is told to go.
    notify::ready();
    restart::listening(&inst, inherited.parent, libc_signals::SIGTERM);
    let cron_inst = inst.clone();
    let cron = machinarium::spawn(move || cron::run(cron_inst));
    let groups_inst = inst.clone();
    let groups = machinarium::spawn(move || cron::check_groups(groups_inst));
    let watchdog_inst = inst.clone();
    let watchdog = machinarium::spawn(move || watchdog::run(watchdog_inst));
    let oom_inst = inst.clone();
    let oom = machinarium::spawn(move || oom::run(oom_inst));
    let host_inst = inst.clone();
    let host = machinarium::spawn(move || host_watcher::run(host_inst));
    let metrics = match bind_metrics(&inst) {
        Ok(listener) => listener.map(|l| {
            let inst = inst.clone();
            machinarium::spawn(move || metrics::http::serve(inst, l))
        }),
        Err(e) => {
            od_error!(inst.logger, "system", None, None, "{e}");
            return 1;
        }
    };
    od_info!(
        inst.logger,
        "system",
        None,
        None,
        "odyssey {} started, {} worker(s)",
        env!("CARGO_PKG_VERSION"),
        workers.len()
    );
    if inst.config().config.global.log.config {
        control::log_config(&inst, true);
    }
    let stop = Stop {
        signals: &signals,
        workers: &workers,
        accepts: &accepts,
        restarter: &restarter,
        parent: inherited.parent,
    };
    let code = signal_loop(&inst, &stop);
    for a in &accepts {
        a.cancel();
    }
    cron.cancel();
    groups.cancel();
    watchdog.cancel();
    oom.cancel();
    host.cancel();
    if let Some(m) = metrics {
        m.cancel();
    }
    code
}

/// The `promhttp_server_port` listener, on every address (as upstream's), if configured.
fn bind_metrics(inst: &Instance) -> Result<Option<Listener>, String> {
    let Some(port) = inst.config().config.global.promhttp_server_port else {
        return Ok(None);
    };
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
    let listener = Listener::bind(addr, &ListenOptions::default())
        .map_err(|e| format!("cannot listen for metrics on {addr}: {e}"))?;
    od_info!(
        inst.logger,
        "system",
        None,
        None,
        "metrics on http://{addr}/metrics"
    );
    Ok(Some(listener))
}

/// Waits for signals until a shutdown completes.
/// What the signal loop acts on.
struct Stop<'a> {
    signals: &'a SignalFd,
    workers: &'a [MachineHandle],
    accepts: &'a [machinarium::JoinHandle<()>],
    restarter: &'a Restarter,
    /// The process this one took over from, if it is still around.
    parent: Option<u32>,
}

/// One accept coroutine per bound listener.
fn start_accepting(
    inst: &Arc<Instance>,
    listeners: Vec<(usize, String, Listener)>,
    workers: &Arc<[MachineHandle]>,
    handed_over: &Arc<std::sync::atomic::AtomicBool>,
) -> Vec<machinarium::JoinHandle<()>> {
    listeners
        .into_iter()
        .map(|(listen, _, listener)| {
            let (inst, workers) = (inst.clone(), workers.clone());
            let handed_over = handed_over.clone();
            machinarium::spawn(move || {
                let mut listener = listener;
                accept_loop(inst, &listener, listen, workers);
                // Stopped: a new process that took the socket over keeps its file.
                if handed_over.load(Ordering::Acquire) {
                    listener.keep_file();
                }
            })
        })
        .collect()
}

fn signal_loop(inst: &Arc<Instance>, stop: &Stop<'_>) -> i32 {
    let (signals, workers) = (stop.signals, stop.workers);
    let mut sigterms = 0;
    let mut drain: Option<machinarium::JoinHandle<i32>> = None;
    loop {
        if let Some(d) = drain.take_if(|d| d.is_finished()) {
            return d.join(Deadline::Never).unwrap_or(1);
        }
        let sig = match received(signals.wait(Duration::from_millis(100))) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                // Without signals the pooler could never be stopped or reloaded.
                od_error!(inst.logger, "system", None, None, "signal wait failed: {e}");
                return 1;
            }
        };
        match sig {
            libc_signals::SIGHUP => control::reload(inst),
            libc_signals::SIGUSR2 => stop.restarter.begin(inst, stop.parent),
            libc_signals::SIGUSR1 => {
                if let Err(e) = inst.logger.reopen() {
                    od_error!(inst.logger, "system", None, None, "log reopen: {e}");
                }
            }
            _ => {
                sigterms += 1;
                let max = inst.config().config.global.max_sigterms_to_die;
                if drain.is_none() {
                    notify::stopping();
                    // Stop accepting now: new clients go to a new process, or are refused.
                    if stop.restarter.stopping() {
                        inst.handed_over.store(true, Ordering::Release);
                    }
                    for a in stop.accepts {
                        a.cancel();
                    }
                    let (inst, workers) = (inst.clone(), workers.to_vec());
                    drain = Some(machinarium::spawn(move || shutdown(&inst, &workers)));
                } else if max > 0 && sigterms >= max {
                    od_info!(
                        inst.logger,
                        "system",
                        None,
                        None,
                        "signal {sig} received {sigterms} times, exiting"
                    );
                    // As upstream: a forced exit waits for nothing (a client in a long query
                    // would otherwise hold the machines, and the process, until it finishes).
                    inst.logger.flush();
                    std::process::exit(1);
                }
            }
        }
    }
}

/// The outcome of one signalfd wait: a signal, none yet (the wait timed out), or an error
/// that ends the signal loop (which then exits non-zero).
fn received(wait: Result<i32, machinarium::Error>) -> Result<Option<i32>, machinarium::Error> {
    match wait {
        Ok(sig) => Ok(Some(sig)),
        Err(machinarium::Error::TimedOut) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Graceful shutdown (spec §9.5): stop accepting, tell idle clients, wait for the rest.
fn shutdown(inst: &Arc<Instance>, workers: &[MachineHandle]) -> i32 {
    od_info!(
        inst.logger,
        "system",
        None,
        None,
        "graceful shutdown started"
    );
    inst.shutting_down.store(true, Ordering::Release);
    let timeout = inst.config().config.global.graceful_shutdown_timeout;
    let started = Instant::now();
    loop {
        for w in workers {
            w.wake_parked();
        }
        if inst.clients.load(Ordering::Acquire) == 0 {
            od_info!(
                inst.logger,
                "system",
                None,
                None,
                "all clients are gone, exiting"
            );
            inst.logger.flush();
            return 0;
        }
        if !timeout.is_zero() && started.elapsed() >= timeout {
            od_info!(
                inst.logger,
                "system",
                None,
                None,
                "graceful shutdown timed out, exiting"
            );
            inst.logger.flush();
            return 124;
        }
        let _ = machinarium::sleep(Duration::from_millis(100));
    }
}

fn accept_loop(
    inst: Arc<Instance>,
    listener: &Listener,
    listen: usize,
    workers: Arc<[MachineHandle]>,
) {
    let mut next = 0usize;
    let mut options = InheritedOptions::default();
    options.refresh(listener, &inst.config().config.global);
    loop {
        let (socket, peer) = match listener.accept(Deadline::Never) {
            Ok(pair) => pair,
            Err(machinarium::Error::Cancelled) => return,
            Err(e) => {
                od_error!(inst.logger, "accept", None, None, "accept failed: {e}");
                if machinarium::sleep(Duration::from_millis(10)).is_err() {
                    return;
                }
                continue;
            }
        };
        if inst.is_shutting_down() {
            continue;
        }
        if let Some(own) = options.refresh(listener, &inst.config().config.global) {
            let _ = socket.set_accepted_options(&own);
        }
        let worker = &workers[next % workers.len()];
        next = next.wrapping_add(1);
        let inst = inst.clone();
        worker.spawn_detached(move || frontend::run(inst, socket, Accepted { listen, peer }));
    }
}

/// Client socket options (`nodelay`, `keepalive*`, `disable_nolinger`) live on the listener,
/// and every socket it accepts inherits them: no system calls per client for them. A socket
/// made before the listener got the current ones (queued at start, or when a reload changed
/// them) is set on its own, until an accept finds the queue empty.
#[derive(Default)]
struct InheritedOptions {
    on_listener: Option<AcceptedOptions>,
    made_before: bool,
}

impl InheritedOptions {
    /// Brings the listener up to the config; the options a socket just accepted must be
    /// given on its own, if any.
    fn refresh(&mut self, listener: &Listener, g: &Global) -> Option<AcceptedOptions> {
        let wanted = AcceptedOptions {
            nodelay: g.nodelay,
            keepalive: crate::backend::keepalive(g),
            nolinger: !g.disable_nolinger,
        };
        if self.on_listener != Some(wanted) {
            self.on_listener = listener.set_accepted_options(&wanted).ok().map(|()| wanted);
            listener.emptied_since();
            self.made_before = true;
        } else if self.made_before && listener.emptied_since() {
            self.made_before = false;
        }
        (self.made_before || self.on_listener.is_none()).then_some(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a failed wait other than a timeout used to end the loop with exit code 0,
    /// unlogged; it must reach the caller as an error.
    #[test]
    fn only_a_timeout_lets_the_signal_loop_wait_again() {
        assert_eq!(received(Ok(libc_signals::SIGHUP)).ok(), Some(Some(1)));
        assert_eq!(received(Err(machinarium::Error::TimedOut)).ok(), Some(None));
        for e in [
            machinarium::Error::Cancelled,
            machinarium::Error::Closed,
            machinarium::Error::Io(std::io::Error::from_raw_os_error(9)),
        ] {
            assert!(received(Err(e)).is_err());
        }
    }
}
