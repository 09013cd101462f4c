//! Where a storage's servers are: the endpoint to connect to, resolved to an address.

use std::path::PathBuf;
use std::time::Duration;

use machinarium::BlockingPool;

use crate::backend::BackendError;
use crate::config::{Global, Storage};
use crate::server::Address;
use crate::tls::ServerTls;

/// The address of the storage's first endpoint (multi-host choice comes with balancing):
/// `unix://path`, a host name (resolved on the resolver pool) or address with the endpoint's
/// port or the storage's, or — with no host — the unix socket in `unix_socket_dir`.
pub fn address(
    resolver: &BlockingPool,
    storage: &Storage,
    global: &Global,
) -> Result<Address, BackendError> {
    let port = |p: Option<u16>| {
        p.unwrap_or(if storage.port == 0 {
            5432
        } else {
            storage.port
        })
    };
    let Some(ep) = storage.endpoints.first() else {
        let dir = global.unix_socket_dir.as_deref().unwrap_or("/tmp");
        return Ok(Address::Unix(
            PathBuf::from(dir).join(format!(".s.PGSQL.{}", port(None))),
        ));
    };
    if ep.unix {
        let path = PathBuf::from(&ep.host);
        // A directory names the socket the way libpq does.
        return Ok(Address::Unix(if path.is_dir() {
            path.join(format!(".s.PGSQL.{}", port(ep.port)))
        } else {
            path
        }));
    }
    let port = port(ep.port);
    if let Ok(ip) = ep.host.parse::<std::net::IpAddr>() {
        return Ok(Address::Tcp((ip, port).into()));
    }
    let addrs = resolver
        .resolve(&ep.host, port, Duration::from_secs(5))
        .map_err(|e| BackendError::Resolve {
            host: ep.host.clone(),
            error: Some(e),
        })?;
    addrs
        .into_iter()
        .next()
        .map(Address::Tcp)
        .ok_or_else(|| BackendError::Resolve {
            host: ep.host.clone(),
            error: None,
        })
}

/// How the storage's servers get TLS: `None` for `tls disable`. The host checked under
/// `verify_full` is the first endpoint's, as written.
pub fn tls(storage: &Storage) -> Option<ServerTls<'_>> {
    let context = storage.tls.context.as_ref()?;
    Some(ServerTls {
        mode: storage.tls.mode,
        context,
        host: storage.endpoints.first().map_or("", |e| e.host.as_str()),
    })
}
