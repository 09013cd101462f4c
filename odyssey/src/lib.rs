//! Odyssey in Rust: a PostgreSQL connection pooler, drop-in for Yandex Odyssey.
//!
//! # Layout
//! - `config`: odyssey.conf (and includes, hba_file) to an immutable `config::Config`, or
//!   diagnostics naming `file:line:column`. Pure apart from reading the files.
//! - `rules`: orders a config's rules by upstream precedence and matches clients to them.
//! - `option`: the command line.
//! - `auth`: authenticates a client by its rule's method, and answers a server's
//!   authentication requests with the route's credentials.
//!
//! The binary (`main.rs`) parses the command line, loads the config and (later) starts the
//! instance.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod conn;
pub mod id;
pub mod option;
pub mod reply;
pub mod rules;
