//! The prepared statements of ours a server holds (see `relay::statements`): their keys, their
//! last use, and the ones to deallocate at the next reset. Named `odyssey_<key>` on the server.

use std::cell::Cell;
use std::collections::HashMap;

/// The prepared statements of ours a server has, with their last use, so the least recently
/// used can be deallocated when there are too many. A statement picked for eviction stays
/// usable until the DEALLOCATE actually runs (at the next reset of the server).
#[derive(Debug, Clone, Default)]
pub struct ServerStatements {
    last_use: HashMap<u64, Cell<u64>>,
    clock: Cell<u64>,
    evicted: Vec<u64>,
}

impl ServerStatements {
    /// Whether the server has statement `key` (and counts this as a use).
    pub fn contains(&self, key: &u64) -> bool {
        match self.last_use.get(key) {
            Some(t) => {
                self.clock.set(self.clock.get() + 1);
                t.set(self.clock.get());
                true
            }
            None => false,
        }
    }

    /// The server now has `key`; past `max` statements (0: no limit) the least recently used
    /// one is marked for DEALLOCATE.
    pub fn insert(&mut self, key: u64, max: usize) {
        self.clock.set(self.clock.get() + 1);
        self.last_use.insert(key, Cell::new(self.clock.get()));
        if max > 0 && self.last_use.len() - self.evicted.len() > max {
            let oldest = self
                .last_use
                .iter()
                .filter(|(k, _)| **k != key && !self.evicted.contains(k))
                .min_by_key(|(_, t)| t.get())
                .map(|(k, _)| *k);
            self.evicted.extend(oldest);
        }
    }

    /// The server lost `key` (a failed Parse, a stale plan).
    pub fn remove(&mut self, key: &u64) {
        self.last_use.remove(key);
        self.evicted.retain(|k| k != key);
    }

    /// The server lost every statement (DISCARD ALL).
    pub fn clear(&mut self) {
        self.last_use.clear();
        self.evicted.clear();
    }

    /// Statements to DEALLOCATE now; they are forgotten.
    pub fn take_evicted(&mut self) -> Vec<u64> {
        let evicted = std::mem::take(&mut self.evicted);
        for k in &evicted {
            self.last_use.remove(k);
        }
        evicted
    }

    /// How many the server has.
    pub fn len(&self) -> usize {
        self.last_use.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.last_use.is_empty()
    }
}

/// Our server-side name of statement `key`.
pub fn server_name(key: u64) -> String {
    format!("odyssey_{key:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_statements_are_evicted_past_the_cap() {
        let mut s = ServerStatements::default();
        s.insert(1, 2);
        s.insert(2, 2);
        assert!(s.contains(&1), "1 is used again: 2 is now the oldest");
        s.insert(3, 2);
        assert!(s.contains(&2), "still usable until deallocated");
        assert_eq!(s.take_evicted(), [2]);
        assert!(!s.contains(&2));
        assert_eq!(s.len(), 2);
    }
}
