//! The host watcher (`enable_host_watcher`, spec §9.10): every second, the share of CPU time
//! the host spent busy since the last sample (/proc/stat) and the share of its memory in use
//! (/proc/meminfo), for `SHOW HOST_UTILIZATION`. Without it the console reports zeros, as
//! upstream does.

use std::sync::Arc;
use std::time::Duration;

use crate::instance::Instance;
use crate::procfs;

/// How often the host is sampled.
const PERIOD: Duration = Duration::from_secs(1);

/// Samples until the coroutine is cancelled, when the config enables the watcher (read once:
/// the directive takes effect at start, as upstream's).
pub fn run(inst: Arc<Instance>) {
    if !inst.config().config.global.enable_host_watcher {
        return;
    }
    let mut before = procfs::cpu_times();
    loop {
        if machinarium::sleep(PERIOD).is_err() {
            return;
        }
        let now = procfs::cpu_times();
        let cpu = match (before, now) {
            (Some(a), Some(b)) => busy_percent(a, b),
            _ => 0.0,
        };
        before = now;
        let mem = match procfs::memory() {
            Some((total, available)) if total > 0 => {
                (1.0 - available as f64 / total as f64) * 100.0
            }
            _ => 0.0,
        };
        inst.host.set(cpu, mem);
    }
}

/// The busy share of CPU time between two (busy, total) samples, in percent.
fn busy_percent(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1);
    if total == 0 {
        return 0.0;
    }
    let busy = after.0.saturating_sub(before.0);
    (busy as f64 / total as f64 * 100.0).min(100.0)
}

#[cfg(test)]
mod tests {
    use super::busy_percent;

    #[test]
    fn busy_share_of_the_interval() {
        assert_eq!(busy_percent((10, 100), (60, 200)), 50.0);
        assert_eq!(busy_percent((10, 100), (10, 100)), 0.0);
    }
}
