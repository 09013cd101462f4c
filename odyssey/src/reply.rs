//! Messages the pooler itself sends to a client: errors and notices with the client id prefix
//! (`odyssey: c…: `, or just `odyssey: ` with `client_show_id no`), as upstream does (spec §10).

use kiwi::backend::{ErrorFields, Severity};
use kiwi::sqlstate::{CONNECTION_FAILURE, SqlState};

use crate::id::ClientId;

/// An error or notice the pooler sends: severity, SQLSTATE, message, optional detail and hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// ERROR, FATAL, NOTICE...
    pub severity: Severity,
    /// The SQLSTATE.
    pub code: SqlState,
    /// The message, without the `odyssey: c…: ` prefix.
    pub message: String,
    /// DETAIL, if any.
    pub detail: Option<String>,
    /// HINT, if any.
    pub hint: Option<String>,
}

impl Reply {
    /// An ERROR.
    pub fn error(code: SqlState, message: impl Into<String>) -> Reply {
        Reply {
            severity: Severity::Error,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// A FATAL error (the session ends).
    pub fn fatal(code: SqlState, message: impl Into<String>) -> Reply {
        Reply {
            severity: Severity::Fatal,
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    /// The FATAL of a client that `KILL_CLIENT` ended.
    pub fn killed() -> Reply {
        Reply::fatal(CONNECTION_FAILURE, "Odyssey has dropped the connection")
            .detail("Connection was killed by Odyssey configuration reloading or console command")
            .hint("Try to reconnect")
    }

    /// The FATAL of a client let go by a draining process; an online restart's says the
    /// client may reconnect at once (a new process serves).
    pub fn shutting_down(drain: Drain) -> Reply {
        let reply = Reply::fatal(CONNECTION_FAILURE, "Odyssey is gracefully shutting down");
        match drain {
            Drain::Shutdown => reply.detail(SHUTDOWN_DETAIL),
            Drain::OnlineRestart => reply.detail(RESTART_DETAIL).hint("Try to reconnect"),
        }
    }

    /// Adds a DETAIL.
    pub fn detail(mut self, detail: impl Into<String>) -> Reply {
        self.detail = Some(detail.into());
        self
    }

    /// Adds a HINT.
    pub fn hint(mut self, hint: impl Into<String>) -> Reply {
        self.hint = Some(hint.into());
        self
    }

    /// The message as the client sees it.
    pub fn prefixed(&self, client: ClientId, show_id: bool) -> String {
        if show_id {
            format!("odyssey: {client}: {}", self.message)
        } else {
            format!("odyssey: {}", self.message)
        }
    }

    /// Appends the ErrorResponse (or NoticeResponse for NOTICE/WARNING/INFO severities).
    pub fn encode(&self, client: ClientId, show_id: bool, out: &mut Vec<u8>) {
        let text = self.prefixed(client, show_id);
        let mut fields = ErrorFields::new(self.severity, &self.code, &text);
        if let Some(d) = &self.detail {
            fields = fields.detail(d);
        }
        if let Some(h) = &self.hint {
            fields = fields.hint(h);
        }
        match self.severity {
            Severity::Error | Severity::Fatal | Severity::Panic => fields.encode_error(out),
            _ => fields.encode_notice(out),
        }
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.severity.as_str(),
            self.code,
            self.message
        )
    }
}

/// Why a graceful shutdown drops a client, as upstream words it.
const SHUTDOWN_DETAIL: &str =
    "The Odyssey instance is gracefully shutting down, and the connections are being drained";
/// Why the old process of an online restart drops a client, as upstream words it.
const RESTART_DETAIL: &str = "The Odyssey instance is performing online restart to update \
     configuration or binary, and the connections are being drained";

/// Why a process drains its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drain {
    /// SIGTERM or SIGINT: the pooler stops.
    Shutdown,
    /// A new process took over (online restart): it serves whoever reconnects.
    OnlineRestart,
}
