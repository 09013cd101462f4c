//! Group rules (spec §3): a `group "g"` rule takes the users its `group_query` returns, run by
//! the pooler every `group_checker_interval` on the internal route `group_query_db`.
//! `group_query_user`; others fall to the next rule. Membership changes in PostgreSQL reach
//! the pooler at the next check.

use std::time::Duration;

use odyssey_test::clients::{current_user, login_error};
use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{AuthMethod, Cluster, ClusterOptions, ConnParams, Pooler, wait_for};

/// Members of role `staff`, which stands for the group.
const MEMBERS: &str = "SELECT r.rolname FROM pg_roles r WHERE r.rolname <> 'staff' AND pg_has_role(r.rolname, 'staff', 'member')";

fn rules() -> String {
    format!(
        "group_checker_interval 200\n\
         database \"postgres\" {{\n\
         \tgroup \"staff\" {{\n\t\tauthentication \"clear_text\"\n\t\tpassword \"staff pass\"\n\
         \t\tstorage \"postgres_server\"\n\t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\
         \t\tgroup_query \"{MEMBERS}\"\n\t\tgroup_query_user \"postgres\"\n\
         \t\tgroup_query_db \"postgres\"\n\t}}\n\
         \tuser default {{\n\t\tauthentication \"block\"\n\t\tstorage \"postgres_server\"\n\
         \t\tpool \"session\"\n\t}}\n\
         \tuser \"postgres\" {{\n\t\tauthentication \"none\"\n\t\tstorage \"postgres_server\"\n\
         \t\tpool \"transaction\"\n\t\tpool_routing \"internal\"\n\t}}\n}}\n"
    )
}

fn member_logs_in(pooler: &Pooler, user: &str) -> bool {
    odyssey_test::connect(&params(pooler, user)).is_ok()
}

fn params(pooler: &Pooler, user: &str) -> ConnParams {
    pooler.params(user).password("staff pass")
}

#[test]
fn group_members_follow_the_group_query() {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .psql("postgres", "postgres", "CREATE ROLE staff NOLOGIN")
        .unwrap();
    for user in ["alice", "bob"] {
        cluster.add_user(user, "", AuthMethod::Trust).unwrap();
    }
    cluster
        .psql("postgres", "postgres", "GRANT staff TO alice")
        .unwrap();
    let pooler = Pooler::start(&config(cluster.port(), &rules())).expect("pooler");

    assert!(
        wait_for(Duration::from_secs(5), || member_logs_in(&pooler, "alice")),
        "{}",
        pooler.log()
    );
    assert_eq!(
        current_user(&params(&pooler, "alice"), &|| pooler.log()),
        "postgres"
    );
    // Not a member: the default rule blocks bob.
    let (code, msg) = login_error(&params(&pooler, "bob"));
    assert_eq!(
        code,
        Some(SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{msg}"
    );
    assert!(msg.contains("user blocked"), "{msg}");

    cluster
        .psql(
            "postgres",
            "postgres",
            "GRANT staff TO bob; REVOKE staff FROM alice",
        )
        .unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || member_logs_in(&pooler, "bob")),
        "{}",
        pooler.log()
    );
    assert!(
        wait_for(Duration::from_secs(5), || !member_logs_in(&pooler, "alice")),
        "{}",
        pooler.log()
    );
    let (_, msg) = login_error(&params(&pooler, "alice"));
    assert!(msg.contains("user blocked"), "{msg}");
}
