//! A scratch directory under `/tmp`, removed on drop.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// A directory made for one fixture and removed (with everything in it) when dropped.
///
/// It lives under `/tmp`, not `$TMPDIR`, because PostgreSQL may run as another user who must
/// be able to traverse every parent directory, and unix socket paths must stay short.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `/tmp/odyssey-test-<prefix>-<pid>-<nanos>-<attempt>`, a fresh name each time.
    pub fn new(prefix: &str) -> Result<TempDir> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let pid = std::process::id();
        let mut attempt = 0;
        loop {
            let path = PathBuf::from(format!(
                "/tmp/odyssey-test-{prefix}-{pid}-{nanos}-{attempt}"
            ));
            match fs::create_dir(&path) {
                Ok(()) => return Ok(TempDir { path }),
                // Two fixtures of this process asked in the same nanosecond: take the next.
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 1000 => attempt += 1,
                Err(e) => return Err(Error::io(format!("create {}", path.display()), e)),
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
