//! Host-name address selectors in rules (spec §3): the client's address is looked up by
//! reverse DNS and the name kept only when it resolves back to that address; a rule for
//! `"localhost"` then takes clients from 127.0.0.1 (named in /etc/hosts), a rule for a
//! `.suffix` the name does not end with does not. Lookups are cached for `dns_cache_ttl`.

use odyssey_test::clients::{current_user, login_error};
use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler};

#[test]
fn rules_select_clients_by_their_confirmed_host_name() {
    let name = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    assert!(
        name.lines()
            .any(|l| l.starts_with("127.0.0.1") && l.split_whitespace().any(|w| w == "localhost")),
        "the test needs 127.0.0.1 named localhost in /etc/hosts"
    );
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rule = |user: &str, selector: &str| {
        format!(
            "\tuser \"{user}\" \"{selector}\" {{\n\t\tauthentication \"none\"\n\
             \t\tstorage \"postgres_server\"\n\t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t}}\n"
        )
    };
    let rules = format!(
        "dns_cache_ttl 5000\ndatabase \"postgres\" {{\n{}{}}}\n",
        rule("near", "localhost"),
        rule("far", ".example.invalid")
    );
    let pooler = Pooler::start(&config(cluster.port(), &rules)).expect("pooler");
    for _ in 0..2 {
        assert_eq!(
            current_user(&pooler.params("near"), &|| pooler.log()),
            "postgres"
        );
    }
    let (code, msg) = login_error(&pooler.params("far"));
    assert_eq!(code, Some(SqlState::INVALID_CATALOG_NAME), "{msg}");
    assert!(
        msg.contains("route for 'postgres.far' is not found"),
        "{msg}"
    );
}
