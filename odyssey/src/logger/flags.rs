//! The `log_*` switches a reload may flip, kept as bits in one atomic by the logger.

use crate::config::global::Logging;

/// The `log_*` switches a reload may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFlags {
    /// `log_debug`: debug lines.
    pub debug: bool,
    /// `log_config`: dump the config at start and the rules on reload.
    pub config: bool,
    /// `log_session`: connect, login, route and disconnect lines.
    pub session: bool,
    /// `log_query`: every query.
    pub query: bool,
    /// `log_stats`: periodic stats lines.
    pub stats: bool,
}

impl LogFlags {
    const DEBUG: u8 = 1;
    const CONFIG: u8 = 2;
    const SESSION: u8 = 4;
    const QUERY: u8 = 8;
    const STATS: u8 = 16;

    /// The switches of a config.
    pub fn from_config(cfg: &Logging) -> LogFlags {
        LogFlags {
            debug: cfg.debug,
            config: cfg.config,
            session: cfg.session,
            query: cfg.query,
            stats: cfg.stats,
        }
    }

    pub(super) fn bits(self) -> u8 {
        [
            (self.debug, Self::DEBUG),
            (self.config, Self::CONFIG),
            (self.session, Self::SESSION),
            (self.query, Self::QUERY),
            (self.stats, Self::STATS),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |bits, (_, bit)| bits | bit)
    }

    pub(super) fn from_bits(bits: u8) -> LogFlags {
        LogFlags {
            debug: bits & Self::DEBUG != 0,
            config: bits & Self::CONFIG != 0,
            session: bits & Self::SESSION != 0,
            query: bits & Self::QUERY != 0,
            stats: bits & Self::STATS != 0,
        }
    }
}

impl Default for LogFlags {
    /// The config defaults: session and stats lines on, the rest off.
    fn default() -> LogFlags {
        LogFlags {
            debug: false,
            config: false,
            session: true,
            query: false,
            stats: true,
        }
    }
}
