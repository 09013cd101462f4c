//! Group rule members (spec §3): the user names each group's `group_query` last returned,
//! kept by group name for rule matching; the group checker in `cron` refreshes them.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

/// Members by group name. Empty until a group's first query succeeds.
#[derive(Debug, Default)]
pub struct GroupMembers {
    groups: RwLock<HashMap<String, HashSet<String>>>,
}

impl GroupMembers {
    /// Whether `user` is a member of `group`.
    pub fn contains(&self, group: &str, user: &str) -> bool {
        let groups = self.groups.read().unwrap_or_else(|p| p.into_inner());
        groups.get(group).is_some_and(|m| m.contains(user))
    }

    /// Replaces the members of `group`.
    pub fn set(&self, group: &str, members: HashSet<String>) {
        let mut groups = self.groups.write().unwrap_or_else(|p| p.into_inner());
        groups.insert(group.to_string(), members);
    }

    /// Forgets the groups not in `keep` (their rules are gone after a reload).
    pub fn retain(&self, keep: &HashSet<&str>) {
        let mut groups = self.groups.write().unwrap_or_else(|p| p.into_inner());
        groups.retain(|g, _| keep.contains(g.as_str()));
    }
}
