//! Stream-table joins at run time: each stream row looks its join key up in the table's
//! versions as of the row's time, and the table's columns are added to it; with several tables,
//! one after another, each reading the row the one before made.
//!
//! Before a batch is joined the table is read up to the end its topic has at that moment, so
//! an update written to the table before a stream record is seen by it (ksqlDB's stream-table
//! joins are only best-effort synchronised, #5537). Only stream records produce output; a
//! table update changes what later records find.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use arrow::{
    array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array},
    compute::take,
};

use super::{
    operator::evaluate_rows,
    scan::ScanHandle,
    table_versions::{TableVersions, Version},
};
use crate::{
    catalog::{Format, source::ROWTIME},
    connectors::kafka::{KafkaCluster, offsets::PartitionOffsets},
    error::{Result, SluiceError},
    format::{ColumnWriter, RawRecord, RecordDecoder, encode_keys},
    planner::{JoinKind, JoinPlan, JoinStep},
};

/// How long a batch waits for the table to be read up to its topic's end before the query
/// shows the wait as an error and retries.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(30);

const NULL_KEY: &str = "the join expression is NULL: the record joins no row";

/// How long a table's partition count is trusted before it is asked again.
const PARTITIONS_TRUSTED: Duration = Duration::from_secs(5);

/// The table side of a running join: its versions, kept by a reader of its topic.
pub struct TableLookup {
    joiner: TableJoiner,
    topic: String,
    cluster: Arc<KafkaCluster>,
    /// The table topic's partition count, and when it was asked.
    partitions: parking_lot::Mutex<Option<(i32, Instant)>>,
    /// Reads the table's topic into the joiner's versions; dropped with the lookup, which stops
    /// it.
    _reader: ScanHandle,
}

/// Joins stream rows with a table's versions: the operator itself, without the reading.
pub struct TableJoiner {
    name: String,
    /// How the table's keys are written: the join key is written so to look it up.
    key_format: Format,
    key_delimiter: u8,
    /// The table's key columns, in order: a key of several is written naming them.
    key_names: Vec<String>,
    versions: Arc<TableVersions>,
    decoder: RecordDecoder,
}

/// A stream batch with the table's columns added.
pub struct Joined {
    /// The joined row: the stream's columns, then the table's (NULL where no row matched).
    pub batch: RecordBatch,
    /// The rows that produce output: each that found a row, and under `LEFT JOIN` each that
    /// has a join key.
    pub joins: BooleanArray,
    /// Rows that could not be joined, and why.
    pub errors: Vec<(usize, String)>,
}

/// Joins `stream` with each table of `plan` in turn (`lookups` in the same order), `active`
/// marking the rows to join (all when `None`). Each table is first read up to its topic's end.
pub fn join_all(plan: &JoinPlan, lookups: &[TableLookup], stream: &RecordBatch, active: Option<BooleanArray>) -> Result<Joined> {
    let mut joined = Joined {
        batch: stream.clone(),
        joins: active.unwrap_or_else(|| BooleanArray::from(vec![true; stream.num_rows()])),
        errors: Vec::new(),
    };
    for (step, lookup) in plan.steps.iter().zip(lookups) {
        lookup.catch_up()?;
        let next = lookup.joiner.join(step, &joined.batch, Some(&joined.joins))?;
        joined.errors.extend(next.errors);
        joined.batch = next.batch;
        joined.joins = next.joins;
    }
    Ok(joined)
}

impl TableLookup {
    pub fn new(step: &JoinStep, versions: Arc<TableVersions>, reader: ScanHandle, cluster: Arc<KafkaCluster>) -> Result<Self> {
        Ok(Self {
            joiner: TableJoiner::new(step, versions)?,
            topic: step.table.topic.clone(),
            cluster,
            partitions: parking_lot::Mutex::new(None),
            _reader: reader,
        })
    }

    /// The table topic's partition count, asked at most every [`PARTITIONS_TRUSTED`].
    fn partition_count(&self) -> Result<i32> {
        let mut known = self.partitions.lock();
        if let Some((count, asked)) = *known
            && asked.elapsed() < PARTITIONS_TRUSTED
        {
            return Ok(count);
        }
        let count = self
            .cluster
            .topic(&self.topic)?
            .ok_or_else(|| {
                SluiceError::Execution(format!("the topic {} of table {} does not exist", self.topic, self.joiner.name))
            })?
            .partitions;
        *known = Some((count, Instant::now()));
        Ok(count)
    }

    /// Waits until the table holds everything its topic holds now: each partition's end is
    /// asked for every batch, so an update written before a stream record is seen by it.
    /// Blocking.
    pub fn catch_up(&self) -> Result<()> {
        let partitions = self.partition_count()?;
        let ends: PartitionOffsets = self
            .cluster
            .watermarks(&self.topic, partitions)?
            .into_iter()
            .enumerate()
            .map(|(partition, (_, high))| (partition as i32, high))
            .collect();
        if self.joiner.versions.progress.wait_for(&ends, CATCH_UP_LIMIT) {
            Ok(())
        } else {
            Err(SluiceError::Execution(format!(
                "table {} is not yet read up to the end of topic {}; the join waits for it",
                self.joiner.name, self.topic
            )))
        }
    }
}

impl TableJoiner {
    pub fn new(step: &JoinStep, versions: Arc<TableVersions>) -> Result<Self> {
        Ok(Self {
            name: step.table.name.clone(),
            key_format: step.table.key_format,
            key_delimiter: step.table.key_delimiter,
            key_names: step.table.key_columns().map(|c| c.name.clone()).collect(),
            decoder: RecordDecoder::new(&step.table)?,
            versions,
        })
    }

    /// Joins each row of `stream` that `active` marks (all when `None`) with the table's row
    /// for its key as of the row's `ROWTIME`.
    pub fn join(&self, step: &JoinStep, stream: &RecordBatch, active: Option<&BooleanArray>) -> Result<Joined> {
        let rows = stream.num_rows();
        let mut errors = Vec::new();
        let mut failed = std::collections::HashSet::new();
        let mut keys = Vec::with_capacity(step.stream_keys.len());
        for expr in &step.stream_keys {
            let (key, key_errors) = evaluate_rows(expr, stream)?;
            errors.extend(key_errors.into_iter().filter(|(row, _)| failed.insert(*row)));
            keys.push(key);
        }
        let writers: Vec<ColumnWriter> = keys.iter().map(ColumnWriter::new).collect();
        let rowtime = stream
            .column_by_name(ROWTIME)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| SluiceError::Internal("a stream row without ROWTIME".into()))?;
        let mut found: Vec<(Vec<u8>, Version)> = Vec::new();
        let mut picks: Vec<Option<usize>> = Vec::with_capacity(rows);
        let mut joins = Vec::with_capacity(rows);
        let mut key = Vec::new();
        for row in 0..rows {
            if failed.contains(&row) || active.is_some_and(|a| !a.value(row)) {
                picks.push(None);
                joins.push(false);
                continue;
            }
            if writers.iter().any(|w| w.is_null(row)) {
                // Under LEFT JOIN the row goes on without a match, as Kafka Streams does since
                // KIP-962; an inner join drops it.
                if step.kind == JoinKind::Inner {
                    errors.push((row, NULL_KEY.to_string()));
                }
                picks.push(None);
                joins.push(step.kind == JoinKind::Left);
                continue;
            }
            key.clear();
            if let Err(e) = encode_keys(self.key_format, self.key_delimiter, &self.key_names, &self.key_names, &writers, row, &mut key) {
                errors.push((row, format!("the join key cannot be encoded as the table's key: {e}")));
                picks.push(None);
                joins.push(false);
                continue;
            }
            match self.versions.as_of(&key, rowtime.value(row)) {
                Some(version) => {
                    picks.push(Some(found.len()));
                    found.push((key.clone(), version));
                    joins.push(true);
                }
                None => {
                    picks.push(None);
                    joins.push(step.kind == JoinKind::Left);
                }
            }
        }
        let table_rows = self.decode(&found)?;
        let indices: UInt32Array = picks
            .iter()
            .map(|pick| pick.and_then(|record| table_rows.1[record]))
            .collect();
        // A table row that cannot be decoded matches nothing.
        for (row, pick) in picks.iter().enumerate() {
            if let Some(record) = pick
                && table_rows.1[*record].is_none()
            {
                joins[row] = step.kind == JoinKind::Left;
            }
        }
        let mut columns: Vec<ArrayRef> = stream.columns()[..step.stream_width].to_vec();
        for column in table_rows.0.columns() {
            columns.push(take(column.as_ref(), &indices, None)?);
        }
        let batch = RecordBatch::try_new(step.schema.clone(), columns)?;
        Ok(Joined {
            batch,
            joins: BooleanArray::from(joins),
            errors,
        })
    }

    /// The table rows of `found`, decoded, and for each its row in the batch (`None` when it
    /// could not be decoded).
    fn decode(&self, found: &[(Vec<u8>, Version)]) -> Result<(RecordBatch, Vec<Option<u32>>)> {
        let records: Vec<RawRecord<'_>> = found
            .iter()
            .map(|(key, version)| RawRecord {
                partition: version.partition,
                offset: version.offset,
                timestamp: version.timestamp,
                key: Some(key),
                value: version.value.as_deref(),
                headers: None,
            })
            .collect();
        let decoded = self.decoder.decode(&records)?;
        let mut positions = vec![None; found.len()];
        for (row, record) in decoded.rows.iter().enumerate() {
            positions[*record] = Some(row as u32);
        }
        Ok((decoded.batch, positions))
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, StringArray};

    use super::*;
    use crate::{
        catalog::{Catalog, SourceDef},
        parser::{KsqlParser, Statement},
        planner::QueryPlanner,
        runtime::table_versions::Version,
    };

    const STREAM: &str = "CREATE STREAM S (K STRING KEY, V INT) WITH (KAFKA_TOPIC = 's', VALUE_FORMAT = 'JSON');";
    const TABLE: &str = "CREATE TABLE T (K STRING PRIMARY KEY, NAME STRING) WITH (KAFKA_TOPIC = 't', VALUE_FORMAT = 'JSON');";


    async fn step(kind: &str) -> JoinStep {
        let catalog = Catalog::default();
        catalog.put_stream(SourceDef::from_create(STREAM).unwrap());
        catalog.put_stream(SourceDef::from_create(TABLE).unwrap());
        let sql = format!("SELECT S.K, S.V, T.NAME FROM S {kind} JOIN T ON S.K = T.K EMIT CHANGES;");
        let Statement::Select(select) = KsqlParser::parse_one(&sql).unwrap().statement else { panic!("not a SELECT") };
        let plan = QueryPlanner::plan(&catalog, &select).await.unwrap();
        Arc::into_inner(plan.join.unwrap()).unwrap().steps.remove(0)
    }

    /// Stream rows of key `k` at `timestamp`, decoded.
    fn stream(rows: &[(&str, i64)]) -> RecordBatch {
        let values: Vec<String> = rows.iter().map(|(_, t)| format!("{{\"V\": {t}}}")).collect();
        let records: Vec<RawRecord<'_>> = rows
            .iter()
            .zip(&values)
            .enumerate()
            .map(|(i, ((key, timestamp), value))| RawRecord {
                partition: 0,
                offset: i as i64,
                timestamp: *timestamp,
                key: Some(key.as_bytes()),
                value: Some(value.as_bytes()),
                headers: None,
            })
            .collect();
        RecordDecoder::new(&SourceDef::from_create(STREAM).unwrap()).unwrap().decode(&records).unwrap().batch
    }

    fn versions() -> Arc<TableVersions> {
        let versions = Arc::new(TableVersions::default());
        for (offset, (timestamp, name)) in [(10, "first"), (20, "second")].into_iter().enumerate() {
            let value = format!("{{\"NAME\": \"{name}\"}}").into_bytes();
            versions.put(b"a", Version { timestamp, value: Some(value), partition: 0, offset: offset as i64 });
        }
        versions
    }

    fn names(joined: &Joined) -> Vec<Option<String>> {
        let column = joined.batch.column_by_name("NAME").unwrap().as_string::<i32>();
        column.iter().map(|n| n.map(str::to_string)).collect()
    }

    #[tokio::test]
    async fn each_row_joins_the_tables_row_as_of_its_time() {
        let step = step("LEFT").await;
        let joiner = TableJoiner::new(&step, versions()).unwrap();
        let batch = stream(&[("a", 15), ("a", 25), ("b", 30), ("a", 5)]);
        let joined = joiner.join(&step, &batch, None).unwrap();
        let first = Some("first".to_string());
        let second = Some("second".to_string());
        assert_eq!(names(&joined), vec![first, second, None, None]);
        assert_eq!(joined.joins, BooleanArray::from(vec![true; 4]), "a left join keeps every row");
        let keys: &StringArray = joined.batch.column(0).as_string();
        assert_eq!(keys.value(2), "b", "the stream's columns come first");
    }

    #[tokio::test]
    async fn an_inner_join_drops_rows_without_a_match_and_rows_not_active() {
        let step = step("INNER").await;
        let joiner = TableJoiner::new(&step, versions()).unwrap();
        let batch = stream(&[("a", 15), ("b", 30), ("a", 25)]);
        let active = BooleanArray::from(vec![true, true, false]);
        let joined = joiner.join(&step, &batch, Some(&active)).unwrap();
        assert_eq!(joined.joins, BooleanArray::from(vec![true, false, false]));
        assert!(joined.errors.is_empty(), "a key without a row is no error: {:?}", joined.errors);
    }
}
