//! A sink's task: one consumer over every partition of the sink's topics, one writer per
//! topic-partition, and a loop over records, the rotation timer, topic discovery and shutdown.
//!
//! Any failure (HDFS or Kafka unreachable, a rename refused) ends the session with everything
//! in progress dropped; after a backoff the task starts over from what the store has committed,
//! so a failure can delay records but never lose or repeat one.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{Consumer, StreamConsumer},
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    config::{HdfsSinkConfig, TopicSelection},
    format::RecordEncoder,
    store::Store,
    writer::PartitionWriter,
};
use crate::{
    catalog::Catalog,
    connectors::{
        kafka::KafkaCluster,
        status::{ConnectorState, ConnectorStatus},
        supervise,
    },
    error::Result,
    format::RawRecord,
};

/// How often new topics and partitions are looked for, and log ends read for the lag.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);
/// How often open files are checked against `rotate.interval.ms` and its schedule.
const ROTATION_CHECK: Duration = Duration::from_millis(100);

pub struct SinkTask {
    pub name: String,
    pub config: HdfsSinkConfig,
    pub cluster: Arc<KafkaCluster>,
    pub catalog: Arc<Catalog>,
    pub status: Arc<ConnectorStatus>,
    pub cancel: CancellationToken,
}

/// The writers of a session, by topic then partition.
type Writers = HashMap<String, BTreeMap<i32, PartitionWriter>>;

impl SinkTask {
    /// Runs sessions until cancelled, retrying failed ones with exponential backoff from
    /// `retry.backoff.ms`; a bad record under `errors.tolerance=none` leaves the task FAILED
    /// until it is restarted.
    pub async fn run(self) {
        supervise(&self.name, &self.status, &self.cancel, self.config.retry_backoff, || self.session()).await;
    }

    /// One session: recover, then write until cancelled (`Ok`) or something fails (`Err`).
    async fn session(&self) -> Result<()> {
        let store = Store::open(&self.config.store_url)?;
        let consumer: StreamConsumer = self.cluster.consumer_config().create()?;
        let mut writers = Writers::new();
        let mut discovery = tokio::time::interval(DISCOVERY_INTERVAL);
        let mut rotation = tokio::time::interval(ROTATION_CHECK);
        let mut recovered = false;
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    for writer in writers.values_mut().flat_map(BTreeMap::values_mut) {
                        writer.abandon(&store).await?;
                    }
                    return Ok(());
                }
                _ = discovery.tick() => {
                    if self.discover(&store, &mut writers).await? {
                        consumer.assign(&assignment(&writers)?)?;
                    }
                    if !recovered {
                        recovered = true;
                        info!(connector = %self.name, partitions = writers.values().map(BTreeMap::len).sum::<usize>(), "sink recovered");
                    }
                    self.status.set_state(ConnectorState::Running);
                }
                _ = rotation.tick() => {
                    for writer in writers.values_mut().flat_map(BTreeMap::values_mut) {
                        if writer.due() {
                            writer.commit(&store).await?;
                        }
                    }
                }
                message = consumer.recv(), if recovered => {
                    let message = message?;
                    let writer = writers
                        .get_mut(message.topic())
                        .and_then(|partitions| partitions.get_mut(&message.partition()));
                    if let Some(writer) = writer {
                        let record = RawRecord {
                            partition: message.partition(),
                            offset: message.offset(),
                            timestamp: message.timestamp().to_millis().unwrap_or_default(),
                            key: message.key(),
                            value: message.payload(),
                            headers: None,
                        };
                        writer.append(&store, &record).await?;
                    }
                }
            }
        }
    }

    /// Recovers a writer for every topic-partition of the sink not seen yet and records each
    /// partition's log end; returns whether the assignment changed.
    async fn discover(&self, store: &Store, writers: &mut Writers) -> Result<bool> {
        let topics = match &self.config.topics {
            TopicSelection::List(names) => {
                let mut found = Vec::new();
                for name in names {
                    if let Some(topic) = self.cluster.topic(name)? {
                        found.push(topic);
                    }
                }
                found
            }
            TopicSelection::Regex(_) => self
                .cluster
                .topics()?
                .into_iter()
                .filter(|t| !t.name.starts_with('_') && self.config.topics.matches(&t.name))
                .collect(),
        };
        let mut changed = false;
        for topic in topics {
            let watermarks = self.cluster.watermarks(&topic.name, topic.partitions)?;
            let partitions = writers.entry(topic.name.clone()).or_default();
            let mut encoder = None;
            for (partition, (low, high)) in (0..topic.partitions).zip(watermarks) {
                if !partitions.contains_key(&partition) {
                    let encoder = match &encoder {
                        Some(encoder) => Arc::clone(encoder),
                        None => encoder.insert(Arc::new(self.encoder_for(&topic.name)?)).clone(),
                    };
                    let writer = PartitionWriter::recover(
                        store,
                        &self.config,
                        &topic.name,
                        partition,
                        encoder,
                        self.status.clone(),
                    )
                    .await?;
                    partitions.insert(partition, writer);
                    changed = true;
                }
                if let Some(writer) = partitions.get_mut(&partition) {
                    if low > writer.next_offset() {
                        warn!(connector = %self.name, topic = %topic.name, partition, from = writer.next_offset(), to = low, "offsets after the last committed file are gone from the log; continuing at the log start");
                        writer.skip_to(low);
                        changed = true;
                    }
                }
                self.status.update(&topic.name, partition, |p| p.log_end = high);
            }
        }
        Ok(changed)
    }

    fn encoder_for(&self, topic: &str) -> Result<RecordEncoder> {
        let stream = self.catalog.snapshot().streams.into_values().find(|s| s.topic == topic);
        RecordEncoder::new(self.config.format, self.config.value_converter, stream.as_ref())
    }
}

/// Every writer's partition, to be read from the writer's next offset.
fn assignment(writers: &Writers) -> Result<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    for (topic, partitions) in writers {
        for (partition, writer) in partitions {
            list.add_partition_offset(topic, *partition, Offset::Offset(writer.next_offset()))?;
        }
    }
    Ok(list)
}
