//! Real PostgreSQL clients under deadlines: `psql`, `pgbench` and the Rust `postgres` crate,
//! all pointed by one [`ConnParams`].

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::command::{self, Output};
use crate::error::{Error, Result};

/// How long a client may take to connect (PGCONNECT_TIMEOUT, the Rust client's
/// connect_timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and as whom a client connects. `host` is an address, or a directory holding a unix
/// socket when it starts with `/` (the libpq rule).
#[derive(Debug, Clone)]
pub struct ConnParams {
    /// Address or socket directory.
    pub host: String,
    /// TCP port (also names the socket file `.s.PGSQL.<port>`).
    pub port: u16,
    /// Role to log in as.
    pub user: String,
    /// Password, if the role needs one.
    pub password: Option<String>,
    /// Database.
    pub dbname: String,
    /// More libpq settings as environment variables (`PGSSLMODE`, `PGSSLROOTCERT`, ...),
    /// set after the defaults so they win. The Rust client ignores them.
    pub libpq_env: Vec<(String, String)>,
}

impl ConnParams {
    /// Parameters for `user` on `127.0.0.1:port`, database `postgres`, no password.
    pub fn tcp(port: u16, user: &str) -> ConnParams {
        ConnParams {
            host: "127.0.0.1".to_string(),
            port,
            user: user.to_string(),
            password: None,
            dbname: "postgres".to_string(),
            libpq_env: Vec::new(),
        }
    }

    /// The same parameters with a libpq environment setting (`PGSSLMODE` = `require`).
    pub fn libpq(mut self, name: &str, value: &str) -> ConnParams {
        self.libpq_env.push((name.to_string(), value.to_string()));
        self
    }

    /// The same parameters with `password`.
    pub fn password(mut self, password: &str) -> ConnParams {
        self.password = Some(password.to_string());
        self
    }

    /// The same parameters with database `dbname`.
    pub fn dbname(mut self, dbname: &str) -> ConnParams {
        self.dbname = dbname.to_string();
        self
    }

    /// A libpq client command: connection in the environment (PGHOST, PGPORT, PGUSER,
    /// PGDATABASE, PGPASSWORD, PGCONNECT_TIMEOUT) and no file from the user's home.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(pg_binary(program));
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGDATABASE", &self.dbname)
            .env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT.as_secs().to_string())
            .env("PGSSLMODE", "disable")
            .env("PGPASSFILE", "/dev/null")
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS");
        match &self.password {
            Some(password) => cmd.env("PGPASSWORD", password),
            None => cmd.env_remove("PGPASSWORD"),
        };
        cmd.envs(self.libpq_env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// Runs `sql` through `psql -XAtq -v ON_ERROR_STOP=1 -c`, killed after `timeout`. The
/// output is returned whatever the exit status; see [`Output::check`].
pub fn psql(params: &ConnParams, sql: &str, timeout: Duration) -> Result<Output> {
    let mut cmd = params.command("psql");
    cmd.args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql]);
    command::run(cmd, "psql", timeout)
}

/// Runs `pgbench` with `args` (the connection comes from `params`), killed after `timeout`.
pub fn pgbench(params: &ConnParams, args: &[&str], timeout: Duration) -> Result<Output> {
    let mut cmd = params.command("pgbench");
    cmd.args(args);
    command::run(cmd, "pgbench", timeout)
}

/// The totals of a pgbench run, read from its report.
#[derive(Debug, Clone, PartialEq)]
pub struct PgbenchSummary {
    /// "number of transactions actually processed".
    pub processed: u64,
    /// "number of failed transactions" (0 when the line is absent, as before PostgreSQL 15).
    pub failed: u64,
    /// Transactions per second, without initial connection time.
    pub tps: f64,
}

impl PgbenchSummary {
    /// Parses pgbench's stdout; `None` if the report lines are missing.
    pub fn parse(stdout: &str) -> Option<PgbenchSummary> {
        let field = |prefix: &str| {
            stdout
                .lines()
                .find_map(|line| line.trim().strip_prefix(prefix))
                .and_then(|rest| rest.split_whitespace().next())
                .map(|word| word.split('/').next().unwrap_or(word).to_string())
        };
        Some(PgbenchSummary {
            processed: field("number of transactions actually processed:")?
                .parse()
                .ok()?,
            failed: match field("number of failed transactions:") {
                Some(failed) => failed.parse().ok()?,
                None => 0,
            },
            tps: field("tps =")?.parse().ok()?,
        })
    }
}

/// Connects the Rust client (no TLS) with [`CONNECT_TIMEOUT`]. The error keeps the server's
/// SQLSTATE: `err.code()` is `Some(&SqlState::INVALID_PASSWORD)` for a wrong password.
pub fn connect(params: &ConnParams) -> std::result::Result<postgres::Client, postgres::Error> {
    let mut config = postgres::Config::new();
    config
        .host(&params.host)
        .port(params.port)
        .user(&params.user)
        .dbname(&params.dbname)
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(password) = &params.password {
        config.password(password);
    }
    config.connect(postgres::NoTls)
}

/// `SELECT current_user` through a client logged in with `params`: the role the server
/// logged in as. Panics, with `context` (a pooler's log), when the login or query fails.
pub fn current_user(params: &ConnParams, context: &dyn Fn() -> String) -> String {
    let mut client = connect(params)
        .unwrap_or_else(|e| panic!("{} cannot log in: {e}\n{}", params.user, context()));
    client
        .query_one("SELECT current_user::text", &[])
        .unwrap_or_else(|e| panic!("SELECT current_user as {}: {e}", params.user))
        .get(0)
}

/// The SQLSTATE and message of a login that must fail (panics when it succeeds).
pub fn login_error(params: &ConnParams) -> (Option<postgres::error::SqlState>, String) {
    match connect(params) {
        Ok(_) => panic!(
            "{} logged in with password {:?}",
            params.user, params.password
        ),
        Err(e) => (
            e.code().cloned(),
            e.as_db_error()
                .map_or_else(|| e.to_string(), |db| db.message().to_string()),
        ),
    }
}

/// Runs `select pg_sleep(30)` on `client` and, `after` it started, sends a CancelRequest
/// through the client's cancel token (no TLS): the query's error, and how long it took to
/// end once the cancel was sent.
pub fn cancel_a_sleep(
    client: &mut postgres::Client,
    after: Duration,
) -> (postgres::Error, Duration) {
    let token = client.cancel_token();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(after);
        let sent = std::time::Instant::now();
        token.cancel_query(postgres::NoTls).map(|()| sent)
    });
    let err = client
        .simple_query("SELECT pg_sleep(30)")
        .expect_err("pg_sleep(30) was not cancelled");
    let done = std::time::Instant::now();
    let sent = canceller
        .join()
        .expect("canceller thread")
        .expect("send CancelRequest");
    (err, done.duration_since(sent))
}

/// A loopback TCP port that was free a moment ago (bound to port 0, then released). Another
/// process may take it before the caller binds it, so servers started on it retry.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::io("bind 127.0.0.1:0", e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("local_addr of 127.0.0.1:0", e))?;
    Ok(addr.port())
}

/// The PostgreSQL installation's binary directory: `$PG_BIN_DIR`, else the newest
/// `/usr/lib/postgresql/<major>/bin`, else `None` (use `$PATH`).
pub fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.is_dir().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}

/// `program` from [`pg_bin_dir`] when it is there, else the bare name for `$PATH`.
pub fn pg_binary(program: &str) -> PathBuf {
    pg_bin_dir()
        .map(|dir| dir.join(program))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(program))
}
