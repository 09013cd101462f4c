//! The `odyssey` binary: command line, config, then (in a later issue) the instance.
#![deny(unsafe_code)]
#![warn(clippy::too_many_lines)]

use std::process::ExitCode;

use std::sync::Arc;

use odyssey::config;
use odyssey::instance::Instance;
use odyssey::logger::Logger;
use odyssey::option::{self, Command, RunOptions};
use odyssey::restart::Inherited;
use odyssey::{od_error, system};

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
    let config = option::apply(run, config);
    match start(run, config) {
        0 => ExitCode::SUCCESS,
        code => ExitCode::from(code.clamp(1, 255) as u8),
    }
}

/// Daemonizes if asked, then runs the instance until it shuts down; returns the exit code.
fn start(run: &RunOptions, config: config::Config) -> i32 {
    // An online restart's new process: what the old one hands over, read before any thread.
    let inherited = Inherited::from_env();
    if config.global.daemonize
        && inherited.parent.is_none()
        && let Err(e) = machinarium::process::daemonize()
    {
        eprintln!("odyssey: cannot daemonize: {e}");
        return 1;
    }
    // `priority`: before any thread starts, so that every thread inherits it (spec §9.3: a
    // failure is fatal).
    if config.global.priority != 0
        && let Err(e) =
            machinarium::process::set_priority(config.global.priority.clamp(-20, 19) as i32)
    {
        eprintln!(
            "odyssey: cannot set priority {}: {e}",
            config.global.priority
        );
        return 1;
    }
    // Before any thread starts, so that every thread inherits the mask and signals reach the
    // system machine's signalfd only.
    if let Err(e) = machinarium::block_signals(system::SIGNALS) {
        eprintln!("odyssey: cannot block signals: {e}");
        return 1;
    }
    let logger = match Logger::new(&config.global.log) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("odyssey: {e}");
            return 1;
        }
    };
    let pid_file = config.global.pid_file.clone();
    if let Some(path) = &pid_file
        && let Err(e) = std::fs::write(path, format!("{}\n", std::process::id()))
    {
        od_error!(
            logger,
            "system",
            None,
            None,
            "cannot write pid file {path}: {e}"
        );
        return 1;
    }
    let code = match Instance::new(config, run.clone(), logger.clone()) {
        Ok(inst) => system::run(Arc::new(inst), inherited),
        Err(e) => {
            od_error!(logger, "system", None, None, "cannot start: {e}");
            1
        }
    };
    // After an online restart the file names the new process: leave it.
    let ours = format!("{}\n", std::process::id());
    if let Some(path) = &pid_file
        && std::fs::read_to_string(path).is_ok_and(|p| p == ours)
    {
        let _ = std::fs::remove_file(path);
    }
    logger.flush();
    code
}
