//! The crate's shape holds: the layer list in `src/lib.rs` names every module once, no module
//! uses one of a higher layer, and no file of `src` passes 500 lines (its tests aside).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Module → layer, from the `//! - N Name: `module` (...)` lines of lib.rs.
fn layers() -> BTreeMap<String, u32> {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("read lib.rs");
    // Each layer's text, its wrapped lines joined.
    let mut texts: Vec<(u32, String)> = Vec::new();
    for line in lib.lines().take_while(|l| l.starts_with("//!")) {
        let text = line.trim_start_matches("//!").trim();
        if let Some(rest) = text.strip_prefix("- ")
            && let Some(n) = rest.split_whitespace().next().and_then(|n| n.parse().ok())
        {
            texts.push((n, rest.to_string()));
            continue;
        }
        match texts.last_mut() {
            Some((_, t)) if !text.is_empty() => {
                t.push(' ');
                t.push_str(text);
            }
            _ => {}
        }
    }
    let mut layers = BTreeMap::new();
    for (layer, text) in texts {
        // A module is a backticked name followed by " (".
        let mut rest = text.as_str();
        while let Some(start) = rest.find('`') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('`') else { break };
            let name = &after[..end];
            let tail = &after[end + 1..];
            if tail.starts_with(" (") && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                let old = layers.insert(name.to_string(), layer);
                assert!(old.is_none(), "lib.rs lists `{name}` twice");
            }
            rest = tail;
        }
    }
    layers
}

/// Every top-level module of the crate: a file or a folder under src (main and lib aside).
fn modules() -> BTreeSet<String> {
    fs::read_dir(src())
        .expect("read src")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_stem()?.to_str()?.to_string();
            (path.is_dir() || path.extension().is_some_and(|x| x == "rs")).then_some(name)
        })
        .filter(|n| n != "main" && n != "lib")
        .collect()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's code names through `crate::` (comments aside).
fn uses(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d}`: the first name of each top-level item.
            let mut depth = 0;
            let mut item = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        rest = &group[i..];
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item = true,
                    c if item && (c.is_ascii_alphabetic() || c == '_') => {
                        let name: String = group[i..]
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        found.insert(name);
                        item = false;
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    // Macros exported at the crate root (`od_info!`) belong to the logger.
    found
        .into_iter()
        .map(|n| {
            if n.starts_with("od_") {
                "logger".into()
            } else {
                n
            }
        })
        .collect()
}

#[test]
fn lib_rs_names_every_module_once() {
    let listed: BTreeSet<String> = layers().into_keys().collect();
    assert_eq!(
        listed,
        modules(),
        "lib.rs's layer list and the modules under src differ"
    );
}

#[test]
fn no_module_uses_a_higher_layer() {
    let layers = layers();
    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut violations = Vec::new();
    for path in all {
        let relative = path.strip_prefix(src()).expect("under src");
        let module = relative
            .components()
            .next()
            .and_then(|c| Path::new(c.as_os_str()).file_stem())
            .and_then(|s| s.to_str())
            .expect("module name")
            .to_string();
        let Some(&own) = layers.get(&module) else {
            continue; // main.rs and lib.rs
        };
        let text = fs::read_to_string(&path).expect("read source");
        for used in uses(&text) {
            if let Some(&layer) = layers.get(&used)
                && layer > own
            {
                violations.push(format!(
                    "{} (layer {own}) uses `{used}` (layer {layer})",
                    relative.display()
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn no_source_file_passes_500_lines() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    let mut long = Vec::new();
    for path in all {
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("read source");
        let code = text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .count();
        if code > MAX_FILE_LINES {
            long.push(format!("{}: {code} lines", path.display()));
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_checker_sees_grouped_and_plain_paths() {
    let found = uses(
        "use crate::{od_info, router::{self, Checkout}};\nlet x = crate::pool::X; // crate::frontend\n",
    );
    let expected: BTreeSet<String> = ["logger", "router", "pool"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
}
