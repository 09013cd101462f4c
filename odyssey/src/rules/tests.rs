//! Precedence and matching tests.

use super::*;
use crate::config;

const HEAD: &str = "log_format \"%m\\n\"\nunix_socket_dir \"/tmp\"\nunix_socket_mode \"0644\"\n\
    listen { host \"*\" port 6432 }\nstorage \"pg\" { type \"remote\" host \"localhost\" port 5432 }\n";

fn rule(db: &str, user: &str, selector: &str) -> String {
    format!(
        "database {db} {{ user {user} {selector} {{ authentication \"none\" storage \"pg\" pool \"session\" }} }}\n"
    )
}

/// The rules of upstream's `rules_order` test, in a shuffled config order.
fn rules_order_config(sequential: bool) -> config::Config {
    let mut text = HEAD.to_string();
    if sequential {
        text.push_str("sequential_routing yes\n");
    }
    for (db, user, sel) in [
        ("default", "default", ""),
        ("\"db1\"", "\"db1u1\"", "\"10.0.14.89/24\""),
        ("default", "default", "hostnossl"),
        ("\"db1\"", "default", "\"10.14.89.10/24\" local"),
        ("\"db1\"", "\"db1u2\"", "\"10.13.37.10/24\" hostssl"),
        ("default", "\"user1\"", ""),
        ("\"db1\"", "\"db1u1\"", "host"),
        ("\"vdb\"", "\"vuser\"", ""),
        ("default", "default", "\"localhost\""),
        ("\"db1\"", "\"db1u2\"", ""),
        ("\"db1\"", "\"db1u1\"", ""),
        ("default", "\"user1\"", "\"10.0.0.12/24\""),
        ("\"db1\"", "default", "\"10.14.89.10/24\""),
        ("\"db1\"", "\"db1u2\"", "\"10.13.37.10/24\""),
    ] {
        text.push_str(&rule(db, user, sel));
    }
    config::load_str("order.conf", &text).expect("valid").0
}

fn row(r: &Rule) -> String {
    let conn = match r.key.conn_type {
        ConnType::Default => "all",
        ConnType::Host => "host",
        ConnType::HostSsl => "hostssl",
        ConnType::HostNoSsl => "hostnossl",
        ConnType::Local => "local",
    };
    format!("{} {} {} {conn}", r.key.db, r.key.user, r.key.address)
}

#[test]
fn specificity_order_matches_upstream_show_rules() {
    let config = rules_order_config(false);
    let table = RuleTable::new(&config);
    let rows: Vec<String> = table.ordered().iter().map(|r| row(r)).collect();
    let expected = [
        "db1 db1u2 10.13.37.10/24 hostssl",
        "db1 db1u1 10.0.14.89/24 all",
        "db1 db1u2 10.13.37.10/24 all",
        "db1 db1u1 <default> host",
        "db1 db1u1 <default> all",
        "db1 db1u2 <default> all",
        "vdb vuser <default> all",
        "db1 <default> 10.14.89.10/24 local",
        "db1 <default> 10.14.89.10/24 all",
        "<default> user1 10.0.0.12/24 all",
        "<default> user1 <default> all",
        "<default> <default> localhost all",
        "<default> <default> <default> hostnossl",
        "<default> <default> <default> all",
    ];
    assert_eq!(rows, expected);
}

#[test]
fn sequential_routing_keeps_config_order() {
    let config = rules_order_config(true);
    let table = RuleTable::new(&config);
    let first: Vec<String> = table.ordered().iter().take(2).map(|r| row(r)).collect();
    assert_eq!(
        first,
        [
            "<default> <default> <default> all",
            "db1 db1u1 10.0.14.89/24 all"
        ]
    );
}

fn request<'a>(db: &'a str, user: &'a str, transport: Transport, ip: &str) -> Request<'a> {
    Request {
        database: db,
        user,
        transport,
        ip: ip.parse().ok(),
        hostname: None,
        internal: false,
        is_member: &|_, _| false,
    }
}

#[test]
fn the_most_specific_matching_rule_wins() {
    let config = rules_order_config(false);
    let table = RuleTable::new(&config);
    let tls = Transport::Tcp { tls: true };
    let plain = Transport::Tcp { tls: false };
    let unix = Transport::Unix;
    let cases = [
        (
            "db1",
            "db1u2",
            tls,
            "10.13.37.1",
            "db1 db1u2 10.13.37.10/24 hostssl",
        ),
        (
            "db1",
            "db1u2",
            plain,
            "10.13.37.1",
            "db1 db1u2 10.13.37.10/24 all",
        ),
        (
            "db1",
            "db1u2",
            plain,
            "192.168.0.1",
            "db1 db1u2 <default> all",
        ),
        ("db1", "db1u1", plain, "1.1.1.1", "db1 db1u1 <default> host"),
        ("db1", "db1u1", unix, "", "db1 db1u1 <default> all"),
        ("db1", "x", unix, "", "<default> <default> <default> all"),
        (
            "db1",
            "x",
            plain,
            "10.14.89.1",
            "db1 <default> 10.14.89.10/24 all",
        ),
        (
            "other",
            "user1",
            plain,
            "10.0.0.1",
            "<default> user1 10.0.0.12/24 all",
        ),
        (
            "other",
            "x",
            plain,
            "8.8.8.8",
            "<default> <default> <default> hostnossl",
        ),
        (
            "other",
            "x",
            tls,
            "8.8.8.8",
            "<default> <default> <default> all",
        ),
    ];
    for (db, user, transport, ip, expected) in cases {
        let got = row(table
            .forward(&request(db, user, transport, ip))
            .expect("a rule"));
        assert_eq!(got, expected, "{db}.{user} {transport:?} {ip}");
    }
}

#[test]
fn hostname_selectors_need_a_confirmed_name() {
    let config = rules_order_config(false);
    let table = RuleTable::new(&config);
    let mut req = request("z", "z", Transport::Tcp { tls: true }, "127.0.0.1");
    req.hostname = Some("localhost");
    assert_eq!(
        row(table.forward(&req).unwrap()),
        "<default> <default> localhost all"
    );
}

#[test]
fn internal_clients_see_only_internal_rules_and_groups_match_members() {
    let text = format!(
        "{HEAD}database \"d\" {{ user \"u\" {{ authentication \"none\" storage \"pg\" pool \"session\" pool_routing \"internal\" }}\n\
         group \"g\" {{ authentication \"none\" storage \"pg\" pool \"session\" group_query \"q\" group_query_user \"u\" group_query_db \"d\" }} }}\n"
    );
    let config = config::load_str("g.conf", &text).expect("valid").0;
    let table = RuleTable::new(&config);
    let mut req = request("d", "u", Transport::Unix, "");
    assert!(table.forward(&req).is_none());
    req.internal = true;
    assert_eq!(row(table.forward(&req).unwrap()), "d u <default> all");
    let member = |g: &str, u: &str| g == "g" && u == "alice";
    let req = Request {
        is_member: &member,
        ..request("d", "alice", Transport::Unix, "")
    };
    assert_eq!(row(table.forward(&req).unwrap()), "d group_g <default> all");
    let req = Request {
        is_member: &member,
        ..request("d", "bob", Transport::Unix, "")
    };
    assert!(table.forward(&req).is_none());
}
