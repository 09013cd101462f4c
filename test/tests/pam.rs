//! PAM authentication (spec §8): a `clear_text` rule with `auth_pam_service` gives the client's
//! password to a PAM service. The test writes a throw-away service file in `/etc/pam.d/` using
//! `pam_unix` and creates a throw-away OS user (both removed at the end), so it needs root, as
//! CI has; run as another user it fails, saying so.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use odyssey_test::clients::{current_user, login_error};
use odyssey_test::pg::error::SqlState;
use odyssey_test::pooler::config;
use odyssey_test::{Cluster, ClusterOptions, Pooler, psql};

/// An OS user with a password and a PAM service file, removed when dropped.
struct PamFixture {
    user: String,
    service: String,
    file: PathBuf,
}

impl PamFixture {
    fn create(password: &str) -> PamFixture {
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        assert_eq!(
            String::from_utf8_lossy(&uid.stdout).trim(),
            "0",
            "the PAM test creates an OS user and a file in /etc/pam.d: run it as root (CI does)"
        );
        let pid = std::process::id();
        let service = format!("odyssey-test-{pid}");
        let file = PathBuf::from("/etc/pam.d").join(&service);
        let fixture = PamFixture {
            user: format!("odyt{pid}"),
            service,
            file,
        };
        fs::write(
            &fixture.file,
            "auth required pam_unix.so nodelay\naccount required pam_unix.so\n",
        )
        .expect("write the PAM service file");
        let status = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin"])
            .arg(&fixture.user)
            .status()
            .expect("useradd");
        assert!(status.success(), "useradd {}", fixture.user);
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd");
        let line = format!("{}:{password}\n", fixture.user);
        chpasswd
            .stdin
            .take()
            .expect("stdin")
            .write_all(line.as_bytes())
            .expect("write to chpasswd");
        assert!(chpasswd.wait().expect("chpasswd").success(), "chpasswd");
        fixture
    }
}

impl Drop for PamFixture {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
        let _ = Command::new("userdel").arg(&self.user).status();
    }
}

#[test]
fn pam_unix_accepts_the_right_password_and_refuses_others() {
    let pam = PamFixture::create("os secret");
    let cluster = Cluster::start(ClusterOptions::default()).expect("cluster");
    let rules = format!(
        "database \"postgres\" {{\n\tuser default {{\n\t\tauthentication \"clear_text\"\n\
         \t\tauth_pam_service \"{}\"\n\t\tstorage \"postgres_server\"\n\
         \t\tstorage_user \"postgres\"\n\t\tpool \"session\"\n\t}}\n}}\n",
        pam.service
    );
    let pooler = Pooler::start(&config(cluster.port(), &rules)).expect("pooler");
    let params = |user: &str, password: &str| pooler.params(user).password(password);

    let right = params(&pam.user, "os secret");
    assert_eq!(current_user(&right, &|| pooler.log()), "postgres");
    let out = psql(&right, "SELECT 1", Duration::from_secs(10)).unwrap();
    assert!(out.success(), "{}\n{}", out.stderr, pooler.log());

    for (user, password) in [
        (pam.user.as_str(), "wrong"),
        (pam.user.as_str(), ""),
        ("odyssey_no_such_os_user", "os secret"),
    ] {
        let (code, msg) = login_error(&params(user, password));
        assert_eq!(code, Some(SqlState::INVALID_PASSWORD), "{user}: {msg}");
        assert!(
            msg.ends_with(&format!(
                "password authentication failed for user \"{user}\""
            )),
            "{msg}"
        );
    }
    assert!(
        pooler.wait_log(
            &format!("PAM service \"{}\" refused user", pam.service),
            Duration::from_secs(5)
        ),
        "{}",
        pooler.log()
    );
}
