//! Odyssey in Rust: a PostgreSQL connection pooler, drop-in for Yandex Odyssey.
//!
//! # Layout
//! - `config`: odyssey.conf (and includes, hba_file) to an immutable `config::Config`, or
//!   diagnostics naming `file:line:column`. Pure apart from reading the files.
//! - `rules`: orders a config's rules by upstream precedence and matches clients to them.
//! - `option`: the command line.
//! - `logger`: log lines (text or JSON) to the log file, stdout and syslog, optionally through a
//!   writer thread; a value the instance owns and clones into workers. Macros `od_info!`,
//!   `od_error!`, `od_debug!`, `od_fatal!`.
//!
//! The binary (`main.rs`) parses the command line, loads the config and (later) starts the
//! instance.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod backend;
pub mod cancel;
pub mod client;
pub mod config;
pub mod conn;
pub mod cron;
pub mod frontend;
pub mod id;
pub mod instance;
pub mod logger;
pub mod option;
pub mod pool;
pub mod relay;
pub mod reply;
pub mod route;
pub mod router;
pub mod rules;
pub mod server;
pub mod storage;
pub mod system;
