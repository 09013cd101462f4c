//! Log line rendering: the `log_format` template (text placeholders or JSON) applied to one
//! record. Pure: no clock, no I/O; the caller passes the time, pid and thread id in.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{ClientInfo, Level};
use crate::id::ServerId;

/// Longest text line, in bytes, including the final `\n`.
pub(crate) const LINE_MAX: usize = 1024;
/// Longest message (`%m`, JSON `message`), in bytes, before escaping.
pub(crate) const MESSAGE_MAX: usize = 1024;

/// Everything one line is made of.
pub(crate) struct Record<'a> {
    pub now: SystemTime,
    pub pid: u32,
    /// Thread number, printed as `0x…`.
    pub tid: u64,
    pub level: Level,
    pub context: &'a str,
    pub client: Option<&'a ClientInfo>,
    pub server: Option<ServerId>,
    /// Already cut to [`MESSAGE_MAX`].
    pub message: &'a str,
}

/// A compiled `log_format`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Format {
    /// Text template; format escapes are already resolved into the literals.
    Text(Vec<Piece>),
    /// One JSON object per line (the template contained `json`).
    Json,
}

/// One part of a text template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Literal(String),
    UnixTime,
    Time,
    Millis,
    Pid,
    Tid,
    ClientId,
    ServerId,
    User,
    Database,
    Context,
    Level,
    Message,
    MessageEscaped,
    ClientHost,
    ClientPort,
    StorageHost,
    ExternalId,
}

impl Format {
    /// Compiles a template as written in the config (`\n` still two characters).
    pub(crate) fn parse(template: &str) -> Format {
        if template.to_ascii_lowercase().contains("json") {
            return Format::Json;
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = template.chars();
        while let Some(ch) = chars.next() {
            match ch {
                '\\' => match chars.next() {
                    Some('n') => literal.push('\n'),
                    Some('t') => literal.push('\t'),
                    Some('r') => literal.push('\r'),
                    Some('\\') => literal.push('\\'),
                    Some(other) => {
                        literal.push('\\');
                        literal.push(other);
                    }
                    // A trailing lone backslash is dropped, as upstream does.
                    None => {}
                },
                '%' => {
                    let Some(code) = chars.next() else { break };
                    let piece = match code {
                        'n' => Piece::UnixTime,
                        't' => Piece::Time,
                        'e' => Piece::Millis,
                        'p' => Piece::Pid,
                        'T' => Piece::Tid,
                        'i' => Piece::ClientId,
                        's' => Piece::ServerId,
                        'u' => Piece::User,
                        'd' => Piece::Database,
                        'c' => Piece::Context,
                        'l' => Piece::Level,
                        'm' => Piece::Message,
                        'M' => Piece::MessageEscaped,
                        'h' => Piece::ClientHost,
                        'r' => Piece::ClientPort,
                        'H' => Piece::StorageHost,
                        'x' => Piece::ExternalId,
                        '%' => {
                            literal.push('%');
                            continue;
                        }
                        other => {
                            literal.push('%');
                            literal.push(other);
                            continue;
                        }
                    };
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Format::Text(pieces)
    }

    /// Whether empty messages are skipped (JSON mode does, as upstream).
    pub(crate) fn is_json(&self) -> bool {
        matches!(self, Format::Json)
    }

    /// The whole line, ending with `\n`. Text lines are at most [`LINE_MAX`] bytes; JSON lines
    /// stay whole (a cut object would not parse) and only the message is limited.
    pub(crate) fn render(&self, rec: &Record<'_>) -> String {
        match self {
            Format::Text(pieces) => render_text(pieces, rec),
            Format::Json => render_json(rec),
        }
    }
}

fn or_none<S: AsRef<str> + ?Sized>(value: Option<&S>) -> &str {
    value.map_or("none", AsRef::as_ref)
}

fn render_text(pieces: &[Piece], rec: &Record<'_>) -> String {
    let mut out = String::with_capacity(128 + rec.message.len());
    let client = rec.client;
    for piece in pieces {
        // Writing into a String cannot fail.
        let _ = match piece {
            Piece::Literal(text) => {
                out.push_str(text);
                Ok(())
            }
            Piece::UnixTime => write!(out, "{}", unix_seconds(rec.now)),
            Piece::Time => write_utc(&mut out, rec.now),
            Piece::Millis => write!(out, "{:03}", millis(rec.now)),
            Piece::Pid => write!(out, "{}", rec.pid),
            Piece::Tid => write!(out, "0x{:x}", rec.tid),
            Piece::ClientId => match client {
                Some(c) => write!(out, "{}", c.id),
                None => write!(out, "none"),
            },
            Piece::ServerId => match rec.server {
                Some(s) => write!(out, "{s}"),
                None => write!(out, "none"),
            },
            Piece::User => write!(out, "{}", or_none(client.and_then(|c| c.user.as_ref()))),
            Piece::Database => {
                write!(out, "{}", or_none(client.and_then(|c| c.database.as_ref())))
            }
            Piece::Context => write!(out, "{}", rec.context),
            Piece::Level => write!(out, "{}", rec.level.as_str()),
            Piece::Message => write!(out, "{}", rec.message),
            Piece::MessageEscaped => {
                push_tskv_escaped(&mut out, rec.message);
                Ok(())
            }
            Piece::ClientHost => match client.and_then(|c| c.addr) {
                Some(addr) => write!(out, "{}", addr.ip()),
                None => write!(out, "none"),
            },
            Piece::ClientPort => match client.and_then(|c| c.addr) {
                Some(addr) => write!(out, "{}", addr.port()),
                None => write!(out, "none"),
            },
            Piece::StorageHost => write!(
                out,
                "{}",
                or_none(client.and_then(|c| c.storage_host.as_ref()))
            ),
            Piece::ExternalId => write!(
                out,
                "{}",
                or_none(client.and_then(|c| c.external_id.as_ref()))
            ),
        };
    }
    finish_line(&mut out);
    out
}

/// Cuts to [`LINE_MAX`] and makes sure the line ends with exactly the `\n` it needs.
fn finish_line(out: &mut String) {
    let ends_with_newline = out.ends_with('\n');
    let room = if ends_with_newline {
        LINE_MAX
    } else {
        LINE_MAX - 1
    };
    if out.len() > room {
        truncate_on_char_boundary(out, LINE_MAX - 1);
        out.push('\n');
    } else if !ends_with_newline {
        out.push('\n');
    }
}

/// Shortens `s` to at most `max` bytes without splitting a character.
pub(crate) fn truncate_on_char_boundary(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
}

/// `%M`: the message as a tskv value.
fn push_tskv_escaped(out: &mut String, message: &str) {
    for ch in message.chars() {
        match ch {
            '\0' => out.push_str("\\0"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            other => out.push(other),
        }
    }
}

fn render_json(rec: &Record<'_>) -> String {
    let mut out = String::with_capacity(256 + rec.message.len());
    out.push('{');
    let mut time = String::with_capacity(20);
    let _ = write_utc(&mut time, rec.now);
    push_json_field(&mut out, "timestamp", &time, false);
    push_json_field(&mut out, "pid", &rec.pid.to_string(), true);
    push_json_field(&mut out, "tid", &format!("0x{:x}", rec.tid), true);
    push_json_field(&mut out, "level", rec.level.as_str(), true);
    push_json_field(&mut out, "context", rec.context, true);
    push_json_field(&mut out, "message", rec.message, true);
    if let Some(client) = rec.client {
        out.push_str(",\"client\":{");
        push_json_field(&mut out, "id", &client.id.to_string(), false);
        if let Some(addr) = client.addr {
            push_json_field(&mut out, "ip", &addr.ip().to_string(), true);
            push_json_field(&mut out, "port", &addr.port().to_string(), true);
        }
        let optional = [
            ("user", client.user.as_deref()),
            ("database", client.database.as_deref()),
            ("external_id", client.external_id.as_deref()),
            ("server_host", client.storage_host.as_deref()),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                push_json_field(&mut out, key, value, true);
            }
        }
        out.push('}');
    }
    if let Some(server) = rec.server {
        out.push_str(",\"server\":{");
        push_json_field(&mut out, "id", &server.to_string(), false);
        out.push('}');
    }
    out.push_str("}\n");
    out
}

fn push_json_field(out: &mut String, key: &str, value: &str, comma: bool) {
    if comma {
        out.push(',');
    }
    out.push('"');
    push_json_escaped(out, key);
    out.push_str("\":\"");
    push_json_escaped(out, value);
    out.push('"');
}

/// JSON string escaping, upstream's set: `" \ /`, the short control escapes, `\u00XX` for the
/// remaining control characters.
pub(crate) fn push_json_escaped(out: &mut String, value: &str) {
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

fn since_epoch(now: SystemTime) -> std::time::Duration {
    // A clock before 1970 prints as the epoch rather than failing the line.
    now.duration_since(UNIX_EPOCH).unwrap_or_default()
}

fn unix_seconds(now: SystemTime) -> u64 {
    since_epoch(now).as_secs()
}

fn millis(now: SystemTime) -> u32 {
    since_epoch(now).subsec_millis()
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC.
pub(crate) fn write_utc(out: &mut String, now: SystemTime) -> std::fmt::Result {
    let secs = unix_seconds(now);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); Howard Hinnant's
/// `civil_from_days`: shift the year to start in March so the leap day is the last day of the
/// year, then split into 400-year eras of 146 097 days.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}
