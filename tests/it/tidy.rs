//! Invariants of the source tree that no clippy lint can express, checked
//! on the text of `src/` (ARCHITECTURE.md names each): which module may use
//! which crate. Unit-test modules (from a file's first `#[cfg(test)]` on)
//! are left out: tests may read the database directly.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, relative path and non-test text.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    files.sort();
    assert!(files.len() > 20, "src/ read: {files:?}");
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = match text.find("#[cfg(test)]") {
                Some(i) => text[..i].to_owned(),
                None => text,
            };
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            (rel, code)
        })
        .collect()
}

/// Files outside `allowed` (path prefixes) whose code names `needle`.
fn users_outside(needle: &str, allowed: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(path, code)| {
            !allowed.iter().any(|a| path.starts_with(a))
                && code
                    .lines()
                    .any(|l| !l.trim_start().starts_with("//") && l.contains(needle))
        })
        .map(|(path, _)| path)
        .collect()
}

#[test]
fn only_the_store_runs_sql() {
    assert_eq!(
        users_outside("rusqlite", &["src/store/"]),
        Vec::<String>::new()
    );
}

#[test]
fn anyhow_is_used_only_at_the_edge() {
    assert_eq!(users_outside("anyhow", &["src/cli/"]), Vec::<String>::new());
}

#[test]
fn the_simulator_is_used_only_by_the_demo() {
    assert_eq!(
        users_outside("ouradb_sim", &["src/cli/mod.rs"]),
        Vec::<String>::new()
    );
}

/// The layers of ARCHITECTURE.md's picture, lowest first: a module may name
/// (`crate::x`) only modules of lower layers, so dependencies point down
/// and no two modules depend on each other.
const LAYERS: &[&[&str]] = &[
    &["registry", "rows", "clock", "secret", "error_kind"],
    &["metrics"],
    &["config"],
    &["store"],
    &["api", "coverage"],
    &["sync"],
    &["webhook"],
    &["daemon"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn dependencies_point_down_the_layers() {
    let mut upward = Vec::new();
    for (path, code) in sources() {
        let Some(rest) = path.strip_prefix("src/") else {
            continue;
        };
        let module = rest.split(['/', '.']).next().unwrap();
        if module == "lib" || module == "main" {
            continue;
        }
        let own =
            layer_of(module).unwrap_or_else(|| panic!("{path}: module {module} has no layer"));
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let used: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if used == module {
                    continue;
                }
                match layer_of(&used) {
                    Some(l) if l < own => {}
                    _ => upward.push(format!("{path}: {module} uses {used}")),
                }
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert_eq!(upward, Vec::<String>::new());
}
