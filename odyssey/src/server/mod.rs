//! A server connection: the socket to PostgreSQL, its cancel key, the parameters it reported,
//! and the protocol state the relay tracks. Detached, it is `Send` and can go back to a pool
//! shared by every worker.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use kiwi::backend::TransactionStatus;
use kiwi::var::Vars;
use machinarium::net::{DetachedStream, DetachedTlsStream};

use crate::conn::{Conn, Transport};
use crate::id::ServerId;
use crate::tls::CancelTls;

pub mod registry;
pub mod statements;

/// Where a server lives (for connecting and for cancel requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// TCP.
    Tcp(SocketAddr),
    /// A unix socket path (`<dir>/.s.PGSQL.<port>`).
    Unix(PathBuf),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => write!(f, "{a}"),
            Address::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The key PostgreSQL gave in BackendKeyData: what a CancelRequest for this server carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CancelKey {
    /// Backend pid.
    pub pid: i32,
    /// Secret (4 bytes in protocol 3.0; up to 256 in 3.2). Shared: every checkout hands the
    /// client's cancel slot a copy of the key.
    pub secret: std::sync::Arc<[u8]>,
}

/// Where a CancelRequest for a server goes, with which key, and over TLS when the server's
/// connection is TLS.
#[derive(Debug, Clone)]
pub struct CancelTarget {
    /// The server's address.
    pub address: Address,
    /// Its key.
    pub key: CancelKey,
    /// Its connection's TLS.
    pub tls: Option<CancelTls>,
}

/// What stays the same while a server moves between clients and machines.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Our id for logs.
    pub id: ServerId,
    /// Where it lives.
    pub address: Address,
    /// Its cancel key.
    pub key: CancelKey,
    /// How the connection got TLS, when it has: its cancels go the same way.
    pub tls: Option<CancelTls>,
    /// How it logged in (`backend::auth::authenticate_server`'s answer), for logs.
    pub auth_method: &'static str,
    /// Tracked parameters as the server reports them now (deploy compares with these).
    pub vars: Vars,
    /// Tracked parameters as the server reported them at startup (what RESET returns to).
    pub defaults: Vars,
    /// Prepared statements of ours the server has (by key; see `frontend::pstmt`).
    pub prepared: statements::ServerStatements,
    /// Every ParameterStatus the server sent at startup, for the route's cache.
    pub status: Vec<(Vec<u8>, Vec<u8>)>,
    /// When it was connected.
    pub created: Instant,
    /// When it last went idle.
    pub idle_since: Instant,
    /// What the console shows of it, once it has logged in.
    pub entry: Option<Arc<ServerEntry>>,
    /// Which host of its storage it is on.
    pub endpoint: usize,
}

/// A server as the console sees it (`SHOW SERVERS`); the route keeps a weak list of these,
/// so an entry goes when its server does.
#[derive(Debug)]
pub struct ServerEntry {
    /// Its id.
    pub id: ServerId,
    /// Where it lives.
    pub address: Address,
    /// Our end of the connection.
    pub local: Option<SocketAddr>,
    /// Its socket (`SHOW FDS`).
    pub fd: i32,
    /// Which host of its storage it is on.
    pub endpoint: usize,
    /// Its backend pid.
    pub pid: i32,
    /// When it was connected.
    pub connected_at: SystemTime,
    active: AtomicBool,
    offline: AtomicBool,
    /// The statement keys it holds, as of the last time it went idle or its client parked.
    prepared: Mutex<Vec<u64>>,
}

impl ServerEntry {
    /// The entry of a server that has just logged in.
    pub fn new(info: &ServerInfo, local: Option<SocketAddr>, fd: i32) -> ServerEntry {
        ServerEntry {
            id: info.id,
            address: info.address.clone(),
            local,
            fd,
            endpoint: info.endpoint,
            pid: info.key.pid,
            connected_at: SystemTime::now(),
            active: AtomicBool::new(true),
            offline: AtomicBool::new(false),
            prepared: Mutex::default(),
        }
    }

    /// Whether a client holds it.
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// A client took it (true) or gave it back.
    pub fn set_active(&self, on: bool) {
        self.active.store(on, Ordering::Relaxed);
    }

    /// The statement keys it holds (`SHOW SERVER_PREP_STMTS`).
    pub fn prepared(&self) -> Vec<u64> {
        self.prepared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `DROP SERVERS` marked it: closed instead of going back to the pool.
    pub fn offline(&self) -> bool {
        self.offline.load(Ordering::Relaxed)
    }

    /// Marks it to be closed when next released (or now, when idle: see `router`).
    pub fn set_offline(&self) {
        self.offline.store(true, Ordering::Relaxed);
    }
}

impl ServerInfo {
    /// Tells the console's entry which statements the server holds, if that changed.
    pub fn publish_statements(&mut self) {
        if let (Some(entry), Some(keys)) = (&self.entry, self.prepared.take_changed()) {
            *entry.prepared.lock().unwrap_or_else(|p| p.into_inner()) = keys;
        }
    }

    /// Where and how a cancel for this server goes.
    pub fn cancel_target(&self) -> CancelTarget {
        CancelTarget {
            address: self.address.clone(),
            key: self.key.clone(),
            tls: self.tls.clone(),
        }
    }

    /// A server just connected at `address`, before its startup answers.
    pub fn new(address: Address) -> ServerInfo {
        let now = Instant::now();
        ServerInfo {
            id: ServerId::new(),
            address,
            key: CancelKey::default(),
            tls: None,
            auth_method: "trust",
            vars: Vars::new(),
            defaults: Vars::new(),
            prepared: Default::default(),
            status: Vec::new(),
            created: now,
            idle_since: now,
            entry: None,
            endpoint: 0,
        }
    }
}

/// An attached server connection (on this machine).
pub struct Server {
    /// Identity, key, parameters. Boxed: a server moves between its pool and a client's
    /// session at every transaction, and a session keeps room for one while idle.
    pub info: Box<ServerInfo>,
    /// The connection.
    pub conn: Conn,
    /// Transaction status from the last ReadyForQuery.
    pub tx: TransactionStatus,
}

/// A server connection not attached to any machine: what an idle pool holds.
pub struct DetachedServer {
    /// Identity, key, parameters.
    pub info: Box<ServerInfo>,
    stream: Detached,
}

/// The socket of a detached server, plain or with its TLS session.
enum Detached {
    Plain(DetachedStream),
    Tls(DetachedTlsStream),
}

impl Server {
    /// Lets go of the socket (and its TLS session, if any) so the server can go to any
    /// machine; it stays registered with this one, where taking it again is cheapest. When it
    /// cannot move (bytes still buffered, here or inside TLS) the connection is closed and the
    /// reason returned with its info.
    pub fn detach(self) -> Result<DetachedServer, (Box<ServerInfo>, &'static str)> {
        if self.conn.has_pending_input() {
            return Err((self.info, "unread bytes left from the server"));
        }
        let Server { info, conn, .. } = self;
        match conn.into_transport() {
            (Transport::Plain(stream), _) => match stream.detach() {
                Ok(stream) => Ok(DetachedServer {
                    info,
                    stream: Detached::Plain(stream),
                }),
                Err(_) => Err((info, "socket could not be detached")),
            },
            (Transport::Tls(tls), _) => Ok(DetachedServer {
                info,
                stream: Detached::Tls(tls.detach()),
            }),
        }
    }
}

impl DetachedServer {
    /// The machine its socket is still registered with (where attaching costs no syscall).
    pub fn home(&self) -> Option<machinarium::MachineId> {
        match &self.stream {
            Detached::Plain(s) => s.home_machine(),
            Detached::Tls(s) => s.home_machine(),
        }
    }

    /// Registers the socket with the current machine.
    pub fn attach(self) -> Result<Server, machinarium::Error> {
        let transport = match self.stream {
            Detached::Plain(stream) => Transport::Plain(stream.attach()?),
            Detached::Tls(tls) => Transport::Tls(tls.attach()?),
        };
        Ok(Server {
            info: self.info,
            conn: Conn::new(transport),
            tx: TransactionStatus::Idle,
        })
    }
}
