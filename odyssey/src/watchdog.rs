//! The lag watchdog (spec §7.6): for every storage with a `watchdog` block, each host is asked
//! its replication lag (`watchdog_lag_query` returns the unix time of the last replayed
//! transaction; lag = now − that) and its role, every 3/4 of the storage's
//! `endpoints_status_poll_interval`, over one connection per host kept open between polls and
//! logged in as the watchdog's rule says. What it learns feeds `catchup_timeout` and host
//! choice (`endpoints`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use machinarium::Deadline;

use crate::auth::backend::backend_credentials;
use crate::backend::{self, BackendError};
use crate::config::{Config, Storage};
use crate::hosts::{self, HostLogin};
use crate::instance::Instance;
use crate::od_debug;
use crate::server::Server;

/// How long one poll of one host may take.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// Polls until the coroutine is cancelled.
pub fn run(inst: Arc<Instance>) {
    let mut open: HashMap<(String, usize), Server> = HashMap::new();
    loop {
        let snapshot = inst.config();
        let config = &snapshot.config;
        let period = config
            .storages
            .iter()
            .filter(|s| s.watchdog.is_some())
            .map(|s| s.endpoints_status_poll_interval * 3 / 4)
            .min()
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(50));
        if machinarium::sleep(period).is_err() {
            break;
        }
        for storage in config.storages.iter().filter(|s| s.watchdog.is_some()) {
            poll(&inst, config, storage, &mut open);
        }
    }
    for (_, server) in open.drain() {
        backend::close(server);
    }
}

/// One round over a storage's hosts.
fn poll(
    inst: &Instance,
    config: &Config,
    storage: &Storage,
    open: &mut HashMap<(String, usize), Server>,
) {
    let Some(query) = lag_query(storage) else {
        return;
    };
    let endpoints = &inst.router.endpoints;
    for index in 0..storage.endpoints.len().max(1) {
        let key = (storage.name.clone(), index);
        let server = match open.remove(&key) {
            Some(s) => Ok(s),
            None => connect(inst, config, storage, index),
        };
        let measured = server.and_then(|mut s| measure(&mut s, query).map(|m| (s, m)));
        match measured {
            Ok((server, (lag, read_write))) => {
                endpoints.learn_lag(storage, index, lag);
                endpoints.learn(storage, index, true, Some(read_write));
                open.insert(key, server);
            }
            Err(e) => {
                endpoints.learn(storage, index, !e.is_host_down(), None);
                od_debug!(
                    inst.logger,
                    "watchdog",
                    None,
                    None,
                    "storage '{}' host {index}: {e}",
                    storage.name
                );
            }
        }
    }
}

fn lag_query(storage: &Storage) -> Option<&str> {
    match &storage.watchdog.as_ref()?.rule.kind {
        crate::config::rule::RuleKind::Watchdog { lag_query, .. } => lag_query.as_deref(),
        _ => None,
    }
}

/// Logs into host `index` as the watchdog's rule says.
fn connect(
    inst: &Instance,
    config: &Config,
    storage: &Storage,
    index: usize,
) -> Result<Server, BackendError> {
    let rule = &storage.watchdog.as_ref().expect("a watchdog storage").rule;
    let user = rule.storage_user.as_deref().unwrap_or("watchdog_int");
    let login = HostLogin {
        credentials: &backend_credentials(rule, user, None),
        database: rule.storage_db.as_deref().unwrap_or("watchdog_int"),
        startup: &rule.backend_startup_options,
        login_timeout: POLL_TIMEOUT,
        deadline: Deadline::Never,
    };
    hosts::connect_host(&inst.resolver, &config.global, (storage, index), &login)
}

/// The host's lag in seconds and whether it is a primary.
fn measure(server: &mut Server, query: &str) -> Result<(u64, bool), BackendError> {
    let value = backend::query_value(server, query.as_bytes(), Deadline::after(POLL_TIMEOUT))?;
    let replayed = value
        .and_then(|v| String::from_utf8_lossy(&v).trim().parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let read_write = hosts::check(server)?;
    Ok((now.saturating_sub(replayed), read_write))
}
