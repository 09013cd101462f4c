//! A loopback TCP relay in front of a server that records the first 8 bytes each connection
//! sends (an SSLRequest, a CancelRequest, a StartupMessage's length and version), so a test
//! can see how the pooler opens its server connections. Bytes pass through unchanged.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::error::{Error, Result};

/// The relay; dropping it stops accepting (relayed connections end with their peers).
#[derive(Debug)]
pub struct Tap {
    port: u16,
    openings: Arc<Mutex<Vec<[u8; 8]>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// The code of an SSLRequest (bytes 4..8 of its packet).
pub const SSL_REQUEST: u32 = 80_877_103;
/// The code of a CancelRequest.
pub const CANCEL_REQUEST: u32 = 80_877_102;

impl Tap {
    /// Relays connections on a free loopback port to `127.0.0.1:target`.
    pub fn start(target: u16) -> Result<Tap> {
        let io = |e| Error::io("tap listener", e);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        let port = listener.local_addr().map_err(io)?.port();
        let openings = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (openings.clone(), stop.clone());
        let acceptor = thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let seen = seen.clone();
                        thread::spawn(move || relay(client, target, &seen));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Tap {
            port,
            openings,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// Where to connect.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request code (bytes 4..8) of every connection so far, in order.
    pub fn codes(&self) -> Vec<u32> {
        let openings = self.openings.lock().unwrap_or_else(|p| p.into_inner());
        openings
            .iter()
            .map(|o| u32::from_be_bytes([o[4], o[5], o[6], o[7]]))
            .collect()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Records the opening of `client`, then copies both ways until either side closes.
fn relay(mut client: TcpStream, target: u16, seen: &Mutex<Vec<[u8; 8]>>) {
    let _ = client.set_nonblocking(false);
    let mut opening = [0u8; 8];
    let Ok(mut server) = TcpStream::connect((Ipv4Addr::LOCALHOST, target)) else {
        return;
    };
    if client.read_exact(&mut opening).is_err() || server.write_all(&opening).is_err() {
        return;
    }
    seen.lock().unwrap_or_else(|p| p.into_inner()).push(opening);
    let (Ok(mut c2), Ok(mut s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(Shutdown::Write);
    let _ = up.join();
}
