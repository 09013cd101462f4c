//! Host names for rules with a host-name address selector (spec §3): the client's address is
//! looked up by reverse DNS on the resolver pool and the name kept only when it resolves back
//! to that address (forward-confirmed, as PostgreSQL does); answers, names or none, are cached
//! per address for `dns_cache_ttl`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use machinarium::{BlockingPool, Deadline};

use crate::config::Config;
use crate::config::address::AddressRange;

/// The most addresses remembered; past it the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// Confirmed host names by client address, with when they were looked up.
#[derive(Debug, Default)]
pub struct HostnameCache {
    entries: Mutex<HashMap<IpAddr, (Option<String>, Instant)>>,
}

impl HostnameCache {
    /// The confirmed host name of `ip` when some rule of `config` selects by host name (else
    /// no lookup is made), within `deadline`.
    pub fn for_rules(
        &self,
        config: &Config,
        pool: &BlockingPool,
        ip: IpAddr,
        deadline: Deadline,
    ) -> Option<String> {
        let wanted = config
            .rules
            .iter()
            .any(|r| matches!(r.key.address, AddressRange::Hostname(_)));
        if !wanted {
            return None;
        }
        self.lookup(pool, ip, config.global.dns_cache_ttl, deadline)
    }

    /// The confirmed host name of `ip`, cached for `ttl` (0: not cached).
    pub fn lookup(
        &self,
        pool: &BlockingPool,
        ip: IpAddr,
        ttl: Duration,
        deadline: Deadline,
    ) -> Option<String> {
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((name, at)) = entries.get(&ip)
                && at.elapsed() < ttl
            {
                return name.clone();
            }
        }
        let name = pool
            .reverse(ip, deadline)
            .ok()
            .flatten()
            .filter(|name| confirmed(pool, name, ip, deadline));
        if !ttl.is_zero() {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(ip, (name.clone(), Instant::now()));
        }
        name
    }
}

/// Whether `name` resolves to `ip`.
fn confirmed(pool: &BlockingPool, name: &str, ip: IpAddr, deadline: Deadline) -> bool {
    pool.resolve(name, 0, deadline)
        .is_ok_and(|addrs| addrs.iter().any(|a| a.ip() == ip))
}
