//! The `odyssey` binary: command line, config, then (in a later issue) the instance.
#![deny(unsafe_code)]

use std::process::ExitCode;

use odyssey::config;
use odyssey::option::{self, Command, RunOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match option::parse(&args) {
        Ok(Command::Version) => println!("{}", option::version()),
        Ok(Command::Help) => print!("{}", option::help()),
        Ok(Command::Usage) => println!("{}", option::USAGE),
        Ok(Command::Run(run)) => return run_config(&run),
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Loads the config; with `--test` only reports on it.
fn run_config(run: &RunOptions) -> ExitCode {
    let (config, warnings) = match config::load(&run.config) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{d}");
            }
            return ExitCode::FAILURE;
        }
    };
    for w in &warnings {
        eprintln!("{w}");
    }
    if run.test {
        println!("config is valid");
        return ExitCode::SUCCESS;
    }
    let _config = option::apply(run, config);
    eprintln!("odyssey: config loaded; the pooler itself is not implemented yet");
    ExitCode::FAILURE
}
