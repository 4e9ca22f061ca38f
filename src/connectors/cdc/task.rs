//! The change-capture task: makes the publication and the replication slot, reads the captured
//! tables' rows once (the snapshot), then every `poll.interval.ms` decodes the committed
//! transactions past the slot's position with `pg_logical_slot_peek_binary_changes`, writes
//! their change events, and only once Kafka has them moves the slot past them
//! (`pg_replication_slot_advance`) — PostgreSQL keeps every change until then.
//!
//! Exactly once: a change's identity is its transaction's end position and its place in the
//! transaction, so changes decoded again after a crash between the write and the slot's
//! advance are found in their topics and skipped ([`SourceWriter`]). The slot is made before
//! the snapshot, so every transaction the snapshot cannot see is decoded from it, and the
//! transactions the snapshot saw are skipped by their id.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio_postgres::Client;
use tracing::info;

use super::{
    config::{CdcConfig, PublicationAutocreate, SnapshotMode},
    event::{ColumnShape, EventWriter, Op, Origin, TableShape, lsn_text, parse_lsn},
    pgoutput::{self, Datum, Message, RelationColumn},
};
use crate::{
    connectors::{
        kafka::source_offsets::SourceCheckpoint,
        postgres::{self, CopyTextRows, quote_identifier, quote_literal},
        source_writer::{SourceContext, SourceRecord, SourceWriter},
        status::ConnectorState,
        supervise,
    },
    error::{Result, SluiceError},
};

pub struct CdcTask {
    pub config: CdcConfig,
    pub context: SourceContext,
}

/// The transactions a snapshot saw, as `pg_current_snapshot()` gave them, and the WAL position
/// when it was taken: a transaction ending past it was not seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SeenBySnapshot {
    xmin: u32,
    xmax: u32,
    xip: Vec<u32>,
    lsn: u64,
}

/// Whether transaction id `a` comes before `b`, modulo wraparound as PostgreSQL compares them.
fn precedes(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl SeenBySnapshot {
    /// Reads `xmin:xmax:xip,…` (64-bit ids; their low 32 bits are what decoding gives).
    fn parse(snapshot: &str, lsn: u64) -> Result<SeenBySnapshot> {
        let unreadable = || SluiceError::Execution(format!("PostgreSQL's snapshot '{snapshot}' could not be read"));
        let low = |id: &str| id.trim().parse::<u64>().map(|id| id as u32).map_err(|_| unreadable());
        let mut parts = snapshot.split(':');
        let (Some(xmin), Some(xmax), Some(xip)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(unreadable());
        };
        Ok(SeenBySnapshot {
            xmin: low(xmin)?,
            xmax: low(xmax)?,
            xip: xip.split(',').filter(|x| !x.is_empty()).map(low).collect::<Result<_>>()?,
            lsn,
        })
    }

    /// Whether the snapshot holds what transaction `xid`, ending at `end_lsn`, changed.
    fn saw(&self, xid: u32, end_lsn: u64) -> bool {
        end_lsn <= self.lsn && (precedes(xid, self.xmin) || (precedes(xid, self.xmax) && !self.xip.contains(&xid)))
    }
}

/// The connector's own progress, committed beside its topics' positions.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Progress {
    snapshot_done: bool,
    /// Set until the decoded changes have passed the snapshot.
    seen: Option<SeenBySnapshot>,
    /// The end of the last transaction written.
    lsn: Option<u64>,
}

/// A change decoded and not written yet.
struct Change {
    oid: u32,
    op: Op,
    before: Option<Vec<Datum>>,
    after: Option<Vec<Datum>>,
    lsn: u64,
}

/// A transaction being decoded.
struct Transaction {
    xid: u32,
    commit_ms: i64,
    changes: Vec<Change>,
}

/// The captured tables by relation id.
type Shapes = BTreeMap<u32, TableShape>;

impl CdcTask {
    /// Runs sessions until cancelled, retrying failed ones after
    /// `retriable.restart.connector.wait.ms`.
    pub async fn run(self) {
        let context = &self.context;
        supervise(&context.connector, &context.status, &context.cancel, self.config.retry_delay, || self.session()).await;
    }

    fn events(&self) -> EventWriter {
        EventWriter {
            prefix: self.config.prefix.clone(),
            database: self.config.database.clone(),
            key_schemas: self.config.key_schemas,
            value_schemas: self.config.value_schemas,
        }
    }

    /// The partition the connector's own progress is committed under, as Debezium's.
    fn progress_partition(&self) -> Value {
        json!({"server": self.config.prefix})
    }

    fn progress(&self) -> Progress {
        self.context
            .offsets
            .get(&self.context.connector, &self.progress_partition())
            .and_then(|checkpoint| serde_json::from_value(Value::Object(checkpoint.offset)).ok())
            .unwrap_or_default()
    }

    async fn commit_progress(&self, progress: &Progress) -> Result<()> {
        let Value::Object(offset) = serde_json::to_value(progress)? else {
            return Err(SluiceError::Internal("the connector's progress is not a JSON object".into()));
        };
        let checkpoint = SourceCheckpoint { offset, output: Default::default() };
        self.context.offsets.commit(&self.context.connector, &self.progress_partition(), &checkpoint).await
    }

    /// One session: connect, make the publication and slot, snapshot when due, then decode.
    async fn session(&self) -> Result<()> {
        let client = postgres::connect(&self.config.connection).await?;
        client.batch_execute(postgres::SESSION_SETTINGS).await?;
        let mut shapes = self.captured_tables(&client).await?;
        self.ensure_publication(&client, &shapes).await?;
        // A snapshot alone decodes nothing: no slot is made to hold the server's log back.
        let slot_made = match self.config.snapshot_mode {
            SnapshotMode::InitialOnly => false,
            _ => self.ensure_slot(&client).await?,
        };
        let mut progress = self.progress();
        if slot_made && progress.snapshot_done {
            info!(connector = %self.context.connector, slot = %self.config.slot, "the replication slot was gone; reading the tables again");
            progress = Progress::default();
        }
        let mut writers = BTreeMap::new();
        self.context.status.set_state(ConnectorState::Running);
        let snapshot = match self.config.snapshot_mode {
            SnapshotMode::Initial | SnapshotMode::InitialOnly => !progress.snapshot_done,
            SnapshotMode::Always => true,
            SnapshotMode::NoData => false,
        };
        if snapshot {
            let Some(seen) = self.snapshot(&client, &shapes, &mut writers).await? else { return Ok(()) };
            progress = Progress { snapshot_done: true, seen: Some(seen), lsn: progress.lsn };
            self.commit_progress(&progress).await?;
        } else if !progress.snapshot_done {
            progress.snapshot_done = true;
            self.commit_progress(&progress).await?;
        }
        if self.config.snapshot_mode == SnapshotMode::InitialOnly {
            self.context.cancel.cancelled().await;
            return Ok(());
        }
        loop {
            let decoded = self.decode(&client, &mut shapes, &mut writers, &mut progress).await?;
            if self.context.cancel.is_cancelled() {
                return Ok(());
            }
            if !decoded {
                tokio::select! {
                    _ = self.context.cancel.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                }
            }
        }
    }

    /// The captured tables with their columns, nullability and primary keys.
    async fn captured_tables(&self, client: &Client) -> Result<Shapes> {
        let rows = client
            .query(
                "SELECT c.oid::int8, n.nspname::text, c.relname::text, a.attname::text, a.atttypid::int8, a.atttypmod, \
                 NOT a.attnotnull, coalesce(a.attnum = ANY(i.indkey::int2[]), false) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                 LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary \
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                 AND n.nspname NOT LIKE 'pg_toast%' ORDER BY n.nspname, c.relname, a.attnum",
                &[],
            )
            .await?;
        let mut shapes = Shapes::new();
        for row in rows {
            let (schema, name): (String, String) = (row.get(1), row.get(2));
            if !self.config.captures(&schema, &name) {
                continue;
            }
            let oid = row.get::<_, i64>(0) as u32;
            let table = shapes.entry(oid).or_insert_with(|| TableShape { schema, name, columns: Vec::new() });
            table.columns.push(ColumnShape {
                name: row.get(3),
                type_oid: row.get::<_, i64>(4) as u32,
                type_modifier: row.get(5),
                optional: row.get(6),
                key: row.get(7),
            });
        }
        Ok(shapes)
    }

    async fn ensure_publication(&self, client: &Client, shapes: &Shapes) -> Result<()> {
        let name = &self.config.publication;
        if !client.query("SELECT 1 FROM pg_publication WHERE pubname = $1", &[name]).await?.is_empty() {
            return Ok(());
        }
        let tables: Vec<String> = shapes.values().map(|t| format!("{}.{}", quote_identifier(&t.schema), quote_identifier(&t.name))).collect();
        let statement = match self.config.publication_autocreate {
            PublicationAutocreate::AllTables => format!("CREATE PUBLICATION {} FOR ALL TABLES", quote_identifier(name)),
            PublicationAutocreate::Filtered if tables.is_empty() => {
                return Err(SluiceError::Config(format!("publication {name} cannot be made: the include and exclude lists select no table")));
            }
            PublicationAutocreate::Filtered => format!("CREATE PUBLICATION {} FOR TABLE {}", quote_identifier(name), tables.join(", ")),
            PublicationAutocreate::Disabled => {
                return Err(SluiceError::Config(format!(
                    "publication {name} does not exist and publication.autocreate.mode is disabled: create it first"
                )));
            }
        };
        info!(connector = %self.context.connector, publication = %name, "creating the publication");
        client.batch_execute(&statement).await?;
        Ok(())
    }

    /// Makes the slot when missing; whether it was made.
    async fn ensure_slot(&self, client: &Client) -> Result<bool> {
        let slot = &self.config.slot;
        let found = client.query("SELECT plugin::text FROM pg_replication_slots WHERE slot_name = $1", &[slot]).await?;
        if let Some(row) = found.first() {
            let plugin: String = row.get(0);
            if plugin != "pgoutput" {
                return Err(SluiceError::Config(format!("replication slot {slot} decodes with {plugin}, not pgoutput: name another slot.name")));
            }
            return Ok(false);
        }
        info!(connector = %self.context.connector, %slot, "creating the replication slot");
        client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", &[slot]).await?;
        Ok(true)
    }

    /// The writer of `topic`, opened (and what it wrote since its last commit read back) the
    /// first time.
    async fn writer<'a>(&self, writers: &'a mut BTreeMap<String, SourceWriter>, topic: &str) -> Result<&'a mut SourceWriter> {
        if !writers.contains_key(topic) {
            let partition = json!({"server": self.config.prefix, "topic": topic});
            let (writer, _) = SourceWriter::open(&self.context, partition, topic, true).await?;
            writers.insert(topic.to_string(), writer);
        }
        Ok(writers.get_mut(topic).expect("opened above"))
    }

    /// Writes `batch` (records by topic), skipping what a crashed run already wrote; `false`
    /// when cancelled first.
    async fn write(&self, writers: &mut BTreeMap<String, SourceWriter>, batch: &mut BTreeMap<String, Vec<SourceRecord>>) -> Result<bool> {
        for (topic, records) in std::mem::take(batch) {
            let writer = self.writer(writers, &topic).await?;
            let fresh: Vec<SourceRecord> = records.into_iter().filter(|r| !writer.already_written(&r.identity)).collect();
            if !writer.write(&fresh).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads every captured table as one snapshot and writes a read event per row; gives what
    /// the snapshot saw, or `None` when cancelled first.
    async fn snapshot(&self, client: &Client, shapes: &Shapes, writers: &mut BTreeMap<String, SourceWriter>) -> Result<Option<SeenBySnapshot>> {
        client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
        let row = client.query_one("SELECT pg_current_snapshot()::text, pg_current_wal_lsn()::text", &[]).await?;
        let lsn_read: String = row.get(1);
        let lsn = parse_lsn(&lsn_read).ok_or_else(|| SluiceError::Execution(format!("PostgreSQL gave the WAL position '{lsn_read}'")))?;
        let seen = SeenBySnapshot::parse(&row.get::<_, String>(0), lsn)?;
        info!(connector = %self.context.connector, tables = shapes.len(), "reading the tables' rows (snapshot)");
        let events = self.events();
        let started_ms = chrono::Utc::now().timestamp_millis();
        let mut batch: BTreeMap<String, Vec<SourceRecord>> = BTreeMap::new();
        let mut pending: Option<(&TableShape, Vec<Datum>)> = None;
        let mut count = 0usize;
        // The snapshot's n-th row, as its topic and record.
        let event = |table: &TableShape, row: Vec<Datum>, snapshot: &'static str, n: usize| {
            let origin = Origin { ts_ms: started_ms, snapshot, sequence: None, tx_id: None, lsn: Some(lsn) };
            let record = SourceRecord {
                key: events.key(table, &row),
                value: Some(events.value(table, Op::Read, None, Some(&row), &origin, chrono::Utc::now().timestamp_millis())),
                identity: format!("snapshot:{}:{n}", seen.xmax),
            };
            (events.topic(table), record)
        };
        for table in shapes.values() {
            let columns: Vec<String> = table.columns.iter().map(|c| quote_identifier(&c.name)).collect();
            let statement = format!(
                "COPY (SELECT {} FROM {}.{}) TO STDOUT",
                columns.join(", "),
                quote_identifier(&table.schema),
                quote_identifier(&table.name)
            );
            let mut chunks = Box::pin(postgres::copy_out(client, &statement).await?);
            let mut rows = CopyTextRows::default();
            while let Some(chunk) = chunks.next().await {
                let mut read = Vec::new();
                rows.push(&chunk?, |row| {
                    row.expect_fields(table.columns.len())?;
                    let datums = (0..table.columns.len())
                        .map(|i| Ok(row.field(i)?.map_or(Datum::Null, |text| Datum::Text(text.to_string()))))
                        .collect::<Result<Vec<Datum>>>()?;
                    read.push(datums);
                    Ok(())
                })?;
                for datums in read {
                    if let Some((previous, row)) = pending.replace((table, datums)) {
                        let (topic, record) = event(previous, row, "true", count);
                        batch.entry(topic).or_default().push(record);
                        count += 1;
                    }
                }
                let batched: usize = batch.values().map(Vec::len).sum();
                if batched >= self.config.max_batch_size && !self.write(writers, &mut batch).await? {
                    return Ok(None);
                }
            }
            rows.finish()?;
        }
        if let Some((table, row)) = pending.take() {
            let (topic, record) = event(table, row, "last", count);
            batch.entry(topic).or_default().push(record);
            count += 1;
        }
        client.batch_execute("COMMIT").await?;
        if !self.write(writers, &mut batch).await? {
            return Ok(None);
        }
        info!(connector = %self.context.connector, rows = count, "snapshot written");
        Ok(Some(seen))
    }

    /// Decodes the transactions past the slot's position (up to `max.batch.size` changes),
    /// writes their events and then moves the slot past them; whether there were any.
    async fn decode(&self, client: &Client, shapes: &mut Shapes, writers: &mut BTreeMap<String, SourceWriter>, progress: &mut Progress) -> Result<bool> {
        let statement = format!(
            "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes({}, NULL, {}, 'proto_version', '1', 'publication_names', {})",
            quote_literal(&self.config.slot),
            self.config.max_batch_size,
            quote_literal(&self.config.publication)
        );
        let rows = client.query(&statement, &[]).await?;
        if rows.is_empty() {
            return Ok(false);
        }
        let events = self.events();
        let mut batch: BTreeMap<String, Vec<SourceRecord>> = BTreeMap::new();
        let mut transaction: Option<Transaction> = None;
        let mut last_end = progress.lsn.unwrap_or(0);
        let mut ended = None;
        for row in rows {
            let lsn_read: String = row.get(0);
            let lsn = parse_lsn(&lsn_read).ok_or_else(|| SluiceError::Execution(format!("PostgreSQL gave the WAL position '{lsn_read}'")))?;
            let data: Vec<u8> = row.get(1);
            let change = |oid, op, before, after| Change { oid, op, before, after, lsn };
            let decoded = match pgoutput::parse(&data)? {
                Message::Begin { xid, commit_ms } => {
                    transaction = Some(Transaction { xid, commit_ms, changes: Vec::new() });
                    None
                }
                Message::Relation { oid, namespace, name, columns } => {
                    self.learn(client, shapes, oid, namespace, name, columns).await?;
                    None
                }
                Message::Insert { oid, new } => Some(change(oid, Op::Create, None, Some(new))),
                Message::Update { oid, old, new } => Some(change(oid, Op::Update, old, Some(new))),
                Message::Delete { oid, old } => Some(change(oid, Op::Delete, Some(old), None)),
                Message::Truncate { oids } => {
                    info!(connector = %self.context.connector, tables = oids.len(), "a TRUNCATE is skipped, as Debezium skips it by default");
                    None
                }
                Message::Commit { end_lsn } => {
                    let Some(done) = transaction.take() else { continue };
                    let seen = progress.seen.as_ref().is_some_and(|seen| seen.saw(done.xid, end_lsn));
                    if !seen {
                        self.events_of(&events, shapes, &done, end_lsn, last_end, &mut batch);
                    }
                    last_end = end_lsn;
                    ended = Some(end_lsn);
                    None
                }
                Message::Other => None,
            };
            if let (Some(change), Some(open)) = (decoded, transaction.as_mut()) {
                open.changes.push(change);
            }
        }
        let injected = batch.values().flatten().filter_map(|r| r.value.as_deref()).any(crate::fault::marks);
        if !self.write(writers, &mut batch).await? {
            return Ok(true);
        }
        if injected {
            crate::fault::fire();
        }
        let Some(end) = ended else { return Ok(false) };
        client
            .query(&format!("SELECT pg_replication_slot_advance({}, {})", quote_literal(&self.config.slot), quote_literal(&lsn_text(end))), &[])
            .await?;
        let mut offset = Map::new();
        offset.insert("lsn".into(), json!(end));
        for writer in writers.values_mut() {
            writer.forget_written();
            writer.commit(offset.clone()).await?;
        }
        progress.lsn = Some(end);
        if progress.seen.as_ref().is_some_and(|seen| end > seen.lsn) {
            progress.seen = None;
        }
        self.commit_progress(progress).await?;
        Ok(true)
    }

    /// The events of a committed transaction's changes to captured tables, by topic.
    fn events_of(&self, events: &EventWriter, shapes: &Shapes, done: &Transaction, end_lsn: u64, last_end: u64, batch: &mut BTreeMap<String, Vec<SourceRecord>>) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (n, change) in done.changes.iter().enumerate() {
            let Some(table) = shapes.get(&change.oid) else { continue };
            let origin = Origin {
                ts_ms: done.commit_ms,
                snapshot: "false",
                sequence: Some((last_end, change.lsn)),
                tx_id: Some(i64::from(done.xid)),
                lsn: Some(change.lsn),
            };
            let row = change.after.as_deref().or(change.before.as_deref()).unwrap_or_default();
            let key = events.key(table, row);
            let topic = events.topic(table);
            let records = batch.entry(topic).or_default();
            records.push(SourceRecord {
                key: key.clone(),
                value: Some(events.value(table, change.op, change.before.as_deref(), change.after.as_deref(), &origin, now_ms)),
                identity: format!("{end_lsn}:{n}"),
            });
            if change.op == Op::Delete && self.config.tombstones_on_delete && key.is_some() {
                records.push(SourceRecord { key, value: None, identity: format!("{end_lsn}:{n}:tombstone") });
            }
        }
    }

    /// Takes a relation's columns as decoding describes them (its shape as of the change),
    /// with nullability from the catalog; relations not captured are left out.
    async fn learn(&self, client: &Client, shapes: &mut Shapes, oid: u32, schema: String, name: String, columns: Vec<RelationColumn>) -> Result<()> {
        if !self.config.captures(&schema, &name) {
            shapes.remove(&oid);
            return Ok(());
        }
        let rows = client
            .query(&format!("SELECT attname::text FROM pg_attribute WHERE attrelid = {oid} AND attnum > 0 AND NOT attisdropped AND attnotnull"), &[])
            .await?;
        let required: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        let columns = columns
            .into_iter()
            .map(|c| ColumnShape {
                optional: !required.contains(&c.name),
                name: c.name,
                type_oid: c.type_oid,
                type_modifier: c.type_modifier,
                key: c.key,
            })
            .collect();
        shapes.insert(oid, TableShape { schema, name, columns });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_sees_what_committed_before_it() {
        let seen = SeenBySnapshot::parse("740:745:741,743", 1000).unwrap();
        assert_eq!(seen.xip, [741, 743]);
        assert!(seen.saw(700, 900), "before xmin");
        assert!(seen.saw(742, 900), "below xmax, not running");
        assert!(!seen.saw(741, 900), "running when the snapshot was taken");
        assert!(!seen.saw(745, 900), "at or past xmax");
        assert!(!seen.saw(700, 1001), "ended after the snapshot");
    }

    #[test]
    fn transaction_ids_compare_across_wraparound() {
        assert!(precedes(u32::MAX - 5, 3));
        assert!(!precedes(3, u32::MAX - 5));
        let seen = SeenBySnapshot::parse(&format!("{}:{}:", (1u64 << 32) + 10, (1u64 << 32) + 12), 50).unwrap();
        assert!(seen.saw(11, 40));
        assert!(!seen.saw(12, 40));
    }

    #[test]
    fn progress_round_trips_through_its_offset() {
        let progress = Progress { snapshot_done: true, seen: Some(SeenBySnapshot { xmin: 1, xmax: 2, xip: vec![], lsn: 3 }), lsn: Some(9) };
        let value = serde_json::to_value(&progress).unwrap();
        let back: Progress = serde_json::from_value(value).unwrap();
        assert!(back.snapshot_done);
        assert_eq!(back.seen.unwrap().lsn, 3);
        assert_eq!(back.lsn, Some(9));
    }
}
