//! SQLSTATE codes: the five-character error codes a pooler sends or must recognise.
//!
//! Names follow PostgreSQL's `errcodes.txt` (`ERRCODE_` dropped).

use std::fmt;

/// A five-character SQLSTATE code.
///
/// Invariant: the five bytes are ASCII digits or upper-case letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SqlState([u8; 5]);

impl SqlState {
    /// Reads a code; `None` unless it is five ASCII digits or upper-case letters.
    pub fn from_bytes(code: &[u8]) -> Option<Self> {
        let code: [u8; 5] = code.try_into().ok()?;
        code.iter()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
            .then_some(Self(code))
    }

    /// The code as text, such as `"28P01"`.
    pub fn as_str(&self) -> &str {
        // Always ASCII by the invariant, so this never takes the fallback.
        std::str::from_utf8(&self.0).unwrap_or("XX000")
    }

    /// The two-character class (`"28"` for all authorization errors).
    pub fn class(&self) -> &str {
        self.as_str().get(..2).unwrap_or("XX")
    }
}

impl fmt::Display for SqlState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $name:ident = $code:literal;)*) => {
        $($(#[$doc])* pub const $name: SqlState = SqlState(*$code);)*
    };
}

codes! {
    /// 00000: no error.
    SUCCESSFUL_COMPLETION = b"00000";
    /// 08000: generic connection failure class.
    CONNECTION_EXCEPTION = b"08000";
    /// 08003: the connection does not exist.
    CONNECTION_DOES_NOT_EXIST = b"08003";
    /// 08004: the server rejected the connection.
    SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION = b"08004";
    /// 08006: the connection failed (server unreachable, read/write error, dropped).
    CONNECTION_FAILURE = b"08006";
    /// 08P01: the peer broke the protocol.
    PROTOCOL_VIOLATION = b"08P01";
    /// 0A000: unsupported feature (protocol version, channel binding, console command).
    FEATURE_NOT_SUPPORTED = b"0A000";
    /// 22023: a parameter has an invalid value.
    INVALID_PARAMETER_VALUE = b"22023";
    /// 25006: write in a read-only transaction.
    READ_ONLY_SQL_TRANSACTION = b"25006";
    /// 25P02: the transaction is aborted; commands ignored until its end.
    IN_FAILED_SQL_TRANSACTION = b"25P02";
    /// 25P03: idle in transaction for too long.
    IDLE_IN_TRANSACTION_SESSION_TIMEOUT = b"25P03";
    /// 26000: no such prepared statement.
    INVALID_SQL_STATEMENT_NAME = b"26000";
    /// 34000: no such portal.
    INVALID_CURSOR_NAME = b"34000";
    /// 28000: authorization failed (blocked user, SCRAM errors, TLS required).
    INVALID_AUTHORIZATION_SPECIFICATION = b"28000";
    /// 28P01: wrong password.
    INVALID_PASSWORD = b"28P01";
    /// 3D000: no such database (route not found).
    INVALID_CATALOG_NAME = b"3D000";
    /// 42501: not allowed.
    INSUFFICIENT_PRIVILEGE = b"42501";
    /// 42601: syntax error.
    SYNTAX_ERROR = b"42601";
    /// 42P05: prepared statement already exists.
    DUPLICATE_PREPARED_STATEMENT = b"42P05";
    /// 53200: out of memory.
    OUT_OF_MEMORY = b"53200";
    /// 53300: too many connections.
    TOO_MANY_CONNECTIONS = b"53300";
    /// 53400: a configured limit was exceeded.
    CONFIGURATION_LIMIT_EXCEEDED = b"53400";
    /// 57014: the query was cancelled.
    QUERY_CANCELED = b"57014";
    /// 57P01: the server is shutting down (administrator command).
    ADMIN_SHUTDOWN = b"57P01";
    /// 57P03: the server is starting up or shutting down; cannot connect now.
    CANNOT_CONNECT_NOW = b"57P03";
    /// 57P05: idle session timeout.
    IDLE_SESSION_TIMEOUT = b"57P05";
    /// 58000: system error outside PostgreSQL (routing failure).
    SYSTEM_ERROR = b"58000";
    /// XX000: internal error.
    INTERNAL_ERROR = b"XX000";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_show() {
        assert_eq!(SqlState::from_bytes(b"28P01"), Some(INVALID_PASSWORD));
        assert_eq!(SqlState::from_bytes(b"28p01"), None);
        assert_eq!(SqlState::from_bytes(b"2801"), None);
        assert_eq!(TOO_MANY_CONNECTIONS.to_string(), "53300");
        assert_eq!(INVALID_AUTHORIZATION_SPECIFICATION.class(), "28");
    }
}
