//! Odyssey in Rust: a PostgreSQL connection pooler, drop-in for Yandex Odyssey.
//!
//! # Layout
//! Lower layers first. A module uses its own layer or lower ones, never a higher one; within
//! a layer, calls go one way (`reset` reads `relay`'s state, `router` opens `backend`
//! connections). `tests/layers.rs` reads this list and checks every `crate::` path against it,
//! and that no file of `src` passes 500 lines (tests aside); clippy's `too_many_lines` keeps
//! functions under 80.
//!
//! - 0 Foundation: `config` (odyssey.conf, includes, hba_file → an immutable `config::Config`,
//!   or diagnostics naming `file:line:column`), `logger` (log lines, text or JSON, to the log
//!   file, stdout and syslog; macros `od_info!`, `od_error!`, `od_debug!`, `od_fatal!`), `id`
//!   (client and server ids), `option` (the command line), `reply` (errors the pooler sends),
//!   `sql` (the few statements the pooler recognises), `notify` (systemd's sd_notify), `procfs` (figures from /proc), `gate` (counted slots with a deadline:
//!   concurrent cancels, logins being routed), `drain` (`conn_drop_options`: how many idle
//!   clients a draining process drops per interval on each machine), `stats` (per-route counters sharded by
//!   machine, time histograms, error counts).
//! - 1 Connections: `conn` (a socket with a read buffer, whole messages, deadlines), `client`
//!   (a logged-in client, its cancel key and slot), `server` (attached and detached, the
//!   statements it holds), `backend` (connect and log into PostgreSQL, internal queries,
//!   close), `storage` (where a storage's server is), `tls` (a connection's TLS session:
//!   a client's SSLRequest accepted, a server's negotiated and verified).
//! - 2 Registry: `rules` (rule precedence and matching), `route` (a rule's clients for one
//!   database and user), `route_origin` (which routes a reload keeps: those of rules it left
//!   as they were), `listen` (LISTEN/NOTIFY in transaction pools: a route's listening clients,
//!   their mailboxes, and the listener connection that LISTENs for them), `pool` (a route's servers, shared by workers), `clients` (every
//!   logged-in client, for the console), `endpoints` (what is known of each storage host:
//!   alive, primary or standby; the order to try hosts in), `hosts` (opening a server on a
//!   suitable host: target_session_attrs, balancing, failover), `router` (every route;
//!   the one door servers pass: attach, detach, the `Checkout` guard, expiry), `cancel` (client
//!   keys → the server running their query).
//! - 3 Flows: `relay` (sans-io: what each side's bytes become, when a server may go back),
//!   `auth` (client login by the rule's method, auth_query, LDAP and PAM, whose FFI
//!   file auth/pam/ffi.rs is the crate's only unsafe code; the credentials for servers),
//!   `deploy` (the client's parameters on a server), `reset` (may a server go back, and making it fit),
//!   `instance` (the handle every machine shares: config, logger, router, cancel keys),
//!   `internal` (the pooler's own queries on internal routes: auth_query, group rules),
//!   `control` (reload, pause, resume, kill: what signals and the console do).
//! - 4 Client life: `frontend` (admission, startup, route, auth, then the session: setup,
//!   relay I/O, attach and release, parking idle clients without a stack, the end table),
//!   `console` (the admin console: SHOW commands and operator commands, over the simple and
//!   extended protocol), `metrics` (the Prometheus text of the counters, served on
//!   `promhttp_server_port` with `/healthz`).
//! - 5 Orchestration: `system` (accept, workers, signals, reload, graceful shutdown),
//!   `listeners` (every listen section bound, or taken over at an online restart), `restart` (online restart: the listening sockets handed to a new process),
//!   `cron` (expiry, stats), `oom` (soft OOM: memory over `soft_oom`'s limit refuses logins), `host_watcher` (CPU and
//!   memory of the host sampled for `SHOW HOST_UTILIZATION`), `watchdog` (replication lag and role of every host of
//!   storages with a `watchdog` block).
#![deny(unsafe_code)]
#![warn(clippy::too_many_lines)]
#![warn(missing_docs)]

pub mod auth;
pub mod backend;
pub mod cancel;
pub mod client;
pub mod clients;
pub mod config;
pub mod conn;
pub mod console;
pub mod control;
pub mod cron;
pub mod deploy;
pub mod drain;
pub mod endpoints;
pub mod frontend;
pub mod gate;
pub mod host_watcher;
pub mod hosts;
pub mod id;
pub mod instance;
pub mod internal;
pub mod listen;
pub mod listeners;
pub mod logger;
pub mod metrics;
pub mod notify;
pub mod oom;
pub mod option;
pub mod pool;
pub mod procfs;
pub mod relay;
pub mod reply;
pub mod reset;
pub mod restart;
pub mod route;
pub mod route_origin;
pub mod router;
pub mod rules;
pub mod server;
pub mod sql;
pub mod stats;
pub mod storage;
pub mod system;
pub mod tls;
pub mod watchdog;
