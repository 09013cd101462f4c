//! The container files (issue 14), checked without docker (the build machines have none):
//! the dev container's image installs exactly `scripts/deps.sh`'s packages, its
//! devcontainer.json parses and names files that exist, the runtime image runs unprivileged
//! with a healthcheck and a config the binary accepts, and the compose file's services and
//! mounts are there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use odyssey_test::pooler::odyssey_bin;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A Dockerfile's instructions as (keyword, arguments): continuation lines joined, comments
/// dropped.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .iter()
        .filter_map(|i| i.split_once(char::is_whitespace))
        .map(|(k, a)| (k.to_uppercase(), a.trim().to_string()))
        .collect()
}

/// The packages a Dockerfile installs: those `apt-get install` names, and deps.sh's list
/// where it runs a copy of scripts/deps.sh.
fn installed_packages(dockerfile: &str) -> BTreeSet<String> {
    let mut deps_copies = Vec::new();
    let mut packages = BTreeSet::new();
    for (keyword, args) in instructions(dockerfile) {
        let words: Vec<&str> = args.split_whitespace().collect();
        match keyword.as_str() {
            "COPY" if words.first() == Some(&"scripts/deps.sh") => {
                deps_copies.push(words.last().unwrap().to_string());
            }
            "RUN" => {
                for command in args.split("&&").flat_map(|c| c.split(';')) {
                    let words: Vec<&str> = command.split_whitespace().collect();
                    if words.starts_with(&["apt-get", "install"]) {
                        let names = words[2..].iter().filter(|w| !w.starts_with('-'));
                        packages.extend(names.map(|w| w.to_string()));
                    }
                    if words
                        .first()
                        .is_some_and(|w| deps_copies.iter().any(|c| c == w))
                    {
                        packages.extend(deps_list());
                    }
                }
            }
            _ => {}
        }
    }
    packages
}

/// `scripts/deps.sh --list`.
fn deps_list() -> BTreeSet<String> {
    let out = Command::new("bash")
        .arg(repo().join("scripts/deps.sh"))
        .arg("--list")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn dev_image_installs_exactly_the_deps_list() {
    let deps = deps_list();
    for needed in [
        "postgresql",
        "valgrind",
        "cargo-web",
        "rustc-web",
        "lintian",
    ] {
        assert!(deps.contains(needed), "deps.sh lacks {needed}");
    }
    let image = installed_packages(&read(".devcontainer/Dockerfile"));
    assert_eq!(image, deps);
}

#[test]
fn the_instructions_parser_sees_apt_get_and_continuations() {
    let file = "FROM debian\n# apt-get install commented\nRUN apt-get update && \\\n    \
                apt-get install -y --no-install-recommends a b\nCOPY scripts/deps.sh /d.sh\n\
                RUN /d.sh && rm -rf x\n";
    let mut expected: BTreeSet<String> = deps_list();
    expected.extend(["a".to_string(), "b".to_string()]);
    assert_eq!(installed_packages(file), expected);
    assert_eq!(instructions(file).len(), 4);
}

#[test]
fn devcontainer_json_parses_and_names_files_that_exist() {
    let dir = repo().join(".devcontainer");
    let text = read(".devcontainer/devcontainer.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("devcontainer.json");
    let build = &json["build"];
    let dockerfile = build["dockerfile"].as_str().expect("build.dockerfile");
    assert!(dir.join(dockerfile).is_file(), "{dockerfile} missing");
    let context = dir.join(build["context"].as_str().unwrap_or("."));
    assert!(context.is_dir());
    // Every file the image copies is in the build context.
    for (keyword, args) in instructions(&read(".devcontainer/Dockerfile")) {
        if keyword == "COPY" {
            let source = args.split_whitespace().next().unwrap();
            assert!(context.join(source).exists(), "COPY {source}: missing");
        }
    }
}

#[test]
fn runtime_image_runs_unprivileged_with_a_healthcheck() {
    let steps = instructions(&read("docker/Dockerfile"));
    let last_stage = steps.iter().rposition(|(k, _)| k == "FROM").unwrap();
    let last_stage = &steps[last_stage..];
    let user = last_stage.iter().rev().find(|(k, _)| k == "USER");
    assert!(
        user.is_some_and(|(_, u)| u != "root" && u != "0"),
        "{user:?}"
    );
    assert!(last_stage.iter().any(|(k, _)| k == "HEALTHCHECK"));
    for (keyword, args) in last_stage {
        if keyword == "COPY" && !args.starts_with("--from") {
            let source = args.split_whitespace().next().unwrap();
            assert!(repo().join(source).exists(), "COPY {source}: missing");
        }
    }

    let out = Command::new(odyssey_bin().unwrap())
        .arg("--test")
        .arg(repo().join("docker/odyssey.conf"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "the config warns");
}

#[test]
fn compose_brings_up_primary_standby_and_pooler() {
    let compose = read("docker/compose.yaml");
    let services: Vec<&str> = compose
        .lines()
        .skip_while(|l| *l != "services:")
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|s| !s.starts_with(' '))
        .collect();
    assert_eq!(services, ["primary", "standby", "pooler"]);
    // Every file mounted from docker/ exists.
    for mount in compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- ./"))
    {
        let file = mount.split(':').next().unwrap();
        assert!(repo().join("docker").join(file).is_file(), "{file} missing");
    }
    assert!(read("Makefile").contains("docker compose -f docker/compose.yaml up"));
}
