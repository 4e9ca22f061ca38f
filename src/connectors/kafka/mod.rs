//! Kafka through rdkafka: client settings, topic administration and offsets.

pub mod delivery;
pub mod fetch;
pub mod offsets;
pub mod producer;
pub mod source;
pub mod source_offsets;
pub mod traffic;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    error::RDKafkaErrorCode,
};

use crate::error::{Result, SluiceError};

use delivery::BatchProducer;
use producer::RecordProducer;
use traffic::Traffic;

const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a single record (a command, a position, an `INSERT`) may wait for Kafka before its
/// statement fails, so no statement hangs while Kafka is away. Query output waits as long as it
/// takes: it is never dropped.
const RECORD_TIMEOUT_MS: &str = "20000";
/// How long query output lingers before its request leaves: Kafka Streams' default for
/// ksqlDB's producers, so a batch's records for a partition are all enqueued before its request
/// does (behind an idempotent producer's request in flight, librdkafka polls without sleeping
/// once the oldest queued record is older than this).
const OUTPUT_LINGER_MS: &str = "100";
/// The most records one produce request carries (librdkafka's `batch.num.messages`).
pub const REQUEST_RECORDS: usize = 10_000;
/// Record bytes that fit one produce request under librdkafka's `batch.size` (1,000,000 bytes
/// with the records' framing).
pub const REQUEST_BYTES: usize = 900_000;

/// The Kafka cluster Sluice runs against, and the clients shared by every part of the server.
pub struct KafkaCluster {
    bootstrap_servers: String,
    /// `security.protocol`, SASL and TLS settings every client takes.
    security: BTreeMap<String, String>,
    admin: AdminClient<DefaultClientContext>,
    metadata: BaseConsumer,
    producer: RecordProducer,
    output: Arc<BatchProducer>,
    traffic: Arc<Traffic>,
}

/// A consumer group's committed position on a topic partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOffset {
    pub group: String,
    pub partition: i32,
    /// The next offset the group reads.
    pub next: i64,
}

/// A topic and its partition count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    pub replicas: i32,
}

impl KafkaCluster {
    /// Clients of a cluster that needs no SASL or TLS.
    pub fn connect(bootstrap_servers: &str) -> Result<Self> {
        Self::connect_with(bootstrap_servers, &BTreeMap::new())
    }

    /// Clients that each take `security`'s librdkafka properties (`security.protocol`,
    /// `sasl.*`, `ssl.*`).
    pub fn connect_with(bootstrap_servers: &str, security: &BTreeMap<String, String>) -> Result<Self> {
        let traffic = Arc::new(Traffic::default());
        let client_config = |bootstrap_servers: &str| client_config(bootstrap_servers, security);
        let producer_config = |bootstrap_servers: &str| producer_config(client_config(bootstrap_servers));
        Ok(Self {
            bootstrap_servers: bootstrap_servers.to_string(),
            security: security.clone(),
            admin: client_config(bootstrap_servers).create()?,
            metadata: client_config(bootstrap_servers).create()?,
            // Query and source output is idempotent (no duplicate from the client's own
            // retries, order kept per partition: what exactly-once output stands on) and never
            // times out, so an outage never makes the idempotent producer fatal. The
            // single-record producer times out instead, and so stays non-idempotent.
            // librdkafka's idempotent producer keeps one request in flight per partition (it
            // caps the partition's in-flight *messages* at five) and, while one is, polls
            // without sleeping once the oldest record queued behind it is older than
            // `linger.ms`: so its users send one batch (a query) or one request's worth (a
            // source connector) and wait for it before sending more.
            producer: RecordProducer::new(producer_config(bootstrap_servers).set("message.timeout.ms", RECORD_TIMEOUT_MS))?,
            output: Arc::new(BatchProducer::new(
                producer_config(bootstrap_servers).set("enable.idempotence", "true").set("linger.ms", OUTPUT_LINGER_MS),
                traffic.clone(),
            )?),
            traffic,
        })
    }

    /// Records query output delivered to, and sources fetched from, each topic.
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The producer shared by statements that write single records.
    pub fn producer(&self) -> &RecordProducer {
        &self.producer
    }

    /// Settings for a consumer that reads partitions it assigns itself (no group membership).
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = client_config(&self.bootstrap_servers, &self.security);
        config
            .set("group.id", "sluice-unused")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "50")
            .set("auto.offset.reset", "earliest");
        config
    }

    /// The producer shared by the queries that write to topics.
    pub fn output_producer(&self) -> &Arc<BatchProducer> {
        &self.output
    }

    /// The topic's partitions, or `None` when it does not exist.
    pub fn topic(&self, name: &str) -> Result<Option<TopicInfo>> {
        let metadata = blocking(|| self.metadata.fetch_metadata(Some(name), METADATA_TIMEOUT))?;
        Ok(metadata.topics().iter().find(|t| t.name() == name).and_then(|t| {
            if t.error().is_some() || t.partitions().is_empty() {
                None
            } else {
                Some(TopicInfo {
                    name: name.to_string(),
                    partitions: t.partitions().len() as i32,
                    replicas: t.partitions().first().map_or(1, |p| p.replicas().len() as i32),
                })
            }
        }))
    }

    /// Every topic, internal ones (starting with `_`) included.
    pub fn topics(&self) -> Result<Vec<TopicInfo>> {
        let metadata = blocking(|| self.metadata.fetch_metadata(None, METADATA_TIMEOUT))?;
        let mut topics: Vec<TopicInfo> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| TopicInfo {
                name: t.name().to_string(),
                partitions: t.partitions().len() as i32,
                replicas: t.partitions().first().map_or(1, |p| p.replicas().len() as i32),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Creates the topic unless it exists; returns its partition count either way.
    pub async fn ensure_topic(
        &self,
        name: &str,
        partitions: i32,
        replicas: i32,
        config: &[(&str, &str)],
    ) -> Result<i32> {
        if let Some(existing) = self.topic(name)? {
            return Ok(existing.partitions);
        }
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replicas));
        for (key, value) in config {
            topic = topic.set(key, value);
        }
        let results = self
            .admin
            .create_topics(&[topic], &AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT)))
            .await?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => {
                    return Err(SluiceError::Execution(format!(
                        "could not create topic {topic}: {code}"
                    )));
                }
            }
        }
        self.wait_for_topic(name).await
    }

    async fn wait_for_topic(&self, name: &str) -> Result<i32> {
        for _ in 0..100 {
            if let Some(topic) = self.topic(name)? {
                return Ok(topic.partitions);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(SluiceError::Execution(format!(
            "topic {name} was created but does not appear in the cluster's metadata"
        )))
    }

    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let results = self
            .admin
            .delete_topics(&[name], &AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT)))
            .await?;
        for result in results {
            if let Err((topic, code)) = result {
                return Err(SluiceError::Execution(format!(
                    "could not delete topic {topic}: {code}"
                )));
            }
        }
        Ok(())
    }

    /// The cluster's id, as its brokers report it.
    pub fn cluster_id(&self) -> Option<String> {
        blocking(|| {
            let client = self.metadata.client().native_ptr();
            // SAFETY: a live client; the returned string is ours to free with rd_kafka_mem_free.
            unsafe {
                let id = rdkafka::bindings::rd_kafka_clusterid(client, METADATA_TIMEOUT.as_millis() as i32);
                if id.is_null() {
                    return None;
                }
                let text = std::ffi::CStr::from_ptr(id).to_string_lossy().into_owned();
                rdkafka::bindings::rd_kafka_mem_free(client, id.cast());
                Some(text)
            }
        })
    }

    /// The low and high watermark of every partition of a topic.
    pub fn watermarks(&self, topic: &str, partitions: i32) -> Result<Vec<(i64, i64)>> {
        (0..partitions).map(|p| self.watermark(topic, p)).collect()
    }

    /// The offsets consumer groups committed on `topic`: per group that committed any, each
    /// partition's next offset to read. Blocking.
    pub fn group_offsets(&self, topic: &str, partitions: i32) -> Result<Vec<GroupOffset>> {
        use rdkafka::{Offset, TopicPartitionList};
        // A client of its own: a broker that fails the listing drops the connection it came on.
        let lister: BaseConsumer = client_config(&self.bootstrap_servers, &self.security).create()?;
        let groups = blocking(|| lister.fetch_group_list(None, METADATA_TIMEOUT))?;
        let mut offsets = Vec::new();
        for group in groups.groups() {
            let mut config = client_config(&self.bootstrap_servers, &self.security);
            let consumer: BaseConsumer = config.set("group.id", group.name()).set("enable.auto.commit", "false").create()?;
            let mut wanted = TopicPartitionList::new();
            for partition in 0..partitions {
                wanted.add_partition(topic, partition);
            }
            let committed = blocking(|| consumer.committed_offsets(wanted, METADATA_TIMEOUT))?;
            for element in committed.elements() {
                if let Offset::Offset(next) = element.offset() {
                    offsets.push(GroupOffset { group: group.name().to_string(), partition: element.partition(), next });
                }
            }
        }
        Ok(offsets)
    }

    /// The low and high watermark of one partition.
    pub fn watermark(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        Ok(blocking(|| self.metadata.fetch_watermarks(topic, partition, METADATA_TIMEOUT))?)
    }
}

/// Runs a blocking librdkafka call; on a multi-threaded runtime the worker hands its other
/// tasks away first, so a slow broker cannot stall the HTTP API.
pub(crate) fn blocking<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

fn client_config(bootstrap_servers: &str, security: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_servers)
        .set("socket.keepalive.enable", "true")
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "5000")
        .set("log_level", "3");
    for (key, value) in security {
        config.set(key, value);
    }
    config
}

fn producer_config(mut config: ClientConfig) -> ClientConfig {
    config
        .set("linger.ms", "5")
        .set("batch.num.messages", &REQUEST_RECORDS.to_string())
        .set("queue.buffering.max.messages", "500000")
        .set("message.timeout.ms", "0")
        .set("enable.idempotence", "false")
        .set("partitioner", "murmur2_random");
    config
}

/// A range of a topic partition to read back: from `from` up to `until` (exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRange {
    pub topic: String,
    pub partition: i32,
    pub from: i64,
    pub until: i64,
}

impl KafkaCluster {
    /// Reads every record of `ranges` with one consumer, handing each to `visit`, and returns
    /// once every range is read. Blocking; fails after [`READ_BACK_LIMIT`].
    pub fn read_ranges(&self, ranges: &[PartitionRange], mut visit: impl FnMut(&rdkafka::message::BorrowedMessage<'_>)) -> Result<()> {
        use rdkafka::{Message, Offset, TopicPartitionList};
        let mut remaining: std::collections::HashMap<(String, i32), i64> = ranges
            .iter()
            .filter(|r| r.from < r.until)
            .map(|r| ((r.topic.clone(), r.partition), r.until))
            .collect();
        if remaining.is_empty() {
            return Ok(());
        }
        let consumer: BaseConsumer = self.consumer_config().create()?;
        let mut assignment = TopicPartitionList::new();
        for range in ranges.iter().filter(|r| r.from < r.until) {
            assignment.add_partition_offset(&range.topic, range.partition, Offset::Offset(range.from))?;
        }
        consumer.assign(&assignment)?;
        let deadline = std::time::Instant::now() + READ_BACK_LIMIT;
        while !remaining.is_empty() {
            if std::time::Instant::now() > deadline {
                return Err(SluiceError::Execution(format!(
                    "timed out reading back {} partition(s) after {READ_BACK_LIMIT:?}",
                    remaining.len()
                )));
            }
            let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
            let message = message?;
            let key = (message.topic().to_string(), message.partition());
            let Some(until) = remaining.get(&key).copied() else { continue };
            if message.offset() < until {
                visit(&message);
            }
            if message.offset() + 1 >= until {
                remaining.remove(&key);
            }
        }
        Ok(())
    }
}

/// How long reading back a range of records may take before it fails (and is retried).
const READ_BACK_LIMIT: Duration = Duration::from_secs(60);

/// A record read back from a single-partition internal topic.
pub struct StoredRecord {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl KafkaCluster {
    /// Reads partition 0 of `topic` from the beginning to its current end. Blocking.
    pub fn read_partition_to_end(&self, topic: &str) -> Result<Vec<StoredRecord>> {
        use rdkafka::{Message, Offset, TopicPartitionList};
        let (low, high) = self.metadata.fetch_watermarks(topic, 0, METADATA_TIMEOUT)?;
        let mut records = Vec::new();
        if high <= low {
            return Ok(records);
        }
        let consumer: BaseConsumer = self.consumer_config().create()?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, 0, Offset::Offset(low))?;
        consumer.assign(&assignment)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while records.last().map_or(low, |r: &StoredRecord| r.offset + 1) < high {
            if std::time::Instant::now() > deadline {
                return Err(SluiceError::Execution(format!(
                    "timed out reading {topic} up to offset {high}"
                )));
            }
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message?;
                records.push(StoredRecord {
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    value: message.payload().map(<[u8]>::to_vec),
                });
            }
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_takes_the_security_settings_and_librdkafka_has_tls_and_sasl_built_in() {
        let security: BTreeMap<String, String> = [
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "grid"),
            ("sasl.password", "s3cret"),
            ("ssl.endpoint.identification.algorithm", "https"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let cluster = KafkaCluster::connect_with("127.0.0.1:9", &security).expect("librdkafka takes SASL_SSL with SCRAM");
        let consumer = cluster.consumer_config();
        for (key, value) in &security {
            assert_eq!(consumer.get(key), Some(value.as_str()), "{key}");
        }
        assert_eq!(consumer.get("group.id"), Some("sluice-unused"));
        assert!(KafkaCluster::connect("127.0.0.1:9").unwrap().consumer_config().get("security.protocol").is_none());
    }
}
