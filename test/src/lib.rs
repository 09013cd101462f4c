//! Integration-test harness: real PostgreSQL clusters, the `odyssey` binary and real clients,
//! each a fixture that stops every process it started when dropped (also on panic), with every
//! wait bounded in time and every socket on loopback.
//!
//! # Layout
//! - [`command`]: run a program to completion under a deadline ([`Output`]).
//! - [`process`]: processes found in `/proc`, signalled with `kill(1)` ([`Signal`]).
//! - [`run_as`], [`temp_dir`], [`error`]: who runs PostgreSQL, scratch dirs, [`Error`].
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod command;
pub mod error;
pub mod process;
pub mod run_as;
pub mod temp_dir;

pub use command::Output;
pub use error::{Error, Result};
pub use process::Signal;
