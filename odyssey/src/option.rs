//! The command line (upstream `option.c`): `odyssey [OPTION...] /path/to/odyssey.conf`.

use std::fmt;
use std::path::PathBuf;

use getopts::Options as Spec;

use crate::config::Config;

/// The one-line usage.
pub const USAGE: &str = "Usage: odyssey [OPTION...] /path/to/odyssey.conf";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Load the config and run (or only check it, with `--test`).
    Run(RunOptions),
    /// `-V`, `--version`.
    Version,
    /// `-h`, `--help`, `-?`.
    Help,
    /// `--usage`.
    Usage,
}

/// Flags of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// `--console`: do not fork (forces `daemonize no`).
    pub console: bool,
    /// `--log_to_stdout`: forces `log_to_stdout yes`.
    pub log_to_stdout: bool,
    /// `--silent`: debug, session, query and stats logging off (also per rule).
    pub silent: bool,
    /// `--verbose`: debug, session, query and stats logging on (also per rule).
    pub verbose: bool,
    /// `--test`: check the config and exit.
    pub test: bool,
    /// The config file.
    pub config: PathBuf,
}

/// Why the command line was refused; every case exits with 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// An option getopts does not know, or a malformed one.
    BadOption(String),
    /// Not exactly one config path.
    ConfigPath,
    /// `--silent` together with `--verbose`.
    SilentAndVerbose,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::BadOption(m) => write!(
                f,
                "odyssey: {m}\nTry `odyssey --help' for more information."
            ),
            CliError::ConfigPath => f.write_str(USAGE),
            CliError::SilentAndVerbose => {
                f.write_str("odyssey: --silent and --verbose cannot be used together")
            }
        }
    }
}

fn spec() -> Spec {
    let mut s = Spec::new();
    s.optflag("", "console", "Do not fork on startup");
    s.optflag("", "log_to_stdout", "Log to stdout");
    s.optflag("", "silent", "Do not log anything");
    s.optflag("", "test", "Configuration testing");
    s.optflag("", "verbose", "Log everything");
    s.optflag("V", "version", "Print program version");
    s.optflag("h", "help", "Give this help list");
    s.optflag("?", "", "Same as --help");
    s.optflag("", "usage", "Give a short usage message");
    s
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, CliError> {
    let m = spec()
        .parse(args)
        .map_err(|e| CliError::BadOption(e.to_string()))?;
    if m.opt_present("help") || m.opt_present("?") {
        return Ok(Command::Help);
    }
    if m.opt_present("usage") {
        return Ok(Command::Usage);
    }
    if m.opt_present("version") {
        return Ok(Command::Version);
    }
    let [config] = m.free.as_slice() else {
        return Err(CliError::ConfigPath);
    };
    let run = RunOptions {
        console: m.opt_present("console"),
        log_to_stdout: m.opt_present("log_to_stdout"),
        silent: m.opt_present("silent"),
        verbose: m.opt_present("verbose"),
        test: m.opt_present("test"),
        config: PathBuf::from(config),
    };
    if run.silent && run.verbose {
        return Err(CliError::SilentAndVerbose);
    }
    Ok(Command::Run(run))
}

/// The `--help` text.
pub fn help() -> String {
    spec().usage(USAGE)
}

/// The `-V` text: version, build type, and which optional parts this build has (all of them).
pub fn version() -> String {
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!(
        "odyssey {} (rust) {build} +pam +ldap +systemd +prom\ncompiled by rustc",
        env!("CARGO_PKG_VERSION")
    )
}

/// Applies the command-line overrides to a loaded config, as upstream does after loading.
pub fn apply(run: &RunOptions, mut config: Config) -> Config {
    let g = &mut config.global;
    if run.console {
        g.daemonize = false;
    }
    if run.log_to_stdout {
        g.log.to_stdout = true;
    }
    if run.silent || run.verbose {
        let on = run.verbose;
        (g.log.debug, g.log.session, g.log.query, g.log.stats) = (on, on, on, on);
        for rule in &mut config.rules {
            (rule.log_debug, rule.log_query) = (on, on);
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_and_path() {
        let Ok(Command::Run(run)) = parse(&args(&["--test", "--console", "x.conf"])) else {
            panic!("expected a run");
        };
        assert!(run.test && run.console && !run.silent);
        assert_eq!(run.config, PathBuf::from("x.conf"));
        assert_eq!(parse(&args(&["-V"])), Ok(Command::Version));
        assert_eq!(parse(&args(&["-?"])), Ok(Command::Help));
        assert_eq!(parse(&args(&["--usage"])), Ok(Command::Usage));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            parse(&args(&["--nope", "x"])),
            Err(CliError::BadOption(_))
        ));
        assert_eq!(parse(&args(&[])), Err(CliError::ConfigPath));
        assert_eq!(parse(&args(&["a", "b"])), Err(CliError::ConfigPath));
        assert_eq!(
            parse(&args(&["--silent", "--verbose", "a"])),
            Err(CliError::SilentAndVerbose)
        );
        let e = parse(&args(&["--nope"])).unwrap_err().to_string();
        assert!(e.ends_with("Try `odyssey --help' for more information."));
    }
}
