//! A throw-away PostgreSQL cluster: initdb in a temp dir, pg_ctl on a free loopback port,
//! pg_hba with per-user methods, torn down (processes and files) on drop.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::clients::{self, ConnParams, pg_binary};
use crate::command;
use crate::error::{Error, Result};
use crate::process;
use crate::run_as::RunAs;
use crate::temp_dir::TempDir;

/// The superuser initdb creates (`-U postgres`), which the harness uses for setup.
pub const SUPERUSER: &str = "postgres";

/// How many free ports a start tries before giving up on "address already in use".
const PORT_ATTEMPTS: usize = 5;
/// Bound on one psql call made by the harness itself.
const PSQL_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on initdb.
const INITDB_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on a stop, and on waiting for killed processes to vanish.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on waiting for a pg_hba.conf reload to take effect.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(5);

/// How a user authenticates; also decides how its password is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No password asked.
    Trust,
    /// MD5 challenge; the password is stored as an md5 hash.
    Md5,
    /// SCRAM-SHA-256; the password is stored as a SCRAM verifier.
    ScramSha256,
}

impl AuthMethod {
    /// The pg_hba.conf method name.
    pub fn hba_name(self) -> &'static str {
        match self {
            AuthMethod::Trust => "trust",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
        }
    }

    /// The `password_encryption` to store this user's password with.
    fn password_encryption(self) -> &'static str {
        match self {
            AuthMethod::Md5 => "md5",
            AuthMethod::Trust | AuthMethod::ScramSha256 => "scram-sha-256",
        }
    }
}

/// How to set up a [`Cluster`]. `ClusterOptions::default()` gives a trusting superuser and
/// the harness's fast, small settings.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Extra postgresql.conf settings (`("max_connections", "20")`), written after the
    /// harness defaults so they win. Values are written as given: quote strings yourself.
    pub settings: Vec<(String, String)>,
    /// How the superuser authenticates over TCP.
    pub superuser_auth: AuthMethod,
    /// The superuser's password; set (stored per `superuser_auth`) unless that is trust.
    pub superuser_password: String,
    /// Let the superuser in without a password over the unix socket, so setup never depends
    /// on the methods under test. When false the socket uses `superuser_auth` as well.
    pub socket_trust: bool,
    /// Bound on one `pg_ctl start`.
    pub start_timeout: Duration,
    /// TLS (`ssl = on`) with this certificate chain and key (PEM files, copied into the data
    /// directory for the server user); `None` for no TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// TCP logins only over TLS: `hostssl` lines in pg_hba.conf instead of `host`.
    pub hostssl_only: bool,
}

impl Default for ClusterOptions {
    fn default() -> ClusterOptions {
        ClusterOptions {
            settings: Vec::new(),
            superuser_auth: AuthMethod::Trust,
            superuser_password: "postgres".to_string(),
            socket_trust: true,
            start_timeout: Duration::from_secs(30),
            tls: None,
            hostssl_only: false,
        }
    }
}

impl ClusterOptions {
    /// Adds one postgresql.conf setting.
    pub fn setting(mut self, name: &str, value: &str) -> ClusterOptions {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }

    /// Lets TCP clients in only over TLS (`hostssl`).
    pub fn hostssl_only(mut self) -> ClusterOptions {
        self.hostssl_only = true;
        self
    }

    /// Serves TLS with `cert` (the chain) and `key`.
    pub fn tls(mut self, cert: &Path, key: &Path) -> ClusterOptions {
        self.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }
}

/// A running PostgreSQL cluster owned by one test. Dropping it stops the server (immediate
/// mode, then SIGKILL for anything left) and removes its directory.
///
/// Layout under the temp dir: `data/` (PGDATA), `sock/` (unix socket), `postgres.log`.
#[derive(Debug)]
pub struct Cluster {
    options: ClusterOptions,
    /// Users added with [`Cluster::add_user`], in pg_hba.conf order.
    users: Vec<(String, AuthMethod)>,
    run_as: Option<RunAs>,
    port: u16,
    /// The postmaster while the server runs; `None` once stopped.
    postmaster: Option<u32>,
    /// Dropped last: the processes using it are stopped first, in `Drop`.
    dir: TempDir,
}

impl Cluster {
    /// Creates, configures and starts a cluster; returns once it accepts connections.
    pub fn start(options: ClusterOptions) -> Result<Cluster> {
        let run_as = RunAs::detect()?;
        let dir = TempDir::new("pg")?;
        let mut cluster = Cluster {
            options,
            users: Vec::new(),
            run_as,
            port: 0,
            postmaster: None,
            dir,
        };
        cluster.init()?;
        cluster.start_server(None)?;
        if cluster.options.superuser_auth != AuthMethod::Trust {
            let password = cluster.options.superuser_password.clone();
            cluster.set_password(SUPERUSER, &password, cluster.options.superuser_auth)?;
        }
        Ok(cluster)
    }

    /// A streaming standby of `primary` (pg_basebackup -R over the primary's socket), started
    /// on its own free port with the primary's options.
    pub fn standby_of(primary: &Cluster) -> Result<Cluster> {
        let run_as = RunAs::detect()?;
        let dir = TempDir::new("pg-standby")?;
        let mut standby = Cluster {
            options: primary.options.clone(),
            users: primary.users.clone(),
            run_as,
            port: 0,
            postmaster: None,
            dir,
        };
        let sock = standby.socket_dir();
        fs::create_dir(&sock).map_err(|e| Error::io(format!("create {}", sock.display()), e))?;
        if let Some(run_as) = &standby.run_as {
            run_as.chown(standby.dir.path())?;
            run_as.chown(&sock)?;
        }
        let mut backup = standby.server_command("pg_basebackup");
        backup
            .arg("-D")
            .arg(standby.data_dir())
            .args(["-R", "-X", "stream", "-U", SUPERUSER, "-h"])
            .arg(primary.socket_dir())
            .args(["-p", &primary.port.to_string()]);
        command::run(backup, "pg_basebackup", INITDB_TIMEOUT)?.check("pg_basebackup")?;
        // The copied postgresql.conf names the primary's socket directory: ours wins.
        append(
            &standby.data_dir().join("postgresql.conf"),
            &standby.settings(),
        )?;
        standby.start_server(None)?;
        Ok(standby)
    }

    /// Promotes a standby to primary and returns once it accepts writes.
    pub fn promote(&self) -> Result<()> {
        self.pg_ctl(&["promote", "-w"], STOP_TIMEOUT)?
            .check("pg_ctl promote")
            .map(drop)
    }

    /// The TCP port (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The TCP address the server listens on.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The directory holding the unix socket `.s.PGSQL.<port>`.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The data directory (PGDATA).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Connection parameters for `user` over TCP, database `postgres`.
    pub fn params(&self, user: &str) -> ConnParams {
        ConnParams::tcp(self.port, user)
    }

    /// Connection parameters for the superuser over the unix socket, with its password
    /// unless the socket trusts it.
    pub fn superuser_params(&self) -> ConnParams {
        let mut params = ConnParams::tcp(self.port, SUPERUSER);
        params.host = self.socket_dir().display().to_string();
        if !self.options.socket_trust {
            params.password = Some(self.options.superuser_password.clone());
        }
        params
    }

    /// The live postmaster and its children (empty when stopped).
    pub fn pids(&self) -> Vec<u32> {
        match self.postmaster {
            Some(pid) if process::alive(pid) => {
                let mut pids = vec![pid];
                pids.extend(process::children(pid));
                pids
            }
            Some(_) | None => Vec::new(),
        }
    }

    /// Creates login role `name` (superuser-free) with `password` stored for `method`, and
    /// lets it in with `method` over TCP and the socket. An empty password stores none.
    pub fn add_user(&mut self, name: &str, password: &str, method: AuthMethod) -> Result<()> {
        self.psql(
            "postgres",
            SUPERUSER,
            &format!("CREATE ROLE {} LOGIN", quote_ident(name)),
        )?;
        if !password.is_empty() {
            self.set_password(name, password, method)?;
        }
        self.users.push((name.to_string(), method));
        self.write_hba()?;
        self.reload()
    }

    /// Sets `user`'s password, stored as `method` needs it (md5 hash or SCRAM verifier).
    pub fn set_password(&self, user: &str, password: &str, method: AuthMethod) -> Result<()> {
        let sql = format!(
            "SET password_encryption = '{}'; ALTER ROLE {} PASSWORD {}",
            method.password_encryption(),
            quote_ident(user),
            quote_literal(password)
        );
        self.psql("postgres", SUPERUSER, &sql).map(drop)
    }

    /// Runs `sql` as `user` on database `db` over the unix socket with `psql -XAtq` and
    /// returns stdout without its final newline. A non-zero exit is an error.
    pub fn psql(&self, db: &str, user: &str, sql: &str) -> Result<String> {
        let mut params = self.superuser_params().dbname(db);
        params.user = user.to_string();
        let output = clients::psql(&params, sql, PSQL_TIMEOUT)?.check("psql")?;
        Ok(output.stdout.trim_end_matches('\n').to_string())
    }

    /// Re-reads postgresql.conf and pg_hba.conf, and returns once new connections see them.
    pub fn reload(&self) -> Result<()> {
        let before = self.psql("postgres", SUPERUSER, "SELECT pg_conf_load_time()")?;
        self.psql("postgres", SUPERUSER, "SELECT pg_reload_conf()")?;
        // The postmaster reloads asynchronously; a backend forked after the reload inherits
        // the new load time (and the new pg_hba rules with it).
        let check = format!(
            "SELECT pg_conf_load_time() > {}::timestamptz",
            quote_literal(&before)
        );
        let deadline = Instant::now() + RELOAD_TIMEOUT;
        while self.psql("postgres", SUPERUSER, &check)? != "t" {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    program: "pg_reload_conf".to_string(),
                    after: RELOAD_TIMEOUT,
                    output: self.log(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Stops the server (fast mode) and starts it again on the same port; data is kept.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        self.start_server(Some(self.port))
    }

    /// Stops the server in fast mode (clients disconnected, data flushed). Drop also works
    /// after this; a second stop does nothing.
    pub fn stop(&mut self) -> Result<()> {
        if self.postmaster.is_none() {
            return Ok(());
        }
        let pids = self.pids();
        let output = self.pg_ctl(&["stop", "-m", "fast"], STOP_TIMEOUT)?;
        if !process::wait_gone(&pids, STOP_TIMEOUT) {
            return Err(Error::Failed {
                program: "pg_ctl stop".to_string(),
                status: output.status,
                output: format!("processes still running: {pids:?}\n{}", output.combined()),
            });
        }
        self.postmaster = None;
        output.check("pg_ctl stop").map(drop)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// initdb, then the harness settings and pg_hba.conf.
    fn init(&mut self) -> Result<()> {
        let sock = self.socket_dir();
        fs::create_dir(&sock).map_err(|e| Error::io(format!("create {}", sock.display()), e))?;
        if let Some(run_as) = &self.run_as {
            run_as.chown(self.dir.path())?;
            run_as.chown(&sock)?;
        }
        let data = self.data_dir();
        let mut initdb = self.server_command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C", "-A", "trust"])
            .arg("--no-sync");
        command::run(initdb, "initdb", INITDB_TIMEOUT)?.check("initdb")?;
        append(&data.join("postgresql.conf"), &self.settings())?;
        self.install_tls()?;
        self.write_hba()
    }

    /// Copies the TLS files into the data directory, owned by the server user (PostgreSQL
    /// refuses a key others may read), and turns `ssl` on.
    fn install_tls(&self) -> Result<()> {
        let Some((cert, key)) = &self.options.tls else {
            return Ok(());
        };
        let data = self.data_dir();
        for (from, name, mode) in [(cert, "server.crt", 0o644), (key, "server.key", 0o600)] {
            let to = data.join(name);
            fs::copy(from, &to).map_err(|e| Error::io(format!("copy {}", from.display()), e))?;
            let perms = <fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(mode);
            fs::set_permissions(&to, perms)
                .map_err(|e| Error::io(format!("chmod {}", to.display()), e))?;
            if let Some(run_as) = &self.run_as {
                run_as.chown(&to)?;
            }
        }
        let conf = "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n";
        append(&data.join("postgresql.conf"), conf)
    }

    /// The harness defaults, then the caller's settings.
    fn settings(&self) -> String {
        let mut conf = String::from("\n# odyssey-test harness\n");
        let sock = self.socket_dir();
        let defaults = [
            ("listen_addresses", "'127.0.0.1'".to_string()),
            (
                "unix_socket_directories",
                quote_literal(&sock.display().to_string()),
            ),
            ("fsync", "off".to_string()),
            ("synchronous_commit", "off".to_string()),
            ("full_page_writes", "off".to_string()),
            ("shared_buffers", "16MB".to_string()),
            ("logging_collector", "off".to_string()),
        ];
        let custom = self
            .options
            .settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()));
        for (name, value) in defaults.into_iter().chain(custom) {
            let _ = writeln!(conf, "{name} = {value}");
        }
        conf
    }

    /// Rewrites pg_hba.conf: the superuser, then each added user, over socket and TCP.
    fn write_hba(&self) -> Result<()> {
        let superuser_local = if self.options.socket_trust {
            AuthMethod::Trust
        } else {
            self.options.superuser_auth
        };
        let mut hba = String::from("# odyssey-test harness: first match wins\n");
        let superuser_tcp = self.options.superuser_auth.hba_name();
        let host = if self.options.hostssl_only {
            "hostssl"
        } else {
            "host"
        };
        let _ = writeln!(hba, "local all {SUPERUSER} {}", superuser_local.hba_name());
        let _ = writeln!(hba, "{host} all {SUPERUSER} 127.0.0.1/32 {superuser_tcp}");
        // Standbys made by `standby_of` stream from the socket as the superuser.
        let _ = writeln!(
            hba,
            "local replication {SUPERUSER} {}",
            superuser_local.hba_name()
        );
        let _ = writeln!(
            hba,
            "host replication {SUPERUSER} 127.0.0.1/32 {superuser_tcp}"
        );
        for (user, method) in &self.users {
            let (user, method) = (quote_ident(user), method.hba_name());
            let _ = writeln!(hba, "local all {user} {method}");
            let _ = writeln!(hba, "{host} all {user} 127.0.0.1/32 {method}");
        }
        let path = self.data_dir().join("pg_hba.conf");
        fs::write(&path, hba).map_err(|e| Error::io(format!("write {}", path.display()), e))
    }

    /// pg_ctl start on `port`, or on fresh free ports while the port is taken.
    fn start_server(&mut self, port: Option<u16>) -> Result<()> {
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            self.port = match port {
                Some(port) => port,
                None => clients::free_port()?,
            };
            let log_start = self.log().len();
            let timeout = self.options.start_timeout;
            let secs = timeout.as_secs().max(1).to_string();
            let opts = format!("-p {}", self.port);
            // Even a failed start may leave a postmaster behind: Drop looks for it.
            let output = self.pg_ctl(&["start", "-w", "-t", &secs, "-o", &opts], timeout * 2);
            self.postmaster = self.read_postmaster_pid();
            let log = self.log().get(log_start..).unwrap_or_default().to_string();
            match output {
                Ok(output) if output.success() && self.postmaster.is_some() => return Ok(()),
                Ok(output) => last = format!("{}{log}", output.combined()),
                Err(e) => last = format!("{e}\n{log}"),
            }
            if !last.contains("Address already in use") {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(Error::Startup {
            server: format!("postgres on port {}", self.port),
            reason: "pg_ctl start failed".to_string(),
            log: last,
        })
    }

    fn pg_ctl(&self, args: &[&str], timeout: Duration) -> Result<command::Output> {
        let mut cmd = self.server_command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.log_path());
        cmd.args(args);
        command::run(cmd, "pg_ctl", timeout)
    }

    /// A server program run as the server user, from inside the temp dir.
    fn server_command(&self, program: &str) -> Command {
        let mut cmd = Command::new(pg_binary(program));
        cmd.current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST");
        if let Some(run_as) = &self.run_as {
            run_as.apply(&mut cmd);
        }
        cmd
    }

    fn read_postmaster_pid(&self) -> Option<u32> {
        let pid_file = fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// Immediate stop, then SIGKILL for whatever of the server is left.
    fn teardown(&mut self) {
        let mut pids = self.pids();
        if let Some(pid) = self.read_postmaster_pid() {
            pids.push(pid);
        }
        let _ = self.pg_ctl(&["stop", "-m", "immediate"], STOP_TIMEOUT);
        pids.extend(process::matching_cmdline(
            &self.data_dir().display().to_string(),
        ));
        if !process::wait_gone(&pids, STOP_TIMEOUT) {
            process::kill_all(&pids, STOP_TIMEOUT);
        }
        self.postmaster = None;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// `name` as an SQL (and pg_hba.conf) double-quoted identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL single-quoted literal.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| Error::io(format!("append to {}", path.display()), e))
}
