//! Who runs the PostgreSQL server programs: the harness itself, or (when the harness runs as
//! root, which PostgreSQL refuses) the unprivileged `postgres` user.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

/// The OS user that runs initdb, pg_ctl and postgres when the harness is root. Override with
/// the `ODYSSEY_TEST_PG_USER` environment variable.
pub const DEFAULT_SERVER_USER: &str = "postgres";

/// The unprivileged identity the server programs switch to; absent when the harness is not
/// root and runs them as itself.
#[derive(Debug, Clone)]
pub struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// `Some` when the harness runs as root (the uid owning `/proc/self` is 0), with the
    /// server user's ids from `/etc/passwd`; `None` otherwise.
    pub fn detect() -> Result<Option<RunAs>> {
        let euid = fs::metadata("/proc/self")
            .map_err(|e| Error::io("stat /proc/self", e))?
            .uid();
        if euid != 0 {
            return Ok(None);
        }
        let name = std::env::var("ODYSSEY_TEST_PG_USER")
            .unwrap_or_else(|_| DEFAULT_SERVER_USER.to_string());
        let passwd =
            fs::read_to_string("/etc/passwd").map_err(|e| Error::io("read /etc/passwd", e))?;
        passwd
            .lines()
            .map(|line| line.split(':').collect::<Vec<_>>())
            .find(|fields| fields.first() == Some(&name.as_str()))
            .and_then(|fields| {
                Some(RunAs {
                    uid: fields.get(2)?.parse().ok()?,
                    gid: fields.get(3)?.parse().ok()?,
                })
            })
            .map(Some)
            .ok_or(Error::MissingUser { name })
    }

    /// Makes `cmd` switch to this user (uid, gid, no supplementary groups) before exec.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.uid(self.uid).gid(self.gid);
    }

    /// Gives `path` to this user.
    pub fn chown(&self, path: &Path) -> Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(|e| Error::io(format!("chown {}", path.display()), e))
    }
}
