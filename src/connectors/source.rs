//! What a source gives the query runtime: a log of records in numbered partitions, each record
//! at an offset, read from chosen positions in batches. Kafka is one; a test double is another.

use std::{collections::BTreeMap, time::Duration};

use crate::{error::Result, format::RawRecord};

/// A partitioned, offset-addressed log a scan reads.
pub trait Source: Send {
    /// How many partitions the source has now; partitions are numbered from 0 and only added.
    fn partitions(&mut self) -> Result<i32>;

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
