//! `log_config yes`: the config and its rules are written to the log at start, and the rules
//! again after a reload; passwords never are.

use std::time::Duration;

use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, Signal};

fn template(port: u16, pool_size: u32) -> String {
    config(
        port,
        &format!(
            r#"
log_config yes
database "postgres" {{
	user "alice" {{
		authentication "clear_text"
		password "never-in-the-log"
		storage "postgres_server"
		storage_user "postgres"
		pool "transaction"
		pool_size {pool_size}
	}}
}}
"#
        ),
    )
}

#[test]
fn the_config_and_rules_are_logged_at_start_and_rules_after_reload() {
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let pooler = Pooler::start(&template(cluster.port(), 3)).expect("pooler");
    let wait = Duration::from_secs(10);
    assert!(
        pooler.wait_log("log_config              yes", wait),
        "no config dump at start\n{}",
        pooler.log()
    );
    assert!(
        pooler.wait_log("<postgres.alice ", wait),
        "{}",
        pooler.log()
    );
    assert!(pooler.wait_log("pool size                         3", wait));
    assert!(pooler.wait_log("pool                              transaction", wait));

    pooler
        .rewrite_config(&template(cluster.port(), 9))
        .expect("rewrite");
    pooler.signal(Signal::Hup).expect("SIGHUP");
    assert!(
        pooler.wait_log("pool size                         9", wait),
        "rules not logged after the reload\n{}",
        pooler.log()
    );
    assert!(
        !pooler.log().contains("never-in-the-log"),
        "a password reached the log"
    );
}
