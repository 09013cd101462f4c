//! kiwi's client-side auth against a real PostgreSQL: SCRAM-SHA-256 and MD5 logins by hand,
//! right and wrong passwords.

use std::time::Duration;

use odyssey_test::raw::RawConn;
use odyssey_test::{AuthMethod, Cluster, ClusterOptions};

fn login(cluster: &Cluster, user: &str, password: &str) -> Result<Vec<u8>, String> {
    let mut c =
        RawConn::connect(cluster.port(), Duration::from_secs(10)).map_err(|e| e.to_string())?;
    c.startup(&[("user", user), ("database", "postgres")])
        .map_err(|e| e.to_string())?;
    c.authenticate(user, password).map_err(|e| e.to_string())?;
    let rest = c.until_ready().map_err(|e| e.to_string())?;
    Ok(rest.iter().map(|m| m.tag).collect())
}

#[test]
fn scram_and_md5_logins_against_real_postgres() {
    let mut cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    cluster
        .add_user("scram_u", "s3cret", AuthMethod::ScramSha256)
        .expect("scram user");
    cluster
        .add_user("md5_u", "m5pass", AuthMethod::Md5)
        .expect("md5 user");

    let tags = login(&cluster, "scram_u", "s3cret").expect("scram login");
    assert_eq!(
        tags.last(),
        Some(&b'Z'),
        "ReadyForQuery after a SCRAM login: {tags:?}"
    );
    assert!(tags.contains(&b'K'), "BackendKeyData after login");

    let tags = login(&cluster, "md5_u", "m5pass").expect("md5 login");
    assert_eq!(tags.last(), Some(&b'Z'));

    let err = login(&cluster, "scram_u", "wrong").expect_err("wrong scram password");
    assert!(err.contains("28P01"), "{err}");
    let err = login(&cluster, "md5_u", "wrong").expect_err("wrong md5 password");
    assert!(err.contains("28P01"), "{err}");
}
