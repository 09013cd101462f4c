//! Where the driver tests find their programs and drivers: `test/drivers/` in the repository,
//! and what `make drivers` installs (`build/venv`, `build/node`); a missing one fails the test
//! with the way to get it, never skips it.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `path`, which must exist, or a failure naming it and how to get it.
pub fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} missing at {}: run `make drivers` (as root for the Debian packages)",
        path.display()
    );
    path
}

/// The venv's python (asyncpg, psycopg 3).
pub fn python() -> PathBuf {
    require(repo_root().join("build/venv/bin/python"), "build/venv")
}

/// node-postgres' `node_modules` directory (for `NODE_PATH`).
pub fn node_modules() -> PathBuf {
    let modules = repo_root().join("build/node/node_modules");
    require(
        modules.join("pg/package.json"),
        "node-postgres (build/node)",
    );
    modules
}

/// A program of `test/drivers/`.
pub fn program(name: &str) -> PathBuf {
    repo_root().join("test/drivers").join(name)
}
