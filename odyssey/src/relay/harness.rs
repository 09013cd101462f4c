//! The relay driven as a session would drive it, with byte streams for the client and the
//! server and no sockets: for the relay's unit tests and its fuzz target (feature `harness`).
//! Besides doing the session's part (attach when asked, release when allowed), [`Pair`]
//! checks the relay's promises from the outside: the server receives a well-framed stream,
//! and a server is never released inside a transaction, with a request unanswered, or inside
//! an extended-protocol sequence.

use kiwi::backend::TransactionStatus;
use kiwi::frontend::tag as fe;
use kiwi::header::{HEADER_LEN, Header};
use kiwi::var::Vars;

use super::scan::{answered_by_ready, opens_sequence};
use super::{Attached, ClientStep, MAX_MESSAGE, Relay, Reply, Settings, Violation};
use crate::config::PoolMode;
use crate::id::ClientId;
use crate::server::{Address, ServerInfo};

/// A client, the relay and (when attached) a server, as the session would drive them.
pub struct Pair {
    /// The relay under test.
    pub relay: Relay,
    /// The attached server's identity, parameters and statements.
    pub info: ServerInfo,
    /// The attached server's transaction status.
    pub tx: TransactionStatus,
    /// The client's parameters.
    pub vars: Vars,
    /// Whether a server is attached.
    pub attached: bool,
    /// Everything sent to servers.
    pub to_server: Vec<u8>,
    /// Everything sent to the client.
    pub to_client: Vec<u8>,
    /// Servers given back.
    pub releases: u32,
    /// The client sent Terminate.
    pub terminated: bool,
    /// The outside view of the server's stream since it was attached.
    watch: Watch,
}

/// What the server was sent and answered since it was attached, as a reader of the two
/// streams would see it.
#[derive(Default)]
struct Watch {
    /// Where the next header starts in `Pair::to_server`.
    next_header: usize,
    /// Requests (Query, Sync, FunctionCall) sent.
    requests: u64,
    /// An extended-protocol message was sent after the last Sync or Query.
    open_sequence: bool,
    /// ReadyForQuery messages the server sent.
    readies: u64,
    /// Body bytes of the server's current message still to come.
    server_need: usize,
}

/// Settings for a relay of `mode` (`prepared`: named statements are mapped).
pub fn settings(mode: PoolMode, prepared: bool) -> Settings {
    Settings {
        parse_queries: true,
        mode,
        virtual_transaction: true,
        prepared_statements: prepared,
        prepared_max: 4,
        client: ClientId::new(),
        registry: Default::default(),
        show_id: true,
        pin_on_listen: false,
        drop_on_cached_plan_error: true,
        target_session_attrs: None,
    }
}

impl Pair {
    /// A client just logged in, with no server.
    pub fn new(mode: PoolMode, prepared: bool) -> Pair {
        Pair {
            relay: Relay::new(settings(mode, prepared)),
            info: ServerInfo::new(Address::Unix("/nowhere".into())),
            tx: TransactionStatus::Idle,
            vars: Vars::new(),
            attached: false,
            to_server: Vec::new(),
            to_client: Vec::new(),
            releases: 0,
            terminated: false,
            watch: Watch::default(),
        }
    }

    /// Feeds client bytes until the relay waits; returns how many it left unread.
    pub fn client(&mut self, buf: &[u8]) -> Result<usize, Violation> {
        let mut pos = 0;
        loop {
            let server = self.attached.then_some(Attached {
                info: &mut self.info,
                tx: self.tx,
            });
            match self.relay.client(&buf[pos..], server)? {
                ClientStep::Wait => return Ok(buf.len() - pos),
                ClientStep::Terminate => {
                    self.terminated = true;
                    return Ok(buf.len() - pos);
                }
                ClientStep::NeedServer => {
                    assert!(!self.attached, "asked for a server while holding one");
                    self.attach();
                    continue;
                }
                ClientStep::Forward(n) => {
                    assert!(self.attached, "forwarded with no server");
                    assert!(n > 0, "forwarded nothing");
                    self.send(&buf[pos..pos + n]);
                    pos += n;
                }
                ClientStep::Rewrite {
                    used,
                    server,
                    client,
                } => {
                    assert!(self.attached || server.is_empty(), "rewrote for no server");
                    assert!(
                        used > 0 || !server.is_empty() || !client.is_empty(),
                        "a rewrite that does nothing"
                    );
                    self.send(&server);
                    self.to_client.extend(client);
                    pos += used;
                }
                ClientStep::Listen {
                    used,
                    op,
                    status,
                    prefix,
                } => {
                    // As the session answers it when the listener agrees.
                    assert!(used > 0, "a LISTEN of no bytes");
                    self.to_client.extend(prefix);
                    kiwi::backend::CommandComplete {
                        tag: op.tag().as_bytes(),
                    }
                    .encode(&mut self.to_client);
                    kiwi::backend::ReadyForQuery { status }.encode(&mut self.to_client);
                    pos += used;
                }
            }
            self.release_if_allowed(pos == buf.len());
        }
    }

    /// Feeds server bytes until the relay waits; returns how many it left unread. A server
    /// that breaks the framing ends the pair's server side (`Err`), as it ends a session.
    pub fn server(&mut self, buf: &[u8]) -> Result<usize, super::scan::BadFrame> {
        let mut pos = 0;
        while self.attached && pos < buf.len() {
            let step =
                self.relay
                    .server(&buf[pos..], &mut self.info, &mut self.tx, &mut self.vars)?;
            if step.used == 0 {
                break;
            }
            self.watch.count_readies(&buf[pos..pos + step.used]);
            match step.reply {
                Reply::Same => self.to_client.extend_from_slice(&buf[pos..pos + step.used]),
                Reply::Rewritten(b) => self.to_client.extend(b),
            }
            pos += step.used;
            self.release_if_allowed(true);
        }
        Ok(buf.len() - pos)
    }

    /// What the session does when the relay asks for a server: attach, deploy (the deferred
    /// BEGIN opens the transaction).
    fn attach(&mut self) {
        self.attached = true;
        self.tx = TransactionStatus::Idle;
        if self.relay.deferred_begin() {
            self.tx = TransactionStatus::InTransaction;
            self.relay.begin_sent();
        }
        self.relay.server_attached();
        self.watch = Watch {
            next_header: self.to_server.len(),
            ..Watch::default()
        };
    }

    /// Bytes to the server: every header in them must be a message, and the watch follows
    /// requests and sequences.
    fn send(&mut self, bytes: &[u8]) {
        self.to_server.extend_from_slice(bytes);
        while let Some(rest) = self.to_server.get(self.watch.next_header..) {
            let header = match Header::parse(rest, MAX_MESSAGE) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => panic!("the server was sent a bad header: {e}"),
            };
            assert!(header.tag >= 0x20, "the server was sent tag {}", header.tag);
            if answered_by_ready(header.tag) {
                self.watch.requests += 1;
                self.watch.open_sequence = false;
            } else if opens_sequence(header.tag) {
                self.watch.open_sequence = true;
            }
            assert_ne!(
                header.tag,
                fe::TERMINATE,
                "a client's Terminate reached a server"
            );
            self.watch.next_header += header.frame_len();
        }
    }

    fn release_if_allowed(&mut self, client_drained: bool) {
        if !(self.attached && client_drained && self.relay.may_release(self.tx)) {
            return;
        }
        assert_eq!(
            self.tx,
            TransactionStatus::Idle,
            "released inside a transaction"
        );
        assert_eq!(
            self.watch.next_header,
            self.to_server.len(),
            "released in the middle of a message to the server"
        );
        assert_eq!(
            self.watch.server_need, 0,
            "released in the middle of a message from the server"
        );
        assert!(
            !self.watch.open_sequence,
            "released inside an extended-protocol sequence"
        );
        assert!(
            self.watch.readies >= self.watch.requests,
            "released with {} of {} requests answered",
            self.watch.readies,
            self.watch.requests
        );
        self.attached = false;
        self.relay.server_gone();
        self.releases += 1;
    }
}

impl Watch {
    /// Counts the ReadyForQuery messages whose header is in `buf`, the server's stream from
    /// where the last call stopped (the relay hands on whole headers only).
    fn count_readies(&mut self, buf: &[u8]) {
        let mut pos = 0;
        loop {
            let skip = self.server_need.min(buf.len() - pos);
            pos += skip;
            self.server_need -= skip;
            if self.server_need > 0 || pos == buf.len() {
                return;
            }
            let Ok(Some(header)) = Header::parse(&buf[pos..], u32::MAX) else {
                panic!("the relay handed on part of a header");
            };
            if header.tag == kiwi::backend::tag::READY_FOR_QUERY {
                self.readies += 1;
            }
            pos += HEADER_LEN;
            self.server_need = header.body_len();
        }
    }
}
