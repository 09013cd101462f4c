//! Odyssey in Rust: a PostgreSQL connection pooler, drop-in for Yandex Odyssey.
//!
//! # Layout (lower layers first; a module uses its own layer or lower ones)
//! - Foundation: `config` (odyssey.conf, includes, hba_file → an immutable `config::Config`,
//!   or diagnostics naming `file:line:column`), `logger` (log lines, text or JSON, to the log
//!   file, stdout and syslog; macros `od_info!`, `od_error!`, `od_debug!`, `od_fatal!`), `id`
//!   (client and server ids), `option` (the command line), `reply` (errors the pooler sends).
//! - Connections: `conn` (a socket with a read buffer, whole messages, deadlines), `client`,
//!   `server` (attached and detached), `backend` (connect and log into PostgreSQL, internal
//!   queries), `storage` (where a storage's server is).
//! - Registry: `rules` (rule precedence and matching), `route` (a rule's clients for one
//!   database and user), `router` (every route), `pool` (a route's servers, shared by workers),
//!   `cancel` (client keys → the server running their query).
//! - Flows: `auth` (client login by the rule's method; answering a server's auth requests),
//!   `relay` (where messages begin and end in the two byte streams).
//! - Client life: `frontend` (startup, route, auth, setup; `frontend::session` relays, attaches
//!   and releases servers, parks idle clients without a stack, ends).
//! - Orchestration: `instance` (what all machines share), `system` (listeners, accept, workers,
//!   signals, reload, graceful shutdown), `cron` (expiry, stats).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod backend;
pub mod cancel;
pub mod client;
pub mod config;
pub mod conn;
pub mod cron;
pub mod deploy;
pub mod frontend;
pub mod id;
pub mod instance;
pub mod logger;
pub mod option;
pub mod pool;
pub mod relay;
pub mod reply;
pub mod reset;
pub mod route;
pub mod router;
pub mod rules;
pub mod server;
pub mod sql;
pub mod storage;
pub mod system;
