//! Exactly-once output without broker transactions.
//!
//! Every record a persistent query writes carries, in its `sluice.origin` header, the query and
//! the source partition and offset it came from; the producer is idempotent, so Kafka holds each
//! record once and in order per partition. A query's checkpoint records, beside its input
//! positions, where in its output topics the output of later input may start. When a query
//! (re)starts it reads its output from there to the end and skips the input whose output is
//! already there: what a crash left written after the last checkpoint is neither lost nor
//! written twice.
//!
//! A row a stream-stream join makes of two records names both: which of them came second, and
//! so made the row, depends on the order the two streams happen to be read in, which a replay
//! need not repeat; the pair does not.

use std::collections::{BTreeMap, BTreeSet};

use rdkafka::message::{Headers, Message};

use crate::{
    connectors::kafka::{
        KafkaCluster, PartitionRange,
        delivery::ORIGIN_HEADER,
        offsets::{OutputPositions, PartitionOffsets},
    },
    error::{Result, SluiceError},
    properties,
};

/// What a persistent query promises about its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// After a failure, output since the last checkpoint may be written again.
    AtLeastOnce,
    /// Every input record's output is in Kafka exactly once, across any failure.
    ExactlyOnce,
}

impl Guarantee {
    /// The guarantee `processing.guarantee` asks for; exactly once unless it says otherwise.
    pub fn from_properties(properties: &BTreeMap<String, String>) -> Result<Guarantee> {
        match properties.get(properties::PROCESSING_GUARANTEE).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("exactly_once") => Ok(Guarantee::ExactlyOnce),
            Some("at_least_once") => Ok(Guarantee::AtLeastOnce),
            Some(other @ ("exactly_once_v2" | "exactly_once_beta")) => Err(SluiceError::NotImplemented(format!(
                "processing.guarantee '{other}' runs on Kafka transactions, which Sluice does not use; \
                 the default, 'exactly_once', gives exactly-once output on any broker without them"
            ))),
            Some(other) => Err(SluiceError::Plan(format!(
                "Invalid value {other} for configuration processing.guarantee: String must be one of: at_least_once, exactly_once"
            ))),
        }
    }
}

/// The source records an output row shows, by partition and offset: the record it came from,
/// and for a joined row of two streams the other one.
pub type RowIdentity = ((i32, i64), Option<(i32, i64)>);

/// Appends the origin header's value for a row of `identity`: `query:partition:offset`, with
/// `+partition:offset` for a second record.
pub fn encode(query: &str, identity: RowIdentity, out: &mut Vec<u8>) {
    use std::io::Write;
    let ((partition, offset), second) = identity;
    out.extend_from_slice(query.as_bytes());
    let _ = write!(out, ":{partition}:{offset}");
    if let Some((partition, offset)) = second {
        let _ = write!(out, "+{partition}:{offset}");
    }
}

/// The query and the row identity an origin header names.
pub fn decode(value: &[u8]) -> Option<(&[u8], RowIdentity)> {
    let text = std::str::from_utf8(value).ok()?;
    let position = |text: &str| -> Option<(i32, i64)> {
        let (partition, offset) = text.split_once(':')?;
        Some((partition.parse().ok()?, offset.parse().ok()?))
    };
    let (first, second) = match text.rsplit_once('+') {
        Some((first, second)) => (first, Some(position(second)?)),
        None => (text, None),
    };
    let (rest, offset) = first.rsplit_once(':')?;
    let (query, partition) = rest.rsplit_once(':')?;
    Some((query.as_bytes(), ((partition.parse().ok()?, offset.parse().ok()?), second)))
}

/// Source records whose output a query had already written past its checkpoint, and joined
/// pairs of records already written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    offsets: BTreeMap<i32, BTreeSet<i64>>,
    pairs: BTreeSet<((i32, i64), (i32, i64))>,
}

impl Written {
    pub fn insert(&mut self, partition: i32, offset: i64) {
        self.offsets.entry(partition).or_default().insert(offset);
    }

    pub fn contains(&self, partition: i32, offset: i64) -> bool {
        self.offsets.get(&partition).is_some_and(|o| o.contains(&offset))
    }

    /// Notes a row of `identity` as written.
    pub fn insert_row(&mut self, identity: RowIdentity) {
        match identity {
            ((partition, offset), None) => self.insert(partition, offset),
            (first, Some(second)) => {
                self.pairs.insert((first.min(second), first.max(second)));
            }
        }
    }

    /// Whether a row of `identity` is written: its record, or its pair of records.
    pub fn contains_row(&self, identity: RowIdentity) -> bool {
        match identity {
            ((partition, offset), None) => self.contains(partition, offset),
            (first, Some(second)) => self.pairs.contains(&(first.min(second), first.max(second))),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty() && self.pairs.is_empty()
    }

    /// Forgets the records before `positions`, and the pairs both of whose records are: the
    /// query has gone past them.
    pub fn forget_before(&mut self, positions: &PartitionOffsets) {
        for (partition, next) in positions {
            if let Some(offsets) = self.offsets.get_mut(partition) {
                *offsets = offsets.split_off(next);
            }
        }
        self.offsets.retain(|_, o| !o.is_empty());
        let passed = |(partition, offset): (i32, i64)| positions.get(&partition).is_some_and(|next| offset < *next);
        self.pairs.retain(|(a, b)| !(passed(*a) && passed(*b)));
    }
}

/// What a read-back found: the source records whose output is there, and where each output
/// partition ended when it was read.
pub struct ReadBack {
    pub written: Written,
    pub ends: OutputPositions,
}

/// Reads what query `query` wrote to `topics` past `output` (from each partition's start where
/// no position is known) and returns the source records at or after `input` it came from.
/// Blocking.
pub fn read_back(
    cluster: &KafkaCluster,
    query: &str,
    input: &PartitionOffsets,
    output: Option<&OutputPositions>,
    topics: &[String],
) -> Result<ReadBack> {
    let mut ranges = Vec::new();
    for topic in topics {
        let Some(info) = cluster.topic(topic)? else { continue };
        for (partition, (low, high)) in cluster.watermarks(topic, info.partitions)?.into_iter().enumerate() {
            let partition = partition as i32;
            let from = output
                .and_then(|o| o.get(topic))
                .and_then(|p| p.get(&partition))
                .map_or(low, |known| (*known).max(low));
            ranges.push(PartitionRange {
                topic: topic.clone(),
                partition,
                from,
                until: high,
            });
        }
    }
    let mut ends = OutputPositions::new();
    for range in &ranges {
        ends.entry(range.topic.clone()).or_default().insert(range.partition, range.until);
    }
    let mut written = Written::default();
    cluster.read_ranges(&ranges, |message| {
        let Some(headers) = message.headers() else { return };
        for header in headers.iter() {
            if header.key.as_bytes() != ORIGIN_HEADER.to_bytes() {
                continue;
            }
            let after = |(partition, offset): (i32, i64)| offset >= input.get(&partition).copied().unwrap_or(0);
            if let Some((from, identity)) = header.value.and_then(decode)
                && from == query.as_bytes()
                && (after(identity.0) || identity.1.is_some_and(after))
            {
                written.insert_row(identity);
            }
        }
    })?;
    Ok(ReadBack { written, ends })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_names_its_query_partition_and_offset() {
        let mut value = Vec::new();
        encode("CSAS_SENSOR_ID_3_7", ((2, 41), None), &mut value);
        assert_eq!(value, b"CSAS_SENSOR_ID_3_7:2:41");
        assert_eq!(decode(&value), Some((&b"CSAS_SENSOR_ID_3_7"[..], ((2, 41), None))));
        assert_eq!(decode(b"no origin"), None);
    }

    #[test]
    fn a_joined_row_names_both_records_and_is_known_in_either_order() {
        let mut value = Vec::new();
        encode("CSAS_J_1", ((65536, 7), Some((0, 3))), &mut value);
        assert_eq!(value, b"CSAS_J_1:65536:7+0:3");
        let (_, identity) = decode(&value).unwrap();
        assert_eq!(identity, ((65536, 7), Some((0, 3))));
        let mut written = Written::default();
        written.insert_row(identity);
        assert!(written.contains_row(((0, 3), Some((65536, 7)))));
        assert!(!written.contains_row(((0, 3), None)), "a pair is not its records");
        written.forget_before(&BTreeMap::from([(0, 4)]));
        assert!(!written.is_empty(), "one record of the pair is still ahead");
        written.forget_before(&BTreeMap::from([(0, 4), (65536, 8)]));
        assert!(written.is_empty());
    }

    #[test]
    fn written_records_are_forgotten_once_passed() {
        let mut written = Written::default();
        for (p, o) in [(0, 5), (0, 9), (1, 3)] {
            written.insert(p, o);
        }
        written.forget_before(&BTreeMap::from([(0, 6), (1, 4)]));
        assert!(!written.contains(0, 5) && written.contains(0, 9) && !written.contains(1, 3));
        written.forget_before(&BTreeMap::from([(0, 10)]));
        assert!(written.is_empty());
    }

    #[test]
    fn the_guarantee_is_exactly_once_unless_asked_otherwise() {
        let mut properties = BTreeMap::new();
        assert_eq!(Guarantee::from_properties(&properties).unwrap(), Guarantee::ExactlyOnce);
        properties.insert("processing.guarantee".to_string(), "at_least_once".to_string());
        assert_eq!(Guarantee::from_properties(&properties).unwrap(), Guarantee::AtLeastOnce);
        properties.insert("processing.guarantee".to_string(), "exactly_once_v2".to_string());
        assert!(matches!(Guarantee::from_properties(&properties), Err(SluiceError::NotImplemented(_))));
    }
}
