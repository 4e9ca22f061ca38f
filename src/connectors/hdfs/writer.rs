//! One topic-partition's two-phase committer: records are appended to an in-progress file
//! under `+tmp`, and a file is committed by closing it durably, then renaming it to its Connect
//! name in one atomic step.
//!
//! Invariants: a committed name carries exactly the first and last offsets of its records, no
//! offset is in two committed files, and nothing in progress is ever under a committed name.
//! So the highest end offset among the committed names is the sink's position, and recovery
//! only has to read it back and drop whatever was in progress.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;

use super::{
    config::{ErrorsTolerance, HdfsSinkConfig},
    format::{HeldRecord, RecordEncoder},
    layout::PartitionLayout,
    store::{Store, StoreFile},
};
use crate::{
    connectors::status::ConnectorStatus,
    error::{Result, SluiceError},
    format::RawRecord,
};

/// Encoded lines are shipped to the store in pieces of about this size.
const WRITE_CHUNK: usize = 1 << 20;

pub struct PartitionWriter {
    topic: String,
    partition: i32,
    layout: PartitionLayout,
    encoder: Arc<RecordEncoder>,
    status: Arc<ConnectorStatus>,
    flush_size: u64,
    rotate_interval: Option<Duration>,
    rotate_schedule: Option<Duration>,
    timezone: chrono_tz::Tz,
    errors_tolerance: ErrorsTolerance,
    /// The next offset to take: one past the last committed or in-progress record.
    next: i64,
    open: Option<OpenFile>,
}

/// The file in progress.
struct OpenFile {
    temp: String,
    file: Option<StoreFile>,
    buffer: Vec<u8>,
    held: Vec<HeldRecord>,
    start: i64,
    end: i64,
    records: u64,
    bytes: u64,
    opened: Instant,
    /// Wall-clock millisecond at which `rotate.schedule.interval.ms` closes the file.
    scheduled_close: Option<u128>,
}

impl PartitionWriter {
    /// Recovers a topic-partition from the store: drops the in-progress files of earlier
    /// writers (and with them any lease a crashed writer held), then reads the last committed
    /// offset from the committed names; with nothing committed it starts at offset 0.
    pub async fn recover(
        store: &Store,
        config: &HdfsSinkConfig,
        topic: &str,
        partition: i32,
        encoder: Arc<RecordEncoder>,
        status: Arc<ConnectorStatus>,
    ) -> Result<PartitionWriter> {
        let layout = PartitionLayout::new(
            &config.topics_dir,
            topic,
            partition,
            config.offset_pad,
            config.format.extension(),
        );
        store.delete(&layout.temp_dir()).await?;
        store.mkdirs(&layout.committed_dir()).await?;
        let committed = store
            .list(&layout.committed_dir())
            .await?
            .files
            .iter()
            .filter_map(|name| layout.end_offset_of(name))
            .max();
        status.update(topic, partition, |p| p.committed = committed);
        Ok(PartitionWriter {
            topic: topic.to_string(),
            partition,
            layout,
            encoder,
            status,
            flush_size: config.flush_size,
            rotate_interval: config.rotate_interval,
            rotate_schedule: config.rotate_schedule_interval,
            timezone: config.timezone,
            errors_tolerance: config.errors_tolerance,
            next: committed.map_or(0, |c| c + 1),
            open: None,
        })
    }

    /// The offset of the next record this writer takes.
    pub fn next_offset(&self) -> i64 {
        self.next
    }

    /// Moves the start forward when the log no longer holds the offsets after the last
    /// committed one (retention removed them): waiting for them would wait forever.
    pub fn skip_to(&mut self, offset: i64) {
        if self.open.is_none() && offset > self.next {
            self.next = offset;
        }
    }

    /// Takes one record; commits the file when it reaches `flush.size`. Records before
    /// [`PartitionWriter::next_offset`] are already written and are ignored.
    pub async fn append(&mut self, store: &Store, record: &RawRecord<'_>) -> Result<()> {
        if record.offset < self.next {
            return Ok(());
        }
        let open = self.open.get_or_insert_with(|| OpenFile {
            temp: self.layout.temp_file(),
            file: None,
            buffer: Vec::new(),
            held: Vec::new(),
            start: record.offset,
            end: record.offset,
            records: 0,
            bytes: 0,
            opened: Instant::now(),
            scheduled_close: self.rotate_schedule.map(|every| next_boundary(now_millis(), every.as_millis(), self.timezone)),
        });
        open.end = record.offset;
        self.next = record.offset + 1;
        match self.encoder.as_ref() {
            RecordEncoder::Parquet { .. } => {
                open.held.push(HeldRecord {
                    offset: record.offset,
                    timestamp: record.timestamp,
                    key: record.key.map(<[u8]>::to_vec),
                    value: record.value.map(<[u8]>::to_vec),
                });
                open.records += 1;
            }
            RecordEncoder::Lines { .. } => match self.encoder.encode_line(record.value, &mut open.buffer) {
                Ok(()) => open.records += 1,
                Err(reason) => {
                    let reason = format!("topic {} partition {} offset {}: {reason}", self.topic, self.partition, record.offset);
                    refuse(self.errors_tolerance, &self.status, reason)?;
                }
            },
        }
        if open.buffer.len() >= WRITE_CHUNK {
            open.ship(store).await?;
        }
        if open.records >= self.flush_size {
            self.commit(store).await?;
        }
        Ok(())
    }

    /// Whether `rotate.interval.ms` or `rotate.schedule.interval.ms` says the open file is due.
    pub fn due(&self) -> bool {
        let Some(open) = &self.open else { return false };
        self.rotate_interval.is_some_and(|every| open.opened.elapsed() >= every)
            || open.scheduled_close.is_some_and(|at| now_millis() >= at)
    }

    /// Commits the open file: close it with its data durable, then rename it to
    /// `<topic>+<partition>+<start>+<end><ext>`. A file that ended up with no record (all of
    /// them skipped) is dropped instead.
    pub async fn commit(&mut self, store: &Store) -> Result<()> {
        let Some(mut open) = self.open.take() else { return Ok(()) };
        if open.records == 0 {
            if let Some(file) = open.file.take() {
                drop(file);
                store.delete(&open.temp).await?;
            }
            return Ok(());
        }
        if let RecordEncoder::Parquet { .. } = self.encoder.as_ref() {
            let (bytes, errors) = self.encoder.encode_parquet(&open.held, self.partition)?;
            for (index, reason) in errors {
                let reason = format!("topic {} partition {} offset {}: {reason}", self.topic, self.partition, open.held[index].offset);
                if let Err(stop) = refuse(self.errors_tolerance, &self.status, reason) {
                    self.open = Some(open);
                    return Err(stop);
                }
            }
            open.buffer = bytes.into();
        }
        open.ship(store).await?;
        if let Some(file) = open.file.take() {
            file.close().await?;
        }
        let committed = self.layout.committed_file(open.start, open.end);
        store.rename(&open.temp, &committed).await?;
        tracing::debug!(file = %committed, records = open.records, "committed");
        let (end, records, bytes) = (open.end, open.records, open.bytes);
        self.status.update(&self.topic, self.partition, |p| {
            p.committed = Some(end);
            p.files += 1;
            p.records += records;
            p.bytes += bytes;
        });
        Ok(())
    }

    /// Drops the file in progress (at shutdown); its records are read again on the next start.
    pub async fn abandon(&mut self, store: &Store) -> Result<()> {
        if let Some(mut open) = self.open.take() {
            self.next = open.start;
            if let Some(file) = open.file.take() {
                drop(file);
                store.delete(&open.temp).await?;
            }
        }
        Ok(())
    }
}

impl OpenFile {
    /// Sends the buffered bytes to the in-progress file, creating it on first use.
    async fn ship(&mut self, store: &Store) -> Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(store.create(&self.temp).await?),
        };
        if !self.buffer.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buffer));
            self.bytes += chunk.len() as u64;
            file.write(chunk).await?;
        }
        Ok(())
    }
}

/// A record that cannot be written: skipped and counted with `errors.tolerance=all`, the task
/// stopped with `none` (its file is dropped when the task stops, and the record read again when
/// it is restarted).
fn refuse(tolerance: ErrorsTolerance, status: &ConnectorStatus, reason: String) -> Result<()> {
    match tolerance {
        ErrorsTolerance::All => {
            status.record_skip(reason);
            Ok(())
        }
        ErrorsTolerance::None => Err(SluiceError::BadRecord(format!(
            "{reason} (errors.tolerance=none stops the task; set errors.tolerance=all to skip such records)"
        ))),
    }
}

/// The first multiple of `every` milliseconds after `now`, counted in `timezone`'s wall clock
/// (so an hourly rotation in a zone offset by half an hour closes files at half past, UTC).
fn next_boundary(now: u128, every: u128, timezone: chrono_tz::Tz) -> u128 {
    use chrono::{Offset, TimeZone};
    let utc = chrono::DateTime::from_timestamp_millis(now as i64).unwrap_or_default().naive_utc();
    let offset = i128::from(timezone.offset_from_utc_datetime(&utc).fix().local_minus_utc()) * 1000;
    let local = now as i128 + offset;
    let every = every as i128;
    ((local.div_euclid(every) + 1) * every - offset).max(0) as u128
}

fn now_millis() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::next_boundary;

    #[test]
    fn scheduled_rotation_falls_on_the_zones_wall_clock() {
        // 2026-12-02 10:10:00 UTC.
        let now = 1_796_206_200_000u128;
        let hour = 3_600_000u128;
        assert_eq!(next_boundary(now, hour, chrono_tz::UTC), 1_796_209_200_000, "11:00 UTC");
        assert_eq!(next_boundary(now, hour, chrono_tz::Asia::Kolkata), 1_796_207_400_000, "10:30 UTC is 16:00 in India");
        assert_eq!(next_boundary(now, 24 * hour, chrono_tz::Europe::Berlin), 1_796_252_400_000, "midnight in Berlin is 23:00 UTC");
    }
}
