//! `ouradb dashboards`: the shipped Datasette and Grafana configurations,
//! written next to a database with its real path, and the commands to open them.
//!
//! The files live in `dashboards/` in the repository and are embedded here so
//! an installed binary (`cargo install`) needs no checkout. The Datasette
//! metadata is generated from the schema's comments, the canned queries in
//! `dashboards/datasette/queries/*.sql` and `dashboards/datasette/dashboard.json`
//! by [`generate_datasette_metadata`]; a test keeps the shipped file equal to
//! its output, so the descriptions never drift from `schema.sql`.

use std::collections::BTreeMap;
use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};

use crate::store;

/// The generated Datasette metadata (descriptions, canned queries, dashboard).
pub const DATASETTE_METADATA: &str = include_str!("../../dashboards/datasette/metadata.json");
/// Pinned Datasette and plugin versions.
pub const DATASETTE_REQUIREMENTS: &str =
    include_str!("../../dashboards/datasette/requirements.txt");
/// Grafana data source provisioning, with [`GRAFANA_DB_PLACEHOLDER`] as the file.
pub const GRAFANA_DATASOURCE: &str =
    include_str!("../../dashboards/grafana/datasources/ouradb.yaml");
/// Grafana dashboard provider, with [`GRAFANA_DASHBOARDS_PLACEHOLDER`] as its folder.
pub const GRAFANA_PROVIDER: &str = include_str!("../../dashboards/grafana/dashboards/ouradb.yaml");
/// The Grafana dashboard.
pub const GRAFANA_DASHBOARD: &str = include_str!("../../dashboards/grafana/dashboards/ouradb.json");

/// Database path in the shipped data source file: where a packaged Grafana
/// (systemd `ProtectHome=true`) can read it.
pub const GRAFANA_DB_PLACEHOLDER: &str = "/var/lib/grafana/ouradb/ouradb.sqlite";
/// Dashboard folder in the shipped provider file.
pub const GRAFANA_DASHBOARDS_PLACEHOLDER: &str = "/var/lib/grafana/dashboards/ouradb";

/// Database name the shipped metadata uses: Datasette names a database after
/// its file's stem, and the default database is `ouradb.sqlite`.
pub const DEFAULT_DB_NAME: &str = "ouradb";
/// The dashboard's slug: `/-/dashboards/ouradb`.
pub const DASHBOARD_SLUG: &str = "ouradb";
/// Datasette settings the dashboard needs: heart-rate aggregates over years
/// take more than the default 1 s, and two years of daily rows exceed the
/// default 1000-row page the charts receive.
pub const DATASETTE_SETTINGS: &[(&str, &str)] = &[
    ("sql_time_limit_ms", "10000"),
    ("max_returned_rows", "10000"),
];

/// What a table or view's comments say about it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ObjectDoc {
    pub description: String,
    pub columns: BTreeMap<String, String>,
}

/// Reads the documentation comments of schema SQL written in schema.sql's
/// style: the `--` block right above `CREATE TABLE`/`CREATE VIEW` describes
/// the object; a column is described by the comment ending its line (`name
/// TYPE, -- ...` in tables, `... AS name, -- ...` in views). Views documented
/// in prose (`day (YYYY-MM-DD), sleep_id, ...`) get their columns from the
/// `name (description)` mentions; `columns` filters out anything that is not a
/// real column of the object.
pub fn parse_schema_docs(
    sources: &[&str],
    columns: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, ObjectDoc> {
    let mut docs: BTreeMap<String, ObjectDoc> = BTreeMap::new();
    for sql in sources {
        let mut pending: Vec<String> = Vec::new();
        let mut current: Option<(String, bool)> = None; // (name, is_view)
        for line in sql.lines() {
            let trimmed = line.trim();
            if let Some((name, is_view)) = current.clone() {
                let (code, comment) = split_comment(line);
                if let Some(comment) = comment {
                    let col = if is_view {
                        view_column(code)
                    } else {
                        table_column(code)
                    };
                    if let Some(col) = col {
                        docs.entry(name.clone())
                            .or_default()
                            .columns
                            .insert(col, comment.to_owned());
                    }
                }
                if code.trim_end().ends_with(';') {
                    current = None;
                }
                continue;
            }
            if let Some(text) = trimmed.strip_prefix("--") {
                pending.push(text.trim().to_owned());
                continue;
            }
            if let (Some((table, col)), (_, Some(comment))) =
                (added_column(trimmed), split_comment(line))
            {
                docs.entry(table)
                    .or_default()
                    .columns
                    .insert(col, comment.to_owned());
            }
            if let Some(name) = create_name(trimmed) {
                let is_view = trimmed.to_ascii_uppercase().starts_with("CREATE VIEW");
                let doc = docs.entry(name.clone()).or_default();
                doc.description = pending.join(" ");
                if !trimmed.ends_with(';') {
                    current = Some((name, is_view));
                }
            }
            pending.clear();
        }
    }
    for (name, doc) in docs.iter_mut() {
        let real = columns.get(name).map(Vec::as_slice).unwrap_or(&[]);
        doc.columns.retain(|c, _| real.contains(c));
        for (col, desc) in prose_columns(&doc.description) {
            if real.contains(&col) {
                doc.columns.entry(col).or_insert(desc);
            }
        }
    }
    docs.retain(|name, _| columns.contains_key(name));
    docs
}

/// `CREATE TABLE name (` / `CREATE VIEW name AS` → name.
fn create_name(line: &str) -> Option<String> {
    let upper = line.to_ascii_uppercase();
    let rest = if upper.starts_with("CREATE TABLE ") {
        &line["CREATE TABLE ".len()..]
    } else if upper.starts_with("CREATE VIEW ") {
        &line["CREATE VIEW ".len()..]
    } else {
        return None;
    };
    let name: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// `ALTER TABLE name ADD COLUMN column ...` → (name, column).
fn added_column(line: &str) -> Option<(String, String)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    if upper.len() < 6 || upper[..2] != ["ALTER", "TABLE"] || upper[3..5] != ["ADD", "COLUMN"] {
        return None;
    }
    let col = words[5].trim_end_matches([',', ';']);
    (is_ident(words[2]) && is_ident(col)).then(|| (words[2].to_owned(), col.to_owned()))
}

/// Splits a line at its first `--` outside a string literal.
fn split_comment(line: &str) -> (&str, Option<&str>) {
    let mut in_str = false;
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'\'' => in_str = !in_str,
            b'-' if !in_str && bytes.get(i + 1) == Some(&b'-') => {
                let comment = line[i + 2..].trim();
                return (&line[..i], (!comment.is_empty()).then_some(comment));
            }
            _ => {}
        }
    }
    (line, None)
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `    name TYPE ...,` → name.
fn table_column(code: &str) -> Option<String> {
    let first = code.split_whitespace().next()?;
    let upper = first.to_ascii_uppercase();
    if matches!(
        upper.as_str(),
        "PRIMARY" | "UNIQUE" | "FOREIGN" | "CHECK" | "CONSTRAINT" | ")" | ");"
    ) {
        return None;
    }
    is_ident(first).then(|| first.to_owned())
}

/// `    expression AS name,` → name.
fn view_column(code: &str) -> Option<String> {
    let code = code.trim_end().trim_end_matches(',').trim_end();
    let upper = code.to_ascii_uppercase();
    let at = upper.rfind(" AS ")?;
    let name = code[at + 4..].trim();
    is_ident(name).then(|| name.to_owned())
}

/// `a, b (desc); c / d (desc)` → [(a, desc), (b, desc), (c, desc), (d, desc)].
fn prose_columns(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        let desc = rest[open + 1..open + close].trim().to_owned();
        let before = &rest[..open];
        let names_from = before
            .rfind([';', ':', ')', '.'])
            .map(|i| i + 1)
            .unwrap_or(0);
        for part in before[names_from..]
            .split([',', '/'])
            .flat_map(|p| p.split(" and "))
        {
            let name = part.trim();
            if is_ident(name) && !desc.is_empty() {
                out.push((name.to_owned(), desc.clone()));
            }
        }
        start += open + close + 1;
        rest = &text[start..];
    }
    out
}

/// One canned query file: `-- title:`, `-- description:` and any number of
/// `-- example: param=value` header lines, then the SQL. An example value
/// starting with `SELECT` is a query whose first value is the sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedQuery {
    pub name: String,
    pub title: String,
    pub description: String,
    pub sql: String,
    pub examples: Vec<(String, String)>,
}

pub fn parse_canned_query(name: &str, text: &str) -> anyhow::Result<CannedQuery> {
    let mut title = None;
    let mut description = None;
    let mut examples = Vec::new();
    let mut sql = Vec::new();
    let mut in_header = true;
    for line in text.lines() {
        if in_header {
            if let Some(h) = line.strip_prefix("--") {
                let h = h.trim();
                if let Some(v) = h.strip_prefix("title:") {
                    title = Some(v.trim().to_owned());
                } else if let Some(v) = h.strip_prefix("description:") {
                    description = Some(v.trim().to_owned());
                } else if let Some(v) = h.strip_prefix("example:") {
                    let (k, v) = v.trim().split_once('=').with_context(|| {
                        format!("query {name}: an example is `-- example: param=value`")
                    })?;
                    examples.push((k.trim().to_owned(), v.trim().to_owned()));
                } else {
                    bail!(
                        "query {name}: unknown header line `{line}`; use title, description or example"
                    );
                }
                continue;
            }
            in_header = false;
        }
        sql.push(line);
    }
    let sql = sql.join("\n").trim().to_owned();
    if sql.is_empty() {
        bail!("query {name}: no SQL after the header");
    }
    Ok(CannedQuery {
        name: name.to_owned(),
        title: title.with_context(|| format!("query {name}: missing `-- title:`"))?,
        description: description
            .with_context(|| format!("query {name}: missing `-- description:`"))?,
        sql,
        examples,
    })
}

/// The canned queries in `dir/queries/*.sql`, by file name.
pub fn read_canned_queries(dir: &Path) -> anyhow::Result<Vec<CannedQuery>> {
    let qdir = dir.join("queries");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&qdir)
        .with_context(|| format!("cannot list {}", qdir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "sql"));
    files.sort();
    files
        .iter()
        .map(|p| {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            parse_canned_query(name, &text)
        })
        .collect()
}

/// Builds the Datasette metadata from the schema and the sources in `dir`
/// (`dashboards/datasette`): table and column descriptions from the schema's
/// comments, the canned queries, and the `datasette-dashboards` dashboard.
pub fn generate_datasette_metadata(dir: &Path) -> anyhow::Result<String> {
    let objects = store::schema_objects().context("cannot build the schema in memory")?;
    let columns: BTreeMap<String, Vec<String>> = objects
        .iter()
        .map(|o| (o.name.clone(), o.columns.clone()))
        .collect();
    let sources: Vec<&str> = store::migration_sources().collect();
    let docs = parse_schema_docs(&sources, &columns);

    let mut tables = Map::new();
    for o in &objects {
        let doc = docs.get(&o.name).cloned().unwrap_or_default();
        let mut t = Map::new();
        if !doc.description.is_empty() {
            t.insert("description".into(), json!(doc.description));
        }
        if !doc.columns.is_empty() {
            t.insert("columns".into(), json!(doc.columns));
        }
        // Newest first is what a person opening a table wants to see.
        if o.kind == "table"
            && let Some(c) = ["day", "ts", "start_day"]
                .iter()
                .find(|c| o.columns.iter().any(|x| x == *c))
        {
            t.insert("sort_desc".into(), json!(c));
        }
        tables.insert(o.name.clone(), Value::Object(t));
    }

    let mut queries = Map::new();
    for q in read_canned_queries(dir)? {
        queries.insert(
            q.name.clone(),
            json!({"title": q.title, "description": q.description, "sql": q.sql}),
        );
    }

    let dash_path = dir.join("dashboard.json");
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(&dash_path)
            .with_context(|| format!("cannot read {}", dash_path.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", dash_path.display()))?;

    let metadata = json!({
        "title": "ouradb",
        "description": "Oura Ring data mirrored by ouradb. Descriptions come from the schema's comments; see the dashboard at /-/dashboards/ouradb and the canned queries below.",
        "databases": {
            DEFAULT_DB_NAME: {
                "tables": tables,
                "queries": queries,
            }
        },
        "plugins": { "datasette-dashboards": dashboard },
    });
    Ok(serde_json::to_string_pretty(&metadata)? + "\n")
}

/// The shipped metadata for a database Datasette will call `db_name`.
pub fn metadata_for(db_name: &str) -> anyhow::Result<String> {
    let mut m: Value = serde_json::from_str(DATASETTE_METADATA)?;
    if db_name != DEFAULT_DB_NAME {
        let dbs = m["databases"]
            .as_object_mut()
            .context("metadata without databases")?;
        let entry = dbs
            .remove(DEFAULT_DB_NAME)
            .context("metadata without the ouradb database")?;
        dbs.insert(db_name.to_owned(), entry);
        for dash in m["plugins"]["datasette-dashboards"]
            .as_object_mut()
            .context("metadata without dashboards")?
            .values_mut()
        {
            for key in ["charts", "filters"] {
                let Some(items) = dash.get_mut(key).and_then(Value::as_object_mut) else {
                    continue;
                };
                for item in items.values_mut() {
                    if item.get("db").is_some() {
                        item["db"] = json!(db_name);
                    }
                }
            }
        }
    }
    Ok(serde_json::to_string_pretty(&m)? + "\n")
}

/// The name Datasette gives a database file: its stem.
pub fn datasette_db_name(db: &Path) -> String {
    db.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| DEFAULT_DB_NAME.to_owned())
}

/// Where `ouradb dashboards` writes the files for `db` unless told otherwise:
/// beside it, so each database has its own.
pub fn default_dir(db: &Path) -> PathBuf {
    let parent = db.parent().unwrap_or(Path::new("."));
    parent.join(format!("{}-dashboards", datasette_db_name(db)))
}

/// The files written for one database.
#[derive(Debug, Clone)]
pub struct Installed {
    pub db: PathBuf,
    pub dir: PathBuf,
    pub metadata: PathBuf,
    pub requirements: PathBuf,
    pub grafana_provisioning: PathBuf,
    pub grafana_dashboards: PathBuf,
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes the Datasette and Grafana files for `db` into `dir`, with the
/// database's real name and absolute path in them.
pub fn install(db: &Path, dir: &Path) -> anyhow::Result<Installed> {
    let db = std::path::absolute(db).with_context(|| format!("cannot resolve {}", db.display()))?;
    let dir =
        std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let metadata = dir.join("datasette/metadata.json");
    let requirements = dir.join("datasette/requirements.txt");
    write(&metadata, &metadata_for(&datasette_db_name(&db))?)?;
    write(&requirements, DATASETTE_REQUIREMENTS)?;
    let provisioning = dir.join("grafana/provisioning");
    let dashboards = dir.join("grafana/dashboards");
    write(
        &provisioning.join("datasources/ouradb.yaml"),
        &yaml_with(
            GRAFANA_DATASOURCE,
            &["datasources", "0", "jsonData", "path"],
            &db.display().to_string(),
        )?,
    )?;
    write(
        &provisioning.join("dashboards/ouradb.yaml"),
        &yaml_with(
            GRAFANA_PROVIDER,
            &["providers", "0", "options", "path"],
            &dashboards.display().to_string(),
        )?,
    )?;
    write(&dashboards.join("ouradb.json"), GRAFANA_DASHBOARD)?;
    Ok(Installed {
        db,
        dir,
        metadata,
        requirements,
        grafana_provisioning: provisioning,
        grafana_dashboards: dashboards,
    })
}

/// `template` (a shipped YAML file) with the string at `keys` (mapping keys,
/// or sequence indexes as digits) set to `value` by a YAML serializer, so
/// every path reads back as written: `/x/Oura #1/db` pasted into the text
/// would be cut at ` #` (a comment), and `: ` or quotes would break it. The
/// template's opening comment is kept.
fn yaml_with(template: &str, keys: &[&str], value: &str) -> anyhow::Result<String> {
    let mut doc: yaml_serde::Value =
        yaml_serde::from_str(template).context("the shipped YAML file is not valid")?;
    let mut at = &mut doc;
    for key in keys {
        at = match key.parse::<usize>() {
            Ok(i) => at.get_mut(i),
            Err(_) => at.get_mut(*key),
        }
        .with_context(|| format!("the shipped YAML file has no {}", keys.join(".")))?;
    }
    *at = yaml_serde::Value::String(value.to_owned());
    let header: String = template
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(header + &yaml_serde::to_string(&doc).context("cannot write YAML")?)
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:@%+,".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The arguments after `datasette` that serve `installed` on `port`.
pub fn datasette_args(installed: &Installed, port: u16) -> Vec<String> {
    let mut args = vec![
        "serve".to_owned(),
        installed.db.display().to_string(),
        "--metadata".to_owned(),
        installed.metadata.display().to_string(),
        "--host".to_owned(),
        "127.0.0.1".to_owned(),
        "--port".to_owned(),
        port.to_string(),
    ];
    for (k, v) in DATASETTE_SETTINGS {
        args.extend(["--setting".to_owned(), (*k).to_owned(), (*v).to_owned()]);
    }
    args
}

/// The one-line command that serves the dashboard.
pub fn datasette_command(installed: &Installed, port: u16) -> String {
    std::iter::once("datasette".to_owned())
        .chain(datasette_args(installed, port))
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lines `ouradb dashboards` and `ouradb demo` print: how to install
/// Datasette once, where Grafana's files are, and (last) the command to run.
pub fn instructions(installed: &Installed, port: u16) -> String {
    let venv = installed.dir.join("venv");
    let q = |p: &Path| shell_quote(&p.display().to_string());
    format!(
        "dashboards for {db} written to {dir}\n\
         Grafana: copy {prov} into Grafana's provisioning folder (needs the frser-sqlite-datasource plugin; see README \"Dashboards\")\n\
         Datasette, once: python3 -m venv {venv} && {venv}/bin/pip install -r {req} && export PATH={venv}/bin:$PATH\n\
         then open http://127.0.0.1:{port}/-/dashboards/{slug} after running:\n\
         {cmd}",
        db = installed.db.display(),
        dir = installed.dir.display(),
        prov = q(&installed.grafana_provisioning),
        venv = q(&venv),
        req = q(&installed.requirements),
        slug = DASHBOARD_SLUG,
        cmd = datasette_command(installed, port),
    )
}

/// Finds an executable on PATH.
fn which(program: &str) -> Option<PathBuf> {
    // why: finding an installed program on PATH is not configuration.
    #[allow(clippy::disallowed_methods, reason = "the search PATH, not a setting")]
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// `ouradb dashboards`.
pub fn run(db: &Path, dir: Option<&Path>, serve: bool, port: u16) -> anyhow::Result<ExitCode> {
    if !db.exists() {
        eprintln!(
            "ouradb: note: {} does not exist yet; run `ouradb sync` (or `ouradb demo`) to fill it",
            db.display()
        );
    }
    let dir = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_dir(db));
    let installed = install(db, &dir)?;
    println!("{}", instructions(&installed, port));
    if !serve {
        return Ok(ExitCode::SUCCESS);
    }
    let venv_bin = installed.dir.join("venv/bin/datasette");
    let program = if venv_bin.is_file() {
        venv_bin
    } else {
        which("datasette").with_context(|| {
            "datasette is not installed: run the `Datasette, once:` line above, then `ouradb dashboards --serve` again"
        })?
    };
    eprintln!(
        "starting {}; open http://127.0.0.1:{port}/-/dashboards/{DASHBOARD_SLUG} (Ctrl-C stops it)",
        program.display()
    );
    let status = std::process::Command::new(&program)
        .args(datasette_args(&installed, port))
        .status()
        .with_context(|| format!("cannot start {}", program.display()))?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_come_from_line_comments_and_prose() {
        let sql = "-- People: id (the key), a, b (both counted)\n\
                   CREATE TABLE people (\n    \
                   id TEXT PRIMARY KEY, -- person id\n    \
                   n INTEGER,           -- count of 'x -- y'\n    \
                   PRIMARY KEY (id)\n);\n\n\
                   -- A view.\n\
                   CREATE VIEW v AS\n\
                   SELECT p.id AS who,      -- who it is\n       \
                   'a--b' AS s,             -- a string with dashes\n       \
                   1 AS gone                -- not a column any more\n\
                   FROM people p;\n";
        let columns = BTreeMap::from([
            (
                "people".to_owned(),
                vec!["id".into(), "n".into(), "a".into(), "b".into()],
            ),
            ("v".to_owned(), vec!["who".into(), "s".into()]),
        ]);
        let docs = parse_schema_docs(&[sql], &columns);
        let p = &docs["people"];
        assert_eq!(p.description, "People: id (the key), a, b (both counted)");
        assert_eq!(
            p.columns["id"], "person id",
            "a line comment wins over prose"
        );
        assert_eq!(p.columns["n"], "count of 'x -- y'");
        assert_eq!(p.columns["a"], "both counted");
        assert_eq!(p.columns["b"], "both counted");
        let v = &docs["v"];
        assert_eq!(v.description, "A view.");
        assert_eq!(v.columns["who"], "who it is");
        assert_eq!(v.columns["s"], "a string with dashes");
        assert!(!v.columns.contains_key("gone"));
    }

    #[test]
    fn canned_query_headers_are_checked() {
        let q = parse_canned_query(
            "q",
            "-- title: T\n-- description: D\n-- example: n=3\nSELECT :n",
        )
        .unwrap();
        assert_eq!((q.title.as_str(), q.description.as_str()), ("T", "D"));
        assert_eq!(q.examples, vec![("n".to_owned(), "3".to_owned())]);
        assert_eq!(q.sql, "SELECT :n");
        let missing = parse_canned_query("q", "-- title: T\nSELECT 1").unwrap_err();
        assert!(missing.to_string().contains("description"), "{missing}");
        let unknown = parse_canned_query("q", "-- titel: T\nSELECT 1").unwrap_err();
        assert!(unknown.to_string().contains("unknown header"), "{unknown}");
    }

    #[test]
    fn shell_quote_quotes_only_when_needed() {
        assert_eq!(shell_quote("/a/b-c.sqlite"), "/a/b-c.sqlite");
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
