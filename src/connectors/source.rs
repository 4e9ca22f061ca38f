//! What a source gives the query runtime: a log of records in numbered partitions, each record
//! at an offset, read from chosen positions in batches. Kafka is one; a test double is another.
//!
//! A source over several topics (the two streams of a join) numbers the partitions of its `n`th
//! topic from `n` × [`TOPIC_STRIDE`]: positions and checkpoints then need no topic beside the
//! partition.

use std::{collections::BTreeMap, time::Duration};

use crate::{error::Result, format::RawRecord};

/// How far apart the partition numbers of a source's topics are.
pub const TOPIC_STRIDE: i32 = 1 << 16;

/// The number a source over several topics gives partition `partition` of its `topic`th topic.
pub fn source_partition(topic: usize, partition: i32) -> i32 {
    topic as i32 * TOPIC_STRIDE + partition
}

/// Which topic of a source over several topics a source partition is in, and its partition there.
pub fn topic_partition(partition: i32) -> (usize, i32) {
    ((partition / TOPIC_STRIDE) as usize, partition % TOPIC_STRIDE)
}

/// A partitioned, offset-addressed log a scan reads.
pub trait Source: Send {
    /// The partitions the source has now; partitions are only added.
    fn partitions(&mut self) -> Result<Vec<i32>>;

    /// The first offset `partition` still holds.
    fn earliest(&mut self, partition: i32) -> Result<i64>;

    /// Reads these partitions from these offsets on, and no others.
    fn assign(&mut self, positions: &BTreeMap<i32, i64>) -> Result<()>;

    /// Up to `max` records: those at hand, else whatever arrives within `wait`.
    fn fetch(&mut self, max: usize, wait: Duration) -> Result<Box<dyn SourceBatch + '_>>;

    /// A problem the source met since the last call, such as every broker being down.
    fn take_problem(&mut self) -> Option<String>;

    /// Fails when the source cannot be reached now.
    fn probe(&mut self) -> Result<()>;
}

/// Records fetched from a [`Source`], borrowed until the batch is dropped.
pub trait SourceBatch {
    fn records(&self) -> Vec<RawRecord<'_>>;
}
