//! A TCP echo server on machinarium: one acceptor machine hands sockets round-robin to N
//! worker machines, which echo every byte back until the peer closes.
//!
//! ```sh
//! cargo run --release -p machinarium --example echo -- --listen 127.0.0.1:7000 --machines 2
//! ```
//! It serves until killed.

use std::net::SocketAddr;
use std::time::Duration;

use machinarium::net::{DetachedStream, ListenOptions, Listener};
use machinarium::{Deadline, MachineConfig, MachineHandle, machine_create};

struct Args {
    listen: SocketAddr,
    machines: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut listen: Option<SocketAddr> = None;
    let mut machines = 1usize;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let value = it.next().ok_or(format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--listen" => {
                listen = Some(
                    value
                        .parse()
                        .map_err(|e| format!("--listen {value}: {e}"))?,
                )
            }
            "--machines" => {
                machines = value
                    .parse()
                    .map_err(|e| format!("--machines {value}: {e}"))?
            }
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    Ok(Args {
        listen: listen.ok_or("--listen ADDR is required")?,
        machines: machines.max(1),
    })
}

fn echo(conn: DetachedStream) {
    let Ok(mut s) = conn.attach() else { return };
    let _ = s.set_nodelay(true);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match s.read(&mut buf, Deadline::NEVER) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n], Duration::from_secs(30)).is_err() {
                    return;
                }
            }
        }
    }
}

fn serve(listen: SocketAddr, workers: Vec<MachineHandle>) {
    let opts = ListenOptions {
        backlog: 4096,
        ..ListenOptions::default()
    };
    let listener = match Listener::bind(listen, &opts) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("echo: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!(
        "echo: listening on {listen} with {} worker machine(s)",
        workers.len()
    );
    let mut next = 0;
    loop {
        match listener.accept(Deadline::NEVER) {
            Ok((conn, _peer)) => {
                workers[next % workers.len()].spawn_detached(move || echo(conn));
                next += 1;
            }
            Err(e) => eprintln!("echo: accept: {e}"),
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("echo: {e}\nusage: echo --listen ADDR [--machines N]");
            std::process::exit(2);
        }
    };
    let workers: Vec<MachineHandle> = (0..args.machines)
        .map(|i| {
            machine_create(&format!("worker{i}"), MachineConfig::default(), || {
                // Workers live until the process ends; their coroutines come by spawn.
                let _ = machinarium::sleep(Duration::from_secs(u64::MAX / 4));
            })
            .expect("worker machine")
        })
        .collect();
    let listen = args.listen;
    let acceptor = machine_create("acceptor", MachineConfig::default(), move || {
        serve(listen, workers)
    })
    .expect("acceptor machine");
    let _ = acceptor.join();
}
