//! Figures read from /proc: `Name:   value` lines (meminfo, status, smaps_rollup) and the
//! system's memory.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_memory() {
        assert_eq!(field("Pss:   12 kB\nRss: 3 kB\n", "Rss:"), Some(3));
        assert_eq!(field("Pss: x kB\n", "Pss:"), None);
        let (total, available) = memory().expect("meminfo");
        assert!(total > 0 && available <= total);
    }
}
