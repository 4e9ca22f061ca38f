//! The JDBC source's task: every `poll.interval.ms`, each table's rows past its offset are read
//! with `COPY (SELECT …) TO STDOUT`, written to `<topic.prefix><table>` in batches of
//! `batch.max.rows`, and the offset committed once a batch is in Kafka.
//!
//! Exactly once through [`SourceWriter`]: a row's identity is its offset (with a digest of its
//! value where timestamps alone may repeat), so a crash between a write and its commit repeats
//! nothing and loses nothing (`bulk` mode re-reads the whole table on every poll, as Connect's
//! does).

use std::{collections::HashSet, time::Instant};

use futures::StreamExt;
use serde_json::json;
use tokio_postgres::Client;
use tracing::info;

use super::{
    config::{JdbcSourceConfig, Mode, Selection},
    querier::{Position, Querier},
    record::RecordWriter,
};
use crate::{
    connectors::{
        postgres::{self, CopyTextRows, describe, quote_identifier},
        source_writer::{SourceContext, SourceRecord, SourceWriter},
        status::ConnectorState,
        supervise,
    },
    error::{Result, SluiceError},
};

pub struct SourceTask {
    pub config: JdbcSourceConfig,
    pub context: SourceContext,
}

/// One table (or the query) being read.
struct TableReader {
    writer: SourceWriter,
    querier: Querier,
    record: RecordWriter,
    key_index: Option<usize>,
    columns: usize,
    position: Position,
}

impl SourceTask {
    /// Runs sessions until cancelled, retrying failed ones after `connection.backoff.ms`.
    pub async fn run(self) {
        let context = &self.context;
        supervise(&context.connector, &context.status, &context.cancel, self.config.connection_backoff, || self.session()).await;
    }

    /// One session: connect, recover every table, then poll until cancelled.
    async fn session(&self) -> Result<()> {
        let client = self.connect().await?;
        client.batch_execute(postgres::SESSION_SETTINGS).await?;
        let mut readers = Vec::new();
        let mut known = HashSet::new();
        self.discover(&client, &mut readers, &mut known).await?;
        self.context.status.set_state(ConnectorState::Running);
        let mut last_discovery = Instant::now();
        loop {
            for reader in &mut readers {
                if self.context.cancel.is_cancelled() {
                    return Ok(());
                }
                self.poll(&client, reader).await?;
            }
            if last_discovery.elapsed() >= self.config.table_poll_interval {
                self.discover(&client, &mut readers, &mut known).await?;
                last_discovery = Instant::now();
            }
            tokio::select! {
                _ = self.context.cancel.cancelled() => return Ok(()),
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
                    info!(connector = %self.context.connector, error = %e, attempt, "could not connect to the database; trying again");
                    attempt += 1;
                    tokio::select! {
                        _ = self.context.cancel.cancelled() => return Err(e),
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
        let record = RecordWriter::new(&columns, struct_name, self.config.numeric_mapping, self.config.value_schemas);
        let read_back = self.config.mode != Mode::Bulk;
        let (writer, offset) = SourceWriter::open(&self.context, partition, &topic_name, read_back).await?;
        let position = Position::from_offset(&offset);
        info!(connector = %self.context.connector, table = %qualified, offset = ?position, written = writer.written_count(), "reading");
        Ok(TableReader { writer, querier, record, key_index, columns: columns.len(), position })
    }

    /// Reads the rows past the reader's offset and writes them, committing batch by batch (a
    /// timestamp-only source commits only where a poll ends: rows sharing the last timestamp
    /// may not all be read yet).
    async fn poll(&self, client: &Client, reader: &mut TableReader) -> Result<()> {
        let statement = reader.querier.statement(reader.position);
        let mut chunks = Box::pin(postgres::copy_out(client, &statement).await?);
        let mut rows = CopyTextRows::default();
        let mut batch: Vec<SourceRecord> = Vec::new();
        let mut batch_end = reader.position;
        let offset_columns = reader.querier.offset_columns();
        let commits_per_batch = !matches!(self.config.mode, Mode::Timestamp { .. } | Mode::Bulk);
        while let Some(chunk) = chunks.next().await {
            rows.push(&chunk?, |row| {
                row.expect_fields(reader.columns + offset_columns)?;
                let offsets: Vec<Option<&str>> =
                    (reader.columns..reader.columns + offset_columns).map(|i| row.field(i)).collect::<Result<_>>()?;
                let position = reader.querier.position_of(&offsets)?;
                let value = reader.record.value(row)?;
                let identity = identity(&reader.querier, position, &value);
                batch_end = position;
                if reader.writer.already_written(&identity) {
                    return Ok(());
                }
                let key = match reader.key_index {
                    Some(index) => row.field(index)?.map(|k| k.as_bytes().to_vec()),
                    None => None,
                };
                batch.push(SourceRecord { key, value: Some(value), identity });
                Ok(())
            })?;
            if batch.len() >= self.config.batch_max_rows {
                if !reader.writer.write(&std::mem::take(&mut batch)).await? {
                    return Ok(());
                }
                if commits_per_batch {
                    self.commit(reader, batch_end).await?;
                }
            }
        }
        rows.finish()?;
        if !reader.writer.write(&batch).await? {
            return Ok(());
        }
        if self.config.mode != Mode::Bulk {
            self.commit(reader, batch_end).await?;
        }
        reader.writer.forget_written();
        Ok(())
    }

    async fn commit(&self, reader: &mut TableReader, end: Position) -> Result<()> {
        if end != reader.position {
            reader.position = end;
            reader.writer.commit(end.to_offset()).await?;
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
