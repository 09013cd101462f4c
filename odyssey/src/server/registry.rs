//! The process-wide registry of statement texts: which text each key (server-side name
//! `odyssey_<key>`) stands for, so two texts whose hashes collide never share a name.
//!
//! A key starts as the 64-bit hash of the text and parameter types. On a hit, the texts are
//! compared; another text under that key means a collision, and the new text probes key + 1,
//! key + 2, ... until it finds itself or a free key. A key is taken for as long as anything
//! holds its [`StatementId`]: a client's statement, or a server that has it prepared
//! ([`super::statements::ServerStatements`]). Once nothing does, no server has a copy under that name that
//! the pooler would use, and the key may go to another text (a stale copy some server still
//! holds is dropped by the Close sent ahead of every Parse of ours).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

/// A statement as PostgreSQL tells statements apart: its text and parameter types.
#[derive(Debug, PartialEq, Eq)]
struct Text {
    query: Vec<u8>,
    param_types: Vec<u32>,
}

/// A statement's key, reserved for its text while this (or a clone) lives.
#[derive(Debug, Clone)]
pub struct StatementId {
    /// The key: our server-side name is `odyssey_<key>`.
    pub key: u64,
    _text: Arc<Text>,
}

/// Statement texts by key, shared by every session of the instance (owned by
/// [`crate::instance::Instance`]). The lock is held only to look up or insert one text; no
/// coroutine switch happens under it.
#[derive(Debug, Default)]
pub struct StatementRegistry {
    keys: Mutex<Keys>,
}

/// The map, with entries whose statements are gone pruned when it doubles.
#[derive(Debug, Default)]
struct Keys {
    by_key: HashMap<u64, Weak<Text>>,
    /// Prune when the map reaches this size (twice the live entries at the last pruning).
    prune_at: usize,
}

/// Smallest size at which the map is pruned.
const MIN_PRUNE_AT: usize = 1024;

impl StatementRegistry {
    /// The text of `key` and how many holders it has, if it is in use.
    pub fn text(&self, key: u64) -> Option<(Vec<u8>, usize)> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let w = keys.by_key.get(&key)?;
        let count = w.strong_count();
        w.upgrade().map(|t| (t.query.clone(), count))
    }

    /// Every text in use: its key, its query and how many holders it has (clients' and
    /// servers' statements), by key.
    pub fn list(&self) -> Vec<(u64, Vec<u8>, usize)> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = keys
            .by_key
            .iter()
            .filter_map(|(k, w)| {
                let count = w.strong_count();
                w.upgrade().map(|t| (*k, t.query.clone(), count))
            })
            .collect();
        all.sort_by_key(|(k, _, _)| *k);
        all
    }

    /// The key of `query` with `param_types`: the same for the same text while it is in use,
    /// different from every other text in use.
    pub fn intern(&self, query: &[u8], param_types: &[u32]) -> StatementId {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        query.hash(&mut h);
        param_types.hash(&mut h);
        self.intern_at(h.finish(), query, param_types)
    }

    /// [`Self::intern`] with the hash given (tests force collisions with it).
    pub(crate) fn intern_at(&self, hash: u64, query: &[u8], param_types: &[u32]) -> StatementId {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let mut free = None;
        let mut key = hash;
        // Probe up to the first key never used: a text of ours is never further on.
        while let Some(entry) = keys.by_key.get(&key) {
            match entry.upgrade() {
                Some(text) if text.query == query && text.param_types == param_types => {
                    return StatementId { key, _text: text };
                }
                Some(_) => {}
                None => {
                    free.get_or_insert(key);
                }
            }
            key = key.wrapping_add(1);
        }
        let key = free.unwrap_or(key);
        let text = Arc::new(Text {
            query: query.to_vec(),
            param_types: param_types.to_vec(),
        });
        keys.by_key.insert(key, Arc::downgrade(&text));
        if keys.by_key.len() >= keys.prune_at.max(MIN_PRUNE_AT) {
            keys.by_key.retain(|_, t| t.strong_count() > 0);
            keys.prune_at = keys.by_key.len() * 2;
        }
        StatementId { key, _text: text }
    }

    /// How many keys the map holds (live or not yet pruned).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_key
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_texts_get_different_keys_and_the_same_text_the_same_key() {
        let r = StatementRegistry::default();
        let a = r.intern_at(5, b"select 1", &[]);
        let b = r.intern_at(5, b"select 2", &[]);
        let c = r.intern_at(5, b"select 2", &[23]);
        assert_eq!(a.key, 5);
        assert_eq!(b.key, 6, "a collision probes the next key");
        assert_eq!(c.key, 7, "parameter types are part of the text");
        assert_eq!(r.intern_at(5, b"select 1", &[]).key, 5);
        assert_eq!(r.intern_at(5, b"select 2", &[]).key, 6);
        assert_eq!(
            crate::server::statements::server_name(a.key),
            "odyssey_0000000000000005"
        );
        assert_ne!(
            crate::server::statements::server_name(a.key),
            crate::server::statements::server_name(b.key)
        );
    }

    #[test]
    fn a_key_stays_taken_while_anyone_holds_it() {
        let r = StatementRegistry::default();
        let a = r.intern_at(5, b"select 1", &[]);
        let b = r.intern_at(5, b"select 2", &[]);
        // The client is gone, a server still has it.
        let on_server = a.clone();
        drop(a);
        assert_eq!(r.intern_at(5, b"select 3", &[]).key, 7);
        drop(on_server);
        // Now nobody has "select 1": its key goes to the next text, and "select 2" is still
        // found past it.
        let d = r.intern_at(5, b"select 4", &[]);
        assert_eq!(d.key, 5);
        assert_eq!(r.intern_at(5, b"select 2", &[]).key, b.key);
    }

    #[test]
    fn texts_nobody_holds_are_pruned() {
        let r = StatementRegistry::default();
        let kept = r.intern(b"kept", &[]);
        for i in 0..10 * MIN_PRUNE_AT {
            r.intern(format!("select {i}").as_bytes(), &[]);
        }
        assert!(r.len() <= MIN_PRUNE_AT, "{} keys", r.len());
        assert_eq!(r.intern(b"kept", &[]).key, kept.key);
    }

    #[test]
    fn the_key_is_the_hash_without_a_collision() {
        let r = StatementRegistry::default();
        let a = r.intern(b"select 1", &[]);
        let again = StatementRegistry::default().intern(b"select 1", &[]);
        assert_eq!(a.key, again.key, "a fixed hasher");
    }
}
