//! Where a sink's files live: HDFS through hdfs-native, or a local directory, behind one small
//! set of operations — create, append, close, rename without overwrite, list, delete.
//!
//! Every remote call is bounded by [`CALL_TIMEOUT`], so an unreachable NameNode or DataNode
//! surfaces as an error the task retries, never as a hang.

use std::{
    future::Future,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use bytes::Bytes;
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};

use crate::error::{Result, SluiceError};

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A file system holding a sink's `topics.dir`.
pub enum Store {
    Hdfs { client: Client },
    Local { root: PathBuf },
}

/// A file open for writing.
pub enum StoreFile {
    Hdfs(hdfs_native::file::FileWriter),
    Local(std::fs::File),
}

/// What a directory holds: entry names, not paths.
pub struct Listing {
    pub files: Vec<String>,
}

/// A file or directory found walking a tree, for people to browse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The path from the store's root.
    pub path: String,
    pub is_dir: bool,
    /// Bytes, for a file.
    pub length: u64,
}

impl Store {
    /// Connects to `hdfs://host:port` or opens `file:///path`.
    pub fn open(url: &str) -> Result<Store> {
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(SluiceError::Config(format!(
                    "store.url '{url}' must be an absolute file:/// URL"
                )));
            }
            return Ok(Store::Local { root: PathBuf::from(path) });
        }
        if !url.starts_with("hdfs://") {
            return Err(SluiceError::Config(format!(
                "store.url '{url}' must start with hdfs:// or file:///"
            )));
        }
        let client = ClientBuilder::new().with_url(url).build()?;
        Ok(Store::Hdfs { client })
    }

    fn local(root: &Path, path: &str) -> PathBuf {
        root.join(path.trim_start_matches('/'))
    }

    /// Creates `path` (and its parents); fails if it exists.
    pub async fn create(&self, path: &str) -> Result<StoreFile> {
        match self {
            Store::Hdfs { client } => {
                let options = WriteOptions::default().overwrite(false).create_parent(true);
                Ok(StoreFile::Hdfs(bounded(client.create(path, options)).await?))
            }
            Store::Local { root } => {
                let path = Self::local(root, path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let file = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
                Ok(StoreFile::Local(file))
            }
        }
    }

    /// Makes `path` visible under `target` in one atomic step; fails if `target` exists.
    pub async fn rename(&self, path: &str, target: &str) -> Result<()> {
        match self {
            Store::Hdfs { client } => bounded(client.rename(path, target, false)).await,
            Store::Local { root } => {
                let (from, to) = (Self::local(root, path), Self::local(root, target));
                std::fs::hard_link(&from, &to)?;
                std::fs::remove_file(&from)?;
                if let Some(parent) = to.parent() {
                    std::fs::File::open(parent)?.sync_all()?;
                }
                Ok(())
            }
        }
    }

    /// Moves directory `path` to `target` in one step; fails if `target` exists.
    pub async fn rename_dir(&self, path: &str, target: &str) -> Result<()> {
        match self {
            Store::Hdfs { client } => bounded(client.rename(path, target, false)).await,
            Store::Local { root } => {
                let (from, to) = (Self::local(root, path), Self::local(root, target));
                if to.exists() {
                    return Err(SluiceError::Execution(format!("{} already exists", to.display())));
                }
                std::fs::rename(&from, &to)?;
                Ok(())
            }
        }
    }

    /// Whether `path` names a file or directory.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        match self {
            Store::Hdfs { client } => match bounded(client.get_file_info(path)).await {
                Ok(_) => Ok(true),
                Err(SluiceError::Hdfs(HdfsError::FileNotFound(_))) => Ok(false),
                Err(e) => Err(e),
            },
            Store::Local { root } => Ok(Self::local(root, path).try_exists()?),
        }
    }

    pub async fn mkdirs(&self, path: &str) -> Result<()> {
        match self {
            Store::Hdfs { client } => bounded(client.mkdirs(path, 0o755, true)).await,
            Store::Local { root } => Ok(std::fs::create_dir_all(Self::local(root, path))?),
        }
    }

    /// The files directly inside `dir`; an absent directory holds none.
    pub async fn list(&self, dir: &str) -> Result<Listing> {
        let files = match self {
            Store::Hdfs { client } => match bounded(client.list_status(dir, false)).await {
                Ok(entries) => entries
                    .into_iter()
                    .filter(|e| !e.isdir)
                    .filter_map(|e| e.path.rsplit('/').next().map(str::to_string))
                    .collect(),
                Err(SluiceError::Hdfs(HdfsError::FileNotFound(_))) => Vec::new(),
                Err(e) => return Err(e),
            },
            Store::Local { root } => match std::fs::read_dir(Self::local(root, dir)) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(e.into()),
            },
        };
        Ok(Listing { files })
    }

    /// Deletes `path` and everything under it; an absent path is not an error. On HDFS this
    /// also drops the lease a crashed writer may still hold on an unfinished file.
    pub async fn delete(&self, path: &str) -> Result<()> {
        match self {
            Store::Hdfs { client } => match bounded(client.delete(path, true)).await {
                Ok(_) | Err(SluiceError::Hdfs(HdfsError::FileNotFound(_))) => Ok(()),
                Err(e) => Err(e),
            },
            Store::Local { root } => {
                let path = Self::local(root, path);
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match removed {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                    _ => Ok(()),
                }
            }
        }
    }
}

impl Store {
    /// Every file and directory under `dir`, directories before what they hold, walked
    /// breadth first and cut off after `limit` entries (the second value tells whether it was).
    /// An absent directory holds nothing.
    pub async fn tree(&self, dir: &str, limit: usize) -> Result<(Vec<TreeEntry>, bool)> {
        let mut entries = Vec::new();
        let mut pending = std::collections::VecDeque::from([dir.trim_end_matches('/').to_string()]);
        while let Some(next) = pending.pop_front() {
            let mut children = self.children(&next).await?;
            children.sort_by(|a, b| a.path.cmp(&b.path));
            for child in children {
                if entries.len() == limit {
                    return Ok((entries, true));
                }
                if child.is_dir {
                    pending.push_back(child.path.clone());
                }
                entries.push(child);
            }
        }
        Ok((entries, false))
    }

    /// What directory `dir` directly holds.
    async fn children(&self, dir: &str) -> Result<Vec<TreeEntry>> {
        let join = |name: &str| format!("{}/{}", dir.trim_end_matches('/'), name);
        match self {
            Store::Hdfs { client } => match bounded(client.list_status(dir, false)).await {
                Ok(statuses) => Ok(statuses
                    .into_iter()
                    .filter_map(|s| {
                        let name = s.path.rsplit('/').next()?.to_string();
                        Some(TreeEntry { path: join(&name), is_dir: s.isdir, length: s.length as u64 })
                    })
                    .collect()),
                Err(SluiceError::Hdfs(HdfsError::FileNotFound(_))) => Ok(Vec::new()),
                Err(e) => Err(e),
            },
            Store::Local { root } => match std::fs::read_dir(Self::local(root, dir)) {
                Ok(read) => read
                    .filter_map(|e| e.ok())
                    .map(|e| {
                        let metadata = e.metadata()?;
                        let name = e.file_name().to_string_lossy().into_owned();
                        Ok(TreeEntry { path: join(&name), is_dir: metadata.is_dir(), length: metadata.len() })
                    })
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// At most the first `limit` bytes of file `path`.
    pub async fn head(&self, path: &str, limit: usize) -> Result<Bytes> {
        match self {
            Store::Hdfs { client } => {
                let reader = bounded(client.read(path)).await?;
                let length = reader.file_length().min(limit);
                bounded(reader.read_range(0, length)).await
            }
            Store::Local { root } => {
                use std::io::Read;
                let mut data = Vec::new();
                std::fs::File::open(Self::local(root, path))?.take(limit as u64).read_to_end(&mut data)?;
                Ok(Bytes::from(data))
            }
        }
    }
}

impl StoreFile {
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        match self {
            StoreFile::Hdfs(writer) => bounded(writer.write_bytes(data)).await.map(drop),
            StoreFile::Local(file) => Ok(file.write_all(&data)?),
        }
    }

    /// Closes the file with its data durable: on HDFS every DataNode of the pipeline has
    /// acknowledged it and the NameNode has completed the file; locally it is fsynced.
    pub async fn close(self) -> Result<()> {
        match self {
            StoreFile::Hdfs(mut writer) => bounded(writer.close()).await,
            StoreFile::Local(file) => Ok(file.sync_all()?),
        }
    }
}

async fn bounded<T>(call: impl Future<Output = hdfs_native::Result<T>>) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(SluiceError::Execution(format!(
            "HDFS did not answer within {} s",
            CALL_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tree_lists_folders_before_their_files_and_a_head_reads_the_start_of_a_file() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("file://{}", root.path().display())).unwrap();
        for (path, body) in [("/topics/A/partition=0/A+0+0+1.json", "{\"n\":1}\n{\"n\":2}\n"), ("/topics/A/partition=1/A+1+0+0.json", "{}\n")] {
            let mut file = store.create(path).await.unwrap();
            file.write(Bytes::from(body)).await.unwrap();
            file.close().await.unwrap();
        }

        let (entries, truncated) = store.tree("/topics/", 100).await.unwrap();
        let listed: Vec<(&str, bool, u64)> = entries.iter().map(|e| (e.path.as_str(), e.is_dir, e.length)).collect();
        assert!(!truncated);
        assert_eq!(
            listed.iter().map(|(p, d, _)| (*p, *d)).collect::<Vec<_>>(),
            [
                ("/topics/A", true),
                ("/topics/A/partition=0", true),
                ("/topics/A/partition=1", true),
                ("/topics/A/partition=0/A+0+0+1.json", false),
                ("/topics/A/partition=1/A+1+0+0.json", false),
            ]
        );
        assert_eq!(listed[3].2, 16);
        assert_eq!(store.tree("/topics", 2).await.unwrap(), (entries[..2].to_vec(), true));
        assert!(store.tree("/nowhere", 10).await.unwrap().0.is_empty());
        assert_eq!(store.head("/topics/A/partition=0/A+0+0+1.json", 8).await.unwrap(), Bytes::from("{\"n\":1}\n"));
    }
}
