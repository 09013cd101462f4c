//! Soft OOM (spec §9.10): every `check_interval_ms` the memory `soft_oom` names is measured —
//! the PSS of every process whose name contains `process`, or the system's used memory — and
//! while it is over `limit` new remote logins are refused (`FATAL 53200 soft out of memory`,
//! see `frontend`); with `drop { }`, the biggest of those processes get `signal`, at most
//! `max_rate` per check. Logins come back once memory falls under the limit.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::config::sections::SoftOom;
use crate::instance::Instance;
use crate::procfs;
use crate::{od_error, od_info};

/// Checks until the coroutine is cancelled.
pub fn run(inst: Arc<Instance>) {
    loop {
        let soft_oom = inst.config().config.soft_oom.clone();
        let period = soft_oom
            .as_ref()
            .map_or(Duration::from_secs(1), |s| s.check_interval)
            .max(Duration::from_millis(10));
        if machinarium::sleep(period).is_err() {
            return;
        }
        match soft_oom {
            Some(s) => check(&inst, &s),
            None => inst.memory_over.store(false, Ordering::Release),
        }
    }
}

fn check(inst: &Instance, s: &SoftOom) {
    let processes = s.process.as_deref().map(matching);
    let used = match &processes {
        Some(list) => list.iter().map(|(_, pss)| pss).sum(),
        None => system_used().unwrap_or(0),
    };
    let over = used > s.limit;
    let was = inst.memory_over.swap(over, Ordering::AcqRel);
    if over != was {
        od_info!(
            inst.logger,
            "soft_oom",
            None,
            None,
            "memory {} bytes is {} the limit {}: new remote logins are {}",
            used,
            if over { "over" } else { "back under" },
            s.limit,
            if over { "refused" } else { "accepted again" }
        );
    }
    if let (true, Some(drop), Some(mut list)) = (over, &s.drop, processes) {
        list.sort_by_key(|(_, pss)| std::cmp::Reverse(*pss));
        let me = std::process::id();
        for (pid, pss) in list
            .into_iter()
            .filter(|(p, _)| *p != me)
            .take(drop.max_rate as usize)
        {
            let Some(number) = signal_number(&drop.signal) else {
                return;
            };
            match machinarium::process::send_signal(pid, number) {
                Ok(()) => od_info!(
                    inst.logger,
                    "soft_oom",
                    None,
                    None,
                    "sent SIG{} to process {pid} ({pss} bytes)",
                    drop.signal
                ),
                Err(e) => od_error!(inst.logger, "soft_oom", None, None, "signal {pid}: {e}"),
            }
        }
    }
}

/// Processes whose name contains `name`, with their PSS in bytes.
fn matching(name: &str) -> Vec<(u32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end().contains(name))
        })
        .filter_map(|pid| Some((pid, pss(pid)?)))
        .collect()
}

/// A process's proportional set size in bytes (`Pss:` of smaps_rollup).
fn pss(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    Some(procfs::field(&text, "Pss:")? * 1024)
}

/// The system's used memory: MemTotal − MemAvailable.
fn system_used() -> Option<u64> {
    let (total, available) = procfs::memory()?;
    Some(total.saturating_sub(available))
}

/// A signal name as `soft_oom.drop` takes it (without `SIG`), as a number (Linux).
fn signal_number(name: &str) -> Option<i32> {
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ABRT" => 6,
        "KILL" => 9,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        "STOP" => 19,
        "TSTP" => 20,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_figures_from_proc() {
        assert!(pss(std::process::id()).is_some_and(|b| b > 0));
        assert!(system_used().is_some_and(|b| b > 0));
        let me = std::fs::read_to_string("/proc/self/comm").unwrap();
        let found = matching(me.trim_end());
        assert!(found.iter().any(|(p, _)| *p == std::process::id()));
        assert_eq!(signal_number("TERM"), Some(15));
        assert_eq!(signal_number("BOGUS"), None);
    }
}
