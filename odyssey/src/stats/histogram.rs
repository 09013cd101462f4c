//! A log-linear histogram of microseconds: exact below 16, then every power of two split into
//! 16 equal buckets (at most 6.25 % off). Buckets are atomic counters, so a worker records with
//! one relaxed add; snapshots of several histograms add up bucket by bucket (mergeable), and a
//! snapshot minus an older one is the histogram of the time between them.

use std::sync::atomic::{AtomicU64, Ordering};

/// Sub-buckets per power of two.
const SUB: u64 = 16;
/// log2(SUB).
const SUB_BITS: u32 = 4;
/// Highest power of two kept apart; larger values share the last bucket (2^40 µs ≈ 12 days).
const MAX_BITS: u32 = 40;
/// Buckets in all.
pub const BUCKETS: usize = (SUB + (MAX_BITS as u64 - SUB_BITS as u64 + 1) * SUB) as usize;

/// The bucket of a value.
pub fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let high = (63 - v.leading_zeros()).min(MAX_BITS);
    if high == MAX_BITS && v >= 1 << (MAX_BITS + 1) {
        return BUCKETS - 1;
    }
    let sub = (v >> (high - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(high - SUB_BITS) * SUB + sub) as usize
}

/// The values of bucket `b`: `[low, high)`.
pub fn bounds(b: usize) -> (u64, u64) {
    let b = b as u64;
    if b < SUB {
        return (b, b + 1);
    }
    let shift = (b - SUB) / SUB;
    let sub = (b - SUB) % SUB;
    let low = (SUB + sub) << shift;
    (low, low + (1 << shift))
}

/// Counts of values by bucket, shared by the workers that record.
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Histogram({} values)", self.snapshot().count())
    }
}

impl Histogram {
    /// Counts one value.
    pub fn record(&self, micros: u64) {
        self.buckets[bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the counts now into `into`.
    pub fn add_to(&self, into: &mut Snapshot) {
        for (sum, b) in into.counts.iter_mut().zip(self.buckets.iter()) {
            *sum += b.load(Ordering::Relaxed);
        }
    }

    /// The counts now.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::default();
        self.add_to(&mut s);
        s
    }
}

/// Counts of one moment, by bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    counts: Vec<u64>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            counts: vec![0; BUCKETS],
        }
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot({} values)", self.count())
    }
}

impl Snapshot {
    /// Values counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds another snapshot's counts.
    pub fn merge(&mut self, other: &Snapshot) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// The counts since `older` (a snapshot of the same histograms, taken before).
    pub fn since(&self, older: &Snapshot) -> Snapshot {
        Snapshot {
            counts: self
                .counts
                .iter()
                .zip(&older.counts)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
        }
    }

    /// The value under which a fraction `q` of the values lie (the middle of its bucket);
    /// 0 when there are none.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (low, high) = bounds(b);
                return low + (high - low - 1) / 2;
            }
        }
        bounds(BUCKETS - 1).0
    }

    /// Values below `limit` µs; exact when `limit` is a bucket bound (every power of two is).
    pub fn below(&self, limit: u64) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .take_while(|(b, _)| bounds(*b).1 <= limit)
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order_without_gaps() {
        let mut prev_high = 0;
        for b in 0..BUCKETS {
            let (low, high) = bounds(b);
            assert_eq!(low, prev_high, "bucket {b}");
            assert!(high > low);
            assert_eq!(bucket(low), b);
            assert_eq!(bucket(high - 1), b);
            prev_high = high;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn buckets_are_within_a_sixteenth() {
        for v in [17u64, 100, 999, 1000, 12_345, 1 << 30] {
            let (low, high) = bounds(bucket(v));
            assert!(low <= v && v < high);
            assert!((high - low) * 16 <= low.max(16), "{v}: {low}..{high}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_run() {
        let h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count(), 1000);
        for (q, want) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let got = s.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.07, "q{q}: {got}");
        }
        assert_eq!(Snapshot::default().quantile(0.5), 0);
    }

    #[test]
    fn snapshots_merge_and_subtract() {
        let (a, b) = (Histogram::default(), Histogram::default());
        a.record(10);
        let before = a.snapshot();
        a.record(5000);
        b.record(7);
        let mut all = a.snapshot();
        all.merge(&b.snapshot());
        assert_eq!(all.count(), 3);
        let recent = a.snapshot().since(&before);
        assert_eq!(recent.count(), 1);
        assert!(recent.quantile(0.5) > 4000);
        assert_eq!(all.below(16), 2);
        assert_eq!(all.below(8192), 3);
    }
}
