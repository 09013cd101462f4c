//! The top level of odyssey.conf: hands each directive to its section reader and assembles
//! the parts of a `Config` (validation comes after, in `validate`).

use super::convert::{Reader, Seen};
use super::global::{self, Global};
use super::listen::{self, Listen};
use super::model::Item;
use super::rule::{self, Rule};
use super::sections::{self, ConnDrop, LdapEndpoint, QueryParsing, SharedPool, SoftOom};
use super::storage::{self, Storage};

/// Everything read from the top level, before validation.
#[derive(Debug, Default)]
pub struct Parts {
    /// Top-level options.
    pub global: Global,
    /// `listen` sections in order.
    pub listen: Vec<Listen>,
    /// `storage` sections in order.
    pub storages: Vec<Storage>,
    /// `ldap_endpoint` sections.
    pub ldap_endpoints: Vec<LdapEndpoint>,
    /// `shared_pool` sections.
    pub shared_pools: Vec<SharedPool>,
    /// `conn_drop_options` (or its alias), if given.
    pub conn_drop: Option<ConnDrop>,
    /// `soft_oom`, if given.
    pub soft_oom: Option<SoftOom>,
    /// `query_parsing`, if given.
    pub query_parsing: Option<QueryParsing>,
    /// Rules in config order.
    pub rules: Vec<Rule>,
}

/// Reads the top-level items (includes already expanded).
pub fn read(r: &mut Reader, items: &[Item]) -> Parts {
    let mut p = Parts::default();
    let mut seen = Seen::default();
    for item in items {
        r.note(&mut seen, item);
        match item.name() {
            "listen" => p.listen.extend(listen::read(r, item)),
            "storage" => p.storages.extend(storage::read(r, item)),
            "database" => rule::read_database(r, item, &mut p.rules),
            "ldap_endpoint" => p.ldap_endpoints.extend(sections::ldap_endpoint(r, item)),
            "shared_pool" => p.shared_pools.extend(sections::shared_pool(r, item)),
            "conn_drop_options" | "online_restart_drop_options" => once(
                r,
                item,
                &mut p.conn_drop,
                sections::conn_drop,
                "conn_drop_options",
            ),
            "soft_oom" => once(r, item, &mut p.soft_oom, sections::soft_oom, "soft_oom"),
            "query_parsing" => once(
                r,
                item,
                &mut p.query_parsing,
                sections::query_parsing,
                "query_parsing",
            ),
            _ => {
                if !global::read(r, &mut p.global, item) {
                    r.unexpected(item, "the top level");
                }
            }
        }
    }
    p
}

/// Sets a section that may appear once; a second one is an error, as upstream.
fn once<T>(
    r: &mut Reader,
    item: &Item,
    slot: &mut Option<T>,
    read: fn(&mut Reader, &Item) -> Option<T>,
    what: &str,
) {
    let value = read(r, item);
    if slot.is_some() {
        r.error(item.pos(), format!("{what} is redefined"));
    }
    if value.is_some() {
        *slot = value;
    }
}
