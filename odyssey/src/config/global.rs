//! Top-level options: process, logging, networking defaults, limits. Defaults are upstream's.

use std::time::Duration;

use super::affinity::CpuAffinity;
use super::convert::{Reader, put, put_some};
use super::model::{Item, Value};

/// Process-wide options (every top-level directive that is not a section).
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// Fork into the background (`daemonize`); `--console` overrides.
    pub daemonize: bool,
    /// Match rules in config order instead of by specificity (`sequential_routing`).
    pub sequential_routing: bool,
    /// `setpriority` value; 0 leaves it alone.
    pub priority: i64,
    /// Where to write the pid.
    pub pid_file: Option<String>,
    /// Directory of unix sockets (listen without host, storages without host).
    pub unix_socket_dir: Option<String>,
    /// Mode of the unix listen socket, from an octal string; required with `unix_socket_dir`.
    pub unix_socket_mode: Option<u32>,
    /// Parsed and unused, as upstream.
    pub locks_dir: Option<String>,
    /// Socket of the external auth agent; `None` means upstream's built-in default.
    pub external_auth_socket_path: Option<String>,
    /// This instance's availability zone.
    pub availability_zone: String,
    /// Log destinations and what to log.
    pub log: Logging,
    /// Legacy Prometheus HTTP port; this build has no such server, so it is only kept.
    pub promhttp_server_port: Option<u16>,
    /// Period of stats lines.
    pub stats_interval: Duration,
    /// Worker threads.
    pub workers: Workers,
    /// DNS resolver threads, at least 1.
    pub resolvers: u32,
    /// Per-connection read buffer, bytes.
    pub readahead: u32,
    /// Coroutine cache size per machine.
    pub cache_coroutine: u32,
    /// Machine message cache GC watermark.
    pub cache_msg_gc_size: u32,
    /// Client coroutine stack, in pages; at least 4 (16 recommended, needed for LDAP).
    pub coroutine_stack_size: u32,
    /// System coroutine stack, in pages; at least 4.
    pub system_coroutine_stack_size: u32,
    /// TCP_NODELAY on client and server sockets.
    pub nodelay: bool,
    /// When false, accepted client sockets get SO_LINGER {1, 0}.
    pub disable_nolinger: bool,
    /// TCP keepalive for client and server sockets.
    pub keepalive: Keepalive,
    /// Connect timeout to a backend address.
    pub backend_connect_timeout: Duration,
    /// Timeout of one outgoing cancel; zero means none.
    pub cancel_timeout: Duration,
    /// How long a CancelRequest waits for a slot; `None` means twice `cancel_timeout`.
    pub cancel_queue_timeout: Option<Duration>,
    /// Concurrent outgoing cancels; `None` means twice the workers.
    pub cancel_max_inflight: Option<u32>,
    /// Global client limit; `None` is unlimited.
    pub client_max: Option<u32>,
    /// Clients between accept and routing; 0 means 64 per worker.
    pub client_max_routing: u32,
    /// Pause between backend login retries after 53300.
    pub server_login_retry: Duration,
    /// The n-th SIGTERM/SIGINT exits at once.
    pub max_sigterms_to_die: u32,
    /// Hard exit (124) this long after shutdown starts; zero waits forever.
    pub graceful_shutdown_timeout: Duration,
    /// SIGUSR2 starts a new binary.
    pub enable_online_restart: bool,
    /// SO_REUSEPORT on TCP listeners.
    pub bindwith_reuseport: bool,
    /// Sample /proc for SHOW HOST_UTILIZATION.
    pub enable_host_watcher: bool,
    /// Leave simple search_path values unquoted when deploying them.
    pub smart_search_path_enquoting: bool,
    /// CPU pinning of worker threads (`"off"`, `"auto"`, `"worker:0-3 ..."`).
    pub cpu_affinity: Option<CpuAffinity>,
    /// pg_hba-like file, path as written.
    pub hba_file: Option<String>,
    /// Virtual `SET/SHOW odyssey.*`.
    pub virtual_processing: bool,
    /// Deferred bare `BEGIN`.
    pub virtual_transaction: bool,
    /// DNS cache lifetime.
    pub dns_cache_ttl: Duration,
    /// Period of group membership queries.
    pub group_checker_interval: Duration,
}

/// Logging options (`log_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct Logging {
    /// Append-only log file.
    pub file: Option<String>,
    /// Line template; required (validation says so when missing).
    pub format: Option<String>,
    /// Also log to stdout.
    pub to_stdout: bool,
    /// Also log to syslog.
    pub syslog: bool,
    /// syslog ident.
    pub syslog_ident: String,
    /// syslog facility as written (daemon, user, local0..local7; unknown means daemon).
    pub syslog_facility: String,
    /// Debug lines.
    pub debug: bool,
    /// Print the config at start and reload.
    pub config: bool,
    /// Connect/disconnect lines.
    pub session: bool,
    /// Every query.
    pub query: bool,
    /// Periodic stats lines.
    pub stats: bool,
    /// Write through a logger thread.
    pub async_write: bool,
    /// Queue length of the logger thread.
    pub queue_depth: u32,
    /// Legacy Prometheus general metrics (no effect in this build).
    pub general_stats_prom: bool,
    /// Legacy Prometheus per-route metrics (no effect in this build).
    pub route_stats_prom: bool,
}

/// TCP keepalive settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before probes; zero disables keepalive.
    pub idle: Duration,
    /// Time between probes.
    pub interval: Duration,
    /// Probes before the peer is declared dead.
    pub probes: u32,
    /// TCP_USER_TIMEOUT in ms: 0 leaves the kernel default, negative means "computed".
    pub usr_timeout_ms: i64,
}

/// Number of worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// `"auto"`: (1 + cpus) / 2.
    Auto,
    /// An explicit count, at least 1.
    Count(u32),
}

impl Workers {
    /// The thread count on a machine with `cpus` processors.
    pub fn resolve(self, cpus: u32) -> u32 {
        match self {
            Workers::Auto => cpus.div_ceil(2),
            Workers::Count(n) => n,
        }
    }
}

impl Global {
    /// The worker threads this config asks for on this machine.
    pub fn worker_threads(&self) -> u32 {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        self.workers.resolve(cpus).max(1)
    }
}

impl Default for Global {
    fn default() -> Self {
        let ms = Duration::from_millis;
        Global {
            daemonize: false,
            sequential_routing: false,
            priority: 0,
            pid_file: None,
            unix_socket_dir: None,
            unix_socket_mode: None,
            locks_dir: None,
            external_auth_socket_path: None,
            availability_zone: String::new(),
            log: Logging::default(),
            promhttp_server_port: None,
            stats_interval: Duration::from_secs(3),
            workers: Workers::Count(1),
            resolvers: 1,
            readahead: 4096,
            cache_coroutine: 1024,
            cache_msg_gc_size: 0,
            coroutine_stack_size: 16,
            system_coroutine_stack_size: 32,
            nodelay: true,
            disable_nolinger: false,
            keepalive: Keepalive {
                idle: Duration::from_secs(15),
                interval: Duration::from_secs(5),
                probes: 3,
                usr_timeout_ms: 0,
            },
            backend_connect_timeout: ms(30_000),
            cancel_timeout: ms(1000),
            cancel_queue_timeout: None,
            cancel_max_inflight: None,
            client_max: None,
            client_max_routing: 0,
            server_login_retry: ms(1),
            max_sigterms_to_die: 3,
            graceful_shutdown_timeout: ms(30_000),
            enable_online_restart: true,
            bindwith_reuseport: true,
            enable_host_watcher: false,
            smart_search_path_enquoting: false,
            cpu_affinity: None,
            hba_file: None,
            virtual_processing: false,
            virtual_transaction: true,
            dns_cache_ttl: ms(30_000),
            group_checker_interval: ms(7000),
        }
    }
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            file: None,
            format: None,
            to_stdout: true,
            syslog: false,
            syslog_ident: "odyssey".to_string(),
            syslog_facility: "daemon".to_string(),
            debug: false,
            config: false,
            session: true,
            query: false,
            stats: true,
            async_write: true,
            queue_depth: 30_000,
            general_stats_prom: false,
            route_stats_prom: false,
        }
    }
}

/// Applies one top-level option to `g`; false when `item` is not a global option.
pub fn read(r: &mut Reader, g: &mut Global, item: &Item) -> bool {
    read_logging(r, &mut g.log, item)
        || read_process(r, g, item)
        || read_network(r, g, item)
        || read_limits(r, g, item)
}

fn read_logging(r: &mut Reader, l: &mut Logging, item: &Item) -> bool {
    match item.name() {
        "log_file" => put_some(&mut l.file, r.string(item)),
        "log_format" => put_some(&mut l.format, r.string(item)),
        "log_to_stdout" => put(&mut l.to_stdout, r.bool(item)),
        "log_syslog" => put(&mut l.syslog, r.bool(item)),
        "log_syslog_ident" => put(&mut l.syslog_ident, r.string(item)),
        "log_syslog_facility" => put(&mut l.syslog_facility, r.string(item)),
        "log_debug" => put(&mut l.debug, r.bool(item)),
        "log_config" => put(&mut l.config, r.bool(item)),
        "log_session" => put(&mut l.session, r.bool(item)),
        "log_query" => put(&mut l.query, r.bool(item)),
        "log_stats" => put(&mut l.stats, r.bool(item)),
        "log_async" => put(&mut l.async_write, r.bool(item)),
        "log_queue_depth" => {
            let n = r.int(item);
            put(
                &mut l.queue_depth,
                n.map(|n| {
                    if n <= 0 {
                        30_000
                    } else {
                        n.min(u32::MAX.into()) as u32
                    }
                }),
            )
        }
        "log_general_stats_prom" => put(&mut l.general_stats_prom, r.bool(item)),
        "log_route_stats_prom" => put(&mut l.route_stats_prom, r.bool(item)),
        _ => return false,
    }
    true
}

fn read_process(r: &mut Reader, g: &mut Global, item: &Item) -> bool {
    match item.name() {
        "daemonize" => put(&mut g.daemonize, r.bool(item)),
        "sequential_routing" => put(&mut g.sequential_routing, r.bool(item)),
        "priority" => put(&mut g.priority, r.int(item)),
        "pid_file" => put_some(&mut g.pid_file, r.string(item)),
        "unix_socket_dir" => put_some(&mut g.unix_socket_dir, r.string(item)),
        "unix_socket_mode" => put_some(&mut g.unix_socket_mode, socket_mode(r, item)),
        "locks_dir" => put_some(&mut g.locks_dir, r.string(item)),
        "external_auth_socket_path" => put_some(&mut g.external_auth_socket_path, r.string(item)),
        "availability_zone" => put(&mut g.availability_zone, r.string(item)),
        "workers" => put(&mut g.workers, workers(r, item)),
        "resolvers" => put(&mut g.resolvers, at_least(r, item, 1, "resolvers")),
        "readahead" => put(&mut g.readahead, r.count(item)),
        "cache_coroutine" => put(&mut g.cache_coroutine, r.count(item)),
        "cache_msg_gc_size" => put(&mut g.cache_msg_gc_size, r.count(item)),
        "coroutine_stack_size" => {
            let pages = at_least(r, item, 4, "coroutine_stack_size");
            if let Some(n) = pages.filter(|&n| n < 16) {
                r.warn(
                    &item.head.pos,
                    format!(
                        "coroutine_stack_size {n} is below the recommended minimum of 16 pages"
                    ),
                );
            }
            put(&mut g.coroutine_stack_size, pages)
        }
        "system_coroutine_stack_size" => put(
            &mut g.system_coroutine_stack_size,
            at_least(r, item, 4, "system_coroutine_stack_size"),
        ),
        "max_sigterms_to_die" => put(&mut g.max_sigterms_to_die, r.count(item)),
        "graceful_shutdown_timeout_ms" => put(&mut g.graceful_shutdown_timeout, r.millis(item)),
        "enable_online_restart" => put(&mut g.enable_online_restart, r.bool(item)),
        "bindwith_reuseport" => put(&mut g.bindwith_reuseport, r.bool(item)),
        "enable_host_watcher" => put(&mut g.enable_host_watcher, r.bool(item)),
        "cpu_affinity" => put_some(&mut g.cpu_affinity, cpu_affinity(r, item)),
        "hba_file" => put_some(&mut g.hba_file, r.string(item)),
        "virtual_processing" => put(&mut g.virtual_processing, r.bool(item)),
        "virtual_transaction" => put(&mut g.virtual_transaction, r.bool(item)),
        "smart_search_path_enquoting" => put(&mut g.smart_search_path_enquoting, r.bool(item)),
        "stats_interval" => put(&mut g.stats_interval, r.secs(item)),
        "group_checker_interval" => put(&mut g.group_checker_interval, r.millis(item)),
        "promhttp_server_port" => put_some(
            &mut g.promhttp_server_port,
            r.int_in(item, 1, 65535).map(|p| p as u16),
        ),
        _ => return false,
    }
    true
}

fn read_network(r: &mut Reader, g: &mut Global, item: &Item) -> bool {
    let k = &mut g.keepalive;
    match item.name() {
        "nodelay" => put(&mut g.nodelay, r.bool(item)),
        "disable_nolinger" => put(&mut g.disable_nolinger, r.bool(item)),
        "keepalive" => put(&mut k.idle, r.secs(item)),
        "keepalive_keep_interval" => put(&mut k.interval, r.secs(item)),
        "keepalive_probes" => put(&mut k.probes, r.count(item)),
        "keepalive_usr_timeout" => put(&mut k.usr_timeout_ms, r.int(item)),
        "backend_connect_timeout_ms" => put(&mut g.backend_connect_timeout, r.millis(item)),
        "cancel_timeout_ms" => put(&mut g.cancel_timeout, r.millis(item)),
        "cancel_queue_timeout_ms" => {
            let n = r.int(item);
            put(
                &mut g.cancel_queue_timeout,
                n.map(|n| u64::try_from(n).ok().map(Duration::from_millis)),
            )
        }
        "dns_cache_ttl" => put(&mut g.dns_cache_ttl, r.millis(item)),
        "server_login_retry" => put(&mut g.server_login_retry, r.millis(item)),
        _ => return false,
    }
    true
}

fn read_limits(r: &mut Reader, g: &mut Global, item: &Item) -> bool {
    match item.name() {
        "client_max" => {
            let n = r.int_in(item, i64::MIN, i64::from(u32::MAX));
            put(&mut g.client_max, n.map(|n| (n > 0).then_some(n as u32)))
        }
        "client_max_routing" => put(&mut g.client_max_routing, r.count(item)),
        "cancel_max_inflight" => {
            let n = r.int_in(item, i64::MIN, i64::from(u32::MAX));
            put(&mut g.cancel_max_inflight, n.map(|n| u32::try_from(n).ok()))
        }
        _ => return false,
    }
    true
}

/// `cpu_affinity "..."`, refused with upstream's words when it does not parse.
fn cpu_affinity(r: &mut Reader, item: &Item) -> Option<CpuAffinity> {
    let text = r.string(item)?;
    CpuAffinity::parse(&text)
        .map_err(|why| r.error(item.pos(), format!("can't parse cpu_affinity: {why}")))
        .ok()
}

/// `workers N` (N ≥ 1) or `workers "auto"`.
fn workers(r: &mut Reader, item: &Item) -> Option<Workers> {
    let arg = r.one(item, "a number or \"auto\"")?;
    match &arg.value {
        Value::Str(s, _) if s == "auto" => Some(Workers::Auto),
        Value::Str(s, _) => {
            r.error(
                &arg.pos,
                format!("'{s}' is invalid value for workers (a number or \"auto\")"),
            );
            None
        }
        Value::Int(_) => at_least(r, item, 1, "workers").map(Workers::Count),
        other => {
            r.expected(
                &arg.pos,
                "a number or \"auto\" for workers",
                other.describe(),
            );
            None
        }
    }
}

/// An integer option with a lower bound, worded as upstream's runtime check.
fn at_least(r: &mut Reader, item: &Item, min: i64, what: &str) -> Option<u32> {
    let n = r.int(item)?;
    if n < min || n > i64::from(u32::MAX) {
        r.error(
            &item.args[0].pos,
            format!("bad {what} number {n} (at least {min})"),
        );
        return None;
    }
    Some(n as u32)
}

/// `unix_socket_mode "0644"`: an octal string.
fn socket_mode(r: &mut Reader, item: &Item) -> Option<u32> {
    let s = r.string(item)?;
    match u32::from_str_radix(&s, 8) {
        Ok(mode) if mode <= 0o7777 => Some(mode),
        _ => {
            r.expected(
                &item.args[0].pos,
                "an octal mode like \"0644\" for unix_socket_mode",
                format!("\"{s}\""),
            );
            None
        }
    }
}
