//! Where finished lines go: the log file, stdout and syslog, and the async writer thread that
//! feeds them from a bounded queue.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use syslog::{Facility, Formatter3164, LoggerBackend};

use super::Level;

/// Most lines the writer thread takes off the queue for one write.
pub(crate) const BATCH_MAX: usize = 1024;

/// A finished line and the level syslog needs for its priority.
pub(crate) struct Line {
    pub level: Level,
    /// Ends with `\n`.
    pub text: String,
}

/// The destinations of one logger. Shared by the callers (sync mode, FATAL lines, reopen) and
/// the writer thread; each destination has its own lock, held only for one write or one swap.
pub(crate) struct Sinks {
    file: Option<FileSink>,
    stdout: bool,
    syslog: Option<SyslogSink>,
}

struct FileSink {
    path: PathBuf,
    /// Swapped by `reopen`; writers hold the lock for one `write_all`.
    file: Mutex<File>,
}

/// syslog through the `syslog` crate. The connection is made lazily and dropped after a failed
/// send, so a syslog daemon that starts (or restarts) later is picked up, as `syslog(3)` does.
struct SyslogSink {
    /// `None`: the system socket (`/dev/log`, ...).
    socket: Option<PathBuf>,
    formatter: Formatter3164,
    conn: Mutex<Option<syslog::Logger<LoggerBackend, Formatter3164>>>,
}

/// The sending half of the async queue. The channel grows with what is queued, and the
/// depth is kept by counting: a bounded channel would allocate (and touch) room for every
/// line of `log_queue_depth` at start — 1.2 MiB at the default of 30,000 — for a queue
/// that is nearly always empty.
pub(crate) struct Queue {
    tx: Sender<Message>,
    /// Lines queued and not yet taken by the writer.
    queued: Arc<AtomicUsize>,
    depth: usize,
    dropped: AtomicU64,
}

enum Message {
    Line(Line),
    /// Answered once every line queued before it is written.
    Flush(SyncSender<()>),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic halfway through a write leaves nothing inconsistent behind: keep logging.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_log_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)
}

/// `log_syslog_facility`; anything unknown is `daemon`, as upstream.
pub(crate) fn facility(name: &str) -> Facility {
    match name.to_ascii_lowercase().as_str() {
        "user" => Facility::LOG_USER,
        "local0" => Facility::LOG_LOCAL0,
        "local1" => Facility::LOG_LOCAL1,
        "local2" => Facility::LOG_LOCAL2,
        "local3" => Facility::LOG_LOCAL3,
        "local4" => Facility::LOG_LOCAL4,
        "local5" => Facility::LOG_LOCAL5,
        "local6" => Facility::LOG_LOCAL6,
        "local7" => Facility::LOG_LOCAL7,
        _ => Facility::LOG_DAEMON,
    }
}

impl Sinks {
    /// Opens the log file (O_APPEND, 0644). syslog is connected on first use.
    pub(crate) fn open(
        file: Option<&str>,
        stdout: bool,
        syslog: Option<(&str, Facility)>,
        syslog_socket: Option<&Path>,
    ) -> io::Result<Sinks> {
        let file = match file {
            Some(path) => {
                let path = PathBuf::from(path);
                let file = open_log_file(&path).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("failed to open log file '{}': {e}", path.display()),
                    )
                })?;
                Some(FileSink {
                    path,
                    file: Mutex::new(file),
                })
            }
            None => None,
        };
        let syslog = syslog.map(|(ident, facility)| SyslogSink {
            socket: syslog_socket.map(Path::to_path_buf),
            formatter: Formatter3164 {
                facility,
                hostname: None,
                process: ident.to_string(),
                pid: std::process::id(),
            },
            conn: Mutex::new(None),
        });
        Ok(Sinks {
            file,
            stdout,
            syslog,
        })
    }

    /// stdout alone.
    pub(crate) fn stdout_only() -> Sinks {
        Sinks {
            file: None,
            stdout: true,
            syslog: None,
        }
    }

    /// No destination at all: lines need not even be formatted.
    pub(crate) fn is_empty(&self) -> bool {
        self.file.is_none() && !self.stdout && self.syslog.is_none()
    }

    /// Writes lines in order: one append for the file, one for stdout, one datagram each for
    /// syslog. Write errors are ignored, as upstream does: there is nowhere to report them.
    pub(crate) fn write(&self, lines: &[Line]) {
        let Some(first) = lines.first() else { return };
        let joined;
        let bytes: &[u8] = if lines.len() == 1 {
            first.text.as_bytes()
        } else {
            joined = lines.iter().map(|l| l.text.as_str()).collect::<String>();
            joined.as_bytes()
        };
        if let Some(file) = &self.file {
            let _ = lock(&file.file).write_all(bytes);
        }
        if self.stdout {
            let mut out = io::stdout().lock();
            let _ = out.write_all(bytes).and_then(|()| out.flush());
        }
        if let Some(syslog) = &self.syslog {
            for line in lines {
                syslog.send(line);
            }
        }
    }

    /// Opens the log file again at its path and swaps it in; the old one stays on failure.
    /// `Ok(None)` when there is no log file.
    pub(crate) fn reopen(&self) -> io::Result<Option<&Path>> {
        let Some(sink) = &self.file else {
            return Ok(None);
        };
        let fresh = open_log_file(&sink.path)?;
        *lock(&sink.file) = fresh;
        Ok(Some(&sink.path))
    }

    /// The log file path, if any.
    pub(crate) fn file_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// Holds the file lock so the writer thread stalls (tests of the full queue).
    #[cfg(test)]
    pub(crate) fn hold_file(&self) -> Option<MutexGuard<'_, File>> {
        self.file.as_ref().map(|f| lock(&f.file))
    }
}

impl SyslogSink {
    fn send(&self, line: &Line) {
        let mut conn = lock(&self.conn);
        if conn.is_none() {
            let connected = match &self.socket {
                Some(path) => syslog::unix_custom(self.formatter.clone(), path),
                None => syslog::unix(self.formatter.clone()),
            };
            *conn = connected.ok();
        }
        let Some(logger) = conn.as_mut() else { return };
        let text = line.text.strip_suffix('\n').unwrap_or(&line.text);
        let sent = match line.level {
            Level::Info => logger.info(text),
            Level::Error => logger.err(text),
            Level::Debug => logger.debug(text),
            Level::Fatal => logger.crit(text),
        };
        if sent.is_err() {
            *conn = None;
        }
    }
}

impl Queue {
    /// Starts the writer thread (named `logger`) over a queue of `depth` lines.
    pub(crate) fn start(depth: usize, sinks: Arc<Sinks>) -> io::Result<Queue> {
        let (tx, rx) = std::sync::mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = queued.clone();
        std::thread::Builder::new()
            .name("logger".to_string())
            .spawn(move || write_queued(&rx, &taken, &sinks))?;
        Ok(Queue {
            tx,
            queued,
            depth,
            dropped: AtomicU64::new(0),
        })
    }

    /// Queues a line without waiting; a full queue drops it and counts the drop.
    pub(crate) fn push(&self, line: Line) {
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.depth
            || self.tx.send(Message::Line(line)).is_err()
        {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Blocks until every line queued before this call is written.
    pub(crate) fn flush(&self) {
        let (ack_tx, ack_rx) = std::sync::mpsc::sync_channel(1);
        if self.tx.send(Message::Flush(ack_tx)).is_ok() {
            let _ = ack_rx.recv();
        }
    }
}

/// The writer thread: takes what is queued (up to [`BATCH_MAX`] lines), writes it in one go,
/// then answers the flushes that were waiting behind those lines. Ends when every sender is
/// gone and the queue is empty.
fn write_queued(rx: &Receiver<Message>, queued: &AtomicUsize, sinks: &Sinks) {
    let mut batch = Vec::new();
    let mut acks = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => {
                    queued.fetch_sub(1, Ordering::AcqRel);
                    batch.push(line);
                }
                Message::Flush(ack) => acks.push(ack),
            }
            if batch.len() < BATCH_MAX {
                next = rx.try_recv().ok();
            }
        }
        sinks.write(&batch);
        batch.clear();
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}
