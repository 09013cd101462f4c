//! Replication clients (`replication=database` or a true `replication=`; spec §3): after
//! login they get a server of their own, opened with the same `replication` parameter, and
//! the two are piped byte for byte both ways (IDENTIFY_SYSTEM, START_REPLICATION, COPY both,
//! pg_basebackup) until either side closes. Such a server is never pooled nor reset.

use std::sync::Arc;
use std::time::Duration;

use machinarium::Deadline;

use super::admission::Admission;
use super::end::End;
use super::setup;
use crate::auth::Authenticated;
use crate::auth::backend::backend_credentials;
use crate::client::Client;
use crate::conn::{Conn, ConnError};
use crate::hosts::{self, Connector};
use crate::instance::Instance;
use crate::route::Route;
use crate::{backend, od_info};

/// What a `replication` startup parameter asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// An ordinary session (absent, or a false value).
    No,
    /// Physical replication (a true value).
    Physical,
    /// Logical replication (`database`).
    Logical,
}

/// Reads the parameter as PostgreSQL does; `None` for a value it would refuse.
pub fn parse(value: Option<&str>) -> Option<Replication> {
    let Some(v) = value else {
        return Some(Replication::No);
    };
    Some(match v.to_ascii_lowercase().as_str() {
        "database" => Replication::Logical,
        "true" | "on" | "yes" | "1" | "t" | "y" => Replication::Physical,
        "false" | "off" | "no" | "0" | "f" | "n" => Replication::No,
        _ => return None,
    })
}

/// How long a quiet replication pipe waits before looking at the instance (shutdown, kill).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Opens the client's own server and pipes until one side is done; the end to report.
pub fn serve(
    inst: &Arc<Instance>,
    client: &mut Client,
    route: &Arc<Route>,
    (value, auth): (&str, &Authenticated),
    admission: &mut Admission,
) -> End {
    let credentials = || backend_credentials(route.rule(), &client.user, Some(auth));
    let via = Connector {
        credentials: &credentials,
        resolver: &inst.resolver,
        logger: &inst.logger,
        client: Some(&client.info),
        deadline: Deadline::Never,
    };
    let extra = [("replication".to_string(), value.to_string())];
    let mut server = match hosts::open_with(route, &via, &extra) {
        Ok(s) => s,
        Err(e) => return End::Connect(e),
    };
    let slot = admission.register_cancel(client.protocol);
    slot.set(Some(server.info.cancel_target()));
    let greeting = setup::greeting(&server.info.status, &client.vars, slot.key());
    if let Err(e) = client
        .conn
        .write_all(&greeting, Deadline::after(CHECK_EVERY))
    {
        backend::close(server);
        return End::ClientGone(e);
    }
    od_info!(
        inst.logger,
        "replication",
        Some(&client.info),
        Some(server.info.id),
        "replication ({value}) connection to {}",
        server.info.address
    );
    let end = pipe(inst, &mut client.conn, &mut server.conn);
    backend::close(server);
    end
}

/// Copies whatever either side sends to the other.
fn pipe(inst: &Instance, client: &mut Conn, server: &mut Conn) -> End {
    loop {
        if inst.is_shutting_down() {
            return End::Shutdown(inst.drain());
        }
        let moved = match (forward(client, server), forward(server, client)) {
            (Err(e), _) => return End::ClientGone(e),
            (_, Err(e)) => return End::ServerGone(e),
            (Ok(a), Ok(b)) => a || b,
        };
        if moved {
            continue;
        }
        let keys = [client.park_key(), server.park_key()];
        match machinarium::net::wait_any(&keys, Deadline::after(CHECK_EVERY)) {
            Ok(_) | Err(machinarium::Error::TimedOut) => {}
            Err(e) => return End::ClientGone(ConnError::Io(std::io::Error::other(e.to_string()))),
        }
    }
}

/// How long a write may wait for a peer that reads nothing.
const STALL: Duration = Duration::from_secs(60);

/// Moves what `from` has to `to`; whether anything moved. `Closed` ends the pipe.
fn forward(from: &mut Conn, to: &mut Conn) -> Result<bool, ConnError> {
    let read = from.try_fill()?;
    let bytes = from.buffered().len();
    if bytes == 0 {
        return Ok(read);
    }
    to.write_all(from.buffered(), Deadline::after(STALL))?;
    from.consume(bytes);
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_values() {
        assert_eq!(parse(None), Some(Replication::No));
        assert_eq!(parse(Some("database")), Some(Replication::Logical));
        assert_eq!(parse(Some("true")), Some(Replication::Physical));
        assert_eq!(parse(Some("ON")), Some(Replication::Physical));
        assert_eq!(parse(Some("off")), Some(Replication::No));
        assert_eq!(parse(Some("sometimes")), None);
    }
}
