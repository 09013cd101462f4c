//! Process figures from /proc: resident memory, open descriptors, threads, CPU time.

use super::Metrics;

/// Clock ticks per second of /proc's CPU times (the kernel's USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Writes the process families (those /proc cannot give are left out).
pub fn render(m: &mut Metrics) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| crate::procfs::field(&status, name);
    if let Some(kib) = field("VmRSS:") {
        m.family(
            "odyssey_process_resident_memory_bytes",
            "gauge",
            "Resident memory of the pooler.",
        );
        m.sample("odyssey_process_resident_memory_bytes", &[], kib * 1024);
    }
    if let Some(threads) = field("Threads:") {
        m.family("odyssey_process_threads", "gauge", "Threads of the pooler.");
        m.sample("odyssey_process_threads", &[], threads);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        m.family(
            "odyssey_process_open_fds",
            "gauge",
            "Open file descriptors.",
        );
        m.sample("odyssey_process_open_fds", &[], fds.count());
    }
    if let Some(secs) = cpu_seconds() {
        m.family(
            "odyssey_process_cpu_seconds_total",
            "counter",
            "User and system CPU time of the pooler.",
        );
        m.sample("odyssey_process_cpu_seconds_total", &[], secs);
    }
}

/// utime + stime from /proc/self/stat (fields 14 and 15; the command name may hold spaces,
/// so fields are counted after its closing parenthesis).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}
