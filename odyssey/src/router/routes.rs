//! The routes of every worker, by key: found or made (with their pool, a member of its
//! rule's `shared_pool` when it names one), counted in by a ticket, and forgotten when their
//! rule is gone and their clients have left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::endpoints::Endpoints;
use crate::pool::{ServerPool, SharedPool};
use crate::route::{Route, RouteKey};

/// Every route, by key. Shared by all workers.
#[derive(Default)]
pub struct Router {
    routes: Mutex<HashMap<RouteKey, Arc<Route>>>,
    /// What is known of every storage host (each route holds it too).
    pub endpoints: Arc<Endpoints>,
    /// Machines that record route counters (each route keeps a shard per machine).
    machines: usize,
    /// The `shared_pool`s by name (one made again when its size changes on reload).
    shared: Mutex<HashMap<String, Arc<SharedPool>>>,
}

/// A client counted in on a route; dropping the ticket counts it out.
pub struct RouteTicket {
    route: Arc<Route>,
}

/// The route's `client_max` is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteFull {
    /// The rule's `client_max`.
    pub client_max: u32,
}

impl Router {
    /// A router whose routes keep counters for `machines` machines.
    pub fn new(machines: usize) -> Router {
        Router {
            routes: Mutex::default(),
            endpoints: Arc::default(),
            machines,
            shared: Mutex::default(),
        }
    }

    /// Counts a client in on the route of `key` (made on first use), unless the rule's
    /// `client_max` is reached.
    pub fn route(&self, key: RouteKey, config: &Arc<Config>) -> Result<RouteTicket, RouteFull> {
        let route = self.ensure(key, config);
        if !route.enter() {
            return Err(RouteFull {
                client_max: route.rule().client_max.unwrap_or(0),
            });
        }
        Ok(RouteTicket { route })
    }

    /// The route of `key`, made if it does not exist yet, without counting a client in (for
    /// `min_pool_size`).
    pub fn ensure(&self, key: RouteKey, config: &Arc<Config>) -> Arc<Route> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .entry(key.clone())
            .or_insert_with(|| {
                let hosts = self.endpoints.clone();
                let pool = self.pool_for(&key, config);
                Arc::new(Route::new(
                    key,
                    config.clone(),
                    (self.machines, hosts, pool),
                ))
            })
            .clone()
    }

    /// A new route's pool: its own, or a member of its rule's `shared_pool`.
    fn pool_for(&self, key: &RouteKey, config: &Config) -> Arc<ServerPool> {
        let rule = &config.rules[key.rule];
        let shared = rule.pool.shared_pool.as_ref().and_then(|name| {
            let size = config.shared_pools.iter().find(|p| &p.name == name)?.size;
            let mut pools = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            let pool = pools
                .entry(name.clone())
                .and_modify(|p| {
                    if p.size != size {
                        *p = SharedPool::new(name, size);
                    }
                })
                .or_insert_with(|| SharedPool::new(name, size));
            Some(pool.clone())
        });
        match shared {
            Some(shared) => ServerPool::member_of(shared),
            None => Arc::default(),
        }
    }

    /// A snapshot of every route.
    pub fn routes(&self) -> Vec<Arc<Route>> {
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Forgets routes of rules no longer in the config (`is_current` says which are) that have
    /// no clients left; returns them so that their idle servers can be closed.
    pub fn gc(&self, is_current: impl Fn(&RouteKey) -> bool) -> Vec<Arc<Route>> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let old: Vec<RouteKey> = routes
            .iter()
            .filter(|(k, r)| {
                !is_current(k)
                    && r.clients.load(std::sync::atomic::Ordering::Acquire) == 0
                    && r.pool.counts().active == 0
            })
            .map(|(k, _)| k.clone())
            .collect();
        old.iter().filter_map(|k| routes.remove(k)).collect()
    }
}

impl RouteTicket {
    /// The route.
    pub fn route(&self) -> &Arc<Route> {
        &self.route
    }
}

impl Drop for RouteTicket {
    fn drop(&mut self) {
        self.route.leave();
    }
}
