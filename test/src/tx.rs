//! Fixtures for the pooling-mode tests (`tests/tx_*.rs`): a cluster with an odyssey in front
//! of it in a given pool mode, raw-protocol shortcuts, and bounded polling of the server's
//! own view (`pg_stat_activity`).

use std::thread;
use std::time::{Duration, Instant};

use kiwi::backend::ErrorFields;

use crate::error::{Error, Result};
use crate::pooler::{LOG_FILE, PORT, Pooler};
use crate::postgres::{Cluster, ClusterOptions, SUPERUSER};
use crate::raw::{Message, RawConn};

/// How long a raw socket waits for one read or write.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(10);

/// One odyssey rule in front of one cluster. Fields are written into the config verbatim.
#[derive(Debug, Clone)]
pub struct TxPoolConfig {
    /// `session`, `transaction` or `statement`.
    pub mode: &'static str,
    /// `pool_size`.
    pub pool_size: u32,
    /// Extra lines inside `user default { }` (for timeouts).
    pub rule_extra: String,
}

impl TxPoolConfig {
    /// A pool in `mode` with `pool_size` servers and the brief's defaults.
    pub fn new(mode: &'static str, pool_size: u32) -> TxPoolConfig {
        TxPoolConfig {
            mode,
            pool_size,
            rule_extra: String::new(),
        }
    }

    /// Adds one line inside the rule (`pool_idle_in_transaction_timeout 1`).
    pub fn rule(mut self, line: &str) -> TxPoolConfig {
        self.rule_extra.push_str("\t\t");
        self.rule_extra.push_str(line);
        self.rule_extra.push('\n');
        self
    }

    /// The odyssey.conf template for a cluster on `cluster_port`.
    pub fn template(&self, cluster_port: u16) -> String {
        format!(
            "daemonize no\n\
             log_format \"%p %t %l [%i %s] (%c) %m\\n\"\n\
             log_file \"{LOG_FILE}\"\n\
             log_session yes\n\
             workers 2\n\
             listen {{\n\thost \"127.0.0.1\"\n\tport {PORT}\n}}\n\
             storage \"pg\" {{\n\ttype \"remote\"\n\thost \"127.0.0.1\"\n\tport {cluster_port}\n}}\n\
             database default {{\n\tuser default {{\n\
             \t\tauthentication \"none\"\n\
             \t\tstorage \"pg\"\n\
             \t\tpool \"{mode}\"\n\
             \t\tpool_size {size}\n\
             \t\tpool_timeout 10000\n\
             \t\tpool_discard no\n\
             \t\tpool_rollback yes\n\
             \t\tpool_cancel yes\n\
             {extra}\t}}\n}}\n",
            mode = self.mode,
            size = self.pool_size,
            extra = self.rule_extra,
        )
    }
}

/// A cluster (max_connections 50) and an odyssey in front of it; dropped pooler first.
pub struct TxSetup {
    /// The pooler (declared first: dropped before the cluster it talks to).
    pub pooler: Pooler,
    /// The PostgreSQL behind it.
    pub cluster: Cluster,
}

impl TxSetup {
    /// Starts a cluster, runs `schema` on it as superuser (when not empty), then the pooler.
    pub fn start(config: &TxPoolConfig, schema: &str) -> Result<TxSetup> {
        let cluster = Cluster::start(ClusterOptions::default().setting("max_connections", "50"))?;
        if !schema.is_empty() {
            cluster.psql("postgres", SUPERUSER, schema)?;
        }
        let pooler = Pooler::start(&config.template(cluster.port()))?;
        Ok(TxSetup { pooler, cluster })
    }

    /// The superuser through the pooler.
    pub fn params(&self) -> crate::ConnParams {
        crate::ConnParams::tcp(self.pooler.port(), SUPERUSER)
    }

    /// The Rust client through the pooler, as the superuser.
    pub fn connect(&self) -> Result<postgres::Client> {
        crate::connect(&self.params()).map_err(|e| Error::Protocol(format!("connect: {e}")))
    }

    /// A raw connection through the pooler, logged in and past its first ReadyForQuery.
    pub fn raw(&self) -> Result<RawConn> {
        raw_login(self.pooler.port())
    }

    /// `sql` on the cluster directly (superuser, socket): what PostgreSQL itself sees.
    pub fn backend(&self, sql: &str) -> Result<String> {
        self.cluster.psql("postgres", SUPERUSER, sql)
    }

    /// Polls `sql` on the cluster until it prints `want` or `timeout` passes; the last output.
    pub fn backend_until(&self, sql: &str, want: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.backend(sql)?;
            if got == want || Instant::now() >= deadline {
                return Ok(got);
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Logs in the superuser on `port` by hand (trust / `authentication "none"`).
pub fn raw_login(port: u16) -> Result<RawConn> {
    let mut conn = RawConn::connect(port, RAW_TIMEOUT)?;
    conn.startup(&[("user", SUPERUSER), ("database", "postgres")])?;
    conn.authenticate(SUPERUSER, "")?;
    let rest = conn.until_ready()?;
    match rest.last() {
        Some(m) if m.tag == b'Z' => Ok(conn),
        _ => Err(Error::Protocol(format!(
            "login ended without ReadyForQuery: {}",
            tags(&rest)
        ))),
    }
}

/// Sends one simple Query.
pub fn send_query(conn: &mut RawConn, sql: &str) -> Result<()> {
    let mut out = Vec::new();
    kiwi::frontend::Query {
        sql: sql.as_bytes(),
    }
    .encode(&mut out);
    conn.send(&out)
}

/// Sends one simple Query and reads up to its ReadyForQuery.
pub fn simple_query(conn: &mut RawConn, sql: &str) -> Result<Vec<Message>> {
    send_query(conn, sql)?;
    conn.until_ready()
}

/// Appends Parse (unnamed), Bind (unnamed, text params) and Execute for `sql`.
pub fn extended_query(out: &mut Vec<u8>, sql: &str, params: &[&str]) {
    kiwi::frontend::Parse {
        name: b"",
        query: sql.as_bytes(),
        param_types: Vec::new(),
    }
    .encode(out);
    kiwi::frontend::Bind {
        portal: b"",
        statement: b"",
        param_formats: Vec::new(),
        params: params.iter().map(|p| Some(p.as_bytes())).collect(),
        result_formats: Vec::new(),
    }
    .encode(out);
    kiwi::frontend::Execute {
        portal: b"",
        max_rows: 0,
    }
    .encode(out);
}

/// Appends a bodiless message: `b'S'` Sync, `b'H'` Flush.
pub fn bodiless(out: &mut Vec<u8>, tag: u8) {
    out.extend_from_slice(&[tag, 0, 0, 0, 4]);
}

/// The tags of `messages` as text (`"12DCZ"`), for asserts that read well.
pub fn tags(messages: &[Message]) -> String {
    messages.iter().map(|m| m.tag as char).collect()
}

/// The first column of each DataRow in `messages`, as text (NULL as `"NULL"`).
pub fn first_values(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|m| match m.decode() {
            Ok(kiwi::backend::BackendMessage::DataRow(row)) => Some(
                row.values
                    .first()
                    .copied()
                    .flatten()
                    .map_or("NULL".to_string(), |v| {
                        String::from_utf8_lossy(v).into_owned()
                    }),
            ),
            _ => None,
        })
        .collect()
}

/// The transaction status byte of the last ReadyForQuery in `messages`.
pub fn ready_status(messages: &[Message]) -> Option<u8> {
    messages
        .iter()
        .rev()
        .find(|m| m.tag == b'Z')
        .and_then(|m| m.body.first().copied())
}

/// An ErrorResponse's fields as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorText {
    /// `S`, as sent (`FATAL`).
    pub severity: String,
    /// `C`.
    pub code: String,
    /// `M`.
    pub message: String,
    /// `D`, empty when absent.
    pub detail: String,
}

impl ErrorText {
    /// The fields of `m` when it is an ErrorResponse.
    pub fn of(m: &Message) -> Option<ErrorText> {
        if m.tag != b'E' {
            return None;
        }
        let fields = ErrorFields::decode(&m.body).ok()?;
        let text = |v: Option<&[u8]>| String::from_utf8_lossy(v.unwrap_or_default()).into_owned();
        Some(ErrorText {
            severity: text(fields.field(kiwi::backend::field::SEVERITY)),
            code: fields.code()?.as_str().to_string(),
            message: text(fields.message()),
            detail: text(fields.detail_text()),
        })
    }
}

/// Reads messages until the connection closes or a read fails (such as the socket timeout);
/// returns what came, and the error when it did not close. A reset counts as a close: odyssey
/// sets SO_LINGER {1, 0} on client sockets (unless `disable_nolinger`), so its close is a RST.
pub fn read_to_end(conn: &mut RawConn) -> (Vec<Message>, Option<Error>) {
    let mut got = Vec::new();
    loop {
        match conn.recv() {
            Ok(Some(m)) => got.push(m),
            Ok(None) => return (got, None),
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::ConnectionReset =>
            {
                return (got, None);
            }
            Err(e) => return (got, Some(e)),
        }
    }
}

/// Joins worker threads; the errors they returned (a panic is re-raised).
pub fn join_errors(
    workers: Vec<thread::JoinHandle<std::result::Result<(), String>>>,
) -> Vec<String> {
    workers
        .into_iter()
        .filter_map(|w| match w.join() {
            Ok(result) => result.err(),
            Err(panic) => std::panic::resume_unwind(panic),
        })
        .collect()
}
