//! The instance: what every machine of the process shares — the current config, the logger,
//! the router, counters, the cancel registry, the prepared-statement texts and the resolver
//! pool. There is no other shared state; everything reaches it through an `Arc<Instance>`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use machinarium::{BlockingPool, MachineHandle};

use crate::cancel::CancelRegistry;
use crate::clients::ClientList;
use crate::config::Config;
use crate::drain::DrainRate;
use crate::gate::Gate;
use crate::logger::Logger;
use crate::option::RunOptions;
use crate::procfs::HostUtilization;
use crate::reply::Drain;
use crate::route::RouteKey;
use crate::route_origin::{self, RuleOrigin};
use crate::router::Router;
use crate::rules::RuleOrder;
use crate::rules::hostnames::HostnameCache;
use crate::rules::members::GroupMembers;
use crate::server::registry::StatementRegistry;
use crate::stats::ErrorCounts;

/// A config and its generation (a reload makes generation + 1).
#[derive(Clone)]
pub struct ConfigSnapshot {
    /// The config.
    pub config: Arc<Config>,
    /// Its generation.
    pub generation: u64,
    /// Its rules in matching order.
    pub rules: Arc<RuleOrder>,
    /// Where each rule's routes come from (by rule index): unchanged rules keep the routes
    /// of an earlier generation.
    origins: Arc<Vec<RuleOrigin>>,
}

impl ConfigSnapshot {
    fn new(config: Config, generation: u64, previous: Option<&ConfigSnapshot>) -> ConfigSnapshot {
        let config = Arc::new(config);
        let previous = previous.map(|p| (&*p.config, p.origins.as_slice()));
        ConfigSnapshot {
            rules: Arc::new(RuleOrder::new(&config)),
            origins: Arc::new(route_origin::origins(&config, generation, previous)),
            config,
            generation,
        }
    }

    /// Where the routes of rule `index` come from.
    pub fn origin(&self, index: usize) -> &RuleOrigin {
        &self.origins[index]
    }

    /// Whether a route of `key` belongs to a rule of this config.
    pub fn is_current(&self, key: &RouteKey) -> bool {
        self.origins
            .iter()
            .any(|o| o.generation == key.generation && o.index == key.rule)
    }
}

/// The process-wide state of the pooler.
pub struct Instance {
    config: Mutex<ConfigSnapshot>,
    /// How the process was started (config path, CLI overrides for reload).
    pub options: RunOptions,
    /// The logger.
    pub logger: Logger,
    /// Routes and their pools.
    pub router: Router,
    /// Client keys for CancelRequest (and the `cancel_max_inflight` gate).
    pub cancels: CancelRegistry,
    /// `client_max_routing` slots: logins between accept and their route (sized at start).
    pub routing: Arc<Gate>,
    /// Texts of the prepared statements clients and servers hold, by key (each text its own
    /// server-side name; see `relay::statements`).
    pub statements: Arc<StatementRegistry>,
    /// DNS and other blocking calls.
    pub resolver: BlockingPool,
    /// LDAP binds and PAM conversations: blocking, and maybe slow, kept off the workers and
    /// apart from DNS.
    pub auth_pool: BlockingPool,
    /// Connected clients (everything accepted and not yet closed).
    pub clients: AtomicU32,
    /// Clients accepted since start.
    pub clients_total: AtomicU64,
    /// Startup packets that could not be parsed.
    pub startup_errors: AtomicU64,
    /// Set by SIGTERM/SIGINT: stop accepting, drain clients.
    pub shutting_down: AtomicBool,
    /// Set before `shutting_down` when a new process took over (online restart).
    pub handed_over: AtomicBool,
    /// How fast the drain drops idle clients (`conn_drop_options`, fixed at start as
    /// upstream's).
    pub drain: DrainRate,
    /// Failed logins and sessions, by kind (routes count their own too).
    pub errors: ErrorCounts,
    /// The logged-in clients.
    pub client_list: ClientList,
    /// `soft_oom`: memory is over the limit, new remote logins are refused.
    pub memory_over: AtomicBool,
    /// Logins that succeeded and failed.
    pub logins: Logins,
    /// `PAUSE`d databases.
    pub pause: Pause,
    /// The members of group rules, as their queries last said.
    pub groups: GroupMembers,
    /// Clients' confirmed host names, for host-name rule selectors.
    pub hostnames: HostnameCache,
    /// The host watcher's last sample (`enable_host_watcher`).
    pub host: HostUtilization,
    /// The worker machines, once started.
    workers: OnceLock<Vec<MachineHandle>>,
    /// The system machine, once started.
    system: OnceLock<MachineHandle>,
}

/// Logins by result (`/metrics`).
#[derive(Default)]
pub struct Logins {
    /// Clients that logged in.
    pub ok: AtomicU64,
    /// Clients refused or lost before they logged in (cancel requests aside).
    pub failed: AtomicU64,
}

/// What the console paused: everything, or some databases.
#[derive(Default)]
pub struct Pause {
    all: AtomicBool,
    /// Whether any database is paused (checked first, without the lock).
    some: AtomicBool,
    databases: Mutex<HashSet<String>>,
}

impl Pause {
    /// Pauses (`on`) or resumes `database`, or everything.
    pub fn set(&self, database: Option<&str>, on: bool) {
        let mut dbs = self.databases.lock().unwrap_or_else(|p| p.into_inner());
        match (database, on) {
            (None, true) => self.all.store(true, Ordering::Release),
            (None, false) => {
                self.all.store(false, Ordering::Release);
                dbs.clear();
            }
            (Some(db), true) => {
                dbs.insert(db.to_string());
            }
            (Some(db), false) => {
                dbs.remove(db);
            }
        }
        self.some.store(!dbs.is_empty(), Ordering::Release);
    }

    /// Whether clients of `database` must wait.
    pub fn holds(&self, database: &str) -> bool {
        if self.all.load(Ordering::Acquire) {
            return true;
        }
        self.some.load(Ordering::Acquire)
            && self
                .databases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(database)
    }

    /// Whether everything is paused (`SHOW IS_PAUSED`).
    pub fn global(&self) -> bool {
        self.all.load(Ordering::Acquire)
    }
}

/// Threads of [`Instance::auth_pool`]: logins waiting on LDAP or PAM at once.
const AUTH_THREADS: usize = 4;

impl Instance {
    /// An instance for a loaded config.
    pub fn new(config: Config, options: RunOptions, logger: Logger) -> std::io::Result<Instance> {
        let resolvers = config.global.resolvers.max(1) as usize;
        let workers = config.global.worker_threads();
        // Upstream's defaults: 2 × workers cancels, 64 × workers logins being routed.
        let cancel_max = config.global.cancel_max_inflight.unwrap_or(2 * workers);
        let routing_max = match config.global.client_max_routing {
            0 => 64 * workers,
            n => n,
        };
        // Workers and the system machine may end sessions.
        let drain = DrainRate::new(config.conn_drop, workers as usize + 1);
        Ok(Instance {
            config: Mutex::new(ConfigSnapshot::new(config, 1, None)),
            options,
            logger,
            // The workers and the system machine record route counters.
            router: Router::new(workers as usize + 1),
            cancels: CancelRegistry::new(cancel_max),
            routing: Gate::new(routing_max),
            statements: Arc::default(),
            resolver: BlockingPool::new("resolver", resolvers)?,
            auth_pool: BlockingPool::new("auth", AUTH_THREADS)?,
            clients: AtomicU32::new(0),
            clients_total: AtomicU64::new(0),
            startup_errors: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            handed_over: AtomicBool::new(false),
            drain,
            errors: ErrorCounts::default(),
            client_list: ClientList::default(),
            memory_over: AtomicBool::new(false),
            logins: Logins::default(),
            pause: Pause::default(),
            groups: GroupMembers::default(),
            hostnames: HostnameCache::default(),
            host: HostUtilization::default(),
            workers: OnceLock::new(),
            system: OnceLock::new(),
        })
    }

    /// The current config.
    pub fn config(&self) -> ConfigSnapshot {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Installs a reloaded config; new clients use it, connected ones keep their route.
    pub fn replace_config(&self, config: Config) -> u64 {
        let mut c = self.config.lock().unwrap_or_else(|p| p.into_inner());
        *c = ConfigSnapshot::new(config, c.generation + 1, Some(&*c));
        c.generation
    }

    /// Whether a graceful shutdown is in progress.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Why this process drains, once it does.
    pub fn drain(&self) -> Drain {
        if self.handed_over.load(Ordering::Acquire) {
            Drain::OnlineRestart
        } else {
            Drain::Shutdown
        }
    }

    /// Remembers the machines, once started (for waking parked sessions and for running
    /// work on the system machine).
    pub fn set_machines(&self, workers: Vec<MachineHandle>, system: Option<MachineHandle>) {
        let _ = self.workers.set(workers);
        if let Some(system) = system {
            let _ = self.system.set(system);
        }
    }

    /// The system machine, once started.
    pub fn system_machine(&self) -> Option<&MachineHandle> {
        self.system.get()
    }

    /// Runs every parked session of every worker once (they check what changed: a kill,
    /// a shutdown).
    pub fn wake_workers(&self) {
        for w in self.workers.get().into_iter().flatten() {
            w.wake_parked();
        }
    }

    /// Coroutines alive on the workers and the system machine (as each last polled).
    pub fn coroutines(&self) -> usize {
        let workers = self.workers.get().into_iter().flatten();
        workers
            .chain(self.system.get())
            .map(MachineHandle::coroutines)
            .sum()
    }

    /// The config file path.
    pub fn config_path(&self) -> &PathBuf {
        &self.options.config
    }
}
