//! The JDBC source's task: every `poll.interval.ms`, each table's rows past its offset are read
//! with `COPY (SELECT …) TO STDOUT`, written to `<topic.prefix><table>` in batches of
//! `batch.max.rows`, and the offset committed once a batch is in Kafka.
//!
//! Exactly once without Kafka transactions: each record carries its row's identity in a
//! header, and each committed offset carries where in the topic the records after it start.
//! A restarted task reads the topic back from there and skips the rows already in it, so a
//! crash between a write and its commit repeats nothing and loses nothing (`bulk` mode re-reads
//! the whole table on every poll, as Connect's does).

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{
    config::{JdbcSourceConfig, Mode, Selection},
    querier::{Position, Querier},
    record::RecordWriter,
};
use crate::{
    connectors::{
        kafka::{
            KafkaCluster, PartitionRange,
            delivery::{BatchDeliveries, ORIGIN_HEADER, OutputRecord, OutputTopic},
            offsets::OutputPositions,
            source_offsets::{SourceCheckpoint, SourceOffsets},
        },
        postgres::{self, CopyTextRows, describe, quote_identifier},
        status::{ConnectorState, ConnectorStatus},
        supervise,
    },
    error::{Result, SluiceError},
};

/// How often an unsettled batch's delivery is looked at.
const DELIVERY_CHECK: Duration = Duration::from_millis(2);

pub struct SourceTask {
    pub name: String,
    pub config: JdbcSourceConfig,
    pub cluster: Arc<KafkaCluster>,
    pub offsets: Arc<SourceOffsets>,
    pub status: Arc<ConnectorStatus>,
    pub cancel: CancellationToken,
}

/// One table (or the query) being read.
struct TableReader {
    /// Connect's source partition: `{"protocol": "1", "table": "db.schema.table"}`.
    partition: Value,
    /// The prefix of this table's record identities in the origin header.
    origin: String,
    topic_name: String,
    topic: OutputTopic,
    querier: Querier,
    writer: RecordWriter,
    key_index: Option<usize>,
    columns: usize,
    position: Position,
    output: OutputPositions,
    /// Identities of rows past `position` already in the topic (from before a restart).
    landed: HashSet<String>,
}

/// A row read and encoded, waiting for its batch to be sent.
struct PendingRecord {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    origin: Vec<u8>,
}

impl SourceTask {
    /// Runs sessions until cancelled, retrying failed ones after `connection.backoff.ms`.
    pub async fn run(self) {
        supervise(&self.name, &self.status, &self.cancel, self.config.connection_backoff, || self.session()).await;
    }

    /// One session: connect, recover every table, then poll until cancelled.
    async fn session(&self) -> Result<()> {
        let client = self.connect().await?;
        client.batch_execute(postgres::SESSION_SETTINGS).await?;
        let mut readers = Vec::new();
        let mut known = HashSet::new();
        self.discover(&client, &mut readers, &mut known).await?;
        self.status.set_state(ConnectorState::Running);
        let mut last_discovery = Instant::now();
        loop {
            for reader in &mut readers {
                if self.cancel.is_cancelled() {
                    return Ok(());
                }
                self.poll(&client, reader).await?;
            }
            if last_discovery.elapsed() >= self.config.table_poll_interval {
                self.discover(&client, &mut readers, &mut known).await?;
                last_discovery = Instant::now();
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Connects, trying `connection.attempts` times `connection.backoff.ms` apart.
    async fn connect(&self) -> Result<Client> {
        let mut attempt = 1;
        loop {
            match postgres::connect(&self.config.connection).await {
                Ok(client) => return Ok(client),
                Err(e) if attempt >= self.config.connection_attempts => return Err(e),
                Err(e) => {
                    info!(connector = %self.name, error = %e, attempt, "could not connect to the database; trying again");
                    attempt += 1;
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Err(e),
                        _ = tokio::time::sleep(self.config.connection_backoff) => {}
                    }
                }
            }
        }
    }

    /// Adds a reader for every selected table not read yet.
    async fn discover(&self, client: &Client, readers: &mut Vec<TableReader>, known: &mut HashSet<String>) -> Result<()> {
        let database: String = client.query_one("SELECT current_database()", &[]).await?.get(0);
        for (schema, table) in self.selected_tables(client).await? {
            let qualified = match &schema {
                Some(schema) => format!("{database}.{schema}.{table}"),
                None => "query".to_string(),
            };
            if !known.insert(qualified.clone()) {
                continue;
            }
            readers.push(self.reader(client, schema.as_deref(), &table, &qualified).await?);
        }
        Ok(())
    }

    /// `(Some(schema), table)` per selected table, or `(None, query)` for the custom query.
    async fn selected_tables(&self, client: &Client) -> Result<Vec<(Option<String>, String)>> {
        if let Selection::Query(query) = &self.config.selection {
            return Ok(vec![(None, query.clone())]);
        }
        let rows = client
            .query(
                "SELECT table_schema::text, table_name::text FROM information_schema.tables \
                 WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') \
                 ORDER BY table_schema <> 'public', table_schema, table_name",
                &[],
            )
            .await?;
        let tables: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        let selected = match &self.config.selection {
            Selection::Names(names) => {
                let mut selected = Vec::new();
                for name in names {
                    let found = tables.iter().find(|(schema, table)| name == table || *name == format!("{schema}.{table}"));
                    let table = found.ok_or_else(|| SluiceError::Config(format!("table.whitelist names {name}, which is not a table")))?;
                    if !selected.contains(table) {
                        selected.push(table.clone());
                    }
                }
                selected
            }
            Selection::AllBut(names) => tables
                .into_iter()
                .filter(|(schema, table)| !names.iter().any(|n| n == table || *n == format!("{schema}.{table}")))
                .collect(),
            Selection::Patterns { include, exclude } => tables
                .into_iter()
                .filter(|(schema, table)| {
                    let qualified = format!("{schema}.{table}");
                    include.iter().any(|p| p.is_match(&qualified)) && !exclude.iter().any(|p| p.is_match(&qualified))
                })
                .collect(),
            Selection::Query(_) => Vec::new(),
        };
        Ok(selected.into_iter().map(|(schema, table)| (Some(schema), table)).collect())
    }

    /// A reader of `table` (or of the query when `schema` is `None`), its offset and the rows
    /// already in its topic recovered.
    async fn reader(&self, client: &Client, schema: Option<&str>, table: &str, qualified: &str) -> Result<TableReader> {
        let (from, topic_name, struct_name, partition) = match schema {
            Some(schema) => (
                format!("{}.{}", quote_identifier(schema), quote_identifier(table)),
                format!("{}{table}", self.config.topic_prefix),
                Some(table),
                json!({"protocol": "1", "table": qualified}),
            ),
            None => (format!("({table})"), self.config.topic_prefix.clone(), None, json!({"query": "query"})),
        };
        let querier = Querier::new(
            from,
            self.config.mode.clone(),
            self.config.timestamp_initial,
            self.config.timestamp_delay.as_millis(),
        );
        let columns = describe(client, &querier.describe_statement()).await?;
        let key_index = match &self.config.key_column {
            Some(key) => Some(columns.iter().position(|c| &c.name == key).ok_or_else(|| {
                SluiceError::Config(format!("key column {key} is not a column of {qualified}"))
            })?),
            None => None,
        };
        self.cluster.ensure_topic(&topic_name, 1, 1, &[]).await?;
        let writer = RecordWriter::new(&columns, struct_name, self.config.numeric_mapping, self.config.value_schemas);
        let checkpoint = self.offsets.get(&self.name, &partition).unwrap_or_default();
        let mut reader = TableReader {
            origin: format!("jdbc\u{1f}{}\u{1f}{qualified}\u{1f}", self.name),
            topic: self.cluster.output_producer().topic(&topic_name)?,
            topic_name,
            querier,
            writer,
            key_index,
            columns: columns.len(),
            position: Position::from_offset(&checkpoint.offset),
            output: checkpoint.output,
            landed: HashSet::new(),
            partition,
        };
        if self.config.mode != Mode::Bulk {
            reader.landed = self.read_back(&reader).await?;
        }
        info!(connector = %self.name, table = %qualified, offset = ?reader.position, landed = reader.landed.len(), "reading");
        Ok(reader)
    }

    /// The identities of this table's rows in its topic past the committed output positions.
    async fn read_back(&self, reader: &TableReader) -> Result<HashSet<String>> {
        let topic = reader.topic_name.clone();
        let Some(info) = self.cluster.topic(&topic)? else {
            return Ok(HashSet::new());
        };
        let mut ranges = Vec::new();
        for (partition, (low, high)) in self.cluster.watermarks(&topic, info.partitions)?.into_iter().enumerate() {
            let partition = partition as i32;
            let from = reader.output.get(&topic).and_then(|p| p.get(&partition)).copied().unwrap_or(low).max(low);
            ranges.push(PartitionRange { topic: topic.clone(), partition, from, until: high });
        }
        let cluster = self.cluster.clone();
        let prefix = reader.origin.clone();
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

    /// Reads the rows past the reader's offset and writes them, committing batch by batch.
    async fn poll(&self, client: &Client, reader: &mut TableReader) -> Result<()> {
        let statement = reader.querier.statement(reader.position);
        let mut chunks = Box::pin(postgres::copy_out(client, &statement).await?);
        let mut rows = CopyTextRows::default();
        let mut batch: Vec<PendingRecord> = Vec::new();
        let mut batch_end = reader.position;
        let offset_columns = reader.querier.offset_columns();
        while let Some(chunk) = chunks.next().await {
            rows.push(&chunk?, |row| {
                row.expect_fields(reader.columns + offset_columns)?;
                let offsets: Vec<Option<&str>> =
                    (reader.columns..reader.columns + offset_columns).map(|i| row.field(i)).collect::<Result<_>>()?;
                let position = reader.querier.position_of(&offsets)?;
                let value = reader.writer.value(row)?;
                let identity = identity(&reader.querier, position, &value);
                batch_end = position;
                if reader.landed.remove(&identity) {
                    return Ok(());
                }
                let key = match reader.key_index {
                    Some(index) => row.field(index)?.map(|k| k.as_bytes().to_vec()),
                    None => None,
                };
                let origin = format!("{}{identity}", reader.origin).into_bytes();
                batch.push(PendingRecord { key, value, origin });
                Ok(())
            })?;
            if batch.len() >= self.config.batch_max_rows {
                self.write_batch(reader, std::mem::take(&mut batch), batch_end, !matches!(self.config.mode, Mode::Timestamp { .. })).await?;
            }
        }
        rows.finish()?;
        self.write_batch(reader, batch, batch_end, true).await?;
        reader.landed.clear();
        Ok(())
    }

    /// Sends `batch`, waits until Kafka has all of it, then commits `end` as the offset when
    /// `commit` (a timestamp-only source commits only where a poll ends: rows sharing the last
    /// timestamp may not all be read yet).
    async fn write_batch(&self, reader: &mut TableReader, batch: Vec<PendingRecord>, end: Position, commit: bool) -> Result<()> {
        let deliveries = Arc::new(BatchDeliveries::default());
        let timestamp = chrono::Utc::now().timestamp_millis();
        for record in &batch {
            reader.topic.send(
                &deliveries,
                &OutputRecord {
                    partition: None,
                    key: record.key.as_deref(),
                    value: Some(&record.value),
                    timestamp,
                    origin: Some(&record.origin),
                },
            )?;
        }
        while !deliveries.is_settled() {
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(DELIVERY_CHECK) => {}
            }
        }
        deliveries.wait_until(Instant::now())?;
        for (topic, partitions) in deliveries.written() {
            for (partition, next) in partitions {
                reader.output.entry(topic.clone()).or_default().insert(partition, next);
                self.status.update(&topic, partition, |progress| {
                    progress.committed = Some(next - 1);
                    progress.log_end = next;
                });
            }
        }
        let records = batch.len() as u64;
        let bytes = batch.iter().map(|r| r.value.len() as u64).sum::<u64>();
        self.status.update(&reader.topic_name, 0, |progress| {
            progress.records += records;
            progress.bytes += bytes;
        });
        if commit && self.config.mode != Mode::Bulk && end != reader.position {
            reader.position = end;
            let checkpoint = SourceCheckpoint { offset: end.to_offset(), output: reader.output.clone() };
            self.offsets.commit(&self.name, &reader.partition, &checkpoint).await?;
        }
        Ok(())
    }
}

/// A row's identity among its table's records: its offset, and for a timestamp-only source
/// (whose timestamps need not be unique) a digest of its value as well.
fn identity(querier: &Querier, position: Position, value: &[u8]) -> String {
    let Position { timestamp, incrementing } = position;
    let mut identity = format!("{}:{}", timestamp.unwrap_or_default(), incrementing.unwrap_or_default());
    if querier.offset_columns() == 1 && timestamp.is_some() {
        identity.push_str(&format!(":{:016x}", fnv1a(value)));
    }
    identity
}

/// FNV-1a, a digest stable across builds (unlike `std`'s hasher), for identities that outlive
/// the process.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
