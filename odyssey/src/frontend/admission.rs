//! A client's place in the instance, from accept to close: counted in the instance's clients,
//! then in its route, then known by its cancel key. Made once per client; dropping it undoes
//! all three, whichever way the client's life ended.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kiwi::startup::ProtocolVersion;

use crate::client::{CancelSlot, Client};
use crate::clients::ClientEntry;
use crate::conn::Transport;
use crate::id::ClientId;
use crate::instance::Instance;
use crate::route::Route;
use crate::router::RouteTicket;

/// A client admitted into the instance.
pub struct Admission {
    inst: Arc<Instance>,
    /// Clients connected when this one was counted in (itself included).
    clients: u32,
    ticket: Option<RouteTicket>,
    /// The pid of its cancel key, once it has one (the registry is keyed by it).
    cancel_pid: Option<i32>,
    /// Its id, once on the client list.
    listed: Option<ClientId>,
}

impl Admission {
    /// Counts a new client in.
    pub fn new(inst: &Arc<Instance>) -> Admission {
        inst.clients_total.fetch_add(1, Ordering::Relaxed);
        let clients = inst.clients.fetch_add(1, Ordering::AcqRel) + 1;
        Admission {
            inst: inst.clone(),
            clients,
            ticket: None,
            cancel_pid: None,
            listed: None,
        }
    }

    /// Clients connected when this one came (itself included), for the global `client_max`.
    pub fn clients(&self) -> u32 {
        self.clients
    }

    /// The client was counted in on its route.
    pub fn routed(&mut self, ticket: RouteTicket) {
        self.ticket = Some(ticket);
    }

    /// The client's route, once routed.
    pub fn route(&self) -> Option<&Arc<Route>> {
        self.ticket.as_ref().map(RouteTicket::route)
    }

    /// Lists the logged-in client for the console (taken off the list when it goes).
    pub fn list(&mut self, client: &Client, route: Option<Arc<Route>>) -> Arc<ClientEntry> {
        let local = match client.conn.transport() {
            Transport::Plain(s) => s.local_addr(),
            Transport::Tls(_) => None,
        };
        let entry = Arc::new(ClientEntry::new(
            client.id,
            (client.user.clone(), client.database.clone()),
            (client.info.addr, local),
            client.conn.is_tls(),
            route,
        ));
        self.inst.client_list.add(entry.clone());
        self.listed = Some(client.id);
        entry
    }

    /// Gives the client a cancel key of its own, forgotten when the client goes.
    pub fn register_cancel(&mut self, protocol: ProtocolVersion) -> Arc<CancelSlot> {
        let slot = self.inst.cancels.register(protocol);
        if let Some(old) = self.cancel_pid.replace(slot.key().pid) {
            self.inst.cancels.unregister(old);
        }
        slot
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(pid) = self.cancel_pid.take() {
            self.inst.cancels.unregister(pid);
        }
        if let Some(id) = self.listed.take() {
            self.inst.client_list.remove(id);
        }
        self.ticket = None;
        self.inst.clients.fetch_sub(1, Ordering::AcqRel);
    }
}
