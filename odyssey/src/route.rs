//! A route: the clients of one rule for one (database, user), and the pool of servers they
//! share. A route outlives reloads that leave its rule as it was (`route_origin`); the routes
//! of a changed or removed rule finish their clients and then go away.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use crate::config::storage::{BalancingMethod, TargetSessionAttrs};
use crate::config::{Config, Rule, Storage};
use crate::endpoints::Endpoints;
use crate::listen::ListenHub;
use crate::pool::ServerPool;
use crate::server::ServerEntry;
use crate::stats::RouteStats;

/// Identifies a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteKey {
    /// Config generation the rule comes from (a reload makes a new one).
    pub generation: u64,
    /// Index of the rule in that config.
    pub rule: usize,
    /// The client's database.
    pub database: String,
    /// The client's user.
    pub user: String,
    /// The kind of server its clients need (listen's, else the rule's target_session_attrs):
    /// a pool holds servers of one kind.
    pub tsa: TargetSessionAttrs,
    /// `catchup_timeout` in seconds (the rule's, else the listen's; 0: no lag limit): hosts
    /// the watchdog sees lagging this much are not used.
    pub catchup: u64,
    /// The listen's `balancing_method`, over the storage's.
    pub balancing: Option<BalancingMethod>,
}

/// ParameterStatus values (name, value) as a server reported them.
pub type ParamSet = Arc<Vec<(Vec<u8>, Vec<u8>)>>;

/// A route and its server pool.
pub struct Route {
    /// Its identity.
    pub key: RouteKey,
    config: Arc<Config>,
    /// Its servers.
    pub pool: Arc<ServerPool>,
    /// Clients routed here now.
    pub clients: AtomicU32,
    /// ParameterStatus values of a server of this route, given to clients at login.
    params: Mutex<Option<ParamSet>>,
    /// Counters.
    pub stats: RouteStats,
    /// Its servers as the console sees them (entries go with their servers).
    servers: Mutex<Vec<Weak<ServerEntry>>>,
    /// What is known of storage hosts (shared by every route).
    pub endpoints: Arc<Endpoints>,
    /// Values clients sent at startup → the value a server reports for them (`eucjp` →
    /// `EUC_JP`), learnt on a server once per route and value.
    normalized: Mutex<HashMap<StartupValue, Vec<u8>>>,
    /// The route user's password as `auth_query` last returned it, and until when it is
    /// fresh.
    secret: Mutex<Option<(String, Instant)>>,
    /// Its clients' LISTENs and the listener connection that serves them.
    pub listen: ListenHub,
}

/// A tracked parameter's name and the value a client sent for it.
type StartupValue = (&'static str, Vec<u8>);

/// The most startup values a route remembers the reported form of.
const MAX_NORMALIZED: usize = 256;

impl Route {
    /// A route for `key` under `config`, with counters for `machines` machines, sharing what is
    /// known of storage hosts (`endpoints`) with every route, and servers in `pool`.
    pub fn new(
        key: RouteKey,
        config: Arc<Config>,
        (machines, endpoints, pool): (usize, Arc<Endpoints>, Arc<ServerPool>),
    ) -> Route {
        Route {
            key,
            config,
            pool,
            clients: AtomicU32::new(0),
            params: Mutex::new(None),
            stats: RouteStats::new(machines),
            servers: Mutex::default(),
            endpoints,
            normalized: Mutex::new(HashMap::new()),
            secret: Mutex::new(None),
            listen: ListenHub::default(),
        }
    }

    /// Lists a server that has just logged in (and forgets servers that are gone).
    pub fn track(&self, entry: &Arc<ServerEntry>) {
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers.retain(|s| s.strong_count() > 0);
        servers.push(Arc::downgrade(entry));
    }

    /// The route's servers now.
    pub fn servers(&self) -> Vec<Arc<ServerEntry>> {
        let servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers.iter().filter_map(Weak::upgrade).collect()
    }

    /// The rule the route serves.
    pub fn rule(&self) -> &Rule {
        &self.config.rules[self.key.rule]
    }

    /// The config the rule comes from.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The storage of the rule.
    pub fn storage(&self) -> Option<&Storage> {
        let name = &self.rule().storage;
        self.config.storages.iter().find(|s| &s.name == name)
    }

    /// The database to ask the server for.
    pub fn backend_database(&self) -> &str {
        self.rule()
            .storage_db
            .as_deref()
            .unwrap_or(&self.key.database)
    }

    /// `db.user` as logs and errors print it.
    pub fn name(&self) -> String {
        format!("{}.{}", self.key.database, self.key.user)
    }

    /// The cached ParameterStatus set, if a server has been seen.
    pub fn params(&self) -> Option<ParamSet> {
        self.params
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Caches a server's ParameterStatus set (first one wins; `in_hot_standby` is per server).
    pub fn cache_params(&self, status: &[(Vec<u8>, Vec<u8>)]) {
        let mut p = self.params.lock().unwrap_or_else(|p| p.into_inner());
        if p.is_none() {
            let kept = status
                .iter()
                .filter(|(n, _)| n != b"in_hot_standby")
                .cloned()
                .collect();
            *p = Some(Arc::new(kept));
        }
    }

    /// Whether servers of the route report parameter `name` (it is in their ParameterStatus
    /// set), so that a client must be told the server's form of its value.
    pub fn reports(&self, name: &str) -> bool {
        self.params().is_some_and(|p| {
            p.iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        })
    }

    /// The value a server reported for `raw`, when learnt.
    pub fn normalized(&self, name: &'static str, raw: &[u8]) -> Option<Vec<u8>> {
        let cache = self.normalized.lock().unwrap_or_else(|p| p.into_inner());
        cache.get(&(name, raw.to_vec())).cloned()
    }

    /// A server reported `reported` for the value `raw` a client sent.
    pub fn learn_normalized(&self, name: &'static str, raw: &[u8], reported: &[u8]) {
        let mut cache = self.normalized.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() < MAX_NORMALIZED {
            cache.insert((name, raw.to_vec()), reported.to_vec());
        }
    }

    /// The cached `auth_query` secret and whether it is still fresh.
    pub fn cached_secret(&self) -> Option<(String, bool)> {
        let secret = self.secret.lock().unwrap_or_else(|p| p.into_inner());
        secret
            .as_ref()
            .map(|(value, until)| (value.clone(), Instant::now() < *until))
    }

    /// Caches an `auth_query` secret until `until`.
    pub fn cache_secret(&self, value: String, until: Instant) {
        *self.secret.lock().unwrap_or_else(|p| p.into_inner()) = Some((value, until));
    }

    /// Counts a client in, unless the rule's `client_max` is reached.
    pub fn enter(&self) -> bool {
        let max = self.rule().client_max;
        let n = self.clients.fetch_add(1, Ordering::AcqRel) + 1;
        if max.is_some_and(|m| m > 0 && n > m) {
            self.clients.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Counts a client out.
    pub fn leave(&self) {
        self.clients.fetch_sub(1, Ordering::AcqRel);
    }
}
