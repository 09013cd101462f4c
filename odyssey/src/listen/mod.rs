//! LISTEN/NOTIFY in transaction and statement pools. A client's LISTEN never reaches a pooled
//! server: the route keeps one listener connection of its own (see `listener`) that LISTENs
//! to every channel some client of the route listens to, and hands each notification to
//! those clients' mailboxes. A client reads its mailbox when it is idle, as PostgreSQL
//! delivers: between transactions. The pooled servers stay free of LISTEN, so they are shared
//! as before and the next client inherits nothing.

pub mod listener;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kiwi::backend::NotificationResponse;
use machinarium::net::{BellRinger, StreamWaker};
use machinarium::{Receiver, Sender};

use crate::id::ClientId;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenOp {
    /// `LISTEN channel`.
    Listen(String),
    /// `UNLISTEN channel`.
    Unlisten(String),
    /// `UNLISTEN *`.
    UnlistenAll,
}

impl ListenOp {
    /// The command tag PostgreSQL answers it with.
    pub fn tag(&self) -> &'static str {
        match self {
            ListenOp::Listen(_) => "LISTEN",
            ListenOp::Unlisten(_) | ListenOp::UnlistenAll => "UNLISTEN",
        }
    }
}

/// The most servers whose last client the hub remembers.
const SENDERS_MAX: usize = 4096;

/// How long a client's LISTEN waits for the listener connection to confirm it.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// The most notifications a client's mailbox keeps (a client in a long transaction, or one
/// that does not read): later ones are dropped and the client is told how many.
pub const MAILBOX_MAX: usize = 65_536;

/// A client's notifications, waiting for it to be idle, and how to wake it when it is parked.
pub struct Mailbox {
    queue: Mutex<Queue>,
    waker: StreamWaker,
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Vec<u8>>,
    /// Dropped since the client last read its mailbox.
    dropped: u64,
}

impl Mailbox {
    /// A mailbox whose arrivals wake the stream of `waker`.
    pub fn new(waker: StreamWaker) -> Mailbox {
        Mailbox {
            queue: Mutex::default(),
            waker,
        }
    }

    fn push(&self, message: Vec<u8>) {
        {
            let mut queue = lock(&self.queue);
            if queue.messages.len() >= MAILBOX_MAX {
                queue.dropped += 1;
                return;
            }
            queue.messages.push_back(message);
        }
        self.waker.wake();
    }

    /// Everything waiting, as the bytes to write to the client (empty: nothing), and how many
    /// notifications did not fit since the last time.
    pub fn take(&self) -> (Vec<u8>, u64) {
        let mut queue = lock(&self.queue);
        let mut out = Vec::with_capacity(queue.messages.iter().map(Vec::len).sum());
        for m in queue.messages.drain(..) {
            out.extend_from_slice(&m);
        }
        (out, std::mem::take(&mut queue.dropped))
    }
}

/// The listener's answer to a LISTEN: done, or why not.
pub type Confirmation = Result<(), String>;

/// What the listener connection is asked to do.
pub(crate) struct Request {
    /// `LISTEN` (true) or `UNLISTEN` (false) this channel.
    pub(crate) listen: bool,
    pub(crate) channel: String,
    /// Who waits for the outcome (a client's LISTEN).
    pub(crate) reply: Option<Sender<Confirmation>>,
}

/// The route's LISTEN state, shared by its sessions and its listener.
#[derive(Default)]
pub struct ListenHub {
    state: Mutex<HubState>,
    /// Some client listens (read on every server checkout, without the lock).
    active: AtomicBool,
}

#[derive(Default)]
struct HubState {
    /// Channel → its listening clients.
    channels: HashMap<String, HashMap<ClientId, Arc<Mailbox>>>,
    /// Channels the listener connection LISTENs to (confirmed).
    listening: std::collections::HashSet<String>,
    /// Requests for the listener, in order.
    requests: VecDeque<Request>,
    /// The listener: not running, started (no doorbell yet) or running.
    listener: Listener,
    /// Server pid → the pid the pooler told the client that last held that server: the
    /// sender a client sees in a notification.
    senders: HashMap<i32, i32>,
}

#[derive(Default)]
enum Listener {
    #[default]
    None,
    Starting,
    Running(BellRinger),
}

/// Whether the caller must start the listener coroutine.
#[must_use]
pub struct NeedsListener(pub bool);

impl ListenHub {
    /// Whether any client of the route listens.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Adds `client` to `channel`. When the listener does not LISTEN to it yet, a request is
    /// queued and its receiver returned: the client's LISTEN completes when it answers.
    pub fn listen(
        &self,
        client: ClientId,
        mailbox: &Arc<Mailbox>,
        channel: &str,
    ) -> (Option<Receiver<Confirmation>>, NeedsListener) {
        let mut s = lock(&self.state);
        s.channels
            .entry(channel.to_string())
            .or_default()
            .insert(client, mailbox.clone());
        self.active.store(true, Ordering::Relaxed);
        if s.listening.contains(channel) {
            return (None, NeedsListener(false));
        }
        let (tx, rx) = machinarium::channel();
        let start = s.request(true, channel, Some(tx));
        (Some(rx), start)
    }

    /// Removes `client` from `channel` (a channel left without clients is UNLISTENed).
    pub fn unlisten(&self, client: ClientId, channel: &str) {
        let mut s = lock(&self.state);
        s.leave(client, channel);
        self.active.store(!s.channels.is_empty(), Ordering::Relaxed);
    }

    /// Removes `client` from every channel.
    pub fn unlisten_all(&self, client: ClientId) {
        let mut s = lock(&self.state);
        let theirs: Vec<String> = s
            .channels
            .iter()
            .filter(|(_, c)| c.contains_key(&client))
            .map(|(ch, _)| ch.clone())
            .collect();
        for ch in theirs {
            s.leave(client, &ch);
        }
        self.active.store(!s.channels.is_empty(), Ordering::Relaxed);
    }

    /// A client whose LISTEN failed leaves the channel again, with no UNLISTEN sent.
    pub fn forget(&self, client: ClientId, channel: &str) {
        let mut s = lock(&self.state);
        if let Some(c) = s.channels.get_mut(channel) {
            c.remove(&client);
            if c.is_empty() {
                s.channels.remove(channel);
            }
        }
        self.active.store(!s.channels.is_empty(), Ordering::Relaxed);
    }

    /// Notes that the client told `client_pid` now holds the server `server_pid`.
    pub fn held(&self, server_pid: i32, client_pid: i32) {
        let mut s = lock(&self.state);
        if s.senders.len() >= SENDERS_MAX && !s.senders.contains_key(&server_pid) {
            // Servers come and go over a long LISTEN: forget the old ones (a notification
            // from a forgotten server shows PostgreSQL's pid).
            s.senders.clear();
        }
        s.senders.insert(server_pid, client_pid);
    }

    /// Hands a notification the listener received to the channel's clients.
    pub(crate) fn deliver(&self, n: &NotificationResponse<'_>) {
        let (pid, boxes) = {
            let s = lock(&self.state);
            let Some(clients) = std::str::from_utf8(n.channel)
                .ok()
                .and_then(|ch| s.channels.get(ch))
            else {
                return;
            };
            let pid = s.senders.get(&n.pid).copied().unwrap_or(n.pid);
            (pid, clients.values().cloned().collect::<Vec<_>>())
        };
        let mut message = Vec::new();
        NotificationResponse { pid, ..n.clone() }.encode(&mut message);
        for mailbox in boxes {
            mailbox.push(message.clone());
        }
    }

    /// The listener took the next request (None: none left).
    pub(crate) fn next_request(&self) -> Option<Request> {
        lock(&self.state).requests.pop_front()
    }

    /// The listener carried out `listen`/`UNLISTEN` of `channel`.
    pub(crate) fn done(&self, listen: bool, channel: &str) {
        let mut s = lock(&self.state);
        if listen {
            s.listening.insert(channel.to_string());
        } else {
            s.listening.remove(channel);
        }
    }

    /// The listener runs and rings `bell` for new requests.
    pub(crate) fn running(&self, bell: BellRinger) {
        lock(&self.state).listener = Listener::Running(bell);
    }

    /// The listener has a new connection: every channel with clients is LISTENed again
    /// (requests first, ahead of what was queued).
    pub(crate) fn reconnected(&self) {
        let mut s = lock(&self.state);
        s.listening.clear();
        let channels: Vec<String> = s.channels.keys().cloned().collect();
        for ch in channels {
            s.requests.push_front(Request {
                listen: true,
                channel: ch,
                reply: None,
            });
        }
    }

    /// Fails every waiting LISTEN with `why` (the listener cannot connect) and drops the
    /// requests: a new connection LISTENs to what has clients then (`reconnected`).
    pub(crate) fn fail_waiting(&self, why: &str) {
        let requests = std::mem::take(&mut lock(&self.state).requests);
        for r in requests {
            if let Some(reply) = r.reply {
                let _ = reply.send(Err(why.to_string()));
            }
        }
    }

    /// Nobody listens and nothing is asked.
    pub(crate) fn is_idle(&self) -> bool {
        let s = lock(&self.state);
        s.channels.is_empty() && s.requests.is_empty()
    }

    /// The listener ended for `why` while clients may still listen: waiting LISTENs fail, and
    /// the next LISTEN starts a new listener.
    pub(crate) fn stopped(&self, why: &str) {
        self.fail_waiting(why);
        let mut s = lock(&self.state);
        s.listener = Listener::None;
        s.listening.clear();
    }

    /// Ends the listener if nobody listens and nothing is asked: true when it must stop.
    pub(crate) fn stop_if_idle(&self) -> bool {
        let mut s = lock(&self.state);
        if s.channels.is_empty() && s.requests.is_empty() {
            s.listener = Listener::None;
            s.listening.clear();
            s.senders.clear();
            return true;
        }
        false
    }
}

impl HubState {
    /// Removes `client` from `channel`; UNLISTENs a channel left empty (an UNLISTEN never
    /// starts a listener: with none, nothing LISTENs).
    fn leave(&mut self, client: ClientId, channel: &str) {
        let Some(c) = self.channels.get_mut(channel) else {
            return;
        };
        c.remove(&client);
        if c.is_empty() {
            self.channels.remove(channel);
            let _ = self.request(false, channel, None);
        }
    }

    /// Queues a request and rings the listener; says whether it must be started.
    fn request(
        &mut self,
        listen: bool,
        channel: &str,
        reply: Option<Sender<Confirmation>>,
    ) -> NeedsListener {
        if !listen && matches!(self.listener, Listener::None) {
            // No listener connection, so nothing LISTENs.
            return NeedsListener(false);
        }
        self.requests.push_back(Request {
            listen,
            channel: channel.to_string(),
            reply,
        });
        match &self.listener {
            Listener::Running(bell) => {
                bell.ring();
                NeedsListener(false)
            }
            Listener::Starting => NeedsListener(false),
            Listener::None => {
                self.listener = Listener::Starting;
                NeedsListener(true)
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
