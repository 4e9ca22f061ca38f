//! How a source connector writes to Kafka exactly once without Kafka transactions: records go
//! out in batches, each carrying its identity in the origin header, and the source's offset is
//! committed (with where in the topic the records after it start) once a batch is in Kafka. A
//! restarted source reads its topic back from the committed positions, so the records it wrote
//! after its last commit are known and skipped instead of written again.

use std::{collections::HashSet, sync::Arc, time::{Duration, Instant}};

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::{
    connectors::{
        kafka::{
            KafkaCluster, PartitionRange, REQUEST_BYTES,
            delivery::{BatchDeliveries, ORIGIN_HEADER, OutputRecord, OutputTopic},
            offsets::OutputPositions,
            source_offsets::{SourceCheckpoint, SourceOffsets},
        },
        RunningConnector,
        status::ConnectorStatus,
    },
    error::{Result, SluiceError},
};

/// Bytes a record takes in a request besides its key, value and identity: the batch framing
/// and the origin header's name and prefix.
const RECORD_FRAMING: usize = 96;

/// How often an unsettled batch's delivery is looked at.
const DELIVERY_CHECK: Duration = Duration::from_millis(2);

/// A record a source read, with its identity among the records of its source partition.
pub struct SourceRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub identity: String,
}

/// What a source needs to write: the cluster, its offsets, its status, its stop token.
#[derive(Clone)]
pub struct SourceContext {
    pub connector: String,
    pub cluster: Arc<KafkaCluster>,
    pub offsets: Arc<SourceOffsets>,
    pub status: Arc<ConnectorStatus>,
    pub cancel: CancellationToken,
}

impl SourceContext {
    /// Starts source connector `name` as a task of its own: `run`, given the connector's
    /// context, runs until the context's token is cancelled.
    pub fn start<F, T>(name: &str, cluster: Arc<KafkaCluster>, offsets: Arc<SourceOffsets>, run: F) -> RunningConnector
    where
        F: FnOnce(SourceContext) -> T,
        T: std::future::Future<Output = ()> + Send + 'static,
    {
        let status = Arc::new(ConnectorStatus::default());
        let cancel = CancellationToken::new();
        let context = SourceContext { connector: name.to_string(), cluster, offsets, status: status.clone(), cancel: cancel.clone() };
        RunningConnector::spawn(status, cancel, run(context))
    }
}

/// The writer of one source partition (a table, a file) into one topic.
pub struct SourceWriter {
    context: SourceContext,
    partition: Value,
    origin: String,
    topic_name: String,
    topic: OutputTopic,
    output: OutputPositions,
    landed: HashSet<String>,
}

impl SourceWriter {
    /// Opens the writer of source partition `partition` into `topic_name` (created with one
    /// partition if missing); returns it with the committed offset, empty when none. With
    /// `read_back`, the records written after that offset are read back from the topic.
    pub async fn open(context: &SourceContext, partition: Value, topic_name: &str, read_back: bool) -> Result<(SourceWriter, Map<String, Value>)> {
        context.cluster.ensure_topic(topic_name, 1, 1, &[]).await?;
        let checkpoint = context.offsets.get(&context.connector, &partition).unwrap_or_default();
        let mut writer = SourceWriter {
            origin: format!("source\u{1f}{}\u{1f}{partition}\u{1f}", context.connector),
            topic: context.cluster.output_producer().topic(topic_name)?,
            topic_name: topic_name.to_string(),
            output: checkpoint.output,
            landed: HashSet::new(),
            context: context.clone(),
            partition,
        };
        if read_back {
            writer.landed = writer.read_back().await?;
        }
        Ok((writer, checkpoint.offset))
    }

    /// Whether the record `identity` names is already in the topic (it is then forgotten:
    /// each identity is met once).
    pub fn already_written(&mut self, identity: &str) -> bool {
        self.landed.remove(identity)
    }

    /// Forgets the records read back, once the source has read past them all.
    pub fn forget_written(&mut self) {
        self.landed.clear();
    }

    /// How many records read back are still to be met.
    pub fn written_count(&self) -> usize {
        self.landed.len()
    }

    /// Sends `records` and waits until Kafka has all of them; `false` when the source was
    /// stopped first (what was sent may or may not land; a restart reads it back). They go out
    /// one request's worth at a time: the idempotent producer sends one request per partition
    /// at a time, and records queued behind it keep its thread polling.
    pub async fn write(&mut self, records: &[SourceRecord]) -> Result<bool> {
        let mut rest = records;
        while !rest.is_empty() {
            let (request, later) = rest.split_at(request_share(rest));
            if !self.send(request).await? {
                return Ok(false);
            }
            rest = later;
        }
        Ok(true)
    }

    /// Sends `records` and waits until Kafka has them all, or the source is stopped (`false`).
    async fn send(&mut self, records: &[SourceRecord]) -> Result<bool> {
        let deliveries = Arc::new(BatchDeliveries::default());
        let timestamp = chrono::Utc::now().timestamp_millis();
        let origins: Vec<Vec<u8>> = records.iter().map(|r| format!("{}{}", self.origin, r.identity).into_bytes()).collect();
        for (record, origin) in records.iter().zip(&origins) {
            self.topic.send(
                &deliveries,
                &OutputRecord {
                    partition: None,
                    key: record.key.as_deref(),
                    value: record.value.as_deref(),
                    timestamp,
                    origin: Some(origin),
                    headers: None,
                },
            )?;
        }
        while !deliveries.is_settled() {
            tokio::select! {
                _ = self.context.cancel.cancelled() => return Ok(false),
                _ = tokio::time::sleep(DELIVERY_CHECK) => {}
            }
        }
        deliveries.wait_until(Instant::now())?;
        let bytes: u64 = records.iter().map(|r| r.value.as_ref().map_or(0, |v| v.len() as u64)).sum();
        for (topic, partitions) in deliveries.written() {
            for (partition, next) in partitions {
                self.output.entry(topic.clone()).or_default().insert(partition, next);
                self.context.status.update(&topic, partition, |progress| {
                    progress.committed = Some(next - 1);
                    progress.log_end = next;
                });
            }
        }
        self.context.status.update(&self.topic_name, 0, |progress| {
            progress.records += records.len() as u64;
            progress.bytes += bytes;
        });
        Ok(true)
    }

    /// Durably records `offset` as where the source has got to, everything before it written.
    pub async fn commit(&mut self, offset: Map<String, Value>) -> Result<()> {
        let checkpoint = SourceCheckpoint { offset, output: self.output.clone() };
        self.context.offsets.commit(&self.context.connector, &self.partition, &checkpoint).await
    }

    /// The identities of this writer's records in its topic past the committed positions.
    async fn read_back(&self) -> Result<HashSet<String>> {
        let cluster = &self.context.cluster;
        let topic = self.topic_name.clone();
        let Some(info) = cluster.topic(&topic)? else {
            return Ok(HashSet::new());
        };
        let mut ranges = Vec::new();
        for (partition, (low, high)) in cluster.watermarks(&topic, info.partitions)?.into_iter().enumerate() {
            let partition = partition as i32;
            let from = self.output.get(&topic).and_then(|p| p.get(&partition)).copied().unwrap_or(low).max(low);
            ranges.push(PartitionRange { topic: topic.clone(), partition, from, until: high });
        }
        let cluster = cluster.clone();
        let prefix = self.origin.clone();
        tokio::task::spawn_blocking(move || {
            use rdkafka::message::{Headers, Message};
            let mut landed = HashSet::new();
            cluster.read_ranges(&ranges, |message| {
                let origin = message.headers().and_then(|headers| {
                    headers.iter().find(|h| h.key.as_bytes() == ORIGIN_HEADER.to_bytes()).and_then(|h| h.value)
                });
                if let Some(identity) = origin.and_then(|o| std::str::from_utf8(o).ok()).and_then(|o| o.strip_prefix(&prefix)) {
                    landed.insert(identity.to_string());
                }
            })?;
            Ok(landed)
        })
        .await
        .map_err(|e| SluiceError::Internal(e.to_string()))?
    }
}

/// How many of `records` (at least one) fit one produce request, counting each record's
/// framing and origin header as [`RECORD_FRAMING`] bytes. That framing alone keeps a request
/// under librdkafka's record count (`batch.num.messages`).
fn request_share(records: &[SourceRecord]) -> usize {
    let mut bytes = 0;
    let fitting = records.iter().position(|r| {
        bytes += r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len) + r.identity.len() + RECORD_FRAMING;
        bytes > REQUEST_BYTES
    });
    fitting.unwrap_or(records.len()).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::kafka::REQUEST_RECORDS;

    fn records(count: usize, value_bytes: usize) -> Vec<SourceRecord> {
        (0..count).map(|i| SourceRecord { key: None, value: Some(vec![b'x'; value_bytes]), identity: format!("{i:04}") }).collect()
    }

    #[test]
    fn a_request_takes_at_most_its_bytes_and_record_count() {
        assert_eq!(request_share(&records(3, 10)), 3);
        assert!(request_share(&records(REQUEST_RECORDS + 5, 0)) < REQUEST_RECORDS);
        let per_record = 1000 + RECORD_FRAMING + 4;
        let share = request_share(&records(5000, 1000));
        assert!(share * per_record <= REQUEST_BYTES && (share + 1) * per_record > REQUEST_BYTES, "{share}");
    }

    #[test]
    fn a_record_larger_than_a_request_goes_alone() {
        assert_eq!(request_share(&records(2, REQUEST_BYTES * 2)), 1);
    }
}
