//! A Kafka topic as a [`Source`]: one consumer with its own assignment (no group), batches taken
//! with librdkafka's batch consume.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use rdkafka::{Offset, TopicPartitionList, consumer::Consumer};
use tracing::debug;

use super::{
    KafkaCluster,
    fetch::{BatchConsumer, Fetched},
};
use crate::{
    connectors::source::{Source, SourceBatch},
    error::{Result, SluiceError},
    format::RawRecord,
};

/// How long a batch keeps filling after its first record: big batches keep the cost per record
/// down, a short wait keeps latency down.
const FILL_WAIT: Duration = Duration::from_millis(5);
const METADATA_WAIT: Duration = Duration::from_secs(2);

pub struct KafkaSource {
    topic: String,
    cluster: Arc<KafkaCluster>,
    consumer: BatchConsumer,
}

impl KafkaSource {
    pub fn new(cluster: Arc<KafkaCluster>, topic: &str) -> Result<Self> {
        Ok(Self {
            topic: topic.to_string(),
            consumer: BatchConsumer::new(cluster.consumer_config().create()?)?,
            cluster,
        })
    }
}

impl Source for KafkaSource {
    // Partition counts and log starts are asked on the cluster's metadata connection: on the
    // consumer's own, a request queues behind fetches, which a busy broker may take seconds to
    // answer.
    fn partitions(&mut self) -> Result<i32> {
        Ok(self.cluster.topic(&self.topic)?.map_or(0, |t| t.partitions))
    }

    fn earliest(&mut self, partition: i32) -> Result<i64> {
        Ok(self.cluster.watermark(&self.topic, partition)?.0)
    }

    fn assign(&mut self, positions: &BTreeMap<i32, i64>) -> Result<()> {
        let mut assignment = TopicPartitionList::new();
        for (partition, offset) in positions {
            assignment.add_partition_offset(&self.topic, *partition, Offset::Offset(*offset))?;
        }
        self.consumer.assign(&assignment)?;
        debug!(topic = %self.topic, ?assignment, "source assigned");
        Ok(())
    }

    fn fetch(&mut self, max: usize, wait: Duration) -> Result<Box<dyn SourceBatch + '_>> {
        Ok(Box::new(self.consumer.fetch(max, wait, FILL_WAIT)?))
    }

    fn take_problem(&mut self) -> Option<String> {
        self.consumer.take_client_error()
    }

    fn probe(&mut self) -> Result<()> {
        self.consumer
            .fetch_metadata(Some(&self.topic), METADATA_WAIT)
            .map(|_| ())
            .map_err(|e| SluiceError::Execution(format!("cannot reach Kafka at {}: {e}", self.cluster.bootstrap_servers())))
    }
}

impl SourceBatch for Fetched<'_> {
    fn records(&self) -> Vec<RawRecord<'_>> {
        Fetched::records(self).collect()
    }
}
