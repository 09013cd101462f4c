//! Certificates for the TLS tests, made with the `openssl` command in a temp dir: a test CA,
//! certificates it signs (servers with their names, clients with their common names, an
//! expired one), and a self-signed one no test CA knows. EC P-256 keys, so making them is fast.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::command;
use crate::error::{Error, Result};
use crate::temp_dir::TempDir;

/// Bound on one `openssl` run.
const OPENSSL_TIMEOUT: Duration = Duration::from_secs(20);

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key (unencrypted).
    pub key: PathBuf,
}

/// A test CA in its own temp dir; the files live as long as it does.
#[derive(Debug)]
pub struct Certs {
    dir: TempDir,
}

impl Certs {
    /// Makes the CA (`ca.crt`, `ca.key`).
    pub fn new() -> Result<Certs> {
        let certs = Certs {
            dir: TempDir::new("certs")?,
        };
        certs.self_signed("ca", "odyssey test ca")?;
        Ok(certs)
    }

    /// The CA's certificate (what peers are verified against).
    pub fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// A certificate signed by the CA: `name.crt`/`name.key` for common name `cn`, with the
    /// subject alternative names `san` (`DNS:localhost,IP:127.0.0.1`) when given, valid for
    /// `days` (negative: expired already).
    pub fn issue(&self, name: &str, cn: &str, san: Option<&str>, days: i32) -> Result<Pair> {
        let pair = self.request(name, cn)?;
        let csr = self.path(&format!("{name}.csr"));
        let mut cmd = self.openssl();
        cmd.args([
            "x509",
            "-req",
            "-CAcreateserial",
            "-days",
            &days.to_string(),
        ])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(self.ca())
        .arg("-CAkey")
        .arg(self.path("ca.key"))
        .arg("-out")
        .arg(&pair.cert);
        if let Some(san) = san {
            let ext = self.path(&format!("{name}.ext"));
            std::fs::write(&ext, format!("subjectAltName={san}\n"))
                .map_err(|e| Error::io(format!("write {}", ext.display()), e))?;
            cmd.arg("-extfile").arg(ext);
        }
        run(cmd)?;
        Ok(pair)
    }

    /// A self-signed certificate for `cn`: signed by no CA the tests trust.
    pub fn self_signed(&self, name: &str, cn: &str) -> Result<Pair> {
        let pair = Pair {
            cert: self.path(&format!("{name}.crt")),
            key: self.path(&format!("{name}.key")),
        };
        let mut cmd = self.openssl();
        cmd.args([
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={cn}"),
        ])
        .args(key_args())
        .arg("-keyout")
        .arg(&pair.key)
        .arg("-out")
        .arg(&pair.cert);
        run(cmd)?;
        Ok(pair)
    }

    /// A file in the CA's directory.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A key and a signing request for `cn` (`name.key`, `name.csr`).
    fn request(&self, name: &str, cn: &str) -> Result<Pair> {
        let pair = Pair {
            cert: self.path(&format!("{name}.crt")),
            key: self.path(&format!("{name}.key")),
        };
        let mut cmd = self.openssl();
        cmd.args(["req", "-new", "-nodes", "-subj", &format!("/CN={cn}")])
            .args(key_args())
            .arg("-keyout")
            .arg(&pair.key)
            .arg("-out")
            .arg(self.path(&format!("{name}.csr")));
        run(cmd)?;
        Ok(pair)
    }

    fn openssl(&self) -> Command {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(self.dir.path());
        cmd
    }
}

fn key_args() -> [&'static str; 4] {
    ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
}

fn run(cmd: Command) -> Result<()> {
    command::run(cmd, "openssl", OPENSSL_TIMEOUT)?.check("openssl")?;
    Ok(())
}
