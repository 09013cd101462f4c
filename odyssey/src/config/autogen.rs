//! The internal rule upstream makes for auth_query (spec §3): when an `auth_query` rule's
//! internal route (`auth_query_db`.`auth_query_user`) matches no `pool_routing "internal"`
//! rule and none is `database default { user default }`, the client-visible default rule,
//! if it has a `storage_password`, lends its storage and password to a new internal
//! `default_db.default_user` rule in transaction pooling with `password_passthrough`.
//! Upstream looks for an internal rule matching the auth_query rule's own names; this one
//! looks for the route the query runs on, the one that has to exist.

use super::auth::AuthMethod;
use super::convert::Reader;
use super::pool::{PoolMode, PoolRouting};
use super::rule::Rule;
use super::selector::Name;

/// Adds the internal default rule when an auth_query rule needs it and the default rule can
/// give it; otherwise warns why not at the first rule that needs it.
pub fn internal_rule(r: &mut Reader, rules: &mut Vec<Rule>) {
    let internal_for = |db: &str, user: &str| {
        rules.iter().any(|rule| {
            let k = &rule.key;
            rule.pool.routing == PoolRouting::Internal
                && k.db.as_named().is_none_or(|d| d == db)
                && k.user.as_named().is_none_or(|u| u == user)
        })
    };
    let needing = rules.iter().find(|rule| {
        let a = &rule.auth;
        match (&a.query, &a.query_db, &a.query_user) {
            (Some(_), Some(db), Some(user)) => !internal_for(db, user),
            _ => false,
        }
    });
    let Some(needing) = needing else {
        return;
    };
    let pos = needing.key.pos.clone();
    let default = rules.iter().find(|rule| {
        let k = &rule.key;
        rule.pool.routing == PoolRouting::ClientVisible
            && k.db == Name::Default
            && k.user == Name::Default
            && k.group.is_none()
            && k.address.is_any()
    });
    let Some(default) = default else {
        r.warn(
            &pos,
            "auth_query has no internal rule, and there is no default rule to make one from",
        );
        return;
    };
    if default.storage_password.is_none() {
        r.warn(&pos, "auth_query has no internal rule, and the default rule has no storage_password to make one with");
        return;
    }
    let mut rule = default.clone();
    rule.key.order = rules.len();
    rule.auth.method = Some(AuthMethod::None);
    rule.auth.password_passthrough = true;
    rule.pool.mode = Some(PoolMode::Transaction);
    rule.pool.routing = PoolRouting::Internal;
    rules.push(rule);
}
