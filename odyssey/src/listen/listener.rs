//! A route's listener connection: a coroutine with a server connection of its own (outside
//! the pool), which LISTENs and UNLISTENs as the route's clients ask, and hands every
//! notification to the hub. It starts with the first LISTEN of the route and ends when no
//! client listens any more. A lost connection is opened again (once a second) and LISTENs
//! to every channel that still has clients; notifications sent meanwhile are lost, as they
//! would be for a client whose own connection broke.

use std::sync::Arc;
use std::time::Duration;

use kiwi::backend::{NotificationResponse, tag as be};
use kiwi::header::Frame;
use machinarium::net::{Bell, wait_any};
use machinarium::{BlockingPool, Deadline};

use crate::backend::auth::BackendCredentials;
use crate::backend::{self, BackendError};
use crate::conn::{ConnError, DEFAULT_MAX_MESSAGE};
use crate::hosts::{self, Connector};
use crate::logger::Logger;
use crate::route::Route;
use crate::server::Server;
use crate::{od_error, od_info};

/// How long one LISTEN/UNLISTEN may take on the listener connection.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before opening a lost connection again.
const RETRY: Duration = Duration::from_secs(1);

/// What the listener needs of the instance: where it logs, where host names are resolved.
#[derive(Clone)]
pub struct Services {
    /// The logger.
    pub logger: Logger,
    /// The resolver's blocking pool.
    pub resolver: BlockingPool,
}

/// Starts the route's listener on the current machine, logging in as `credentials`.
pub fn start(services: Services, route: Arc<Route>, credentials: BackendCredentials) {
    let hub_route = route.clone();
    let started = machinarium::try_spawn(move || run(&services, &route, &credentials));
    if let Err(e) = started {
        hub_route
            .listen
            .stopped(&format!("cannot start the listener: {e}"));
    }
}

fn run(inst: &Services, route: &Route, credentials: &BackendCredentials) {
    let hub = &route.listen;
    let (mut bell, ringer) = match machinarium::net::bell() {
        Ok(b) => b,
        Err(e) => {
            hub.stopped(&format!("cannot start the listener: {e}"));
            return;
        }
    };
    hub.running(ringer);
    let mut server: Option<Server> = None;
    loop {
        if let Err(e) = bell.clear() {
            hub.stopped(&format!("the listener's doorbell failed: {e}"));
            return;
        }
        if server.is_none() {
            match connect(inst, route, credentials) {
                Ok(s) => {
                    server = Some(s);
                    hub.reconnected();
                }
                Err(e) => {
                    let why = format!("listener connection failed: {e}");
                    od_error!(inst.logger, "listen", None, None, "{}: {why}", route.name());
                    hub.fail_waiting(&why);
                    if hub.stop_if_idle() {
                        return;
                    }
                    if machinarium::sleep(RETRY).is_err() {
                        return hub.stopped("the machine stops");
                    }
                    continue;
                }
            }
        }
        let Some(s) = server.as_mut() else { continue };
        if let Err(e) = serve(s, route, &mut bell) {
            if matches!(e, BackendError::Conn(ConnError::Cancelled)) {
                return hub.stopped("the machine stops");
            }
            let name = route.name();
            od_info!(
                inst.logger,
                "listen",
                None,
                None,
                "{name}: listener connection lost: {e}"
            );
            server = None;
            continue;
        }
        if hub.stop_if_idle() {
            if let Some(s) = server.take() {
                backend::close(s);
            }
            return;
        }
    }
}

/// Carries out the queued requests, then waits for a notification or a ring (and reads
/// what came). An error means the connection is lost.
fn serve(server: &mut Server, route: &Route, bell: &mut Bell) -> Result<(), BackendError> {
    let hub = &route.listen;
    while let Some(request) = hub.next_request() {
        let verb = if request.listen { "LISTEN" } else { "UNLISTEN" };
        let sql = format!("{verb} {}", quote_ident(&request.channel));
        match command(server, route, sql.as_bytes()) {
            Ok(()) => {
                hub.done(request.listen, &request.channel);
                if let Some(reply) = request.reply {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(BackendError::Server(raw)) => {
                if let Some(reply) = request.reply {
                    let _ = reply.send(Err(backend::error_text(&raw[5..])));
                }
            }
            Err(e) => {
                if let Some(reply) = request.reply {
                    let _ = reply.send(Err(e.to_string()));
                }
                return Err(e);
            }
        }
    }
    if hub.is_idle() {
        return Ok(());
    }
    let keys = [server.conn.park_key(), bell.park_key()];
    match wait_any(&keys, Deadline::Never) {
        Ok(0) => read_notifications(server, route),
        Ok(_) => Ok(()),
        Err(e) => Err(BackendError::from(ConnError::from(e))),
    }
}

/// Runs one LISTEN/UNLISTEN, handing on notifications that arrive meanwhile.
fn command(server: &mut Server, route: &Route, sql: &[u8]) -> Result<(), BackendError> {
    let deadline = Deadline::after(COMMAND_TIMEOUT);
    backend::query_seeing(server, sql, deadline, |tag, body| {
        if tag == be::NOTIFICATION_RESPONSE
            && let Ok(n) = NotificationResponse::decode(body)
        {
            route.listen.deliver(&n);
        }
    })
}

/// Reads what the server sent while idle: notifications go to the hub; an error (the server
/// was terminated) or the end of the stream loses the connection.
fn read_notifications(server: &mut Server, route: &Route) -> Result<(), BackendError> {
    server.conn.try_fill()?;
    loop {
        let buf = server.conn.buffered();
        let Some((frame, _)) = Frame::split(buf, DEFAULT_MAX_MESSAGE)? else {
            return Ok(());
        };
        let used = frame.bytes.len();
        match frame.tag() {
            be::NOTIFICATION_RESPONSE => {
                if let Ok(n) = NotificationResponse::decode(frame.body) {
                    route.listen.deliver(&n);
                }
            }
            be::ERROR_RESPONSE => {
                return Err(BackendError::Server(frame.bytes.to_vec()));
            }
            // ParameterStatus, NoticeResponse: nothing for anyone.
            _ => {}
        }
        server.conn.consume(used);
    }
}

/// A channel name as a quoted identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Opens the listener's connection, outside the route's pool.
fn connect(
    inst: &Services,
    route: &Route,
    credentials: &BackendCredentials,
) -> Result<Server, BackendError> {
    let credentials = || credentials.clone();
    let via = Connector {
        credentials: &credentials,
        resolver: &inst.resolver,
        logger: &inst.logger,
        client: None,
        deadline: Deadline::after(COMMAND_TIMEOUT),
    };
    hosts::open(route, &via)
}
