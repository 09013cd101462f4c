//! Integration-test harness: real PostgreSQL clusters, the `odyssey` binary and real clients.
