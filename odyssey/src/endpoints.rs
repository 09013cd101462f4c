//! What the pooler knows of each host of each storage: alive or not, primary or standby, and
//! since when. Connects read it to choose and order hosts (target_session_attrs, balancing)
//! and write what they learn; a fact older than the storage's `endpoints_status_poll_interval`
//! is stale and checked again. Each storage also has a gate bounding the servers being opened
//! on it at once (`server_max_routing`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::Storage;
use crate::config::storage::{BalancingMethod, TargetSessionAttrs as Tsa};
use crate::gate::Gate;

/// One host's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// Whether the last connect to it worked.
    pub alive: bool,
    /// Primary (true) or standby (false), when known.
    pub read_write: Option<bool>,
    /// When this was learnt.
    pub at: Instant,
}

/// The states of every storage's hosts, and each storage's round-robin counter.
#[derive(Default)]
pub struct Endpoints {
    states: Mutex<HashMap<(String, usize), State>>,
    turns: Mutex<HashMap<String, usize>>,
    /// Replication lag in seconds as the storage's watchdog measured it, and when.
    lags: Mutex<HashMap<(String, usize), (u64, Instant)>>,
    /// Per storage name: the gate new servers pass while they connect and log in, and its size
    /// (a reload that changes `server_max_routing` gets a new gate).
    openings: Mutex<HashMap<String, (u32, Arc<Gate>)>>,
}

/// Whether a server of this role suits the client's target_session_attrs.
pub fn fits(tsa: Tsa, read_write: bool) -> bool {
    match tsa {
        Tsa::ReadWrite => read_write,
        Tsa::ReadOnly => !read_write,
        Tsa::PreferStandby | Tsa::Any => true,
    }
}

impl Endpoints {
    /// The gate of servers being opened on `storage`: its `server_max_routing`, or `workers`
    /// when that is 0 (spec §2.4), at once.
    pub fn openings(&self, storage: &Storage, workers: u32) -> Arc<Gate> {
        let limit = storage.max_routing(workers);
        let mut openings = self.openings.lock().unwrap_or_else(|p| p.into_inner());
        let entry = openings
            .entry(storage.name.clone())
            .or_insert_with(|| (limit, Gate::new(limit)));
        if entry.0 != limit {
            *entry = (limit, Gate::new(limit));
        }
        entry.1.clone()
    }

    /// The fresh state of host `index` of `storage`, if there is one.
    pub fn fresh(&self, storage: &Storage, index: usize) -> Option<State> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let state = *states.get(&(storage.name.clone(), index))?;
        (state.at.elapsed() < storage.endpoints_status_poll_interval).then_some(state)
    }

    /// Notes what a connect or a check learnt of host `index`.
    pub fn learn(&self, storage: &Storage, index: usize, alive: bool, read_write: Option<bool>) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let key = (storage.name.clone(), index);
        // A failed connect says nothing of the role: keep the last one known.
        let read_write = read_write.or_else(|| states.get(&key).and_then(|s| s.read_write));
        states.insert(
            key,
            State {
                alive,
                read_write,
                at: Instant::now(),
            },
        );
    }

    /// The last state of host `index`, fresh or not.
    pub fn last(&self, storage: &Storage, index: usize) -> Option<State> {
        let states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.get(&(storage.name.clone(), index)).copied()
    }

    /// Notes the replication lag the watchdog measured on host `index`.
    pub fn learn_lag(&self, storage: &Storage, index: usize, seconds: u64) {
        let mut lags = self.lags.lock().unwrap_or_else(|p| p.into_inner());
        lags.insert((storage.name.clone(), index), (seconds, Instant::now()));
    }

    /// The lag of host `index`, if measured within two poll intervals.
    pub fn lag(&self, storage: &Storage, index: usize) -> Option<u64> {
        let lags = self.lags.lock().unwrap_or_else(|p| p.into_inner());
        let (seconds, at) = *lags.get(&(storage.name.clone(), index))?;
        (at.elapsed() < 2 * storage.endpoints_status_poll_interval).then_some(seconds)
    }

    /// Whether host `index` lags `catchup` or more (never, when `catchup` is zero or the lag
    /// is not known).
    pub fn too_far_behind(&self, storage: &Storage, index: usize, catchup: u64) -> bool {
        catchup > 0 && self.lag(storage, index).is_some_and(|l| l >= catchup)
    }

    /// For a login with `catchup` (spec §7.6): the smallest lag when every host with a known
    /// lag lags too much, else None.
    pub fn catchup_refusal(&self, storage: &Storage, catchup: u64) -> Option<u64> {
        if catchup == 0 {
            return None;
        }
        let n = storage.endpoints.len().max(1);
        let lags: Vec<Option<u64>> = (0..n).map(|i| self.lag(storage, i)).collect();
        if lags.iter().any(|l| l.is_none_or(|l| l < catchup)) {
            return None;
        }
        lags.into_iter().flatten().min()
    }

    /// The hosts of `storage` to try, in order, for a client with `tsa`: those known (freshly)
    /// to be of the wrong role are left out; those known dead go last; standbys first for
    /// `prefer-standby`; hosts in our availability zone `zone` first when the storage is
    /// `az_aware`; then in turn (round robin) or by fewest servers of the route (`load`, for
    /// least connections).
    pub fn order(
        &self,
        storage: &Storage,
        tsa: Tsa,
        (method, zone): (BalancingMethod, &str),
        load: &dyn Fn(usize) -> usize,
    ) -> Vec<usize> {
        let n = storage.endpoints.len().max(1);
        let start = match method {
            BalancingMethod::RoundRobin if n > 1 => self.turn(&storage.name) % n,
            _ => 0,
        };
        let mut order: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
        if method == BalancingMethod::LeastConn {
            order.sort_by_key(|i| load(*i));
        }
        let states: Vec<Option<State>> = (0..n).map(|i| self.fresh(storage, i)).collect();
        order.retain(|i| {
            let role = states[*i].and_then(|s| s.alive.then_some(s.read_write).flatten());
            role.is_none_or(|rw| fits(tsa, rw))
        });
        let in_zone = |i: usize| {
            storage.balancing.az_aware
                && !zone.is_empty()
                && storage
                    .endpoints
                    .get(i)
                    .and_then(|e| e.availability_zone.as_deref())
                    == Some(zone)
        };
        // Stable: the turn order holds within each group.
        order.sort_by_key(|i| {
            let s = states[*i];
            let dead = s.is_some_and(|s| !s.alive);
            let primary_first_for_standby =
                tsa == Tsa::PreferStandby && s.and_then(|s| s.read_write) == Some(true);
            (dead, primary_first_for_standby, !in_zone(*i))
        });
        order
    }

    fn turn(&self, storage: &str) -> usize {
        let mut turns = self.turns.lock().unwrap_or_else(|p| p.into_inner());
        let t = turns.entry(storage.to_string()).or_default();
        *t = t.wrapping_add(1);
        *t - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::storage::Endpoint;

    fn storage(hosts: &[(&str, Option<&str>)]) -> Storage {
        let text = "log_format \"%m\\n\"\nlisten {\n\thost \"127.0.0.1\"\n\tport 6432\n}\n\
                    storage \"s\" {\n\ttype \"remote\"\n\thost \"a\"\n\tport 5432\n}\n\
                    database default {\n\tuser default {\n\t\tauthentication \"none\"\n\
                    \t\tstorage \"s\"\n\t\tpool \"session\"\n\t}\n}\n";
        let (config, _) = crate::config::load_str("t.conf", text).expect("config");
        let mut s = config.storages[0].clone();
        s.endpoints = hosts
            .iter()
            .map(|(h, az)| Endpoint {
                host: h.to_string(),
                port: Some(5432),
                availability_zone: az.map(str::to_string),
                unix: false,
            })
            .collect();
        s
    }

    const RR: (BalancingMethod, &str) = (BalancingMethod::RoundRobin, "");

    #[test]
    fn round_robin_turns_and_roles_filter() {
        let e = Endpoints::default();
        let s = storage(&[("a", None), ("b", None), ("c", None)]);
        let none = |_| 0;
        assert_eq!(e.order(&s, Tsa::Any, RR, &none), vec![0, 1, 2]);
        assert_eq!(e.order(&s, Tsa::Any, RR, &none), vec![1, 2, 0]);
        e.learn(&s, 0, true, Some(true));
        e.learn(&s, 1, true, Some(false));
        e.learn(&s, 2, false, None);
        assert_eq!(e.order(&s, Tsa::ReadOnly, RR, &none), vec![1, 2]);
        assert_eq!(e.order(&s, Tsa::ReadWrite, RR, &none), vec![0, 2]);
        let prefer = e.order(&s, Tsa::PreferStandby, RR, &none);
        assert_eq!(prefer[0], 1);
        assert_eq!(prefer.last(), Some(&2), "dead last: {prefer:?}");
    }

    #[test]
    fn zones_and_least_connections() {
        let e = Endpoints::default();
        let mut s = storage(&[("a", Some("z1")), ("b", Some("z2")), ("c", Some("z2"))]);
        let order = e.order(&s, Tsa::Any, (BalancingMethod::RoundRobin, "z2"), &|_| 0);
        assert_eq!(&order[2..], &[0]);
        s.balancing.az_aware = false;
        let load = |i: usize| [5, 1, 3][i];
        let order = e.order(&s, Tsa::Any, (BalancingMethod::LeastConn, ""), &load);
        assert_eq!(order, vec![1, 2, 0]);
        assert!(fits(Tsa::PreferStandby, true) && !fits(Tsa::ReadOnly, true));
    }
}
