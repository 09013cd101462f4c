//! Which routes a reload keeps. A route belongs to the rule it was made for, named by the
//! config generation and index where that rule first appeared (its origin). A reload that
//! leaves a rule as it was — and what its routes read besides: its storage, the global
//! options — keeps the rule's origin, so its routes go on with their servers and counters.
//! Without this every reload made a second pool beside the first, and a route's clients could
//! hold up to twice its `pool_size` until the old one emptied (upstream merges its rules the
//! same way on reload).

use std::sync::Arc;

use crate::config::{Config, Rule, Storage};

/// Where a rule's routes come from: the generation and index of the first config that had
/// the rule as it is now, and that config (a route reads its rule and settings there).
#[derive(Clone)]
pub struct RuleOrigin {
    /// The config generation.
    pub generation: u64,
    /// The rule's index in that config.
    pub index: usize,
    /// That config.
    pub config: Arc<Config>,
}

/// The origin of every rule of `config` (generation `generation`), given the config before it
/// and its origins: an unchanged rule keeps its old origin, any other starts here.
pub fn origins(
    config: &Arc<Config>,
    generation: u64,
    previous: Option<(&Config, &[RuleOrigin])>,
) -> Vec<RuleOrigin> {
    let fresh = |index: usize| RuleOrigin {
        generation,
        index,
        config: config.clone(),
    };
    let Some((old, old_origins)) = previous else {
        return (0..config.rules.len()).map(fresh).collect();
    };
    let context_kept = same_context(old, config);
    config
        .rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            let kept = context_kept
                .then(|| {
                    old.rules.iter().position(|o| {
                        same_rule(o, rule)
                            && same_storage(
                                storage(old, &o.storage),
                                storage(config, &rule.storage),
                            )
                    })
                })
                .flatten();
            kept.and_then(|j| old_origins.get(j).cloned())
                .unwrap_or_else(|| fresh(index))
        })
        .collect()
}

/// What every route reads beyond its rule and storage is the same in both configs.
fn same_context(old: &Config, new: &Config) -> bool {
    let pools = |c: &Config| -> Vec<(String, u32)> {
        c.shared_pools
            .iter()
            .map(|p| (p.name.clone(), p.size))
            .collect()
    };
    old.global == new.global
        && old.query_parsing == new.query_parsing
        && old.ldap_endpoints == new.ldap_endpoints
        && pools(old) == pools(new)
}

/// Two rules that differ at most in where they are written.
fn same_rule(a: &Rule, b: &Rule) -> bool {
    let mut moved = a.clone();
    moved.key.pos = b.key.pos.clone();
    moved.key.order = b.key.order;
    moved == *b
}

fn storage<'c>(config: &'c Config, name: &str) -> Option<&'c Storage> {
    config.storages.iter().find(|s| s.name == name)
}

/// Two storages that differ at most in where they are written.
fn same_storage(a: Option<&Storage>, b: Option<&Storage>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            let mut moved = a.clone();
            moved.pos = b.pos.clone();
            moved == *b
        }
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    const STORAGE: &str =
        "storage \"pg\" {\n\ttype \"remote\"\n\thost \"127.0.0.1\"\n\tport 5432\n}\n";

    fn rule(db: &str, pool_size: u32) -> String {
        format!(
            "database \"{db}\" {{\n\tuser default {{\n\t\tauthentication \"none\"\n\t\tstorage \"pg\"\n\t\tpool \"transaction\"\n\t\tpool_size {pool_size}\n\t}}\n}}\n"
        )
    }

    fn config(text: &str) -> Arc<Config> {
        let text =
            format!("log_format \"%m\"\nlisten {{\n\thost \"127.0.0.1\"\n\tport 6432\n}}\n{text}");
        Arc::new(load_str("test.conf", &text).expect("config loads").0)
    }

    /// The (generation, index) of every rule after loading `first` (generation 1) and then
    /// `second` (generation 2).
    fn reload(first: &str, second: &str) -> Vec<(u64, usize)> {
        let (a, b) = (config(first), config(second));
        let before = origins(&a, 1, None);
        let after = origins(&b, 2, Some((&a, &before)));
        after.iter().map(|o| (o.generation, o.index)).collect()
    }

    #[test]
    fn unchanged_rules_keep_their_origin_even_when_moved() {
        let first = format!("{STORAGE}{}{}", rule("a", 2), rule("b", 2));
        assert_eq!(reload(&first, &first), [(1, 0), (1, 1)]);
        let swapped = format!("# a comment\n{}{}{STORAGE}", rule("b", 2), rule("a", 2));
        assert_eq!(reload(&first, &swapped), [(1, 1), (1, 0)]);
    }

    #[test]
    fn a_changed_or_new_rule_starts_at_the_new_generation() {
        let first = format!("{STORAGE}{}{}", rule("a", 2), rule("b", 2));
        let second = format!("{STORAGE}{}{}{}", rule("a", 3), rule("b", 2), rule("c", 2));
        assert_eq!(reload(&first, &second), [(2, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn a_changed_storage_or_global_option_renews_every_route_that_reads_it() {
        let first = format!("{STORAGE}{}", rule("a", 2));
        let moved = format!("{}{}", STORAGE.replace("5432", "5433"), rule("a", 2));
        assert_eq!(reload(&first, &moved), [(2, 0)]);
        let global = format!("server_login_retry 2\n{first}");
        assert_eq!(reload(&first, &global), [(2, 0)]);
    }

    #[test]
    fn origins_chain_across_reloads() {
        let text = format!("{STORAGE}{}", rule("a", 2));
        let (a, b, c) = (config(&text), config(&text), config(&text));
        let first = origins(&a, 1, None);
        let second = origins(&b, 2, Some((&a, &first)));
        let third = origins(&c, 3, Some((&b, &second)));
        assert_eq!((third[0].generation, third[0].index), (1, 0));
        assert!(
            Arc::ptr_eq(&third[0].config, &a),
            "routes read the first config"
        );
    }
}
