//! The Debian package (issue 14): `scripts/deb.sh` (what `make deb` runs) packs the binary
//! under test; the package, unpacked with `dpkg -x` into a throw-away root (no root needed),
//! holds a config that its own binary accepts without a warning, the unit, the logrotate
//! snippet and a man page naming every option of `--help`; the config and the logrotate
//! snippet are conffiles; and lintian, where installed, finds no error and no warning that
//! `packaging/debian/lintian-overrides` does not explain.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use odyssey_test::pooler::odyssey_bin;
use odyssey_test::temp_dir::TempDir;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `cmd`, failing the test with its output unless it succeeds.
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the package from the binary under test into `dir`; returns the .deb.
fn build_deb(dir: &Path) -> PathBuf {
    let out = run(Command::new(repo().join("scripts/deb.sh"))
        .arg(dir)
        .env("ODYSSEY_BIN", odyssey_bin().unwrap()));
    let deb = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(deb.is_file(), "no package at {}", deb.display());
    deb
}

/// The long options `--help` lists, as the man page must show them (roff escapes dashes).
fn help_options(bin: &Path) -> Vec<String> {
    let out = run(Command::new(bin).arg("--help"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.replace('-', "\\-"))
        .collect()
}

#[test]
fn package_installs_a_config_its_binary_accepts() {
    let dir = TempDir::new("package").unwrap();
    let deb = build_deb(dir.path());
    let root = dir.path().join("root");
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));

    let bin = root.join("usr/bin/odyssey");
    let out = run(Command::new(&bin)
        .arg("--test")
        .arg(root.join("etc/odyssey/odyssey.conf")));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "config is valid\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "the config warns");

    for file in [
        "lib/systemd/system/odyssey.service",
        "etc/logrotate.d/odyssey",
        "usr/share/doc/odyssey/copyright",
        "usr/share/doc/odyssey/changelog.Debian.gz",
    ] {
        assert!(root.join(file).is_file(), "{file} missing");
    }
    let man = run(Command::new("gzip")
        .arg("-dc")
        .arg(root.join("usr/share/man/man1/odyssey.1.gz")));
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.starts_with(".TH ODYSSEY 1 "), "{man}");
    for option in help_options(&bin) {
        assert!(man.contains(&option), "the man page lacks {option}");
    }

    let control = dir.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    let conffiles: Vec<&str> = conffiles.lines().collect();
    assert_eq!(
        conffiles,
        ["/etc/odyssey/odyssey.conf", "/etc/logrotate.d/odyssey"]
    );
}

#[test]
fn lintian_finds_no_error_or_warning() {
    if Command::new("lintian").arg("--version").output().is_err() {
        eprintln!("lintian is not installed (scripts/deps.sh installs it); skipped");
        return;
    }
    let dir = TempDir::new("lintian").unwrap();
    let deb = build_deb(dir.path());
    let out = run(Command::new("lintian")
        .args(["--fail-on", "error,warning", "--info"])
        .arg(&deb));
    // Tags overridden with a reason are not printed without --show-overrides; any other
    // error or warning fails above, and is named here if lintian printed it anyway.
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !report
            .lines()
            .any(|l| l.starts_with("E:") || l.starts_with("W:")),
        "{report}"
    );
}
