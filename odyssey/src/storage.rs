//! Where a storage's servers are: the addresses of each of its hosts, and their TLS.

use std::path::PathBuf;
use std::time::Duration;

use machinarium::BlockingPool;

use crate::backend::BackendError;
use crate::config::{Global, Storage};
use crate::server::Address;
use crate::tls::ServerTls;

/// The addresses of host `index` of the storage, to try in order: `unix://path`, every
/// address a host name resolves to (on the resolver pool), or an address, with the
/// endpoint's port or the storage's; with no host, the unix socket in `unix_socket_dir`.
pub fn addresses(
    resolver: &BlockingPool,
    storage: &Storage,
    global: &Global,
    index: usize,
) -> Result<Vec<Address>, BackendError> {
    let port = |p: Option<u16>| port_of(storage, p);
    let Some(ep) = storage.endpoints.get(index) else {
        let dir = global.unix_socket_dir.as_deref().unwrap_or("/tmp");
        return Ok(vec![Address::Unix(
            PathBuf::from(dir).join(format!(".s.PGSQL.{}", port(None))),
        )]);
    };
    if ep.unix {
        let path = PathBuf::from(&ep.host);
        // A directory names the socket the way libpq does.
        return Ok(vec![Address::Unix(if path.is_dir() {
            path.join(format!(".s.PGSQL.{}", port(ep.port)))
        } else {
            path
        })]);
    }
    let port = port(ep.port);
    if let Ok(ip) = ep.host.parse::<std::net::IpAddr>() {
        return Ok(vec![Address::Tcp((ip, port).into())]);
    }
    let addrs = resolver
        .resolve(&ep.host, port, Duration::from_secs(5))
        .map_err(|e| BackendError::Resolve {
            host: ep.host.clone(),
            error: Some(e),
        })?;
    if addrs.is_empty() {
        return Err(BackendError::Resolve {
            host: ep.host.clone(),
            error: None,
        });
    }
    Ok(addrs.into_iter().map(Address::Tcp).collect())
}

/// Host `index` as upstream names it to clients: `tcp://host:port` or `unix://path`, as the
/// storage's `host` writes it (the port is the storage's when the host has none).
pub fn endpoint_name(storage: &Storage, index: usize) -> String {
    let Some(ep) = storage.endpoints.get(index) else {
        return String::new();
    };
    if ep.unix {
        return format!("unix://{}", ep.host);
    }
    format!("tcp://{}:{}", ep.host, port_of(storage, ep.port))
}

/// A host's own port, else the storage's, else PostgreSQL's default (README: deliberate
/// differences).
fn port_of(storage: &Storage, own: Option<u16>) -> u16 {
    own.unwrap_or(if storage.port == 0 {
        5432
    } else {
        storage.port
    })
}

/// How the storage's servers on host `index` get TLS: `None` for `tls disable`. The name
/// checked under `verify_full` is that host's, as written.
pub fn tls(storage: &Storage, index: usize) -> Option<ServerTls<'_>> {
    let context = storage.tls.context.as_ref()?;
    Some(ServerTls {
        mode: storage.tls.mode,
        context,
        host: storage.endpoints.get(index).map_or("", |e| e.host.as_str()),
    })
}
