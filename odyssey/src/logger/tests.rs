//! Logger tests: rendering with fixed inputs, then real files, syslog datagrams and the queue.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::format::{Format, LINE_MAX, Record, civil_from_days};
use super::*;
use crate::{od_debug, od_error, od_fatal, od_info};

/// 2023-11-14T22:13:20.123Z
fn fixed_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
}

fn full_client() -> ClientInfo {
    ClientInfo {
        id: ClientId::new(),
        user: Some("alice".into()),
        database: Some("db1".into()),
        addr: Some("10.1.2.3:5544".parse::<SocketAddr>().unwrap()),
        external_id: Some("ext-7".into()),
        storage_host: Some("pg.local".into()),
        debug: false,
    }
}

fn record<'a>(
    level: Level,
    client: Option<&'a ClientInfo>,
    server: Option<ServerId>,
    message: &'a str,
) -> Record<'a> {
    Record {
        now: fixed_time(),
        pid: 4242,
        tid: 0xabc,
        level,
        context: "auth",
        client,
        server,
        message,
    }
}

fn render(template: &str, rec: &Record<'_>) -> String {
    Format::parse(template).render(rec)
}

#[test]
fn every_placeholder_renders_from_fixed_inputs() {
    let client = full_client();
    let server = ServerId::new();
    let rec = record(Level::Error, Some(&client), Some(server), "a=b\tc");
    let line = render(
        "%n|%t|%e|%p|%T|%i|%s|%u|%d|%c|%l|%m|%M|%h|%r|%H|%x|%%",
        &rec,
    );
    let expected = format!(
        "1700000000|2023-11-14T22:13:20Z|123|4242|0xabc|{}|{}|alice|db1|auth|error|a=b\tc|a\\=b\\tc|10.1.2.3|5544|pg.local|ext-7|%\n",
        client.id, server
    );
    assert_eq!(line, expected);
}

#[test]
fn absent_client_and_server_print_none() {
    let rec = record(Level::Info, None, None, "m");
    assert_eq!(
        render("%i %s %u %d %h %r %H %x", &rec),
        "none none none none none none none none\n"
    );
    let bare = ClientInfo::new(ClientId::new());
    let rec = record(Level::Info, Some(&bare), None, "m");
    assert_eq!(
        render("%i %u %h %x", &rec),
        format!("{} none none none\n", bare.id)
    );
}

#[test]
fn levels_print_as_words() {
    for (level, word) in [
        (Level::Info, "info"),
        (Level::Error, "error"),
        (Level::Debug, "debug"),
        (Level::Fatal, "fatal"),
    ] {
        assert_eq!(
            render("%l", &record(level, None, None, "")),
            format!("{word}\n")
        );
    }
}

#[test]
fn unknown_placeholder_and_escapes_in_the_format() {
    let rec = record(Level::Info, None, None, "m");
    assert_eq!(render("%X %q %m", &rec), "%X %q m\n");
    assert_eq!(render(r"a\tb\rc\\d\qe\n", &rec), "a\tb\rc\\d\\qe\n");
    // Trailing lone `%` and `\` are dropped.
    assert_eq!(render(r"%m%", &rec), "m\n");
    assert_eq!(render(r"%m\", &rec), "m\n");
}

#[test]
fn newline_appended_only_when_missing() {
    let rec = record(Level::Info, None, None, "hello");
    assert_eq!(render("%m", &rec), "hello\n");
    assert_eq!(render(r"%m\n", &rec), "hello\n");
    let rec = record(Level::Info, None, None, "ends\n");
    assert_eq!(render("%m", &rec), "ends\n");
}

#[test]
fn civil_dates_across_leap_years_and_eras() {
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    assert_eq!(civil_from_days(11_017), (2000, 3, 1));
    assert_eq!(civil_from_days(47_541), (2100, 3, 1));
    assert_eq!(civil_from_days(19_675), (2023, 11, 14));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `YYYY-MM-DDTHH:MM:SSZ`
fn is_utc_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b[19] == b'Z'
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
            .into_iter()
            .all(|r| is_digits(&s[r]))
}

#[test]
fn live_time_pid_and_thread_match_their_patterns() {
    let dir = TempDir::new();
    let path = dir.file("time.log");
    let logger = file_logger(&path, "%n %t %e %p %T", false);
    od_info!(logger, "main", None, None, "x");
    let text = std::fs::read_to_string(&path).unwrap();
    let fields: Vec<&str> = text.trim_end().split(' ').collect();
    assert_eq!(fields.len(), 5, "{text:?}");
    assert!(is_digits(fields[0]) && fields[0].len() >= 10, "{text:?}");
    assert!(is_utc_time(fields[1]), "{text:?}");
    assert!(fields[2].len() == 3 && is_digits(fields[2]), "{text:?}");
    assert_eq!(fields[3], std::process::id().to_string());
    let tid = fields[4].strip_prefix("0x").unwrap();
    assert!(
        !tid.is_empty() && tid.bytes().all(|b| b.is_ascii_hexdigit()),
        "{text:?}"
    );
}

#[test]
fn text_lines_are_cut_at_1024_bytes_on_a_char_boundary() {
    // 'é' is two bytes; "x" + 600 of them cannot be cut at an even offset.
    let message = format!("x{}", "é".repeat(600));
    let line = render("%m", &record(Level::Info, None, None, &message));
    assert!(
        line.len() <= LINE_MAX && line.len() >= LINE_MAX - 1,
        "{}",
        line.len()
    );
    assert!(line.ends_with("é\n"));
    let short = render("%m", &record(Level::Info, None, None, &"a".repeat(1023)));
    assert_eq!(short.len(), 1024);
    let long = render("%m", &record(Level::Info, None, None, &"a".repeat(5000)));
    assert_eq!(long, format!("{}\n", "a".repeat(1023)));
}

// A small JSON reader: objects and strings are all the logger writes.
#[derive(Debug, PartialEq)]
enum Json {
    Str(String),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            Json::Str(_) => None,
        }
    }
    fn str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Json::Str(s)) => Some(s),
            _ => None,
        }
    }
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut chars = text.chars().peekable();
    let value = parse_value(&mut chars)?;
    match chars.next() {
        None => Ok(value),
        Some(c) => Err(format!("trailing {c:?}")),
    }
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn parse_value(chars: &mut Chars<'_>) -> Result<Json, String> {
    match chars.next() {
        Some('"') => parse_string_body(chars).map(Json::Str),
        Some('{') => {
            let mut fields = Vec::new();
            if chars.peek() == Some(&'}') {
                chars.next();
                return Ok(Json::Obj(fields));
            }
            loop {
                if chars.next() != Some('"') {
                    return Err("key expected".into());
                }
                let key = parse_string_body(chars)?;
                if chars.next() != Some(':') {
                    return Err("':' expected".into());
                }
                fields.push((key, parse_value(chars)?));
                match chars.next() {
                    Some(',') => continue,
                    Some('}') => return Ok(Json::Obj(fields)),
                    other => return Err(format!("',' or '}}' expected, got {other:?}")),
                }
            }
        }
        other => Err(format!("value expected, got {other:?}")),
    }
}

fn parse_string_body(chars: &mut Chars<'_>) -> Result<String, String> {
    let mut out = String::new();
    loop {
        match chars.next().ok_or("unterminated string")? {
            '"' => return Ok(out),
            '\\' => match chars.next().ok_or("bad escape")? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                '/' => out.push('/'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                    out.push(char::from_u32(code).ok_or("bad \\u")?);
                }
                other => return Err(format!("bad escape {other:?}")),
            },
            c if (c as u32) < 0x20 => return Err(format!("raw control {c:?}")),
            c => out.push(c),
        }
    }
}

#[test]
fn json_line_has_the_upstream_shape() {
    let client = full_client();
    let server = ServerId::new();
    let line = render(
        "JSON",
        &record(Level::Info, Some(&client), Some(server), "hi"),
    );
    let expected = format!(
        concat!(
            r#"{{"timestamp":"2023-11-14T22:13:20Z","pid":"4242","tid":"0xabc","level":"info","#,
            r#""context":"auth","message":"hi","client":{{"id":"{}","ip":"10.1.2.3","port":"5544","#,
            r#""user":"alice","database":"db1","external_id":"ext-7","server_host":"pg.local"}},"#,
            r#""server":{{"id":"{}"}}}}"#,
            "\n"
        ),
        client.id, server
    );
    assert_eq!(line, expected);
    let bare = render("json", &record(Level::Debug, None, None, "x"));
    let parsed = parse_json(bare.trim_end()).unwrap();
    assert_eq!(parsed.get("client"), None);
    assert_eq!(parsed.get("server"), None);
    assert_eq!(parsed.str("level"), Some("debug"));
}

#[test]
fn json_escapes_quotes_newlines_and_control_chars() {
    let message = "say \"hi\"\n\\ back/slash\t\r\u{1}\u{8}\u{c}\u{1f} é";
    let mut client = ClientInfo::new(ClientId::new());
    client.user = Some("we\"ird\u{2}".into());
    let line = render("json", &record(Level::Error, Some(&client), None, message));
    assert!(
        line.ends_with("}\n") && line.matches('\n').count() == 1,
        "{line:?}"
    );
    assert!(
        line.contains(r#""message":"say \"hi\"\n\\ back\/slash\t\r\u0001\b\f\u001f é""#),
        "{line:?}"
    );
    let parsed = parse_json(line.trim_end()).unwrap();
    assert_eq!(parsed.str("message"), Some(message));
    let client_obj = parsed.get("client").unwrap();
    assert_eq!(client_obj.str("user"), Some("we\"ird\u{2}"));
}

#[test]
fn json_message_is_limited_but_the_line_stays_valid() {
    let dir = TempDir::new();
    let path = dir.file("json.log");
    let logger = file_logger(&path, "json", false);
    let long = "\"".repeat(3000);
    od_info!(logger, "main", None, None, "{long}");
    od_info!(logger, "main", None, None, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "empty messages are skipped in json mode");
    let parsed = parse_json(lines[0]).unwrap();
    assert_eq!(parsed.str("message").unwrap().len(), 1024);
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("odyssey-logger-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lines to `path` only.
fn file_config(path: &std::path::Path, format: &str, async_write: bool) -> Logging {
    Logging {
        file: Some(path.display().to_string()),
        format: Some(format.to_string()),
        to_stdout: false,
        async_write,
        ..Logging::default()
    }
}

fn file_logger(path: &std::path::Path, format: &str, async_write: bool) -> Logger {
    Logger::new(&file_config(path, format, async_write)).unwrap()
}

#[test]
fn file_sink_gets_lines_and_debug_needs_log_debug() {
    let dir = TempDir::new();
    let path = dir.file("odyssey.log");
    let logger = file_logger(&path, r"%l (%c) %i %s %m\n", false);
    let client = ClientInfo::new(ClientId::new());
    let server = ServerId::new();
    od_info!(logger, "startup", None, None, "started {}", 1);
    od_debug!(logger, "main", None, None, "hidden");
    od_error!(logger, "auth", Some(&client), Some(server), "bad password");
    assert!(!logger.debug_enabled());
    logger.reconfigure(&Logging {
        debug: true,
        session: false,
        query: true,
        ..Logging::default()
    });
    assert_eq!(
        logger.flags(),
        LogFlags {
            debug: true,
            config: false,
            session: false,
            query: true,
            stats: true
        }
    );
    od_debug!(logger, "main", None, None, "shown");
    od_fatal!(logger, "main", None, None, "the end");
    logger.reconfigure(&Logging::default());
    assert_eq!(logger.flags(), LogFlags::default());
    od_debug!(logger, "main", None, None, "hidden again");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!(
            "info (startup) none none started 1\nerror (auth) {} {} bad password\n\
             debug (main) none none shown\nfatal (main) none none the end\n",
            client.id, server
        )
    );
}

#[test]
fn reopen_after_rename_writes_to_a_new_file() {
    for async_write in [false, true] {
        let dir = TempDir::new();
        let path = dir.file("odyssey.log");
        let rotated = dir.file("odyssey.log.1");
        let logger = file_logger(&path, "%m", async_write);
        od_info!(logger, "main", None, None, "before");
        logger.flush();
        std::fs::rename(&path, &rotated).unwrap();
        od_info!(logger, "main", None, None, "still old");
        logger.flush();
        logger.reopen().unwrap();
        od_info!(logger, "main", None, None, "after");
        logger.flush();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "before\nstill old\n"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "log reopened\nafter\n"
        );
    }
}

#[test]
fn reopen_is_safe_while_the_writer_thread_writes() {
    let dir = TempDir::new();
    let path = dir.file("busy.log");
    let logger = file_logger(&path, "%m", true);
    let writer = logger.clone();
    let spammer = std::thread::spawn(move || {
        for i in 0..2000 {
            od_info!(writer, "main", None, None, "line {i}");
        }
    });
    for i in 0..20 {
        std::fs::rename(&path, dir.file(&format!("busy.log.{i}"))).unwrap();
        logger.reopen().unwrap();
    }
    spammer.join().unwrap();
    logger.flush();
    let mut total = 0;
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            assert!(
                line == "log reopened" || line.starts_with("line "),
                "{line:?}"
            );
        }
        total += text.lines().filter(|l| l.starts_with("line ")).count();
    }
    assert_eq!(total as u64 + logger.dropped(), 2000);
}

#[test]
fn reopen_failure_keeps_the_old_file() {
    let dir = TempDir::new();
    let sub = dir.file("sub");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("odyssey.log");
    let logger = file_logger(&path, "%l %m", false);
    std::fs::rename(&sub, dir.file("moved")).unwrap();
    assert!(logger.reopen().is_err());
    let text = std::fs::read_to_string(dir.file("moved").join("odyssey.log")).unwrap();
    assert!(
        text.starts_with("error failed to reopen log file '"),
        "{text:?}"
    );
}

#[test]
fn missing_log_directory_fails_new() {
    let dir = TempDir::new();
    let path = dir.file("no/such/dir.log");
    let err = Logger::new(&Logging {
        file: Some(path.display().to_string()),
        ..Logging::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("failed to open log file"), "{err}");
}

fn syslog_receive(facility: &str, level: Level, message: &str) -> String {
    let dir = TempDir::new();
    let socket_path = dir.file("syslog.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let logger = Logger::with_syslog_path(
        &Logging {
            format: Some("%l %m".to_string()),
            to_stdout: false,
            syslog: true,
            syslog_ident: "odytest".to_string(),
            syslog_facility: facility.to_string(),
            ..Logging::default()
        },
        Some(&socket_path),
    )
    .unwrap();
    logger.log(level, "main", None, None, format_args!("{message}"));
    logger.flush();
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn syslog_datagram_has_priority_ident_and_message() {
    // local3 = 19 << 3 = 152; info = 6, err = 3, debug = 7, crit = 2.
    let got = syslog_receive("LOCAL3", Level::Info, "hello syslog");
    assert!(got.starts_with("<158>"), "{got:?}");
    assert!(
        got.contains(&format!("odytest[{}]: ", std::process::id())),
        "{got:?}"
    );
    assert!(got.ends_with("info hello syslog"), "{got:?}");
    assert!(syslog_receive("local3", Level::Error, "e").starts_with("<155>"));
    assert!(syslog_receive("user", Level::Debug, "d").starts_with("<15>"));
    // Unknown facility means daemon (3 << 3 = 24).
    assert!(syslog_receive("bogus", Level::Fatal, "f").starts_with("<26>"));
}

#[test]
fn full_async_queue_drops_and_counts_instead_of_blocking() {
    const LINES: u64 = 5000;
    const DEPTH: u32 = 4;
    let dir = TempDir::new();
    let path = dir.file("drop.log");
    let logger = Logger::new(&Logging {
        queue_depth: DEPTH,
        ..file_config(&path, "%m", true)
    })
    .unwrap();
    let sinks = Arc::clone(&logger.shared.sinks);
    // Stall the writer thread on the file lock.
    let stalled = sinks.hold_file();
    let (done_tx, done_rx) = mpsc::channel();
    let worker = logger.clone();
    std::thread::spawn(move || {
        for i in 0..LINES {
            od_info!(worker, "main", None, None, "line {i}");
        }
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("logging blocked on a full queue");
    // The queue holds DEPTH lines, the stalled writer at most one batch.
    let dropped = logger.dropped();
    let held = u64::from(DEPTH) + super::sink::BATCH_MAX as u64;
    assert!(dropped >= LINES - held, "dropped {dropped}");
    drop(stalled);
    logger.flush();
    let written = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
    assert_eq!(written + dropped, LINES);
    assert_eq!(logger.dropped(), dropped);
}

#[test]
fn no_destination_and_stdout_only_loggers_work() {
    let silent = Logger::new(&Logging {
        to_stdout: false,
        ..Logging::default()
    })
    .unwrap();
    od_info!(silent, "main", None, None, "nowhere");
    silent.flush();
    assert_eq!(silent.dropped(), 0);
    let stdout = Logger::stdout_only();
    assert_eq!(stdout.flags(), LogFlags::default());
    od_info!(stdout, "main", None, None, "to stdout");
    stdout.flush();
}
