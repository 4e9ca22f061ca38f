//! Lines from files: one file tailed from its saved position (`FileStreamSource`), or whole
//! files taken from a spooling directory and moved or deleted once every line is in Kafka.
//! A file's position is its identity (device and inode) and a byte offset; a line's identity
//! is the file's and the offset the line starts at, so a restart neither repeats nor skips one.

use std::{
    collections::HashSet,
    io::{Read, Seek, SeekFrom},
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use serde_json::{Map, Value, json};
use tracing::{info, warn};

use super::{
    config::{Cleanup, LineValue, TextSource},
    line_value,
};
use crate::{
    connectors::{
        source_writer::{SourceContext, SourceRecord, SourceWriter},
        status::ConnectorState,
    },
    error::{Result, SluiceError},
};

/// How much of a file is read at a time.
const READ_SIZE: usize = 1 << 20;
/// How often a tailed file is looked at when it has no new line.
const TAIL_POLL: Duration = Duration::from_millis(500);

/// Where a file's reading has got to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FilePosition {
    /// `device:inode`, so a file replaced under the same name starts over.
    identity: (u64, u64),
    bytes: u64,
    lines: u64,
}

impl FilePosition {
    fn from_offset(offset: &Map<String, Value>) -> Option<FilePosition> {
        let identity = offset.get("sluice.file")?.as_str()?;
        let (device, inode) = identity.split_once(':')?;
        Some(FilePosition {
            identity: (device.parse().ok()?, inode.parse().ok()?),
            bytes: offset.get("position").and_then(Value::as_u64).unwrap_or(0),
            lines: offset.get("offset").and_then(Value::as_u64).unwrap_or(0),
        })
    }

    fn to_offset(self, done: bool) -> Map<String, Value> {
        let mut offset = Map::new();
        offset.insert("position".into(), json!(self.bytes));
        offset.insert("offset".into(), json!(self.lines));
        offset.insert("sluice.file".into(), json!(format!("{}:{}", self.identity.0, self.identity.1)));
        if done {
            offset.insert("sluice.done".into(), json!(true));
        }
        offset
    }
}

fn identity_of(metadata: &std::fs::Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

/// Reads complete lines of `path` from `position` on, calling `each` with the line (without
/// its `\n` or `\r\n`) and the offset it starts at; with `to_end`, a last line without a
/// newline counts too. Returns the position after the last line taken.
fn read_lines(path: &Path, mut position: FilePosition, to_end: bool, limit: usize, mut each: impl FnMut(&[u8], u64)) -> Result<FilePosition> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(position.bytes))?;
    let mut buffer = Vec::with_capacity(READ_SIZE);
    let mut taken = 0;
    loop {
        let start = buffer.len();
        buffer.resize(start + READ_SIZE, 0);
        let read = file.read(&mut buffer[start..])?;
        buffer.truncate(start + read);
        let mut consumed = 0;
        while let Some(end) = buffer[consumed..].iter().position(|b| *b == b'\n') {
            let line = &buffer[consumed..consumed + end];
            each(line.strip_suffix(b"\r").unwrap_or(line), position.bytes);
            position.bytes += end as u64 + 1;
            position.lines += 1;
            consumed += end + 1;
            taken += 1;
            if taken >= limit {
                return Ok(position);
            }
        }
        buffer.drain(..consumed);
        if read == 0 {
            if to_end && !buffer.is_empty() {
                each(&buffer, position.bytes);
                position.bytes += buffer.len() as u64;
                position.lines += 1;
            }
            return Ok(position);
        }
    }
}

/// Reads `path` from `position` in batches into `writer`, committing after each; returns the
/// position reached, or `None` when the source was stopped mid-write.
async fn copy_lines(writer: &mut SourceWriter, path: &Path, mut position: FilePosition, to_end: bool, batch_size: usize, value: LineValue) -> Result<Option<FilePosition>> {
    loop {
        let mut batch = Vec::new();
        let (device, inode) = position.identity;
        let owned = path.to_path_buf();
        let read_from = position;
        let (next, lines) = tokio::task::spawn_blocking(move || {
            let mut lines: Vec<(Vec<u8>, u64)> = Vec::new();
            let next = read_lines(&owned, read_from, to_end, batch_size, |line, at| lines.push((line.to_vec(), at)))?;
            Ok::<_, SluiceError>((next, lines))
        })
        .await
        .map_err(|e| SluiceError::Internal(e.to_string()))??;
        for (line, at) in lines {
            let identity = format!("{device}:{inode}:{at}");
            if !writer.already_written(&identity) {
                batch.push(SourceRecord { key: None, value: Some(line_value(value, &line)), identity });
            }
        }
        if next == position {
            return Ok(Some(position));
        }
        if !writer.write(&batch).await? {
            return Ok(None);
        }
        position = next;
        writer.commit(position.to_offset(false)).await?;
    }
}

/// `FileStreamSource`: tails `file`, starting over when it is replaced or truncated.
pub async fn tail(context: &SourceContext, source: &TextSource, topic: &str, value: LineValue) -> Result<()> {
    let TextSource::FileStream { file, batch_size } = source else {
        return Err(SluiceError::Internal("tail needs a FileStream source".into()));
    };
    let partition = json!({"filename": file.display().to_string()});
    let (mut writer, offset) = SourceWriter::open(context, partition, topic, true).await?;
    let mut position = FilePosition::from_offset(&offset);
    context.status.set_state(ConnectorState::Running);
    loop {
        match std::fs::metadata(file) {
            Ok(metadata) => {
                let identity = identity_of(&metadata);
                let current = match position {
                    Some(p) if p.identity == identity && p.bytes <= metadata.len() => p,
                    _ => FilePosition { identity, bytes: 0, lines: 0 },
                };
                match copy_lines(&mut writer, file, current, false, *batch_size, value).await? {
                    Some(reached) => position = Some(reached),
                    None => return Ok(()),
                }
                writer.forget_written();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        tokio::select! {
            _ = context.cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(TAIL_POLL) => {}
        }
    }
}

/// The spooldir line connector: each file of `input.path` matching the pattern, oldest name
/// first, every line into the topic, then the file moved to `finished.path` (or deleted).
pub async fn spool(context: &SourceContext, source: &TextSource, topic: &str, value: LineValue) -> Result<()> {
    let TextSource::SpoolDir { input, pattern, finished, error, cleanup, batch_size, minimum_age, empty_poll_wait } = source else {
        return Err(SluiceError::Internal("spool needs a SpoolDir source".into()));
    };
    for directory in [Some(input), Some(error), finished.as_ref()].into_iter().flatten() {
        std::fs::create_dir_all(directory)?;
    }
    context.status.set_state(ConnectorState::Running);
    let mut done: HashSet<(u64, u64)> = HashSet::new();
    loop {
        for path in ready_files(input, pattern, *minimum_age)? {
            let metadata = std::fs::metadata(&path)?;
            let identity = identity_of(&metadata);
            if done.contains(&identity) {
                continue;
            }
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let partition = json!({"fileName": name, "sluice.file": format!("{}:{}", identity.0, identity.1)});
            let (mut writer, offset) = SourceWriter::open(context, partition, topic, true).await?;
            let start = FilePosition::from_offset(&offset).filter(|p| p.identity == identity);
            let finished_already = offset.get("sluice.done").and_then(Value::as_bool) == Some(true);
            if !finished_already {
                let from = start.unwrap_or(FilePosition { identity, bytes: 0, lines: 0 });
                let reached = match copy_lines(&mut writer, &path, from, true, *batch_size, value).await {
                    Ok(Some(reached)) => reached,
                    Ok(None) => return Ok(()),
                    Err(e @ SluiceError::Io(_)) => {
                        warn!(file = %path.display(), error = %e, "moving an unreadable file to error.path");
                        move_into(&path, error)?;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                writer.commit(reached.to_offset(true)).await?;
            }
            info!(connector = %context.connector, file = %path.display(), "file done");
            match cleanup {
                Cleanup::Move => move_into(&path, finished.as_deref().unwrap_or(error))?,
                Cleanup::Delete => std::fs::remove_file(&path)?,
                Cleanup::None => {
                    done.insert(identity);
                }
            }
        }
        tokio::select! {
            _ = context.cancel.cancelled() => return Ok(()),
            _ = tokio::time::sleep(*empty_poll_wait) => {}
        }
    }
}

/// The files of `input` the pattern takes, older than `minimum_age`, by name.
fn ready_files(input: &Path, pattern: &regex::Regex, minimum_age: Duration) -> Result<Vec<PathBuf>> {
    let now = SystemTime::now();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(input)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let metadata = entry.metadata()?;
        let old_enough = metadata.modified().ok().and_then(|m| now.duration_since(m).ok()).is_none_or(|age| age >= minimum_age);
        if metadata.is_file() && pattern.is_match(&name) && old_enough {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Moves `path` into `directory`, keeping its name (with a timestamp added if it is taken).
fn move_into(path: &Path, directory: &Path) -> Result<()> {
    let name = path.file_name().ok_or_else(|| SluiceError::Internal(format!("{} has no name", path.display())))?;
    let mut target = directory.join(name);
    if target.exists() {
        let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        target = directory.join(format!("{}.{stamp}", name.to_string_lossy()));
    }
    std::fs::rename(path, target)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &[u8], to_end: bool, from: u64) -> (Vec<(String, u64)>, FilePosition) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, text).unwrap();
        let mut lines = Vec::new();
        let start = FilePosition { identity: (0, 0), bytes: from, lines: 0 };
        let end = read_lines(&path, start, to_end, usize::MAX, |line, at| lines.push((String::from_utf8_lossy(line).into_owned(), at))).unwrap();
        (lines, end)
    }

    #[test]
    fn complete_lines_are_read_with_the_offsets_they_start_at() {
        let (lines, end) = lines_of(b"one\r\ntwo\nthree", false, 0);
        assert_eq!(lines, [("one".to_string(), 0), ("two".to_string(), 5)]);
        assert_eq!((end.bytes, end.lines), (9, 2), "the unfinished last line waits");
        let (lines, end) = lines_of(b"one\r\ntwo\nthree", true, 5);
        assert_eq!(lines, [("two".to_string(), 5), ("three".to_string(), 9)]);
        assert_eq!(end.bytes, 14);
    }

    #[test]
    fn positions_round_trip_through_the_offset_map() {
        let position = FilePosition { identity: (8, 1234), bytes: 99, lines: 7 };
        assert_eq!(FilePosition::from_offset(&position.to_offset(true)), Some(position));
    }
}
