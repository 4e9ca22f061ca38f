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
