//! The listening sockets: every `listen` section bound at start (or taken over from the
//! previous process of an online restart), each address on its own, a failure logged and the
//! rest kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use machinarium::net::{ListenOptions, Listener};

use crate::instance::Instance;
use crate::restart::Inherited;
use crate::{od_error, od_info};

/// Binds every listen section, as upstream: TCP on its host (`*` = all IPv4 and IPv6
/// addresses), or — a listen without `host` — the unix socket
/// `<unix_socket_dir>/.s.PGSQL.<port>`. An address that fails is logged (`bind to '<addr>'
/// failed: ...`) and the others go on; only when none is bound does startup fail.
/// Each listener is returned with its listen section's index and its hand-over key
/// (`unix:<path>` or `tcp:<addr>`); a socket handed over by the previous process under that key
/// is taken instead of binding.
pub fn bind_all(
    inst: &Instance,
    inherited: &Inherited,
) -> Result<Vec<(usize, String, Listener)>, String> {
    let snapshot = inst.config();
    let config = &snapshot.config;
    let mut out = Vec::new();
    let failed = |what: &dyn std::fmt::Display, e: &dyn std::fmt::Display| {
        od_error!(
            inst.logger,
            "server",
            None,
            None,
            "bind to '{what}' failed: {e}"
        );
    };
    for (i, l) in config.listen.iter().enumerate() {
        let opts = ListenOptions {
            backlog: l.backlog.min(i32::MAX as u32) as i32,
            reuseport: config.global.bindwith_reuseport,
            v6only: true,
            unix_mode: config.global.unix_socket_mode,
        };
        let bound = match (l.host.as_deref(), &config.global.unix_socket_dir) {
            (None, Some(dir)) => {
                let path = PathBuf::from(dir).join(format!(".s.PGSQL.{}", l.port));
                let key = format!("unix:{}", path.display());
                let listener = match inherited.take(&key) {
                    Some(fd) => Listener::adopt(fd, true),
                    None => Listener::bind_unix(&path, &opts),
                };
                listener
                    .map(|listener| vec![(key, listener)])
                    .unwrap_or_else(|e| {
                        failed(&path.display(), &e);
                        Vec::new()
                    })
            }
            (None, None) => Vec::new(),
            (Some(host), _) => match tcp_addresses(host, l.port) {
                Ok(addrs) => addrs
                    .into_iter()
                    .map(|addr| {
                        let key = format!("tcp:{addr}");
                        let listener = match inherited.take(&key) {
                            Some(fd) => Listener::adopt(fd, false),
                            None => Listener::bind(addr, &opts),
                        };
                        listener.map(|l| (key, l)).map_err(|e| (addr, e))
                    })
                    .filter_map(|r| match r {
                        Ok(pair) => Some(pair),
                        Err((addr, e)) => {
                            failed(&addr, &e);
                            None
                        }
                    })
                    .collect(),
                Err(e) => {
                    od_error!(inst.logger, "system", None, None, "{e}");
                    Vec::new()
                }
            },
        };
        for (key, listener) in bound {
            let what = key.split_once(':').map_or(key.as_str(), |(_, w)| w);
            od_info!(inst.logger, "system", None, None, "listening on {what}");
            out.push((i, key, listener));
        }
    }
    if out.is_empty() {
        return Err("failed to bind any listen address".into());
    }
    Ok(out)
}

fn tcp_addresses(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    match host {
        "*" => {
            let mut v = vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)];
            // IPv6 may be disabled on the machine; listen on it only when it works.
            if std::net::TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok() {
                v.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port));
            }
            Ok(v)
        }
        h => {
            let first = (h, port)
                .to_socket_addrs()
                .map_err(|e| format!("listen host {h}: {e}"))?
                .next();
            // Upstream binds only the first address a name resolves to.
            first
                .map(|a| vec![a])
                .ok_or_else(|| format!("listen host {h}: no addresses"))
        }
    }
}
