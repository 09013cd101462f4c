//! Every config of the upstream corpus (`shared/spec/odyssey-confs`) through `odyssey --test`:
//! config-validation `valid` files pass, `invalid` files fail naming their problem, every other
//! example passes, except hba files (read by the hba parser), include fragments (parsed as
//! fragments) and configs including an absolute path missing here, or naming TLS key material
//! missing here (fail naming that path: `--test` loads the files, upstream's does not).
//!
//! The corpus is `$ODYSSEY_CONF_CORPUS` when set (then it must exist: CI sets it), else
//! `shared/` beside the workspace; a missing default is a loud warning, not a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use odyssey::config;

/// Files whose upstream `invalid` label holds only for released versions: upstream HEAD fixes
/// these combinations and logs it, and so do we (see `config::validate`), with this warning.
const FIXED_BY_HEAD: &[(&str, &str)] = &[
    (
        "pool_reserve_prepared_statement__invalid__odyssey-test1",
        "replaced by smart discard",
    ),
    (
        "pool_reserve_prepared_statement__invalid__odyssey-test2",
        "session pool makes no sense",
    ),
];

/// The word each invalid file's diagnostics must contain.
const INVALID_WORDS: &[(&str, &str)] = &[
    (
        "auth_query__invalid__odyssey-test1",
        "auth_query_user is not set",
    ),
    (
        "auth_query__invalid__odyssey-test2",
        "auth_query_db is not set",
    ),
    (
        "auth_query__invalid__odyssey-test3",
        "auth_query_user is not set",
    ),
    (
        "authentication__invalid__odyssey-test1",
        "password is not set",
    ),
    (
        "authentication__invalid__odyssey-test2",
        "password is not set",
    ),
    (
        "authentication__invalid__odyssey-test3",
        "unknown authentication mode",
    ),
    (
        "coroutine_stack_size__invalid__odyssey-test1",
        "bad coroutine_stack_size",
    ),
    (
        "coroutine_stack_size__invalid__odyssey-test2",
        "bad coroutine_stack_size",
    ),
    (
        "coroutine_stack_size__invalid__odyssey-test3",
        "bad coroutine_stack_size",
    ),
    (
        "coroutine_stack_size__invalid__odyssey-test4",
        "expected a number for coroutine_stack_size",
    ),
    (
        "coroutine_stack_size__invalid__odyssey-test5",
        "coroutine_stack_size must be >= 16",
    ),
    (
        "group_rules__invalid__odyssey-test1",
        "group_query is not set",
    ),
    (
        "group_rules__invalid__odyssey-test2",
        "group_query_user is not set",
    ),
    (
        "group_rules__invalid__odyssey-test3",
        "group_query_db is not set",
    ),
    (
        "listen_empty__invalid__odyssey-test1",
        "no listen sections defined",
    ),
    ("listen_tls__invalid__odyssey-test1", "unknown tls mode"),
    ("listen_tls__invalid__odyssey-test2", "unknown tls mode"),
    ("listen_tls__invalid__odyssey-test3", "unknown tls mode"),
    (
        "listen_tls__invalid__odyssey-test4",
        "expected a quoted string for tls",
    ),
    (
        "log_format__invalid__odyssey-test1",
        "log_format is not defined",
    ),
    (
        "pool_reserve_prepared_statement__invalid__odyssey-test3",
        "smart discard is forbidden",
    ),
    (
        "pool_reserve_prepared_statement__invalid__odyssey-test4",
        "quoted string for pool_discard_query",
    ),
    (
        "pool_routing__invalid__odyssey-test1",
        "unknown pool routing mode",
    ),
    (
        "pool_type__invalid__odyssey-test1",
        "pooling mode is not set",
    ),
    ("pool_type__invalid__odyssey-test2", "unknown pooling mode"),
    ("resolvers__invalid__odyssey-test1", "bad resolvers number"),
    ("resolvers__invalid__odyssey-test2", "bad resolvers number"),
    (
        "resolvers__invalid__odyssey-test3",
        "expected a number for resolvers",
    ),
    (
        "rules_empty__invalid__odyssey-test1",
        "no storage sections defined",
    ),
    ("rules_empty__invalid__odyssey-test2", "no rules defined"),
    (
        "storage_name__invalid__odyssey-test1",
        "no rule storage is specified",
    ),
    (
        "storage_name__invalid__odyssey-test2",
        "no rule storage 'postgres_server' found",
    ),
    ("storage_tls__invalid__odyssey-test1", "unknown tls mode"),
    ("storage_tls__invalid__odyssey-test2", "unknown tls mode"),
    (
        "storage_tls__invalid__odyssey-test3",
        "expected a quoted string for tls",
    ),
    (
        "storage_type__invalid__odyssey-test1",
        "listen host is not set",
    ),
    ("storage_type__invalid__odyssey-test2", "no host specified"),
    ("storage_type__invalid__odyssey-test3", "'type' is required"),
    (
        "storage_type__invalid__odyssey-test4",
        "role set for non-local storage",
    ),
    (
        "storage_type__invalid__odyssey-test5",
        "role set for non-local storage",
    ),
    (
        "storage_type__invalid__odyssey-test6",
        "role set for non-local storage",
    ),
    (
        "storage_type__invalid__odyssey-test7",
        "role type 'undef' is unknown",
    ),
    (
        "unix_socket_mode__invalid__odyssey-test1",
        "unix_socket_mode is not set",
    ),
    ("workers__invalid__odyssey-test1", "bad workers number"),
    ("workers__invalid__odyssey-test2", "bad workers number"),
    (
        "workers__invalid__odyssey-test3",
        "invalid value for workers",
    ),
];

const HBA_FILES: &[&str] = &[
    "test__functional__tests__hba__odyssey_hba.conf",
    "test__functional__tests__pg__pg_hba-test.conf",
    "test__replication__pg_hba.conf",
];

const FRAGMENTS: &[&str] = &["test__functional__tests__hba__common.conf"];

/// Names the corpus directory; when set, the directory must exist. A relative path is taken
/// from the `odyssey` package directory (where cargo runs this test).
const CORPUS_ENV: &str = "ODYSSEY_CONF_CORPUS";

/// The corpus directory: `Ok(None)` when it is not there and not required.
fn corpus() -> Result<Option<PathBuf>, String> {
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/odyssey-confs");
    locate_corpus(std::env::var_os(CORPUS_ENV).map(PathBuf::from), default)
}

/// `required` (from [`CORPUS_ENV`]) must be a directory; `default` may be missing.
fn locate_corpus(required: Option<PathBuf>, default: PathBuf) -> Result<Option<PathBuf>, String> {
    match required {
        Some(dir) if dir.is_dir() => Ok(Some(dir)),
        Some(dir) => Err(format!(
            "{CORPUS_ENV}={} is not a directory: the upstream config corpus is required",
            dir.display()
        )),
        None => Ok(default.is_dir().then_some(default)),
    }
}

/// Runs `odyssey --test path`: (exit code, stdout + stderr).
fn odyssey_test(path: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_odyssey"))
        .arg("--test")
        .arg(path)
        .output()
        .expect("run odyssey");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The absolute include of `text` that is missing on this machine, if any.
/// The TLS files (`tls_cert_file`, `tls_key_file`, `tls_ca_file`) at absolute paths missing
/// here: the key material is loaded at `--test`, so such a config fails naming one.
fn missing_tls_files(text: &str) -> Vec<String> {
    missing_paths(text, &["tls_cert_file", "tls_key_file", "tls_ca_file"]).collect()
}

fn missing_include(text: &str) -> Option<String> {
    missing_paths(text, &["include"]).next()
}

/// The quoted absolute paths after `directives` that do not exist here.
fn missing_paths<'t>(text: &'t str, directives: &'t [&str]) -> impl Iterator<Item = String> + 't {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            directives.iter().find_map(|d| l.strip_prefix(d))
        })
        .filter_map(|rest| {
            rest.trim()
                .strip_prefix('"')?
                .split('"')
                .next()
                .map(str::to_string)
        })
        .filter(|p| p.starts_with('/') && !Path::new(p).exists())
}

#[derive(Default, Debug)]
struct Counts {
    valid: usize,
    invalid: usize,
    other: usize,
    hba: usize,
    fragments: usize,
    missing_include: usize,
    missing_tls_file: usize,
}

#[test]
fn upstream_corpus() {
    let dir = match corpus() {
        Ok(Some(dir)) => dir,
        Ok(None) => {
            eprintln!(
                "WARNING: upstream config corpus not found (shared/spec/odyssey-confs beside \
                 the workspace, or set {CORPUS_ENV}): NOTHING WAS CHECKED"
            );
            return;
        }
        Err(why) => panic!("{why}"),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(why) = check_one(path, &name, &mut counts) {
            failures.push(format!("{name}: {why}"));
        }
    }
    println!("corpus counts: {counts:?} (total {})", files.len());
    assert!(
        failures.is_empty(),
        "{} corpus failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Regression: a missing corpus used to pass silently even where it was expected.
#[test]
fn a_required_corpus_must_exist() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let missing = here.join("no such corpus");
    assert_eq!(
        locate_corpus(Some(here.clone()), missing.clone()),
        Ok(Some(here.clone()))
    );
    let err = locate_corpus(Some(missing.clone()), here.clone()).unwrap_err();
    assert!(
        err.contains(CORPUS_ENV) && err.contains("no such corpus"),
        "{err}"
    );
    assert_eq!(locate_corpus(None, missing), Ok(None));
    assert_eq!(locate_corpus(None, here.clone()), Ok(Some(here)));
}

fn check_one(path: &Path, name: &str, counts: &mut Counts) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if HBA_FILES.contains(&name) {
        counts.hba += 1;
        return config::hba::parse(&name.into(), &text)
            .map(drop)
            .map_err(|e| e.to_string());
    }
    if FRAGMENTS.contains(&name) {
        counts.fragments += 1;
        return config::parse_fragment(name, &text)
            .map(drop)
            .map_err(|e| format!("{e:?}"));
    }
    let (code, out) = odyssey_test(path);
    let missing_tls = missing_tls_files(&text);
    if !missing_tls.is_empty() {
        counts.missing_tls_file += 1;
        let names_it = missing_tls
            .iter()
            .any(|missing| out.contains(&format!("\"{missing}\": No such file")));
        return if code == 1 && names_it {
            Ok(())
        } else {
            Err(format!("exit {code}: {out}"))
        };
    }
    if let Some(missing) = missing_include(&text) {
        counts.missing_include += 1;
        let names_it = out.contains(&format!("can't open include file '{missing}'"));
        return if code == 1 && names_it {
            Ok(())
        } else {
            Err(format!("exit {code}: {out}"))
        };
    }
    if name.contains("__config-validation__") && name.contains("__invalid__") {
        counts.invalid += 1;
        if let Some((_, warning)) = FIXED_BY_HEAD.iter().find(|(k, _)| name.contains(k)) {
            return expect(code == 0 && out.contains(warning), code, &out);
        }
        let word = INVALID_WORDS
            .iter()
            .find(|(k, _)| name.contains(k))
            .map(|(_, w)| *w)
            .ok_or("no expected word listed")?;
        return expect(code == 1 && out.contains(word), code, &out);
    }
    if name.contains("__config-validation__") {
        counts.valid += 1;
    } else {
        counts.other += 1;
    }
    expect(code == 0 && out.contains("config is valid"), code, &out)
}

fn expect(ok: bool, code: i32, out: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("exit {code}: {out}"))
    }
}
