//! Figures read from /proc: `Name:   value` lines (meminfo, status, smaps_rollup), the
//! system's memory and its CPU time.

use std::sync::Mutex;

/// The host watcher's last sample (`host_watcher`): CPU and memory in use, in percent. The
/// lock is held only to copy it.
#[derive(Default)]
pub struct HostUtilization {
    last: Mutex<(f64, f64)>,
}

impl HostUtilization {
    /// CPU and memory in use, in percent, as last sampled (zeros before the first sample).
    pub fn get(&self) -> (f64, f64) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a new sample.
    pub fn set(&self, cpu: f64, mem: f64) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = (cpu, mem);
    }
}

/// The number on a `Name:   123 kB` (or `Threads:  4`) line of `text`.
pub fn field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The system's memory in bytes: (MemTotal, MemAvailable).
pub fn memory() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    Some((
        field(&text, "MemTotal:")? * 1024,
        field(&text, "MemAvailable:")? * 1024,
    ))
}

/// The host's CPU time since boot, in clock ticks: (busy, total). Idle and I/O wait are the
/// time not busy.
pub fn cpu_times() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_memory() {
        assert_eq!(field("Pss:   12 kB\nRss: 3 kB\n", "Rss:"), Some(3));
        assert_eq!(field("Pss: x kB\n", "Pss:"), None);
        let (total, available) = memory().expect("meminfo");
        assert!(total > 0 && available <= total);
        let (busy, ticks) = cpu_times().expect("stat");
        assert!(ticks > 0 && busy <= ticks);
    }
}
