//! `sluice migrate`: SQL in version control with ksqlDB migrations' semantics. Files named
//! `V000001__name.sql` are applied in version order, each exactly once; every attempt is
//! recorded on the server in the `MIGRATION_EVENTS` stream (version, name, checksum, state,
//! times), so every client sees the same history.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use md5::{Digest, Md5};
use serde_json::Value;

use crate::{
    client::{Answer, Client, Endpoint},
    render,
    session::{Output, Session},
};

const CREATE_EVENTS: &str = "CREATE STREAM IF NOT EXISTS MIGRATION_EVENTS (
  VERSION_KEY STRING KEY, VERSION STRING, NAME STRING, STATE STRING, CHECKSUM STRING,
  STARTED_ON STRING, COMPLETED_ON STRING, PREVIOUS STRING, ERROR_REASON STRING
) WITH (KAFKA_TOPIC='sluice_MIGRATION_EVENTS', VALUE_FORMAT='JSON', PARTITIONS=1);";

/// A migration file of the directory.
struct MigrationFile {
    version: u32,
    name: String,
    path: PathBuf,
    checksum: String,
}

/// The latest recorded event of a version.
#[derive(Debug, Clone)]
struct Applied {
    name: String,
    state: String,
    checksum: String,
    completed_on: String,
    error: String,
}

/// `sluice migrate new NAME [DIR]`: the next version's empty file.
pub fn new_file(name: &str, dir: &Path) -> Result<i32> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let next = files(dir)?.last().map_or(1, |f| f.version + 1);
    let slug: String = name
        .trim()
        .chars()
        .map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    if slug.trim_matches('_').is_empty() {
        bail!("a migration needs a name made of letters or digits, not '{name}'");
    }
    let path = dir.join(format!("V{next:06}__{slug}.sql"));
    std::fs::write(&path, format!("-- {name}\n"))?;
    println!("Created {}", path.display());
    Ok(0)
}

/// `sluice migrate apply [--until VERSION] DIR`.
pub async fn apply(server: &Endpoint, dir: &Path, until: Option<u32>, defines: &[(String, String)]) -> Result<i32> {
    let client = Client::new(server);
    ensure_events(&client).await?;
    let applied = history(&client).await?;
    let mut previous = applied
        .iter()
        .filter(|(_, a)| a.state == "MIGRATED")
        .map(|(v, _)| *v)
        .max()
        .unwrap_or(0);
    let mut pending = Vec::new();
    for file in files(dir)? {
        if until.is_some_and(|u| file.version > u) {
            break;
        }
        match applied.get(&file.version).filter(|a| a.state == "MIGRATED") {
            Some(done) if done.checksum != file.checksum => bail!(
                "V{:06} ({}) was applied with checksum {} but the file now has {}; run `sluice migrate validate`",
                file.version, done.name, done.checksum, file.checksum
            ),
            Some(_) => {}
            None => pending.push(file),
        }
    }
    let mut ran = 0;
    for file in &pending {
        println!("Applying V{:06}__{} ({} of {})", file.version, file.name, ran + 1, pending.len());
        let started = now();
        record(&client, file, "RUNNING", &started, "", previous, "").await?;
        let mut session = Session::new(server, Output::Tabular);
        for (name, value) in defines {
            session.define(name, value);
        }
        let code = session.run_file(&file.path).await?;
        if code != 0 {
            let reason = format!("a statement of {} failed", file.path.display());
            record(&client, file, "ERROR", &started, &now(), previous, &reason).await?;
            eprintln!("Migration V{:06} failed; the versions after it were not applied.", file.version);
            return Ok(1);
        }
        record(&client, file, "MIGRATED", &started, &now(), previous, "").await?;
        previous = file.version;
        ran += 1;
    }
    if ran == 0 {
        println!("Nothing to apply: every migration is applied.");
    } else {
        println!("Applied {ran} migration(s); the current version is V{previous:06}.");
    }
    Ok(0)
}

/// `sluice migrate info DIR`: applied and pending versions.
pub async fn info(server: &Endpoint, dir: &Path) -> Result<i32> {
    let (applied, on_disk) = state(server, dir).await?;
    let mut versions: Vec<u32> = applied.keys().chain(on_disk.keys()).copied().collect();
    versions.sort();
    versions.dedup();
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            let file = on_disk.get(v);
            let record = applied.get(v);
            let name = record.map(|r| r.name.clone()).or_else(|| file.map(|f| f.name.clone())).unwrap_or_default();
            let state = record.map_or("PENDING".to_string(), |r| r.state.clone());
            let file_state = match (file, record) {
                (None, _) => "file missing".to_string(),
                (Some(f), Some(r)) if r.state == "MIGRATED" && r.checksum != f.checksum => "edited after apply".to_string(),
                (Some(_), _) => "ok".to_string(),
            };
            let completed = record.map(|r| r.completed_on.clone()).unwrap_or_default();
            let error = record.map(|r| r.error.clone()).unwrap_or_default();
            vec![format!("V{v:06}"), name, state, completed, file_state, error]
        })
        .collect();
    println!("{}", render::table(&["Version", "Name", "State", "Applied On (epoch ms)", "File", "Error"], &rows));
    Ok(0)
}

/// `sluice migrate validate DIR`: fails when an applied file was edited or removed.
pub async fn validate(server: &Endpoint, dir: &Path) -> Result<i32> {
    let (applied, on_disk) = state(server, dir).await?;
    let mut problems = Vec::new();
    for (version, record) in applied.iter().filter(|(_, r)| r.state == "MIGRATED") {
        match on_disk.get(version) {
            None => problems.push(format!("V{version:06} ({}) is applied but its file is missing", record.name)),
            Some(file) if file.checksum != record.checksum => problems.push(format!(
                "{} was edited after it was applied (checksum {} applied, {} now)",
                file.path.display(),
                record.checksum,
                file.checksum
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() {
        println!("Every applied migration matches its file.");
        Ok(0)
    } else {
        for problem in problems {
            eprintln!("{problem}");
        }
        Ok(1)
    }
}

/// What the server recorded, and the files of `dir`, both by version.
async fn state(server: &Endpoint, dir: &Path) -> Result<(BTreeMap<u32, Applied>, BTreeMap<u32, MigrationFile>)> {
    let client = Client::new(server);
    ensure_events(&client).await?;
    let applied = history(&client).await?;
    let on_disk = files(dir)?.into_iter().map(|f| (f.version, f)).collect();
    Ok((applied, on_disk))
}

/// The migration files of `dir`, by version; two files of one version are an error.
fn files(dir: &Path) -> Result<Vec<MigrationFile>> {
    let mut found: BTreeMap<u32, MigrationFile> = BTreeMap::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot read the migrations directory {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some((version, name)) = parse_name(file_name) else { continue };
        let text = std::fs::read(&path)?;
        let checksum = format!("{:x}", Md5::digest(&text));
        let file = MigrationFile { version, name, path: path.clone(), checksum };
        if let Some(other) = found.insert(version, file) {
            bail!("two migrations have version {version}: {} and {}", other.path.display(), path.display());
        }
    }
    Ok(found.into_values().collect())
}

/// `V000001__name.sql` → (1, "name").
fn parse_name(file_name: &str) -> Option<(u32, String)> {
    let stem = file_name.strip_prefix('V')?.strip_suffix(".sql")?;
    let (version, name) = stem.split_once("__")?;
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((version.parse().ok()?, name.to_string()))
}

async fn ensure_events(client: &Client) -> Result<()> {
    match client.ksql(CREATE_EVENTS, &Value::Null, &Value::Null).await? {
        Answer::Entities(_) => Ok(()),
        Answer::Refused(refusal) => bail!("cannot create the MIGRATION_EVENTS stream: {}", refusal.message),
    }
}

/// The latest event of every version, read with a pull query over `MIGRATION_EVENTS`.
async fn history(client: &Client) -> Result<BTreeMap<u32, Applied>> {
    let lines = match client.stream("SELECT * FROM MIGRATION_EVENTS;", &Value::Null).await? {
        Ok(lines) => lines,
        Err(refusal) => bail!("cannot read the migration history: {}", refusal.message),
    };
    let mut lines = Box::pin(lines);
    let mut columns: Vec<String> = Vec::new();
    let mut latest = BTreeMap::new();
    while let Some(line) = lines.next().await {
        let line = line?;
        match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(header)) => {
                columns = header["columnNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.as_str().map(str::to_string))
                    .collect();
            }
            Ok(Value::Array(cells)) => {
                let field = |name: &str| -> String {
                    columns
                        .iter()
                        .position(|c| c == name)
                        .and_then(|i| cells.get(i))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let Ok(version) = field("VERSION").parse::<u32>() else { continue };
                latest.insert(
                    version,
                    Applied {
                        name: field("NAME"),
                        state: field("STATE"),
                        checksum: field("CHECKSUM"),
                        completed_on: field("COMPLETED_ON"),
                        error: field("ERROR_REASON"),
                    },
                );
            }
            _ => {}
        }
    }
    Ok(latest)
}

async fn record(
    client: &Client,
    file: &MigrationFile,
    state: &str,
    started: &str,
    completed: &str,
    previous: u32,
    error: &str,
) -> Result<()> {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let values = [
        file.version.to_string(),
        file.version.to_string(),
        file.name.clone(),
        state.to_string(),
        file.checksum.clone(),
        started.to_string(),
        completed.to_string(),
        previous.to_string(),
        error.to_string(),
    ];
    let sql = format!(
        "INSERT INTO MIGRATION_EVENTS (VERSION_KEY, VERSION, NAME, STATE, CHECKSUM, STARTED_ON, COMPLETED_ON, PREVIOUS, ERROR_REASON) VALUES ({});",
        values.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ")
    );
    match client.ksql(&sql, &Value::Null, &Value::Null).await? {
        Answer::Entities(_) => Ok(()),
        Answer::Refused(refusal) => bail!("cannot record the migration's state: {}", refusal.message),
    }
}

fn now() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_versioned_sql_files_are_migrations() {
        assert_eq!(parse_name("V000001__create_ingestion.sql"), Some((1, "create_ingestion".into())));
        assert_eq!(parse_name("V12__x.sql"), Some((12, "x".into())));
        assert_eq!(parse_name("README.md"), None);
        assert_eq!(parse_name("V1_single_underscore.sql"), None);
        assert_eq!(parse_name("Vx__name.sql"), None);
    }
}
