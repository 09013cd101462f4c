//! Rule precedence and matching: which rule serves a client (upstream `od_rules_forward`).
//!
//! Rules are ordered once per config. By default the most specific rule comes first:
//! specificity = 1000·(database named) + 100·(user named) + 10·(address set) + 1·(connection
//! type set), ties broken by database name, user name, address (default last) and connection
//! type. With `sequential_routing yes` the config order is kept. The first rule that matches wins.

pub mod hostnames;
pub mod members;

use std::cmp::Reverse;
use std::net::IpAddr;

use crate::config::Config;
use crate::config::pool::PoolRouting;
use crate::config::rule::{ConnType, Name, Rule, Transport};

/// What is known about a client when it is routed.
pub struct Request<'a> {
    /// Database from the startup packet.
    pub database: &'a str,
    /// User from the startup packet.
    pub user: &'a str,
    /// Unix socket or TCP (with or without TLS).
    pub transport: Transport,
    /// Peer address (TCP only).
    pub ip: Option<IpAddr>,
    /// Forward-confirmed reverse DNS name of the peer, when hostname selectors need it.
    pub hostname: Option<&'a str>,
    /// Odyssey's own internal client (auth_query, group checker, watchdog).
    pub internal: bool,
    /// Whether `user` is a member of the group named by the first argument.
    pub is_member: &'a dyn Fn(&str, &str) -> bool,
}

/// A config's rules in matching order, as indices into `Config::rules`: computed once per
/// config generation (the instance keeps it next to the config), so a login only matches.
#[derive(Debug, Clone, Default)]
pub struct RuleOrder {
    ordered: Vec<usize>,
}

impl RuleOrder {
    /// Orders `config`'s rules as `sequential_routing` says.
    pub fn new(config: &Config) -> Self {
        let mut ordered: Vec<usize> = (0..config.rules.len()).collect();
        if config.global.sequential_routing {
            ordered.sort_by_key(|&i| config.rules[i].key.order);
        } else {
            ordered.sort_by_cached_key(|&i| precedence(&config.rules[i]));
        }
        RuleOrder { ordered }
    }

    /// The index of the first rule of `config` (the config this order was made from) that
    /// matches `req`, or `None` ("route for 'db.user' is not found").
    pub fn forward(&self, config: &Config, req: &Request<'_>) -> Option<usize> {
        self.ordered
            .iter()
            .copied()
            .find(|&i| config.rules.get(i).is_some_and(|r| matches(r, req)))
    }
}

/// A config's rules in matching order, borrowed (for `--test` output and tests).
pub struct RuleTable<'c> {
    config: &'c Config,
    order: RuleOrder,
    ordered: Vec<&'c Rule>,
}

impl<'c> RuleTable<'c> {
    /// Orders `config`'s rules as `sequential_routing` says.
    pub fn new(config: &'c Config) -> Self {
        let order = RuleOrder::new(config);
        let ordered = order.ordered.iter().map(|&i| &config.rules[i]).collect();
        RuleTable {
            config,
            order,
            ordered,
        }
    }

    /// The rules in matching order.
    pub fn ordered(&self) -> &[&'c Rule] {
        &self.ordered
    }

    /// The first rule that matches `req`, or `None` ("route for 'db.user' is not found").
    pub fn forward(&self, req: &Request<'_>) -> Option<&'c Rule> {
        let config = self.config;
        self.order.forward(config, req).map(|i| &config.rules[i])
    }
}

/// The sort key of a rule: lower sorts first.
fn precedence(r: &Rule) -> (Reverse<u32>, Name, Name, bool, String, ConnType) {
    let k = &r.key;
    let specificity = 1000 * u32::from(k.db != Name::Default)
        + 100 * u32::from(k.user != Name::Default)
        + 10 * u32::from(!k.address.is_any())
        + u32::from(k.conn_type != ConnType::Default);
    (
        Reverse(specificity),
        k.db.clone(),
        k.user.clone(),
        k.address.is_any(),
        k.address.to_string(),
        k.conn_type,
    )
}

/// Whether `rule` takes the client `req`.
pub fn matches(rule: &Rule, req: &Request<'_>) -> bool {
    let k = &rule.key;
    let routing_ok = match rule.pool.routing {
        PoolRouting::Internal => req.internal,
        PoolRouting::ClientVisible => !req.internal,
    };
    let db_ok = match &k.db {
        Name::Default => true,
        Name::Named(d) => d == req.database,
    };
    let user_ok = match (&k.group, &k.user) {
        (Some(group), _) => (req.is_member)(group, req.user),
        (None, Name::Default) => true,
        (None, Name::Named(u)) => u == req.user,
    };
    let address_ok = match req.transport {
        Transport::Unix => k.address.is_any(),
        Transport::Tcp { .. } => k.address.contains(req.ip, req.hostname),
    };
    routing_ok && db_ok && user_ok && address_ok && k.conn_type.admits(req.transport)
}

#[cfg(test)]
mod tests;
