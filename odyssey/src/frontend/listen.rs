//! The session's part of LISTEN/NOTIFY in transaction and statement pools: carry out a
//! client's LISTEN/UNLISTEN with the route's listener (at once outside a transaction, at its
//! COMMIT inside one, never after a ROLLBACK), and write the client's notifications when it
//! is idle between transactions.

use std::collections::BTreeSet;
use std::sync::Arc;

use kiwi::backend::{CommandComplete, ReadyForQuery, TransactionStatus};
use kiwi::sqlstate;
use machinarium::Deadline;
use machinarium::net::StreamWaker;

use super::end::End;
use super::session::Session;
use crate::id::ClientId;
use crate::listen::{CONFIRM_TIMEOUT, ListenOp, MAILBOX_MAX, Mailbox, listener};
use crate::od_info;
use crate::reply::Reply;
use crate::route::Route;

/// A client that has listened: its mailbox, its channels, and what its open transaction
/// asked for. Dropped with the session, it leaves every channel.
pub struct Listening {
    route: Arc<Route>,
    client: ClientId,
    mailbox: Arc<Mailbox>,
    channels: BTreeSet<String>,
    pending: Vec<ListenOp>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.route.listen.unlisten_all(self.client);
    }
}

impl Session {
    /// Answers the client's LISTEN/UNLISTEN: carried out now outside a transaction, kept
    /// for the transaction's end inside one.
    pub(super) fn listen(
        &mut self,
        (used, op): (usize, ListenOp),
        status: TransactionStatus,
        mut out: Vec<u8>,
    ) -> Result<(), End> {
        match self.now_or_at_commit(&op, status) {
            Ok(()) => CommandComplete {
                tag: op.tag().as_bytes(),
            }
            .encode(&mut out),
            Err(why) => Reply::error(
                sqlstate::SYSTEM_ERROR,
                format!("{} failed: {why}", op.tag()),
            )
            .encode(self.client.id, self.client.show_id, &mut out),
        }
        ReadyForQuery { status }.encode(&mut out);
        self.write_client(&out)?;
        self.client.conn.consume(used);
        Ok(())
    }

    /// A server ran the client's LISTEN/UNLISTEN (sent in a way the relay could not answer
    /// itself): the route's listener takes it over, now or at the transaction's COMMIT.
    pub(super) fn listened_on_server(&mut self, op: ListenOp, status: TransactionStatus) {
        if let Err(why) = self.now_or_at_commit(&op, status) {
            od_info!(
                self.inst.logger,
                "listen",
                Some(&self.client.info),
                None,
                "{} failed: {why}",
                op.tag()
            );
        }
    }

    /// Carries `op` out now outside a transaction (`status` idle), else keeps it for the
    /// transaction's end.
    fn now_or_at_commit(&mut self, op: &ListenOp, status: TransactionStatus) -> Result<(), String> {
        if status == TransactionStatus::Idle {
            return self.carry_out(op);
        }
        // A COMMIT or ROLLBACK seen before belongs to an earlier transaction.
        let _ = self.relay.take_ended();
        self.listening()
            .map(|l| l.pending.push(op.clone()))
            .map_err(|e| e.to_string())
    }

    /// The client's transaction is over and its end not yet told: its LISTENs take effect
    /// now if it committed, so that whoever the client tells after its COMMIT finds it
    /// listening.
    pub(super) fn listen_at_transaction_end(&mut self) {
        let pending = self
            .listening
            .as_ref()
            .is_some_and(|l| !l.pending.is_empty());
        if !pending {
            return;
        }
        let committed = self.relay.take_ended() == Some("COMMIT");
        let ops = self
            .listening
            .as_mut()
            .map(|l| std::mem::take(&mut l.pending))
            .unwrap_or_default();
        for op in ops.iter().filter(|_| committed) {
            if let Err(why) = self.carry_out(op) {
                od_info!(
                    self.inst.logger,
                    "listen",
                    Some(&self.client.info),
                    None,
                    "{} at COMMIT failed: {why}",
                    op.tag()
                );
            }
        }
    }

    /// Writes the notifications waiting for the client, if it is idle between transactions.
    pub(super) fn deliver_notifications(&mut self) -> Result<(), End> {
        let Some(listening) = &self.listening else {
            return Ok(());
        };
        if !self.between_transactions() || self.relay.deferred_begin() {
            return Ok(());
        }
        let (mut bytes, dropped) = listening.mailbox.take();
        if dropped > 0 {
            let why = format!(
                "{dropped} notification(s) dropped: more than {MAILBOX_MAX} waited for this client"
            );
            let warning = Reply {
                severity: kiwi::backend::Severity::Warning,
                ..Reply::error(sqlstate::CONFIGURATION_LIMIT_EXCEEDED, why)
            };
            warning.encode(self.client.id, self.client.show_id, &mut bytes);
        }
        self.write_client(&bytes)
    }

    /// Registers or unregisters the client with the route's listener; a LISTEN returns once
    /// the listener connection LISTENs to the channel.
    fn carry_out(&mut self, op: &ListenOp) -> Result<(), String> {
        let (client, route) = (self.client.id, self.route.clone());
        let hub = &route.listen;
        let listening = self.listening().map_err(|e| e.to_string())?;
        let channel = match op {
            ListenOp::Listen(ch) if !listening.channels.contains(ch) => ch,
            ListenOp::Listen(_) => return Ok(()),
            ListenOp::Unlisten(ch) => {
                if listening.channels.remove(ch) {
                    hub.unlisten(client, ch);
                }
                return Ok(());
            }
            ListenOp::UnlistenAll => {
                listening.channels.clear();
                hub.unlisten_all(client);
                return Ok(());
            }
        };
        let mailbox = listening.mailbox.clone();
        let (confirm, start) = hub.listen(client, &mailbox, channel);
        if start.0 {
            let credentials = self.credentials();
            let services = listener::Services {
                logger: self.inst.logger.clone(),
                resolver: self.inst.resolver.clone(),
            };
            listener::start(services, route.clone(), credentials);
        }
        let confirmed = match confirm {
            None => Ok(()),
            Some(rx) => rx
                .recv(Deadline::after(CONFIRM_TIMEOUT))
                .unwrap_or_else(|e| Err(format!("no answer from the listener connection: {e}"))),
        };
        match confirmed {
            Ok(()) => {
                if let Some(l) = self.listening.as_mut() {
                    l.channels.insert(channel.clone());
                }
                Ok(())
            }
            Err(why) => {
                hub.forget(client, channel);
                Err(why)
            }
        }
    }

    /// The client's LISTEN state, made on its first LISTEN.
    fn listening(&mut self) -> Result<&mut Listening, End> {
        if self.listening.is_none() {
            let waker = StreamWaker::new(&self.client.conn.park_key()).ok_or(End::Cancelled)?;
            self.listening = Some(Box::new(Listening {
                route: self.route.clone(),
                client: self.client.id,
                mailbox: Arc::new(Mailbox::new(waker)),
                channels: BTreeSet::new(),
                pending: Vec::new(),
            }));
        }
        Ok(self.listening.as_mut().expect("made above"))
    }
}
