//! The prepared statements of ours one server has (by key), which of them to deallocate
//! (least recently used past the cap, or stale), for `relay::statements`. Named
//! `odyssey_<key>` on the server.

use std::cell::Cell;
use std::collections::HashMap;

use super::registry::StatementId;

/// The prepared statements of ours a server has, with their last use, so the least recently
/// used can be deallocated when there are too many. A statement picked for eviction stays
/// usable until the DEALLOCATE actually runs (at the next reset of the server).
#[derive(Debug, Clone, Default)]
pub struct ServerStatements {
    /// By key: the last use, and the id that keeps the key for this text while the server
    /// has it.
    last_use: HashMap<u64, (Cell<u64>, StatementId)>,
    clock: Cell<u64>,
    evicted: Vec<u64>,
    /// Statements whose copy on the server went stale (their plan broke): not in `last_use`,
    /// still on the server until the DEALLOCATE at the next reset, or until the Close we send
    /// ahead of preparing them again. No duplicates (a second DEALLOCATE would fail the reset).
    stale: Vec<u64>,
    /// The set changed since `take_changed` last looked (for the console's view).
    changed: bool,
}

impl ServerStatements {
    /// Whether the server has statement `key` (and counts this as a use).
    pub fn contains(&self, key: &u64) -> bool {
        match self.last_use.get(key) {
            Some((t, _)) => {
                self.clock.set(self.clock.get() + 1);
                t.set(self.clock.get());
                true
            }
            None => false,
        }
    }

    /// The server now has `id`; past `max` statements (0: no limit) the least recently used
    /// one is marked for DEALLOCATE.
    pub fn insert(&mut self, id: StatementId, max: usize) {
        self.changed = true;
        let key = id.key;
        // Our Parse went with a Close of the name: a stale copy is gone.
        self.stale.retain(|k| *k != key);
        self.clock.set(self.clock.get() + 1);
        self.last_use.insert(key, (Cell::new(self.clock.get()), id));
        if max > 0 && self.last_use.len() - self.evicted.len() > max {
            let oldest = self
                .last_use
                .iter()
                .filter(|(k, _)| **k != key && !self.evicted.contains(k))
                .min_by_key(|(_, (t, _))| t.get())
                .map(|(k, _)| *k);
            self.evicted.extend(oldest);
        }
    }

    /// The server lost `key` (a failed Parse).
    pub fn remove(&mut self, key: &u64) {
        self.changed |= self.last_use.remove(key).is_some();
        self.evicted.retain(|k| k != key);
    }

    /// The server's copy of `key` went stale: it is not used again, and is deallocated at the
    /// next reset unless prepared again first.
    pub fn mark_stale(&mut self, key: u64) {
        self.remove(&key);
        if !self.stale.contains(&key) {
            self.stale.push(key);
        }
    }

    /// The server lost every statement (DISCARD ALL).
    pub fn clear(&mut self) {
        self.changed |= !self.last_use.is_empty();
        self.last_use.clear();
        self.evicted.clear();
        self.stale.clear();
    }

    /// Statements to DEALLOCATE now (evicted or stale), each once; they are forgotten.
    pub fn take_evicted(&mut self) -> Vec<u64> {
        let mut evicted = std::mem::take(&mut self.evicted);
        for k in &evicted {
            self.changed |= self.last_use.remove(k).is_some();
        }
        for k in std::mem::take(&mut self.stale) {
            if !evicted.contains(&k) {
                evicted.push(k);
            }
        }
        evicted
    }

    /// The keys the server holds, if the set changed since the last call.
    pub fn take_changed(&mut self) -> Option<Vec<u64>> {
        if !std::mem::take(&mut self.changed) {
            return None;
        }
        let mut keys: Vec<u64> = self.last_use.keys().copied().collect();
        keys.sort_unstable();
        Some(keys)
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
