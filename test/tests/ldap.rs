//! LDAP authentication (spec §2.5, §8): `clear_text` rules with `ldap_endpoint_name` check the
//! client's password by binding to a real slapd (started by the test on a loopback port),
//! either as `ldapprefix` + user + `ldapsuffix` (simple bind) or as the one entry a search
//! under `ldapbasedn` finds (search+bind, after an initial bind as `ldapbinddn` /
//! `ldapbindpasswd`, with `ldapsearchattribute` and `ldapsearchfilter`). A wrong password, an
//! unknown user and a dead or silent server all fail like a wrong password, within the
//! timeout, without stalling other logins. With `ldap_storage_credentials_attr`, the value of
//! the user's entry naming `<storage host>_<db>_<set>` picks the `ldap_storage_credentials`
//! set (`ldap_storage_username`, `ldap_storage_password`) the pooler logs into PostgreSQL with.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use odyssey_test::clients::{current_user, login_error};
use odyssey_test::ldap::{ROOT_DN, ROOT_PW, Slapd};
use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{AuthMethod, Cluster, ClusterOptions, ConnParams, Pooler, free_port};

const PEOPLE: &str = "\
dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: alice
sn: A
description: 127.0.0.1_creds_reader
userPassword: alice pass

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: carol
sn: C
description: 127.0.0.1_otherdb_reader
userPassword: carol pass

dn: uid=banned,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: banned
cn: banned
sn: B
employeeType: banned
userPassword: banned pass
";

/// Endpoints: `simple` (prefix/suffix), `search` (search by cn under the suffix as the root DN,
/// banned people filtered out), `dead` (a port nobody listens on), `silent` (a listener that
/// never answers). Database `<endpoint>` uses endpoint `<endpoint>`.
fn rules(ldap_port: u16, dead_port: u16, silent_port: u16) -> String {
    let endpoint = |name: &str, port: u16, body: &str| {
        format!(
            "ldap_endpoint \"{name}\" {{\n\tldapserver \"127.0.0.1\"\n\tldapport {port}\n\
             \tldapscheme \"ldap\"\n{body}}}\n"
        )
    };
    let simple = "\tldapprefix \"uid=\"\n\tldapsuffix \",ou=people,dc=example,dc=org\"\n";
    let search = format!(
        "\tldapbasedn \"dc=example,dc=org\"\n\tldapbinddn \"{ROOT_DN}\"\n\
         \tldapbindpasswd \"{ROOT_PW}\"\n\tldapsearchattribute \"cn\"\n\
         \tldapsearchfilter \"(!(employeeType=banned))\"\n"
    );
    let rule = |db: &str| {
        format!(
            "database \"{db}\" {{\n\tuser default {{\n\t\tauthentication \"clear_text\"\n\
             \t\tldap_endpoint_name \"{db}\"\n\t\tstorage \"postgres_server\"\n\
             \t\tstorage_db \"postgres\"\n\t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t}}\n}}\n"
        )
    };
    // Database `creds` logs into PostgreSQL with the credential set alice's entry names.
    let creds = "database \"creds\" {\n\tuser default {\n\t\tauthentication \"clear_text\"\n\
        \t\tldap_endpoint_name \"search\"\n\t\tldap_storage_credentials_attr \"description\"\n\
        \t\tldap_storage_credentials \"reader\" {\n\t\t\tldap_storage_username \"ldap_reader\"\n\
        \t\t\tldap_storage_password \"reader pw\"\n\t\t}\n\t\tstorage \"postgres_server\"\n\
        \t\tstorage_db \"postgres\"\n\t\tpool \"session\"\n\t}\n}\n";
    [
        creds.to_string(),
        endpoint("simple", ldap_port, simple),
        endpoint("search", ldap_port, &search),
        endpoint("dead", dead_port, simple),
        endpoint("silent", silent_port, simple),
        rule("simple"),
        rule("search"),
        rule("dead"),
        rule("silent"),
        "database \"postgres\" {\n\tuser \"postgres\" {\n\t\tauthentication \"none\"\n\
         \t\tstorage \"postgres_server\"\n\t\tpool \"session\"\n\t}\n}\n"
            .to_string(),
    ]
    .concat()
}

struct Setup {
    _cluster: Cluster,
    _slapd: Slapd,
    /// Accepts connections and never answers.
    _silent: TcpListener,
    pooler: Pooler,
}

fn start() -> Setup {
    let slapd = Slapd::start(PEOPLE).expect("slapd");
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .add_user("ldap_reader", "reader pw", AuthMethod::Md5)
        .unwrap();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let rest = rules(slapd.port(), free_port().unwrap(), silent_port);
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler");
    Setup {
        _cluster: cluster,
        _slapd: slapd,
        _silent: silent,
        pooler,
    }
}

impl Setup {
    fn params(&self, db: &str, user: &str, password: &str) -> ConnParams {
        self.pooler.params(user).dbname(db).password(password)
    }

    fn logs_in(&self, db: &str, user: &str, password: &str) {
        let params = self.params(db, user, password);
        assert_eq!(current_user(&params, &|| self.pooler.log()), "postgres");
    }

    fn refused(&self, db: &str, user: &str, password: &str) {
        let (code, msg) = login_error(&self.params(db, user, password));
        assert_eq!(code, Some(SqlState::INVALID_PASSWORD), "{db} {user}: {msg}");
        assert!(
            msg.ends_with(&format!(
                "password authentication failed for user \"{user}\""
            )),
            "{msg}"
        );
    }
}

#[test]
fn simple_bind_checks_the_password_of_prefix_user_suffix() {
    let s = start();
    s.logs_in("simple", "alice", "alice pass");
    s.refused("simple", "alice", "wrong");
    s.refused("simple", "alice", "");
    s.refused("simple", "nobody", "alice pass");
    s.refused("simple", "ali*", "alice pass");
    // The filter only applies to search+bind.
    s.logs_in("simple", "banned", "banned pass");
}

#[test]
fn search_and_bind_finds_the_entry_by_attribute_and_filter() {
    let s = start();
    s.logs_in("search", "alice", "alice pass");
    s.refused("search", "alice", "wrong");
    s.refused("search", "nobody", "alice pass");
    // Found by cn, but left out by ldapsearchfilter.
    s.refused("search", "banned", "banned pass");
    assert!(
        s.pooler
            .wait_log("found 0 entries, expected one", Duration::from_secs(5)),
        "{}",
        s.pooler.log()
    );
}

#[test]
fn dead_or_silent_servers_fail_in_time_without_stalling_others() {
    let s = start();
    let started = Instant::now();
    s.refused("dead", "alice", "alice pass");
    assert!(started.elapsed() < Duration::from_secs(3));
    let silent = std::thread::scope(|scope| {
        let login = scope.spawn(|| {
            let started = Instant::now();
            s.refused("silent", "alice", "alice pass");
            started.elapsed()
        });
        // Meanwhile other clients log in.
        std::thread::sleep(Duration::from_millis(300));
        for _ in 0..4 {
            let quick = Instant::now();
            let params = s.pooler.params("postgres");
            assert_eq!(current_user(&params, &|| s.pooler.log()), "postgres");
            assert!(quick.elapsed() < Duration::from_secs(2));
        }
        login.join().unwrap()
    });
    assert!(silent < Duration::from_secs(8), "{silent:?}");
    assert!(
        s.pooler
            .wait_log("cannot connect to ldap://127.0.0.1", Duration::from_secs(5)),
        "{}",
        s.pooler.log()
    );
}

#[test]
fn the_entry_picks_the_storage_credentials() {
    let s = start();
    let alice = s.params("creds", "alice", "alice pass");
    assert_eq!(current_user(&alice, &|| s.pooler.log()), "ldap_reader");
    s.refused("creds", "alice", "wrong");
    // carol's entry names another database: no credentials for this one.
    let (code, msg) = login_error(&s.params("creds", "carol", "carol pass"));
    assert_eq!(code, Some(SqlState::SYSTEM_ERROR), "{msg}");
    assert!(
        msg.ends_with("ldap authentication failed for user \"carol\": insufficient access"),
        "{msg}"
    );
}
