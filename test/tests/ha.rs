//! Multi-host storages (issue 13) on a real primary and a real streaming standby: routing by
//! `target_session_attrs` (rule, listen and storage) with either host listed first, `prefer-standby`
//! and its fallback, round-robin balancing over both hosts, `availability_zone` with
//! `az_aware`, a dead first host skipped, every host down, and a promotion: read-write
//! clients reach the new primary without a pooler restart, after `endpoints_status_poll_interval`;
//! a storage `watchdog` measuring a standby whose replay is paused: `catchup_timeout` skips it
//! and refuses logins when it is the only host.

use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, connect, free_port, wait_for};

struct Pair {
    primary: Cluster,
    standby: Cluster,
}

fn pair() -> Pair {
    let primary = Cluster::start(ClusterOptions::default()).expect("primary");
    let standby = Cluster::standby_of(&primary).expect("standby");
    Pair { primary, standby }
}

/// A rule for `user` in database `db` on `storage` with `tsa` (None: unset).
fn rule(db: &str, user: &str, storage: &str, tsa: Option<&str>) -> String {
    let tsa = tsa.map_or(String::new(), |t| {
        format!("\t\ttarget_session_attrs \"{t}\"\n")
    });
    format!(
        "database \"{db}\" {{\n\tuser \"{user}\" {{\n\t\tauthentication \"none\"\n\
         \t\tstorage \"{storage}\"\n\t\tstorage_db \"postgres\"\n\t\tstorage_user \"postgres\"\n\
         \t\tpool \"transaction\"\n\t\tpool_size 4\n{tsa}\t}}\n}}\n"
    )
}

fn storage(name: &str, hosts: &str, extra: &str) -> String {
    format!(
        "storage \"{name}\" {{\n\ttype \"remote\"\n\thost \"{hosts}\"\n\
         \tendpoints_status_poll_interval 200\n{extra}}}\n"
    )
}

/// Whether the server behind `user`@`db` is a standby, and its port.
fn where_am_i(pooler: &Pooler, db: &str, user: &str) -> (bool, u16) {
    let mut c = connect(&ConnParams::tcp(pooler.port(), user).dbname(db))
        .unwrap_or_else(|e| panic!("{user}@{db}: {e}\n{}", pooler.log()));
    let row = c
        .query_one("select pg_is_in_recovery(), inet_server_port()", &[])
        .expect("query");
    (row.get(0), row.get::<_, i32>(1) as u16)
}

#[test]
fn routes_by_role_with_either_host_first() {
    let p = pair();
    let (pp, sp) = (p.primary.port(), p.standby.port());
    let mut rest = storage("p_first", &format!("127.0.0.1:{pp},127.0.0.1:{sp}"), "");
    rest += &storage("s_first", &format!("127.0.0.1:{sp},127.0.0.1:{pp}"), "");
    for s in ["p_first", "s_first"] {
        rest += &rule(&format!("{s}_rw"), "app", s, Some("read-write"));
        rest += &rule(&format!("{s}_ro"), "app", s, Some("read-only"));
        rest += &rule(&format!("{s}_prefer"), "app", s, Some("prefer-standby"));
    }
    rest += "storage \"local\" {\n\ttype \"local\"\n}\n";
    rest += "database \"console\" {\n\tuser \"admin\" {\n\t\tauthentication \"none\"\n\
             \t\trole \"stat\"\n\t\tstorage \"local\"\n\t\tpool \"session\"\n\t}\n}\n";
    let pooler = Pooler::start(&config(pp, &rest)).expect("pooler");
    for s in ["p_first", "s_first"] {
        for _ in 0..3 {
            assert_eq!(
                where_am_i(&pooler, &format!("{s}_rw"), "app"),
                (false, pp),
                "{s}"
            );
            assert_eq!(
                where_am_i(&pooler, &format!("{s}_ro"), "app"),
                (true, sp),
                "{s}"
            );
            assert_eq!(
                where_am_i(&pooler, &format!("{s}_prefer"), "app"),
                (true, sp),
                "{s}"
            );
        }
    }
}

#[test]
fn listen_target_session_attrs_wins_over_the_rule() {
    let p = pair();
    let (pp, sp) = (p.primary.port(), p.standby.port());
    let ro_port = free_port().expect("port");
    let mut rest = format!(
        "listen {{\n\thost \"127.0.0.1\"\n\tport {ro_port}\n\ttarget_session_attrs \"read-only\"\n}}\n"
    );
    rest += &storage("both", &format!("127.0.0.1:{pp},127.0.0.1:{sp}"), "");
    rest += &rule("db", "app", "both", Some("read-write"));
    let pooler = Pooler::start(&config(pp, &rest)).expect("pooler");
    assert_eq!(where_am_i(&pooler, "db", "app"), (false, pp));
    let mut c = connect(&ConnParams::tcp(ro_port, "app").dbname("db")).expect("ro listen");
    let standby: bool = c
        .query_one("select pg_is_in_recovery()", &[])
        .unwrap()
        .get(0);
    assert!(standby, "the read-only listen must lead to the standby");
}

/// A storage's `target_session_attrs` (odyssey 1.4's place for it) is the default of the
/// rules and listens on it that set none; a rule's own wins over it.
#[test]
fn storage_target_session_attrs_is_the_default_of_its_rules() {
    let p = pair();
    let (pp, sp) = (p.primary.port(), p.standby.port());
    let hosts = format!("127.0.0.1:{pp},127.0.0.1:{sp}");
    let mut rest = storage("ro", &hosts, "\ttarget_session_attrs \"read-only\"\n");
    rest += &rule("plain", "app", "ro", None);
    rest += &rule("own", "app", "ro", Some("read-write"));
    let pooler = Pooler::start(&config(pp, &rest)).expect("pooler");
    for _ in 0..3 {
        assert_eq!(
            where_am_i(&pooler, "plain", "app"),
            (true, sp),
            "storage's tsa"
        );
        assert_eq!(where_am_i(&pooler, "own", "app"), (false, pp), "rule's tsa");
    }
}

/// `virtual_processing`: `SET odyssey.target_session_attrs` is answered by the pooler and
/// moves the client to servers of that kind; `SHOW` tells the value; a client may also ask for
/// a kind at login (`options -c odyssey.target_session_attrs=...`), over the listen's and the
/// rule's.
#[test]
fn clients_choose_their_target_session_attrs() {
    let p = pair();
    let (pp, sp) = (p.primary.port(), p.standby.port());
    let mut rest = "virtual_processing yes\n".to_string();
    rest += &storage("both", &format!("127.0.0.1:{pp},127.0.0.1:{sp}"), "");
    rest += &rule("db", "app", "both", Some("read-write"));
    let pooler = Pooler::start(&config(pp, &rest)).expect("pooler");
    let params = ConnParams::tcp(pooler.port(), "app").dbname("db");
    let mut c = connect(&params).expect("client");
    let value = |c: &mut odyssey_test::pg::Client, sql: &str| -> String {
        let messages = c
            .simple_query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        messages
            .into_iter()
            .find_map(|m| match m {
                odyssey_test::pg::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .unwrap_or_default()
    };
    assert_eq!(
        value(&mut c, "SHOW odyssey.target_session_attrs"),
        "read-write"
    );
    assert_eq!(value(&mut c, "select pg_is_in_recovery()"), "f");
    c.batch_execute("SET odyssey.target_session_attrs = 'read-only'")
        .expect("virtual SET");
    assert_eq!(
        value(&mut c, "SHOW odyssey.target_session_attrs"),
        "read-only"
    );
    for _ in 0..3 {
        assert_eq!(
            value(&mut c, "select pg_is_in_recovery()"),
            "t",
            "{}",
            pooler.log()
        );
    }
    let bad = c
        .batch_execute("SET odyssey.target_session_attrs TO 'sideways'")
        .expect_err("a bad value");
    let code = bad.as_db_error().map(|e| e.code().code().to_string());
    assert_eq!(code.as_deref(), Some("22023"), "{bad:?}");
    assert_eq!(
        value(&mut c, "SHOW odyssey.target_session_attrs"),
        "read-only"
    );

    let asked = params.libpq("PGOPTIONS", "-c odyssey.target_session_attrs=read-only");
    let out = odyssey_test::psql(
        &asked,
        "select pg_is_in_recovery()",
        Duration::from_secs(10),
    )
    .unwrap();
    assert_eq!(out.stdout.trim(), "t", "{}", out.combined());
}

#[test]
fn round_robin_spreads_and_zones_come_first() {
    let p = pair();
    let (pp, sp) = (p.primary.port(), p.standby.port());
    let mut rest = String::from("availability_zone \"z2\"\n");
    rest += &storage("rr", &format!("127.0.0.1:{pp},127.0.0.1:{sp}"), "");
    rest += &storage(
        "zoned",
        &format!("127.0.0.1:{pp}:z1,127.0.0.1:{sp}:z2"),
        "\tbalancing {\n\t\tmethod \"roundrobin\" {\n\t\t\taz_aware yes\n\t\t}\n\t}\n",
    );
    rest += &rule("rr", "app", "rr", None);
    rest += &rule("zoned", "app", "zoned", None);
    // A second listener balances by least connections (the listen's balancing_method wins).
    let least = free_port().expect("port");
    rest += &format!(
        "listen {{\n\thost \"127.0.0.1\"\n\tport {least}\n\tbalancing_method \"leastconn\"\n}}\n"
    );
    let pooler = Pooler::start(&config(pp, &rest)).expect("pooler");
    for port in [pooler.port(), least] {
        // Four clients holding servers at once: new connections spread over both hosts.
        let mut clients: Vec<_> = (0..4)
            .map(|_| connect(&ConnParams::tcp(port, "app").dbname("rr")).expect("client"))
            .collect();
        let mut ports = Vec::new();
        for c in &mut clients {
            c.simple_query("begin").expect("begin");
            let p: i32 = c
                .query_one("select inet_server_port()", &[])
                .unwrap()
                .get(0);
            ports.push(p as u16);
        }
        let on = |host| ports.iter().filter(|p| **p == host).count();
        assert_eq!((on(pp), on(sp)), (2, 2), "listen {port}: {ports:?}");
    }
    for _ in 0..3 {
        assert_eq!(where_am_i(&pooler, "zoned", "app").1, sp, "our zone first");
    }
}

#[test]
fn dead_hosts_are_skipped_and_all_dead_is_a_clear_fatal() {
    let p = pair();
    let pp = p.primary.port();
    let (dead1, dead2) = (free_port().expect("port"), free_port().expect("port"));
    let mut rest = String::from("backend_connect_timeout_ms 1000\n");
    rest += &storage(
        "first_dead",
        &format!("127.0.0.1:{dead1},127.0.0.1:{pp}"),
        "",
    );
    rest += &storage(
        "all_dead",
        &format!("127.0.0.1:{dead1},127.0.0.1:{dead2}"),
        "",
    );
    rest += &rule("first_dead", "app", "first_dead", Some("read-write"));
    rest += &rule("all_dead", "app", "all_dead", None);
    // prefer-standby with its standby down: the primary serves.
    rest += &rule("prefer_dead", "app", "first_dead", Some("prefer-standby"));
    let pooler = Pooler::start(&config(pp, &rest)).expect("pooler");
    assert_eq!(where_am_i(&pooler, "first_dead", "app"), (false, pp));
    assert_eq!(where_am_i(&pooler, "prefer_dead", "app"), (false, pp));
    let started = std::time::Instant::now();
    let err = connect(&ConnParams::tcp(pooler.port(), "app").dbname("all_dead"))
        .and_then(|mut c| c.simple_query("select 1").map(drop))
        .expect_err("no host is up");
    assert!(started.elapsed() < Duration::from_secs(10));
    let db = err.as_db_error().expect("an error from the pooler");
    assert_eq!(db.code().code(), "08006", "{db:?}");
    drop(p.standby);
}

#[test]
fn promotion_reaches_read_write_clients_without_a_restart() {
    let mut p = pair();
    let (pp, sp) = (p.primary.port(), p.standby.port());
    let mut rest = storage("both", &format!("127.0.0.1:{pp},127.0.0.1:{sp}"), "");
    rest += &rule("rw", "app", "both", Some("read-write"));
    rest += &rule("ro", "app", "both", Some("read-only"));
    rest += &rule("prefer", "app", "both", Some("prefer-standby"));
    let pooler = Pooler::start(&config(pp, &rest)).expect("pooler");
    assert_eq!(where_am_i(&pooler, "rw", "app"), (false, pp));
    assert_eq!(where_am_i(&pooler, "ro", "app"), (true, sp));
    // The primary goes away: read-only goes on; read-write finds no primary.
    p.primary.stop().expect("stop primary");
    assert_eq!(where_am_i(&pooler, "ro", "app"), (true, sp));
    let err = connect(&ConnParams::tcp(pooler.port(), "app").dbname("rw"))
        .and_then(|mut c| c.simple_query("select 1").map(drop))
        .expect_err("no primary");
    assert!(
        err.to_string().contains("08006") || err.as_db_error().is_some(),
        "{err}"
    );
    // The standby is promoted: read-write reaches it, prefer-standby falls back to it, and
    // read-only has no standby left.
    p.standby.promote().expect("promote");
    assert!(
        wait_for(Duration::from_secs(10), || {
            connect(&ConnParams::tcp(pooler.port(), "app").dbname("rw"))
                .and_then(|mut c| c.query_one("select pg_is_in_recovery()", &[]))
                .is_ok_and(|r| !r.get::<_, bool>(0))
        }),
        "read-write never reached the promoted standby\n{}",
        pooler.log()
    );
    assert_eq!(where_am_i(&pooler, "prefer", "app"), (false, sp));
    assert!(
        wait_for(Duration::from_secs(5), || {
            connect(&ConnParams::tcp(pooler.port(), "app").dbname("ro"))
                .and_then(|mut c| c.simple_query("select 1"))
                .is_err()
        }),
        "a pooled server of the promoted host must not serve read-only clients"
    );
}

/// A heartbeat the test writes on the primary every 100 ms; the standby replays it, so
/// `select ts from heartbeat` there is the time of its last replay.
fn heartbeat(
    primary: &Cluster,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    primary
        .psql("postgres", "postgres", "create table heartbeat(ts bigint); insert into heartbeat values (extract(epoch from now())::bigint)")
        .expect("heartbeat table");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let params = primary.superuser_params();
    let flag = stop.clone();
    let beat = std::thread::spawn(move || {
        let mut c = connect(&params).expect("heartbeat client");
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !flag.load(std::sync::atomic::Ordering::Relaxed)
            && std::time::Instant::now() < deadline
        {
            let _ = c.simple_query("update heartbeat set ts = extract(epoch from now())::bigint");
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    (stop, beat)
}

#[test]
fn a_lagging_standby_is_skipped_and_catchup_timeout_refuses_logins() {
    let p = pair();
    let (pp, sp) = (p.primary.port(), p.standby.port());
    let (stop, beat) = heartbeat(&p.primary);
    assert!(
        wait_for(Duration::from_secs(10), || p
            .standby
            .psql("postgres", "postgres", "select ts from heartbeat")
            .is_ok()),
        "the standby does not replay\n{}",
        p.standby.log()
    );
    let watchdog = "\twatchdog {\n\t\tauthentication \"none\"\n\t\tstorage \"postgres_server\"\n\
                    \t\tstorage_db \"postgres\"\n\t\tstorage_user \"postgres\"\n\t\tpool \"transaction\"\n\
                    \t\twatchdog_lag_query \"select ts from heartbeat\"\n\t}\n";
    let mut rest = storage("standby_only", &format!("127.0.0.1:{sp}"), watchdog);
    rest += &storage("both", &format!("127.0.0.1:{sp},127.0.0.1:{pp}"), watchdog);
    let with_catchup = |r: String| {
        r.replace(
            "\t\tpool_size 4\n",
            "\t\tpool_size 4\n\t\tcatchup_timeout 2\n",
        )
    };
    rest += &with_catchup(rule("lagging", "app", "standby_only", Some("read-only")));
    rest += &with_catchup(rule("prefer", "app", "both", Some("prefer-standby")));
    let pooler = Pooler::start(&config(pp, &rest)).expect("pooler");
    assert!(
        wait_for(Duration::from_secs(10), || {
            connect(&ConnParams::tcp(pooler.port(), "app").dbname("lagging"))
                .and_then(|mut c| c.simple_query("select 1"))
                .is_ok()
        }),
        "a standby that keeps up serves\n{}",
        pooler.log()
    );
    assert_eq!(where_am_i(&pooler, "prefer", "app"), (true, sp));

    p.standby
        .psql("postgres", "postgres", "select pg_wal_replay_pause()")
        .expect("pause replay");
    let refused = wait_for(Duration::from_secs(15), || {
        match connect(&ConnParams::tcp(pooler.port(), "app").dbname("lagging"))
            .and_then(|mut c| c.simple_query("select 1"))
        {
            Err(e) => e.as_db_error().is_some_and(|d| {
                d.code().code() == "08006" && d.message().contains("replication lag too big")
            }),
            Ok(_) => false,
        }
    });
    assert!(
        refused,
        "logins must be refused while the only host lags\n{}",
        pooler.log()
    );
    // With a primary in the list, prefer-standby skips the lagging standby.
    assert_eq!(where_am_i(&pooler, "prefer", "app"), (false, pp));

    p.standby
        .psql("postgres", "postgres", "select pg_wal_replay_resume()")
        .expect("resume replay");
    assert!(
        wait_for(Duration::from_secs(15), || {
            connect(&ConnParams::tcp(pooler.port(), "app").dbname("lagging"))
                .and_then(|mut c| c.simple_query("select 1"))
                .is_ok()
        }),
        "the standby serves again once it catches up"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    beat.join().expect("heartbeat thread");
}
