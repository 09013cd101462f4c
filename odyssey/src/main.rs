//! The `odyssey` binary: command line, then the instance.
#![deny(unsafe_code)]

use std::process::ExitCode;

const USAGE: &str = "Usage: odyssey [OPTION...] /path/to/odyssey.conf";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("-V") | Some("--version") => {
            println!("odyssey {} (rust)", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some("-h") | Some("--help") | Some("-?") => {
            println!(
                "{USAGE}\n\n  -V, --version   Print program version\n  -h, --help      Give this help list"
            );
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("odyssey: the pooler is not implemented yet\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}
