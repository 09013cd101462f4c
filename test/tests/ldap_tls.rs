//! LDAP over TLS and several LDAP servers (issue 12): `ldapscheme "ldaps"` and `ldaptls yes`
//! (StartTLS) against a real slapd showing a certificate from a test CA, verified through
//! `ldapcafile`; without the CA the server is not trusted and the login fails like a wrong
//! password. `ldapserver` with several hosts tries them in order: a host where nothing
//! listens (127.0.0.2) is skipped.

use std::time::Duration;

use odyssey_test::clients::{current_user, login_error};
use odyssey_test::ldap::Slapd;
use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::tls::certs;
use odyssey_test::{Cluster, ClusterOptions, Pooler};

const PEOPLE: &str = "\
dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: alice
sn: A
userPassword: alice pass
";

/// Database `<name>` checks passwords on endpoint `<name>`, a simple bind under people.
fn endpoint(name: &str, body: &str) -> String {
    format!(
        "ldap_endpoint \"{name}\" {{\n{body}\tldapprefix \"uid=\"\n\
         \tldapsuffix \",ou=people,dc=example,dc=org\"\n}}\n\
         database \"{name}\" {{\n\tuser default {{\n\t\tauthentication \"clear_text\"\n\
         \t\tldap_endpoint_name \"{name}\"\n\t\tstorage \"postgres_server\"\n\
         \t\tstorage_db \"postgres\"\n\t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t}}\n}}\n"
    )
}

#[test]
fn ldaps_starttls_and_several_servers() {
    let (ca, server) = certs();
    let slapd = Slapd::start_tls(PEOPLE, &server).expect("slapd with TLS");
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let ca_file = ca.ca().display().to_string();
    let (plain, tls) = (slapd.port(), slapd.tls_port());
    let rules = [
        endpoint(
            "ldaps",
            &format!(
                "\tldapserver \"localhost\"\n\tldapport {tls}\n\tldapscheme \"ldaps\"\n\
                 \tldapcafile \"{ca_file}\"\n"
            ),
        ),
        endpoint(
            "starttls",
            &format!(
                "\tldapserver \"127.0.0.1\"\n\tldapport {plain}\n\tldaptls yes\n\
                 \tldapcafile \"{ca_file}\"\n"
            ),
        ),
        endpoint(
            "untrusted",
            &format!("\tldapserver \"localhost\"\n\tldapport {tls}\n\tldapscheme \"ldaps\"\n"),
        ),
        endpoint(
            "several",
            &format!("\tldapserver \"127.0.0.2, 127.0.0.1\"\n\tldapport {plain}\n"),
        ),
    ]
    .concat();
    let pooler = Pooler::start(&config(cluster.port(), &rules)).expect("pooler");

    for db in ["ldaps", "starttls", "several"] {
        let params = pooler.params("alice").dbname(db).password("alice pass");
        assert_eq!(current_user(&params, &|| pooler.log()), "postgres", "{db}");
        let wrong = pooler.params("alice").dbname(db).password("wrong");
        let (code, msg) = login_error(&wrong);
        assert_eq!(code, Some(SqlState::INVALID_PASSWORD), "{db}: {msg}");
    }
    let params = pooler
        .params("alice")
        .dbname("untrusted")
        .password("alice pass");
    let (code, msg) = login_error(&params);
    assert_eq!(code, Some(SqlState::INVALID_PASSWORD), "untrusted: {msg}");
    // The log is written by its own thread: wait for the line.
    let untrusted =
        "ldap authentication on \"untrusted\" failed: cannot connect to ldaps://localhost";
    assert!(
        pooler.wait_log(untrusted, Duration::from_secs(10)),
        "{}",
        pooler.log()
    );
}
