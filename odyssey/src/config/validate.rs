//! Whole-config checks after reading: required parts, references between sections, and the
//! per-rule consistency checks of upstream's `od_rules_validate`/`od_pool_validate`. Where
//! upstream quietly fixes a combination (prepared statements in a session pool, discard with
//! prepared statements, a local storage without role), the fix is made here and reported as a
//! warning.

use std::collections::HashSet;

use super::auth::AuthMethod;
use super::convert::Reader;
use super::diag::Pos;
use super::pool::{PoolMode, PoolRouting};
use super::rule::{Role, Rule, RuleKind};
use super::storage::StorageType;
use super::top::Parts;

/// Checks `p`, fixing what upstream fixes; `top` names the top file for file-wide complaints.
pub fn check(r: &mut Reader, p: &mut Parts, top: &Pos) {
    check_global(r, p, top);
    check_storages(r, p, top);
    if p.rules.is_empty() {
        r.error(top, "no rules defined (add a database section)");
    }
    let mut keys = HashSet::new();
    let mut rules = std::mem::take(&mut p.rules);
    for rule in &mut rules {
        let k = &rule.key;
        let key = (
            k.db.clone(),
            k.user.clone(),
            k.address.to_string(),
            k.conn_type,
            rule.pool.routing,
        );
        if !keys.insert(key) {
            r.error(&k.pos, format!("route '{}.{}': is redefined", k.db, k.user));
        }
        check_rule(r, p, rule);
    }
    super::autogen::internal_rule(r, &mut rules);
    p.rules = rules;
    for s in 0..p.storages.len() {
        if let Some(mut w) = p.storages[s].watchdog.take() {
            w.rule.pool.routing = PoolRouting::Internal;
            check_rule(r, p, &mut w.rule);
            p.storages[s].watchdog = Some(w);
        }
    }
}

fn check_global(r: &mut Reader, p: &Parts, top: &Pos) {
    let g = &p.global;
    if g.log.format.is_none() {
        r.error(top, "log_format is not defined");
    }
    if g.unix_socket_dir.is_some() && g.unix_socket_mode.is_none() {
        r.error(
            top,
            "unix_socket_mode is not set (required with unix_socket_dir)",
        );
    }
    if p.listen.is_empty() {
        r.error(top, "no listen sections defined");
    }
    for l in &p.listen {
        if l.host.is_none() && g.unix_socket_dir.is_none() {
            r.error(
                &l.pos,
                "listen host is not set and no unix_socket_dir is specified",
            );
        }
        for s in &l.storages {
            if !p.storages.iter().any(|st| &st.name == s) {
                r.error(&l.pos, format!("listen: unknown storage '{s}'"));
            }
        }
    }
    if g.enable_online_restart && !g.bindwith_reuseport {
        r.warn(top, "online restart works only with SO_REUSEPORT: set bindwith_reuseport yes or enable_online_restart no");
    }
}

fn check_storages(r: &mut Reader, p: &Parts, top: &Pos) {
    if p.storages.is_empty() {
        r.error(top, "no storage sections defined");
    }
    let mut names = HashSet::new();
    for s in &p.storages {
        if !names.insert(&s.name) {
            r.error(&s.pos, format!("duplicate storage definition '{}'", s.name));
        }
        if s.kind == StorageType::Remote && s.host.is_none() && p.global.unix_socket_dir.is_none() {
            let msg = format!(
                "storage '{}': no host specified and unix_socket_dir is not set",
                s.name
            );
            r.error(&s.pos, msg);
        }
    }
    let mut pools = HashSet::new();
    for sp in &p.shared_pools {
        if !pools.insert(&sp.name) {
            r.error(
                &sp.pos,
                format!("duplicate shared_pool definition '{}'", sp.name),
            );
        }
    }
    let mut ldaps = HashSet::new();
    for e in &p.ldap_endpoints {
        if !ldaps.insert(&e.name) {
            r.error(
                top,
                format!("duplicate ldap endpoint definition: {}", e.name),
            );
        }
    }
}

fn check_rule(r: &mut Reader, p: &Parts, rule: &mut Rule) {
    let label = rule.key.label();
    let pos = rule.key.pos.clone();
    match p.storages.iter().find(|s| s.name == rule.storage) {
        _ if rule.storage.is_empty() => {
            r.error(&pos, format!("{label}: no rule storage is specified"))
        }
        None => r.error(
            &pos,
            format!("{label}: no rule storage '{}' found", rule.storage),
        ),
        Some(s) if s.kind == StorageType::Local && rule.role == Role::Undef => {
            rule.role = Role::Stat
        }
        Some(s) if s.kind == StorageType::Remote && rule.role != Role::Undef => r.error(
            &pos,
            format!("{label}: role set for non-local storage '{}'", s.name),
        ),
        Some(_) => {}
    }
    check_pool(r, p, rule, &label, &pos);
    check_unbuildable(r, rule, &label, &pos);
    check_auth(r, p, rule, &label, &pos);
    if let RuleKind::Group {
        query,
        query_user,
        query_db,
    } = &rule.kind
    {
        for (value, what) in [
            (query, "group_query"),
            (query_user, "group_query_user"),
            (query_db, "group_query_db"),
        ] {
            if value.is_none() {
                r.error(&pos, format!("{label}: {what} is not set"));
            }
        }
    }
}

/// Auth that leans on upstream's C plugin ABI or on one company's infrastructure cannot be
/// built here: a rule that turns it on is an error at load (not accepted and ignored).
fn check_unbuildable(r: &mut Reader, rule: &Rule, label: &str, pos: &Pos) {
    if let Some(module) = &rule.auth.module {
        r.error(
            pos,
            format!("{label}: auth_module '{module}' cannot be loaded: this build has no C module interface"),
        );
    }
    if rule.auth.mdb_iamproxy {
        r.error(
            pos,
            format!("{label}: enable_mdb_iamproxy_auth is not supported: the IAM proxy belongs to Yandex Cloud's infrastructure"),
        );
    }
}

fn check_pool(r: &mut Reader, p: &Parts, rule: &mut Rule, label: &str, pos: &Pos) {
    let hosts = p
        .storages
        .iter()
        .find(|s| s.name == rule.storage)
        .map_or(0, |s| s.endpoints.len());
    if rule.pool.acquire_fail_fast && hosts > 1 {
        // Upstream's fail-fast only orders attempts across a storage's hosts.
        r.warn(
            pos,
            format!("{label}: pool_acquire_fail_fast has no effect: a route's servers form one pool over every host of storage '{}'", rule.storage),
        );
    }
    let pool = &mut rule.pool;
    let Some(mode) = pool.mode else {
        r.error(pos, format!("{label}: pooling mode is not set"));
        return;
    };
    if pool.routing == PoolRouting::Internal && !rule.key.address.is_any() {
        r.error(
            pos,
            format!("{label}: internal rules must have default address_range"),
        );
    }
    if pool.pin_on_listen && mode == PoolMode::Session {
        r.error(
            pos,
            format!("{label}: setting pool_pin_on_listen with session pool makes no sense"),
        );
    }
    if pool.reserve_prepared_statement && mode == PoolMode::Session {
        if pool.reserve_prepared_statement_set {
            r.warn(pos, format!("{label}: prepared statements support in session pool makes no sense; turned off"));
        }
        pool.reserve_prepared_statement = false;
    }
    if pool.reserve_prepared_statement && pool.discard {
        if pool.reserve_prepared_statement_set && pool.discard_set {
            r.warn(pos, format!("{label}: pool_discard with prepared statements support is replaced by smart discard"));
        }
        pool.discard = false;
        pool.smart_discard = true;
    }
    if pool.smart_discard && !pool.reserve_prepared_statement {
        r.error(
            pos,
            format!(
                "{label}: pool smart discard is forbidden without using prepared statements support"
            ),
        );
    }
    let dealloc = pool
        .discard_query
        .as_ref()
        .is_some_and(|q| q.to_ascii_uppercase().contains("DEALLOCATE ALL"));
    if dealloc && pool.reserve_prepared_statement {
        r.error(pos, format!("{label}: cannot support prepared statements when 'DEALLOCATE ALL' present in discard string"));
    }
    if let Some(sp) = &pool.shared_pool {
        if !p.shared_pools.iter().any(|s| &s.name == sp) {
            r.error(pos, format!("{label}: unknown shared_pool '{sp}'"));
        }
        if pool.size_set {
            r.error(
                pos,
                format!("{label}: shared_pool and pool_size can't be set simultaneously"),
            );
        }
    }
}

fn check_auth(r: &mut Reader, p: &Parts, rule: &Rule, label: &str, pos: &Pos) {
    let a = &rule.auth;
    let Some(method) = a.method else {
        r.error(pos, format!("{label}: authentication mode is not defined"));
        return;
    };
    let has_password = a.password.is_some() || a.query.is_some();
    let password_ok = match method {
        AuthMethod::ClearText => {
            has_password
                || a.pam_service.is_some()
                || a.module.is_some()
                || a.ldap_endpoint.is_some()
                || a.mdb_iamproxy
        }
        AuthMethod::Md5 | AuthMethod::ScramSha256 => has_password,
        _ => true,
    };
    if !password_ok {
        r.error(
            pos,
            format!(
                "{label}: password is not set (authentication \"{}\" needs password or auth_query)",
                AuthMethod::name(method)
            ),
        );
    }
    if a.pam_service.is_some() && a.query.is_some() {
        r.error(
            pos,
            format!(
                "{label}: auth query and pam service auth method cannot be used simultaneously"
            ),
        );
    }
    if a.query.is_some() {
        if a.query_user.is_none() {
            r.error(pos, format!("{label}: auth_query_user is not set"));
        }
        if a.query_db.is_none() {
            r.error(pos, format!("{label}: auth_query_db is not set"));
        }
    }
    match &a.ldap_endpoint {
        Some(e) if !p.ldap_endpoints.iter().any(|l| &l.name == e) => {
            r.error(pos, format!("{label}: unknown ldap_endpoint '{e}'"))
        }
        Some(_) if p.global.coroutine_stack_size < 16 => r.error(
            pos,
            format!("{label} use ldap_endpoint. coroutine_stack_size must be >= 16"),
        ),
        None if a.ldap_storage_credentials_attr.is_some() => r.error(
            pos,
            format!("{label}: ldap endpoint is not set, but storage cred attrs is"),
        ),
        _ => {}
    }
}
