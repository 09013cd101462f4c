//! The router: finds (or makes) the route of a client, and keeps every route of the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::route::{Route, RouteKey};

/// Every route, by key. Shared by all workers.
#[derive(Default)]
pub struct Router {
    routes: Mutex<HashMap<RouteKey, Arc<Route>>>,
}

impl Router {
    /// The route of `key`, made on first use.
    pub fn route(&self, key: RouteKey, config: &Arc<Config>) -> Arc<Route> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Route::new(key, config.clone())))
            .clone()
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

    /// Forgets routes of older config generations that have no clients left; returns them so
    /// that their idle servers can be closed.
    pub fn gc(&self, current_generation: u64) -> Vec<Arc<Route>> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let old: Vec<RouteKey> = routes
            .iter()
            .filter(|(k, r)| {
                k.generation != current_generation
                    && r.clients.load(std::sync::atomic::Ordering::Acquire) == 0
                    && r.pool.counts().active == 0
            })
            .map(|(k, _)| k.clone())
            .collect();
        old.iter().filter_map(|k| routes.remove(k)).collect()
    }
}
