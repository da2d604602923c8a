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
