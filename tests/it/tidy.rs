//! Invariants of the source tree that no clippy lint can express, checked
//! on the text of `src/` (ARCHITECTURE.md names each): which module may use
//! which crate, and how long a config function may be. Unit-test modules
//! (from a file's first `#[cfg(test)]` on) are left out: tests may read the
//! database directly.

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

/// What becomes of a page's documents is decided apart from the SQL that
/// writes it, so a second storage engine shares the decision.
#[test]
fn the_keying_policy_runs_no_sql() {
    let (_, code) = sources()
        .into_iter()
        .find(|(path, _)| path == "src/store/keying.rs")
        .expect("src/store/keying.rs");
    for sql in ["rusqlite", "Connection", "prepare", "execute"] {
        assert!(!code.contains(sql), "keying.rs names {sql}");
    }
}

#[test]
fn anyhow_is_used_only_at_the_edge() {
    assert_eq!(users_outside("anyhow", &["src/cli/"]), Vec::<String>::new());
}

#[test]
fn the_simulator_is_used_only_by_the_demo() {
    assert_eq!(
        users_outside("ouradb_sim", &["src/cli/demo.rs"]),
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

/// `code` with comments, string and char literals blanked to spaces (line
/// breaks kept), so braces and `fn` inside them count for nothing.
fn blank_literals(code: &str) -> String {
    let chars: Vec<char> = code.chars().collect();
    let mut out = String::with_capacity(code.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let end = if rest.starts_with(&['/', '/']) {
            rest.iter().position(|&c| c == '\n').unwrap_or(rest.len())
        } else if rest.starts_with(&['/', '*']) {
            (2..rest.len())
                .find(|&k| rest[k - 1] == '*' && rest[k] == '/')
                .map_or(rest.len(), |k| k + 1)
        } else if let Some(len) = raw_string_len(rest) {
            len
        } else if rest[0] == '"' {
            quoted_len(rest, '"')
        } else if rest[0] == '\'' && (rest.get(1) == Some(&'\\') || rest.get(2) == Some(&'\'')) {
            // A char literal; `'a` without a closing quote is a lifetime.
            quoted_len(rest, '\'')
        } else {
            0
        };
        if end == 0 {
            out.push(rest[0]);
            i += 1;
        } else {
            rest[..end].iter().for_each(|&c| blank(&mut out, c));
            i += end;
        }
    }
    out
}

/// Length of the literal opening `rest` with `quote`, escapes skipped.
fn quoted_len(rest: &[char], quote: char) -> usize {
    let mut k = 1;
    while k < rest.len() && rest[k] != quote {
        k += if rest[k] == '\\' { 2 } else { 1 };
    }
    (k + 1).min(rest.len())
}

/// Length of the raw string (`r"…"`, `r#"…"#`, `br"…"`) opening `rest`.
fn raw_string_len(rest: &[char]) -> Option<usize> {
    let start = usize::from(rest.first() == Some(&'b'));
    if rest.get(start) != Some(&'r') {
        return None;
    }
    let hashes = rest[start + 1..].iter().take_while(|&&c| c == '#').count();
    let open = start + 1 + hashes;
    if rest.get(open) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let body = open + 1;
    let found = (body..rest.len()).find(|&k| rest[k..].starts_with(&close));
    Some(found.map_or(rest.len(), |k| k + close.len()))
}

/// Every function with a body in `code`: its name and its length in lines,
/// from the line of `fn` to the line of its closing brace.
fn function_lengths(code: &str) -> Vec<(String, usize)> {
    let code = blank_literals(code);
    let bytes = code.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    for (at, _) in code.match_indices("fn") {
        let before_ok = at == 0 || !ident(bytes[at - 1]);
        let after_ok = bytes.get(at + 2).is_some_and(|b| b.is_ascii_whitespace());
        if !(before_ok && after_ok) {
            continue;
        }
        let name: String = code[at + 2..]
            .trim_start()
            .chars()
            .take_while(|&c| c.is_ascii() && ident(c as u8))
            .collect();
        // The body opens at the first `{` unless a `;` ends a bodiless
        // declaration first.
        let Some(open) = code[at..].find(['{', ';']).map(|k| at + k) else {
            continue;
        };
        if bytes[open] == b';' || name.is_empty() {
            continue;
        }
        let mut depth = 0usize;
        let close = (open..bytes.len()).find(|&k| {
            match bytes[k] {
                b'{' => depth += 1,
                b'}' => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        let close = close.unwrap_or_else(|| panic!("fn {name}: no closing brace"));
        let lines = code[at..=close].matches('\n').count() + 1;
        found.push((name, lines));
    }
    found
}

/// Functions in files under `prefix` longer than `limit` lines.
fn functions_longer_than(prefix: &str, limit: usize) -> Vec<String> {
    let mut long = Vec::new();
    for (path, code) in sources().into_iter().filter(|(p, _)| p.starts_with(prefix)) {
        for (name, lines) in function_lengths(&code) {
            if lines > limit {
                long.push(format!("{path}: fn {name} is {lines} lines"));
            }
        }
    }
    long
}

/// Accounts and every later section are added to the config room, not to
/// one long function: each section is parsed by its own short function.
#[test]
fn no_function_in_the_config_room_is_longer_than_100_lines() {
    let config: Vec<_> = sources()
        .into_iter()
        .filter(|(p, _)| p.starts_with("src/config/"))
        .collect();
    assert!(config.len() > 5, "src/config/ read: {}", config.len());
    assert_eq!(
        functions_longer_than("src/config/", 100),
        Vec::<String>::new()
    );
}

#[test]
fn function_lengths_see_through_comments_and_literals() {
    let code = r####"
pub(crate) async fn first<'a>(x: &'a str) -> impl Fn(u8) -> u8 {
    let a = "}}{ fn fake() {";
    let b = '}';
    let c = '\'';
    let d = r#"{"}"#;
    // } fn commented() {
    /* } */
    move |y| y
}
trait T {
    fn bodiless(&self);
}
fn second() -> fn(u8) {
    fn inner(_: u8) {}
    inner
}
"####;
    let expected = [("first", 9), ("second", 4), ("inner", 1)];
    let expected: Vec<(String, usize)> = expected.iter().map(|&(n, l)| (n.to_owned(), l)).collect();
    assert_eq!(function_lengths(code), expected);
}
