//! [`Slapd`]: a throw-away OpenLDAP server (Debian's `slapd`) for the LDAP tests, on a free
//! loopback port with its config (`slapd.conf`, read with `-f`) and an mdb database in a temp
//! dir; entries are loaded over the network with `ldapadd` as the root DN. Dropping it kills
//! slapd and waits for it to be gone.

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::certs::Pair;
use crate::command;
use crate::error::{Error, Result};
use crate::temp_dir::TempDir;
use crate::{free_port, process};

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=org";
/// The root DN, which may write the directory.
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
/// The root DN's password.
pub const ROOT_PW: &str = "admin secret";

const SLAPD: &str = "/usr/sbin/slapd";
/// Bound on slapd answering after its start.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on one ldapadd.
const ADD_TIMEOUT: Duration = Duration::from_secs(10);

/// A running slapd owned by one test.
pub struct Slapd {
    child: Child,
    port: u16,
    /// The `ldaps://` port (0: no TLS).
    tls_port: u16,
    /// Dropped after the process is gone.
    _dir: TempDir,
}

impl Slapd {
    /// Starts slapd with an empty directory under [`SUFFIX`], then adds `ldif` (the suffix's
    /// own entry comes first, made here).
    pub fn start(ldif: &str) -> Result<Slapd> {
        Slapd::start_with(ldif, None)
    }

    /// [`Slapd::start`] with TLS: `server` is shown on `ldaps://` at [`Slapd::tls_port`] and
    /// after StartTLS on the plain port.
    pub fn start_tls(ldif: &str, server: &Pair) -> Result<Slapd> {
        Slapd::start_with(ldif, Some(server))
    }

    fn start_with(ldif: &str, tls: Option<&Pair>) -> Result<Slapd> {
        if !std::path::Path::new(SLAPD).exists() {
            return Err(Error::MissingBinary {
                path: SLAPD.into(),
                hint: "install Debian's slapd and ldap-utils (scripts/deps.sh)".to_string(),
            });
        }
        let dir = TempDir::new("slapd")?;
        let db = dir.path().join("db");
        fs::create_dir(&db).map_err(|e| Error::io("mkdir slapd db", e))?;
        let conf = dir.path().join("slapd.conf");
        let mut text = config(&dir, &db);
        if let Some(pair) = tls {
            // Global directives: ahead of the database section.
            let global = format!(
                "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                pair.cert.display(),
                pair.key.display()
            );
            text.insert_str(0, &global);
        }
        fs::write(&conf, text).map_err(|e| Error::io("write slapd.conf", e))?;
        let port = free_port()?;
        let tls_port = match tls {
            Some(_) => free_port()?,
            None => 0,
        };
        let mut urls = format!("ldap://127.0.0.1:{port}/");
        if tls.is_some() {
            urls.push_str(&format!(" ldaps://127.0.0.1:{tls_port}/"));
        }
        let child = Command::new(SLAPD)
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(urls)
            // Any -d keeps slapd in the foreground, our child; 0 logs nothing.
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::io("spawn slapd", e))?;
        let slapd = Slapd {
            child,
            port,
            tls_port,
            _dir: dir,
        };
        let base = format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n"
        );
        slapd.add_when_up(&base)?;
        slapd.add(ldif)?;
        Ok(slapd)
    }

    /// The port slapd listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port slapd serves `ldaps://` on (127.0.0.1; 0 without TLS).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// Adds entries as the root DN with `ldapadd`.
    pub fn add(&self, ldif: &str) -> Result<()> {
        let file = self._dir.path().join("add.ldif");
        fs::write(&file, ldif).map_err(|e| Error::io("write ldif", e))?;
        let mut cmd = Command::new("ldapadd");
        cmd.args(["-x", "-H", &format!("ldap://127.0.0.1:{}", self.port)])
            .args(["-D", ROOT_DN, "-w", ROOT_PW, "-f"])
            .arg(&file);
        command::run(cmd, "ldapadd", ADD_TIMEOUT)?.check("ldapadd")?;
        Ok(())
    }

    /// The first add, retried until slapd answers (or has exited, or [`START_TIMEOUT`]).
    fn add_when_up(&self, ldif: &str) -> Result<()> {
        let started = Instant::now();
        loop {
            match self.add(ldif) {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() > START_TIMEOUT || !process::alive(self.child.id()) => {
                    return Err(Error::Startup {
                        server: "slapd".to_string(),
                        reason: format!("no answer on port {}", self.port),
                        log: e.to_string(),
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal slapd.conf: the schemas inetOrgPerson needs, one mdb database in `db`, a root DN
/// with a plain password, and read access for all (binds check passwords either way).
fn config(dir: &TempDir, db: &std::path::Path) -> String {
    let schema = "/etc/ldap/schema";
    format!(
        "include {schema}/core.schema\n\
         include {schema}/cosine.schema\n\
         include {schema}/inetorgperson.schema\n\
         pidfile {pid}\n\
         modulepath /usr/lib/ldap\n\
         moduleload back_mdb\n\
         database mdb\n\
         maxsize 10485760\n\
         suffix \"{SUFFIX}\"\n\
         rootdn \"{ROOT_DN}\"\n\
         rootpw \"{ROOT_PW}\"\n\
         directory {db}\n\
         access to attrs=userPassword by anonymous auth by * none\n\
         access to * by * read\n",
        pid = dir.path().join("slapd.pid").display(),
        db = db.display(),
    )
}
