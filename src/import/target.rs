//! The target directory of an import: refused when it exists (as Hadoop's output committer
//! refuses it), emptied first under `--delete-target-dir`, added to under `--append`; written
//! through a staging directory beside it, so it appears whole or not at all.

use crate::{
    connectors::hdfs::store::Store,
    error::{Result, SluiceError},
};

/// What to do with a target directory that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetMode {
    /// Refuse to import (Sqoop's default).
    Create,
    /// `--delete-target-dir`: delete it, then import.
    DeleteFirst,
    /// `--append`: add the new part files after the ones it holds, numbered on from them.
    Append,
}

/// Where an import lands: a directory on a file system.
#[derive(Debug, Clone)]
pub struct Target {
    /// `hdfs://host:port` or `file://`, for messages.
    file_system: String,
    path: String,
}

/// Opens the file system of `target_dir` and resolves its path: a full `hdfs://` or `file://`
/// URL names its own file system; a path is on `file_system`, else on `fs.defaultFS` from
/// `HADOOP_CONF_DIR`, else on the local file system; a relative path is under the user's home.
pub fn resolve(file_system: Option<&str>, target_dir: &str) -> Result<(Store, Target)> {
    if let Some(rest) = target_dir.strip_prefix("hdfs://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let url = format!("hdfs://{authority}");
        return Ok((Store::open(&url)?, Target { file_system: url, path: format!("/{path}") }));
    }
    if let Some(path) = target_dir.strip_prefix("file://") {
        return Ok((Store::open("file:///")?, Target::local(path)?));
    }
    match file_system {
        Some(url) if url.starts_with("file:") => Ok((Store::open("file:///")?, Target::local(target_dir)?)),
        Some(url) => {
            let url = url.trim_end_matches('/').to_string();
            let store = Store::open(&url)?;
            Ok((store, Target { file_system: url, path: hdfs_path(target_dir) }))
        }
        None => match configured_default_fs()? {
            Some(url) if !url.starts_with("file:") => {
                let url = url.trim_end_matches('/').to_string();
                Ok((Store::open(&url)?, Target { file_system: url, path: hdfs_path(target_dir) }))
            }
            _ => Ok((Store::open("file:///")?, Target::local(target_dir)?)),
        },
    }
}

/// `fs.defaultFS` (or its old name `fs.default.name`) in `$HADOOP_CONF_DIR/core-site.xml`.
fn configured_default_fs() -> Result<Option<String>> {
    let Some(dir) = std::env::var_os("HADOOP_CONF_DIR") else {
        return Ok(None);
    };
    let site = match std::fs::read_to_string(std::path::Path::new(&dir).join("core-site.xml")) {
        Ok(site) => site,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let property = regex::Regex::new(
        r"<name>\s*fs\.default(?:FS|\.name)\s*</name>\s*<value>\s*([^<\s]+)\s*</value>",
    )
    .map_err(|e| SluiceError::Internal(e.to_string()))?;
    Ok(property.captures(&site).map(|c| c[1].to_string()))
}

/// An HDFS path: a relative one is under `/user/<name>`, HDFS's home directory.
fn hdfs_path(path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let user = std::env::var("HADOOP_USER_NAME").or_else(|_| std::env::var("USER")).unwrap_or_default();
    format!("/user/{user}/{path}")
}

impl Target {
    /// A local path; a relative one is under the working directory.
    fn local(path: &str) -> Result<Target> {
        let absolute = std::path::absolute(path)?;
        Ok(Target { file_system: "file://".to_string(), path: absolute.display().to_string() })
    }

    pub fn url(&self) -> String {
        format!("{}{}", self.file_system, self.path)
    }

    fn parent_and_name(&self) -> (&str, &str) {
        let trimmed = self.path.trim_end_matches('/');
        match trimmed.rsplit_once('/') {
            Some(("", name)) => ("/", name),
            Some((parent, name)) => (parent, name),
            None => ("/", trimmed),
        }
    }

    /// Checks the target against `mode` and makes an empty staging directory beside it.
    pub async fn prepare(&self, store: &Store, mode: TargetMode) -> Result<String> {
        let exists = store.exists(&self.path).await?;
        match mode {
            TargetMode::Create if exists => {
                return Err(SluiceError::Config(format!("Output directory {} already exists", self.url())));
            }
            TargetMode::DeleteFirst if exists => {
                store.delete(&self.path).await?;
                tracing::info!(target = %self.url(), "Destination directory deleted.");
            }
            _ => {}
        }
        let (parent, name) = self.parent_and_name();
        let staging = format!("{}/_{name}.importing-{}", parent.trim_end_matches('/'), uuid::Uuid::new_v4());
        store.mkdirs(&staging).await?;
        Ok(staging)
    }

    /// Moves the written `files` from `staging` into the target; returns their final names.
    pub async fn commit(&self, store: &Store, staging: &str, files: Vec<String>, mode: TargetMode) -> Result<Vec<String>> {
        if mode != TargetMode::Append {
            store.create(&format!("{staging}/_SUCCESS")).await?.close().await?;
            store.rename_dir(staging, &self.path).await?;
            return Ok(files);
        }
        store.mkdirs(&self.path).await?;
        let mut next = next_part_number(&store.list(&self.path).await?.files);
        let mut moved = Vec::with_capacity(files.len());
        for file in files {
            let name = renumbered(&file, next);
            next += 1;
            store.rename(&format!("{staging}/{file}"), &format!("{}/{name}", self.path)).await?;
            moved.push(name);
        }
        store.delete(staging).await?;
        Ok(moved)
    }
}

/// The number after the largest `part-…-NNNNN` a directory holds, as Sqoop's append numbers on.
fn next_part_number(files: &[String]) -> u32 {
    files
        .iter()
        .filter(|name| name.starts_with("part"))
        .filter_map(|name| {
            let (_, number) = name.rsplit_once('-')?;
            let digits: String = number.chars().take_while(char::is_ascii_digit).collect();
            (digits.len() >= 5).then(|| digits.parse::<u32>().ok()).flatten()
        })
        .map(|n| n + 1)
        .max()
        .unwrap_or(0)
}

/// `part-m-00000.ext` numbered `number` instead.
fn renumbered(file: &str, number: u32) -> String {
    let (prefix, rest) = file.rsplit_once('-').unwrap_or(("part-m", file));
    let extension = rest.trim_start_matches(|c: char| c.is_ascii_digit());
    format!("{prefix}-{number:05}{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_files_are_numbered_on_from_the_largest_part() {
        let files = ["part-m-00000", "part-m-00003", "_SUCCESS", "notes.txt"].map(String::from);
        assert_eq!(next_part_number(&files), 4);
        assert_eq!(next_part_number(&[]), 0);
        assert_eq!(renumbered("part-m-00000", 4), "part-m-00004");
        assert_eq!(renumbered("part-m-00001.parquet", 12), "part-m-00012.parquet");
    }

    #[test]
    fn a_target_url_names_its_own_file_system() {
        let (_, target) = resolve(None, "hdfs://namenode:9000/old-telemetry").unwrap();
        assert_eq!(target.url(), "hdfs://namenode:9000/old-telemetry");
        let (_, target) = resolve(Some("hdfs://nn:8020/"), "/old-telemetry").unwrap();
        assert_eq!(target.url(), "hdfs://nn:8020/old-telemetry");
        let (_, target) = resolve(None, "file:///tmp/old").unwrap();
        assert_eq!(target.url(), "file:///tmp/old");
        assert_eq!(target.parent_and_name(), ("/tmp", "old"));
    }
}
