//! Where a query's rows go: a Kafka topic in the sink stream's format — one topic, or one per
//! row named by a [`TopicTemplate`] — a push query's client, a materialized table, or a table's
//! versions for a join.

use std::{collections::HashMap, sync::Arc};

use arrow::array::ArrayRef;
use tokio::{runtime::Handle, sync::mpsc};

use super::{
    status::ErrorKind,
    table_state::{StoredRecord, TableState},
    table_versions::{TableVersions, Version},
};
use crate::{
    catalog::{Format, topic_template::TopicTemplate},
    connectors::kafka::{
        KafkaCluster,
        delivery::{BatchDeliveries, OutputRecord, OutputTopic},
    },
    error::{Result, SluiceError},
    format::{ColumnWriter, RawRecord, encode_keys, encode_value},
};

/// An output row ready to encode: where it came from and its projected values.
pub struct OutputRow<'a> {
    pub record: &'a RawRecord<'a>,
    /// Row index into the projected columns.
    pub row: usize,
    /// Written without value: a table row deleted, or a stream's null row.
    pub tombstone: bool,
    /// The output record's timestamp when it is not its record's (an aggregate's).
    pub timestamp: Option<i64>,
    /// The window of a windowed aggregate's row, written after its key.
    pub window: Option<crate::format::WindowKey>,
    /// The records a stream-stream join's row shows, when not only its record.
    pub identity: Option<super::origin::RowIdentity>,
}

/// The new key of each row, one array per key column (none: each record keeps its key), the
/// output column each is when there are several, and whether they are the record's own key read
/// again (a record without a key then keeps none).
pub type NewKeys<'a> = (&'a [ArrayRef], &'a [String], bool);

/// A row the sink skipped: its index in the rows given, what failed, and why.
pub type Unwritten = (usize, ErrorKind, String);

pub enum QuerySink {
    /// Records into Kafka.
    Topic(TopicSink),
    /// JSON arrays of column values, one per row, to a push query's response.
    Rows(RowsSink),
    /// The latest record per key, for pull queries.
    Table(Arc<TableState>),
    /// Recent versions per key, for stream-table joins.
    Versions(Arc<TableVersions>),
}

/// A push query's rows on their way to its client.
pub struct RowsSink {
    pub sender: mpsc::Sender<PushRow>,
    /// For each output column, whether it is a key column: a tombstone keeps only those.
    pub key_outputs: Vec<bool>,
    /// Whether a row without value is shown, as a tombstone: it is in a table's changes; a
    /// stream's record without value is no row.
    pub tombstones: bool,
}

/// One row of a push or pull query: its columns as a JSON array.
pub struct PushRow {
    pub columns: Vec<u8>,
    pub tombstone: bool,
}

/// Records in the sink stream's format, to its topic or topics.
pub struct TopicSink {
    pub destination: Destination,
    /// How the sink's key is written.
    pub key_format: Format,
    /// What separates the fields of a DELIMITED key.
    pub key_delimiter: u8,
    /// The sink's key columns, in order: a key of several is written in this order.
    pub key_names: Vec<String>,
    pub format: Format,
    pub delimiter: u8,
    /// False when a single value column is written as its bare value (`WRAP_SINGLE_VALUE=false`).
    pub wrap_single_value: bool,
    /// The projected columns that make the value (the sink's key columns are the key), in order.
    pub value_columns: Vec<usize>,
    /// Their names, for JSON.
    pub names: Vec<String>,
}

pub enum Destination {
    /// One topic.
    Fixed {
        name: String,
        topic: OutputTopic,
        partitions: i32,
    },
    /// A topic per row, created when first named, with the source's partition count.
    Routed(Router),
}

/// Names each row's topic from its columns and keeps a handle per topic named so far.
pub struct Router {
    template: TopicTemplate,
    /// The projected columns the template reads, in its order.
    columns: Vec<usize>,
    cluster: Arc<KafkaCluster>,
    runtime: Handle,
    partitions: i32,
    topics: HashMap<Vec<u8>, (OutputTopic, i32)>,
}

impl Router {
    pub fn new(template: TopicTemplate, columns: Vec<usize>, cluster: Arc<KafkaCluster>, runtime: Handle, partitions: i32) -> Self {
        Self {
            template,
            columns,
            cluster,
            runtime,
            partitions,
            topics: HashMap::new(),
        }
    }

    /// The topic named `name`, created first if it does not exist. Blocking.
    fn topic(&mut self, name: &[u8]) -> Result<&(OutputTopic, i32)> {
        if !self.topics.contains_key(name) {
            let text = String::from_utf8_lossy(name).into_owned();
            let partitions = self
                .runtime
                .block_on(self.cluster.ensure_topic(&text, self.partitions, 1, &[]))?;
            let topic = self.cluster.output_producer().topic(&text)?;
            self.topics.insert(name.to_vec(), (topic, partitions));
        }
        Ok(&self.topics[name])
    }
}

impl QuerySink {
    /// Whether output sent to `topic` is this query's.
    pub fn writes_to(&self, topic: &str) -> bool {
        match self {
            QuerySink::Topic(TopicSink { destination: Destination::Fixed { name, .. }, .. }) => name == topic,
            QuerySink::Topic(TopicSink { destination: Destination::Routed(router), .. }) => router.template.matches(topic),
            QuerySink::Rows(_) | QuerySink::Table(_) | QuerySink::Versions(_) => false,
        }
    }

    /// Every topic the query may have written to. Blocking.
    pub fn output_topics(&self, cluster: &KafkaCluster) -> Result<Vec<String>> {
        Ok(match self {
            QuerySink::Topic(TopicSink { destination: Destination::Fixed { name, .. }, .. }) => vec![name.clone()],
            QuerySink::Topic(TopicSink { destination: Destination::Routed(router), .. }) => cluster
                .topics()?
                .into_iter()
                .map(|t| t.name)
                .filter(|name| router.template.matches(name))
                .collect(),
            QuerySink::Rows(_) | QuerySink::Table(_) | QuerySink::Versions(_) => Vec::new(),
        })
    }

    /// Notes how far the query has read (everything before `positions`).
    pub fn progress(&self, positions: &crate::connectors::kafka::offsets::PartitionOffsets) {
        match self {
            QuerySink::Table(table) => table.progress.advance(positions),
            QuerySink::Versions(table) => table.progress.advance(positions),
            QuerySink::Topic(_) | QuerySink::Rows(_) => {}
        }
    }

    /// Whether `row` is output at all: a push query over a stream shows no record without
    /// value.
    pub fn shows(&self, row: &OutputRow<'_>) -> bool {
        match self {
            QuerySink::Rows(sink) => sink.tombstones || !row.tombstone,
            _ => true,
        }
    }

    /// Writes the rows of one batch; records sent to Kafka count in `batch`, which settles
    /// once Kafka has them all. A row that cannot be encoded or routed is skipped and returned;
    /// an `Err` is a failure of the whole batch.
    pub fn write(
        &mut self,
        rows: &[OutputRow<'_>],
        columns: &[ArrayRef],
        keys: NewKeys<'_>,
        forward_value: bool,
        origin: Option<&str>,
        batch: &Arc<BatchDeliveries>,
    ) -> Result<Vec<Unwritten>> {
        match self {
            QuerySink::Topic(sink) => sink.write(rows, columns, keys, forward_value, origin, batch),
            QuerySink::Rows(sink) => {
                let writers: Vec<ColumnWriter> = columns.iter().map(ColumnWriter::new).collect();
                for out in rows {
                    let mut row = Vec::with_capacity(128);
                    row.push(b'[');
                    for (i, w) in writers.iter().enumerate() {
                        if i > 0 {
                            row.push(b',');
                        }
                        if out.tombstone && !sink.key_outputs.get(i).copied().unwrap_or(false) {
                            row.extend_from_slice(b"null");
                        } else {
                            w.write_json(out.row, &mut row);
                        }
                    }
                    row.push(b']');
                    let pushed = PushRow {
                        columns: row,
                        tombstone: out.tombstone,
                    };
                    if sink.sender.blocking_send(pushed).is_err() {
                        return Err(SluiceError::Execution("the push query's client went away".into()));
                    }
                }
                Ok(Vec::new())
            }
            QuerySink::Table(table) => {
                for out in rows {
                    let key = out.record.key.unwrap_or_default();
                    match out.record.value.filter(|_| !out.tombstone) {
                        Some(value) => table.upsert(StoredRecord {
                            key: key.to_vec(),
                            value: value.to_vec(),
                            timestamp: out.timestamp.unwrap_or(out.record.timestamp),
                            partition: out.record.partition,
                            offset: out.record.offset,
                        }),
                        None => table.delete(key),
                    }
                }
                Ok(Vec::new())
            }
            QuerySink::Versions(table) => {
                for out in rows {
                    // A record without key has no row to be (ksqlDB drops it).
                    let Some(key) = out.record.key else { continue };
                    let version = Version {
                        timestamp: out.timestamp.unwrap_or(out.record.timestamp),
                        value: out.record.value.filter(|_| !out.tombstone).map(<[u8]>::to_vec),
                        partition: out.record.partition,
                        offset: out.record.offset,
                    };
                    table.put(key, version);
                }
                Ok(Vec::new())
            }
        }
    }
}

impl TopicSink {
    fn write(
        &mut self,
        rows: &[OutputRow<'_>],
        columns: &[ArrayRef],
        keys: NewKeys<'_>,
        forward_value: bool,
        origin: Option<&str>,
        batch: &Arc<BatchDeliveries>,
    ) -> Result<Vec<Unwritten>> {
        let writers: Vec<ColumnWriter> = columns.iter().map(ColumnWriter::new).collect();
        // A forwarded value is the record's own; no projected column is computed for it.
        let value_writers: Vec<ColumnWriter> = if forward_value {
            Vec::new()
        } else {
            self.value_columns.iter().map(|&i| ColumnWriter::new(&columns[i])).collect()
        };
        let (keys, key_names, read_again) = keys;
        let key_writers: Vec<ColumnWriter> = keys.iter().map(ColumnWriter::new).collect();
        let mut value = Vec::with_capacity(256);
        let mut key = Vec::new();
        let mut header = Vec::new();
        let mut name = Vec::new();
        let mut failed = Vec::new();
        for (index, out) in rows.iter().enumerate() {
            value.clear();
            let payload: Option<&[u8]> = if out.tombstone {
                None
            } else if forward_value {
                out.record.value
            } else {
                match encode_value(self.format, self.delimiter, &self.names, &value_writers, out.row, self.wrap_single_value, &mut value) {
                    Ok(true) => Some(&value),
                    Ok(false) => None,
                    Err(e) => {
                        failed.push((index, ErrorKind::Serialization, format!("Error serializing row: {e}")));
                        continue;
                    }
                }
            };
            let (topic, partitions) = match &mut self.destination {
                Destination::Fixed { topic, partitions, .. } => (&*topic, *partitions),
                Destination::Routed(router) => {
                    let named = router.template.render(
                        |i, out_name| {
                            let writer = &writers[router.columns[i]];
                            if writer.is_null(out.row) {
                                return false;
                            }
                            writer.write_text(out.row, out_name);
                            true
                        },
                        &mut name,
                    );
                    if let Err(message) = named {
                        failed.push((index, ErrorKind::Production, message));
                        continue;
                    }
                    let (topic, partitions) = router.topic(&name)?;
                    (topic, *partitions)
                }
            };
            let key_bytes: Option<&[u8]> = if self.key_format == Format::None {
                None
            } else if key_writers.is_empty() {
                out.record.key
            } else if (key_writers.len() == 1 && key_writers[0].is_null(out.row)) || (read_again && out.record.key.is_none()) {
                // A NULL single key, or a record without key whose key is read again, is written
                // without key; a new key of several columns is written even when each is NULL,
                // as ksqlDB does.
                None
            } else {
                key.clear();
                if let Err(e) = encode_keys(self.key_format, self.key_delimiter, &self.key_names, key_names, &key_writers, out.row, &mut key) {
                    failed.push((index, ErrorKind::Serialization, format!("Error serializing key: {e}")));
                    continue;
                }
                if let Some(window) = out.window {
                    window.append_to(&mut key);
                }
                Some(&key)
            };
            if let Some(query) = origin {
                header.clear();
                let identity = out.identity.unwrap_or(((out.record.partition, out.record.offset), None));
                super::origin::encode(query, identity, &mut header);
            }
            let record = OutputRecord {
                origin: origin.map(|_| header.as_slice()),
                partition: (key_writers.is_empty() && out.record.partition < partitions).then_some(out.record.partition),
                key: key_bytes,
                value: payload,
                timestamp: out.timestamp.unwrap_or(out.record.timestamp),
                headers: out.record.headers,
            };
            topic.send(batch, &record)?;
        }
        Ok(failed)
    }
}
