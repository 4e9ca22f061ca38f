//! A Kafka topic, or several read as one, as a [`Source`]: one consumer with its own assignment
//! (no group), batches taken with librdkafka's batch consume.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, VecDeque},
    sync::Arc,
    time::Duration,
};

use rdkafka::{Offset, TopicPartitionList, consumer::Consumer};
use tracing::debug;

use super::{
    KafkaCluster,
    fetch::{BatchConsumer, Fetched},
};
use crate::{
    connectors::source::{Source, SourceBatch, source_partition, topic_partition},
    error::{Result, SluiceError},
    format::RawRecord,
};

/// How long a batch keeps filling after its first record: big batches keep the cost per record
/// down, a short wait keeps latency down.
const FILL_WAIT: Duration = Duration::from_millis(5);
const METADATA_WAIT: Duration = Duration::from_secs(2);

pub struct KafkaSource {
    /// The topics read; the partitions of the `n`th are numbered from `n` × `TOPIC_STRIDE`.
    topics: Vec<String>,
    cluster: Arc<KafkaCluster>,
    consumer: BatchConsumer,
}

impl KafkaSource {
    pub fn new(cluster: Arc<KafkaCluster>, topic: &str) -> Result<Self> {
        Self::over(cluster, vec![topic.to_string()])
    }

    /// A source reading every one of `topics`.
    pub fn over(cluster: Arc<KafkaCluster>, topics: Vec<String>) -> Result<Self> {
        Ok(Self {
            topics,
            consumer: BatchConsumer::new(cluster.consumer_config().create()?)?,
            cluster,
        })
    }

    fn topic(&self, partition: i32) -> Result<(&str, i32)> {
        let (topic, partition) = topic_partition(partition);
        let name = self
            .topics
            .get(topic)
            .ok_or_else(|| SluiceError::Internal(format!("no topic {topic} in a source of {} topics", self.topics.len())))?;
        Ok((name, partition))
    }
}

impl Source for KafkaSource {
    // Partition counts and log starts are asked on the cluster's metadata connection: on the
    // consumer's own, a request queues behind fetches, which a busy broker may take seconds to
    // answer.
    fn partitions(&mut self) -> Result<Vec<i32>> {
        let mut partitions = Vec::new();
        for (index, topic) in self.topics.iter().enumerate() {
            let count = self.cluster.topic(topic)?.map_or(0, |t| t.partitions);
            partitions.extend((0..count).map(|p| source_partition(index, p)));
        }
        Ok(partitions)
    }

    fn earliest(&mut self, partition: i32) -> Result<i64> {
        let (topic, partition) = self.topic(partition)?;
        Ok(self.cluster.watermark(topic, partition)?.0)
    }

    fn assign(&mut self, positions: &BTreeMap<i32, i64>) -> Result<()> {
        let mut assignment = TopicPartitionList::new();
        for (partition, offset) in positions {
            let (topic, partition) = self.topic(*partition)?;
            assignment.add_partition_offset(topic, partition, Offset::Offset(*offset))?;
        }
        self.consumer.assign(&assignment)?;
        debug!(topics = ?self.topics, ?assignment, "source assigned");
        Ok(())
    }

    fn fetch(&mut self, max: usize, wait: Duration) -> Result<Box<dyn SourceBatch + '_>> {
        let fetched = self.consumer.fetch(max, wait, FILL_WAIT)?;
        match self.topics.as_slice() {
            [topic] => self.cluster.traffic().fetched(topic, fetched.len() as u64),
            topics => {
                for topic in topics {
                    let count = fetched.topics().filter(|t| *t == topic.as_bytes()).count();
                    self.cluster.traffic().fetched(topic, count as u64);
                }
            }
        }
        Ok(Box::new(TopicsBatch { fetched, topics: &self.topics }))
    }

    fn take_problem(&mut self) -> Option<String> {
        self.consumer.take_client_error()
    }

    fn probe(&mut self) -> Result<()> {
        self.consumer
            .fetch_metadata(self.topics.first().map(String::as_str), METADATA_WAIT)
            .map(|_| ())
            .map_err(|e| SluiceError::Execution(format!("cannot reach Kafka at {}: {e}", self.cluster.bootstrap_servers())))
    }
}

/// Records fetched from a source's topics, their partitions numbered as the source numbers them.
struct TopicsBatch<'a> {
    fetched: Fetched<'a>,
    topics: &'a [String],
}

impl SourceBatch for TopicsBatch<'_> {
    fn records(&self) -> Vec<RawRecord<'_>> {
        match self.topics {
            [_] => self.fetched.records().map(|(_, record)| record).collect(),
            topics => in_time_order(
                self.fetched
                    .records()
                    .map(|(topic, mut record)| {
                        let index = topics.iter().position(|t| t.as_bytes() == topic).unwrap_or(0);
                        record.partition = source_partition(index, record.partition);
                        record
                    })
                    .collect(),
            ),
        }
    }
}

/// The records of several topics in the order their timestamps give, each partition's in its
/// own order, as Kafka Streams picks the partition whose next record is oldest: a join's two
/// sides fetched together are processed as they happened, whatever order the broker's answer
/// listed their partitions in. Ties go to the lower source partition (the left side's).
fn in_time_order(records: Vec<RawRecord<'_>>) -> Vec<RawRecord<'_>> {
    let mut partitions: BTreeMap<i32, VecDeque<RawRecord<'_>>> = BTreeMap::new();
    for record in &records {
        partitions.entry(record.partition).or_default().push_back(*record);
    }
    if partitions.len() < 2 {
        return records;
    }
    let mut heads: BinaryHeap<Reverse<(i64, i32)>> =
        partitions.iter().map(|(partition, queue)| Reverse((queue[0].timestamp, *partition))).collect();
    let mut ordered = Vec::with_capacity(records.len());
    while let Some(Reverse((_, partition))) = heads.pop() {
        let queue = partitions.get_mut(&partition).expect("a partition with records");
        ordered.push(queue.pop_front().expect("the partition's next record"));
        if let Some(next) = queue.front() {
            heads.push(Reverse((next.timestamp, partition)));
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(partition: i32, offset: i64, timestamp: i64) -> RawRecord<'static> {
        RawRecord {
            partition,
            offset,
            timestamp,
            key: None,
            value: None,
            headers: None,
        }
    }

    fn places(records: &[RawRecord<'_>]) -> Vec<(i32, i64)> {
        records.iter().map(|r| (r.partition, r.offset)).collect()
    }

    #[test]
    fn records_of_two_topics_are_merged_by_timestamp() {
        let right = source_partition(1, 0);
        let fetched = vec![record(right, 7, 20), record(right, 8, 40), record(0, 3, 10), record(0, 4, 30)];
        assert_eq!(places(&in_time_order(fetched)), vec![(0, 3), (right, 7), (0, 4), (right, 8)]);
    }

    #[test]
    fn a_partition_keeps_its_own_order_and_ties_go_left() {
        let right = source_partition(1, 0);
        // Offset 5 is older than offset 4 in its partition, yet stays after it.
        let fetched = vec![record(right, 1, 50), record(0, 4, 50), record(0, 5, 10)];
        assert_eq!(places(&in_time_order(fetched)), vec![(0, 4), (0, 5), (right, 1)]);
    }
}
