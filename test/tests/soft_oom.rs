//! `soft_oom` (issue 14, spec §9.10): while the memory it names — the PSS of processes whose
//! name contains `process` — is over `limit`, new remote logins get `FATAL 53200 soft out of
//! memory` and the console stays reachable; a reload with a higher limit lets them in again
//! (checked every `check_interval_ms`); with `drop { signal max_rate }` the biggest such process
//! is signalled.

use std::process::Command;
use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::temp_dir::TempDir;
use odyssey_test::{Cluster, ClusterOptions, ConnParams, Pooler, Signal, connect, wait_for};

fn rules(soft_oom: &str) -> String {
    format!(
        "{soft_oom}\nstorage \"local\" {{\n\ttype \"local\"\n}}\n\
         database \"console\" {{\n\tuser \"admin\" {{\n\t\tauthentication \"none\"\n\
         \t\trole \"stat\"\n\t\tstorage \"local\"\n\t\tpool \"session\"\n\t}}\n}}\n\
         database default {{\n\tuser default {{\n\t\tauthentication \"none\"\n\
         \t\tstorage \"postgres_server\"\n\t\tstorage_db \"postgres\"\n\
         \t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t}}\n}}\n"
    )
}

fn refused(pooler: &Pooler) -> bool {
    match connect(&ConnParams::tcp(pooler.port(), "app")) {
        Err(e) => e.as_db_error().is_some_and(|d| {
            d.code().code() == "53200" && d.message().ends_with("soft out of memory")
        }),
        Ok(_) => false,
    }
}

#[test]
fn over_the_limit_remote_logins_are_refused_until_memory_fits() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let low = "soft_oom {\n\tlimit 1024\n\tprocess \"odyssey\"\n\tcheck_interval_ms 50\n}";
    let pooler = Pooler::start(&config(cluster.port(), &rules(low))).expect("pooler");
    assert!(
        wait_for(Duration::from_secs(5), || refused(&pooler)),
        "{}",
        pooler.log()
    );
    let mut console = connect(&ConnParams::tcp(pooler.port(), "admin").dbname("console"))
        .expect("the console stays reachable");
    console.simple_query("show version").expect("console query");
    let high = "soft_oom {\n\tlimit 100GB\n\tprocess \"odyssey\"\n\tcheck_interval_ms 50\n}";
    pooler
        .rewrite_config(&config(cluster.port(), &rules(high)))
        .expect("rewrite");
    pooler.signal(Signal::Hup).expect("reload");
    assert!(
        wait_for(Duration::from_secs(5), || {
            connect(&ConnParams::tcp(pooler.port(), "app"))
                .and_then(|mut c| c.simple_query("select 1"))
                .is_ok()
        }),
        "logins must come back under the limit\n{}",
        pooler.log()
    );
}

#[test]
fn drop_signals_the_biggest_matching_process() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    // A victim with a name nothing else has: sleep run through a symlink (the process name
    // is the name it was started by; a copy could hit ETXTBSY while other tests fork).
    let dir = TempDir::new("oom").expect("temp dir");
    let victim_bin = dir.path().join("oomvictim7x");
    std::os::unix::fs::symlink("/bin/sleep", &victim_bin).expect("symlink sleep");
    let mut victim = Command::new(&victim_bin).arg("60").spawn().expect("victim");
    let soft_oom = "soft_oom {\n\tlimit 1\n\tprocess \"oomvictim7x\"\n\tcheck_interval_ms 50\n\
                    \tdrop {\n\t\tsignal \"TERM\"\n\t\tmax_rate 1\n\t}\n}";
    let pooler = Pooler::start(&config(cluster.port(), &rules(soft_oom))).expect("pooler");
    let gone = wait_for(Duration::from_secs(10), || {
        victim.try_wait().is_ok_and(|s| s.is_some())
    });
    if !gone {
        let _ = victim.kill();
    }
    let _ = victim.wait();
    assert!(gone, "the victim must be signalled\n{}", pooler.log());
    assert!(
        pooler.log().contains("sent SIGTERM to process"),
        "{}",
        pooler.log()
    );
}
