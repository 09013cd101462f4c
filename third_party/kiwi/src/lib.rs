//! kiwi: the PostgreSQL wire protocol, sans-io.
//!
//! Turns bytes into typed messages and back. Knows nothing of sockets or coroutines.
#![forbid(unsafe_code)]
