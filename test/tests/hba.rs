//! `hba_file` enforced (spec §4): after routing and before authentication the first line
//! matching the client's transport (unix → `local`, TCP → `host`/`hostnossl`; `hostssl` for
//! TLS clients, tested in `tls.rs`), address and its rule's database and user decides;
//! `deny`/`reject` and no matching line refuse with upstream's `ERROR 28P01 host based
//! authentication rejected`. SIGHUP re-reads the file for new clients.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::temp_dir::TempDir;
use odyssey_test::{
    Cluster, ClusterOptions, ConnParams, Pooler, Signal, connect, free_port, wait_for,
};

/// Every user has a rule in databases `postgres` and `other` (both served by the cluster's
/// `postgres` database as `postgres`), so only the hba file decides who gets in.
const USERS: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "dave",
    "eve",
    "mallory",
    "unix_only",
];

const HBA: &str = "\
# first matching line decides
local all unix_only allow
host all unix_only 127.0.0.1/32 deny
local postgres alice deny
host postgres alice 127.0.0.1/32 allow
host other alice 127.0.0.1/32 reject
host all bob 127.0.0.1 255.255.255.255 trust
host all carol 10.0.0.0/8 allow
hostssl all dave 127.0.0.1/32 allow
host all eve 127.0.0.1/32 reject
host default_db frank 127.0.0.1/32 allow
host all grace 127.0.0.1/32 allow
";

fn rules() -> String {
    let mut out = String::new();
    for db in ["postgres", "other"] {
        out.push_str(&format!("database \"{db}\" {{\n"));
        for user in USERS {
            out.push_str(&format!(
                "\tuser \"{user}\" {{\n\t\tauthentication \"none\"\n\t\tstorage \"postgres_server\"\n\
                 \t\tstorage_db \"postgres\"\n\t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t}}\n"
            ));
        }
        out.push_str("}\n");
    }
    // A default database: the hba check sees it as `default_db`.
    out.push_str(
        "database default {\n\tuser \"frank\" {\n\t\tauthentication \"none\"\n\
         \t\tstorage \"postgres_server\"\n\t\tstorage_db \"postgres\"\n\
         \t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t}\n\
         \tuser \"grace\" {\n\t\tauthentication \"clear_text\"\n\t\tpassword \"grace pass\"\n\
         \t\tstorage \"postgres_server\"\n\t\tstorage_db \"postgres\"\n\
         \t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t}\n}\n",
    );
    out
}

struct Setup {
    _cluster: Cluster,
    pooler: Pooler,
    hba: PathBuf,
    unix_port: u16,
    _dir: TempDir,
}

fn start(hba: &str) -> Setup {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let dir = TempDir::new("hba").expect("temp dir");
    let path = dir.path().join("hba.conf");
    fs::write(&path, hba).unwrap();
    let unix_port = free_port().expect("port");
    let rest = format!(
        "hba_file \"{}\"\nunix_socket_dir \"@DIR@\"\nunix_socket_mode \"0644\"\nlisten {{\n\tport {unix_port}\n}}\n{}",
        path.display(),
        rules()
    );
    let pooler = Pooler::start(&config(cluster.port(), &rest)).expect("pooler");
    let socket = pooler.dir().join(format!(".s.PGSQL.{unix_port}"));
    assert!(
        wait_for(Duration::from_secs(5), || socket.exists()),
        "{}",
        pooler.log()
    );
    Setup {
        _cluster: cluster,
        pooler,
        hba: path,
        unix_port,
        _dir: dir,
    }
}

impl Setup {
    fn tcp(&self, db: &str, user: &str) -> ConnParams {
        self.pooler.params(user).dbname(db)
    }

    fn unix(&self, db: &str, user: &str) -> ConnParams {
        let mut params = self.tcp(db, user);
        params.host = self.pooler.dir().display().to_string();
        params.port = self.unix_port;
        params
    }

    fn log(&self) -> String {
        self.pooler.log()
    }
}

fn admitted(s: &Setup, params: &ConnParams) {
    let mut client = connect(params).unwrap_or_else(|e| {
        panic!(
            "{}@{} via {} refused: {e}\n{}",
            params.user,
            params.dbname,
            params.host,
            s.log()
        )
    });
    let n: i32 = client.query_one("SELECT 1", &[]).unwrap().get(0);
    assert_eq!(n, 1);
}

fn rejected(s: &Setup, params: &ConnParams) {
    let err = connect(params).err().unwrap_or_else(|| {
        panic!(
            "{}@{} via {} admitted\n{}",
            params.user,
            params.dbname,
            params.host,
            s.log()
        )
    });
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(db.code(), &SqlState::INVALID_PASSWORD, "{err}");
    assert_eq!(db.severity(), "ERROR", "{err}");
    assert!(
        db.message()
            .ends_with(": host based authentication rejected"),
        "{err}"
    );
}

#[test]
fn per_user_allow_deny_and_no_matching_line() {
    let s = start(HBA);
    admitted(&s, &s.tcp("postgres", "alice"));
    admitted(&s, &s.tcp("postgres", "bob"));
    rejected(&s, &s.tcp("postgres", "eve"));
    // No line names mallory.
    rejected(&s, &s.tcp("postgres", "mallory"));
    // The client hears its refusal before the line reaches the log file: wait for it.
    assert!(
        s.pooler.wait_log(
            "ip '127.0.0.1' user 'postgres.eve': host based authentication rejected",
            Duration::from_secs(5)
        ),
        "{}",
        s.log()
    );
}

#[test]
fn allowed_goes_on_to_the_rules_authentication() {
    let s = start(HBA);
    let err = connect(&s.tcp("postgres", "grace").password("wrong"))
        .err()
        .expect("wrong password admitted");
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(db.code(), &SqlState::INVALID_PASSWORD, "{err}");
    assert!(
        db.message().contains("password authentication failed"),
        "{err}"
    );
    admitted(&s, &s.tcp("postgres", "grace").password("grace pass"));
}

#[test]
fn per_database() {
    let s = start(HBA);
    admitted(&s, &s.tcp("postgres", "alice"));
    rejected(&s, &s.tcp("other", "alice"));
    admitted(&s, &s.tcp("other", "bob"));
    // A default rule goes by `default_db`.
    admitted(&s, &s.tcp("anything", "frank"));
}

#[test]
fn per_address_and_hostssl_without_tls() {
    let s = start(HBA);
    // 127.0.0.1 is not in 10.0.0.0/8: carol's only line does not match.
    rejected(&s, &s.tcp("postgres", "carol"));
    // 127.0.0.1 255.255.255.255 does.
    admitted(&s, &s.tcp("postgres", "bob"));
    // No TLS: hostssl never matches.
    rejected(&s, &s.tcp("postgres", "dave"));
}

#[test]
fn local_lines_for_unix_host_lines_for_tcp() {
    let s = start(HBA);
    admitted(&s, &s.unix("postgres", "unix_only"));
    rejected(&s, &s.tcp("postgres", "unix_only"));
    rejected(&s, &s.unix("postgres", "alice"));
    admitted(&s, &s.tcp("postgres", "alice"));
    // bob has only host lines.
    rejected(&s, &s.unix("postgres", "bob"));
}

#[test]
fn sighup_rereads_the_hba_file() {
    let s = start(HBA);
    rejected(&s, &s.tcp("postgres", "eve"));
    admitted(&s, &s.tcp("postgres", "alice"));
    let changed = "host all eve 127.0.0.1/32 allow\nhost all alice 127.0.0.1/32 deny\n";
    fs::write(&s.hba, changed).unwrap();
    s.pooler.signal(Signal::Hup).unwrap();
    assert!(
        wait_for(Duration::from_secs(5), || connect(
            &s.tcp("postgres", "eve")
        )
        .is_ok()),
        "eve still refused after SIGHUP ({})\n{}",
        s.hba.display(),
        s.log()
    );
    rejected(&s, &s.tcp("postgres", "alice"));
}
