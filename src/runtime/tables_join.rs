//! Table-table joins on the primary key at run time, as Kafka Streams joins two KTables for
//! ksqlDB: both tables' latest row per key is kept; an update on either side emits the joined
//! row of its key when the join has one (INNER: both sides; LEFT: the left; RIGHT: the right;
//! FULL: either), stamped with the later of the two rows' times; an update or tombstone that
//! ends a joined row emits a tombstone of its key, and one that ends none emits nothing.

use std::collections::HashMap;

use arrow::array::{Array, BooleanArray, RecordBatch};

use super::pair_join::{KeyReader, Origin, PairJoined, Pick, RowKeys};
use crate::{
    error::Result,
    planner::{JoinKind, PairJoin},
};

/// A table's latest row of a key.
#[derive(Debug, Clone, Copy)]
struct Latest {
    batch: u64,
    row: usize,
    timestamp: i64,
}

/// Both tables' rows by key.
pub struct TablesJoiner {
    kind: JoinKind,
    left_width: usize,
    keys: KeyReader,
    /// Per side (left, right), the latest row of each key.
    rows: [HashMap<Vec<u8>, Latest>; 2],
    /// The batches the latest rows are in, with how many of them each holds.
    batches: HashMap<u64, (RecordBatch, usize)>,
    next_batch: u64,
}

impl TablesJoiner {
    pub fn new(plan: &PairJoin) -> Result<Self> {
        Ok(Self {
            kind: plan.kind,
            left_width: plan.left_width,
            keys: KeyReader::new(plan)?,
            rows: [HashMap::new(), HashMap::new()],
            batches: HashMap::new(),
            next_batch: 0,
        })
    }

    /// Applies the updates of `batch` that `active` marks, in order (`no_value` marks
    /// tombstones), and emits what each changes.
    pub fn process(
        &mut self,
        plan: &PairJoin,
        batch: &RecordBatch,
        active: Option<&BooleanArray>,
        right: &[bool],
        positions: &[(i32, i64)],
        no_value: Option<&BooleanArray>,
    ) -> Result<PairJoined> {
        let RowKeys { keys, times, errors } = self.keys.read(plan, batch, right)?;
        let batch_id = self.next_batch;
        self.next_batch += 1;
        self.batches.insert(batch_id, (batch.clone(), 0));
        let mut picks = Vec::new();
        for row in 0..batch.num_rows() {
            if active.is_some_and(|a| !a.value(row)) {
                continue;
            }
            let Some(key) = &keys[row] else { continue };
            let side = usize::from(right[row]);
            let joined_before = self.has_result(key);
            let tombstone = no_value.is_some_and(|n| n.is_valid(row) && n.value(row));
            let replaced = if tombstone {
                self.rows[side].remove(key)
            } else {
                self.retain(batch_id);
                self.rows[side].insert(key.clone(), Latest { batch: batch_id, row, timestamp: times[row] })
            };
            if let Some(old) = replaced {
                self.release(old.batch);
            }
            let identity = (positions[row], None);
            if self.has_result(key) {
                let (left, right) = (self.rows[0].get(key).copied(), self.rows[1].get(key).copied());
                // The missing side's columns are NULL in the other side's own row.
                let origin = |latest: Option<Latest>, other: Option<Latest>| match latest.or(other) {
                    Some(l) => Origin::Kept(l.batch, l.row),
                    None => Origin::Input(row),
                };
                let timestamp = left.iter().chain(right.iter()).map(|l| l.timestamp).max().unwrap_or(times[row]);
                picks.push(Pick {
                    left: origin(left, right),
                    right: origin(right, left),
                    trigger: row,
                    timestamp,
                    identity,
                    tombstone: false,
                });
            } else if joined_before {
                picks.push(Pick {
                    left: Origin::Input(row),
                    right: Origin::Input(row),
                    trigger: row,
                    timestamp: times[row],
                    identity,
                    tombstone: true,
                });
            }
        }
        let joined = PairJoined::build(batch, &picks, &self.batches, self.left_width, errors)?;
        self.batches.retain(|_, (_, rows)| *rows > 0);
        Ok(joined)
    }

    /// Whether the join has a row for `key`, given both tables' rows now.
    fn has_result(&self, key: &[u8]) -> bool {
        let (left, right) = (self.rows[0].contains_key(key), self.rows[1].contains_key(key));
        match self.kind {
            JoinKind::Inner => left && right,
            JoinKind::Left => left,
            JoinKind::Right => right,
            JoinKind::Full => left || right,
        }
    }

    fn retain(&mut self, batch: u64) {
        if let Some((_, rows)) = self.batches.get_mut(&batch) {
            *rows += 1;
        }
    }

    fn release(&mut self, batch: u64) {
        if let Some((_, rows)) = self.batches.get_mut(&batch) {
            *rows -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;
    use crate::{
        catalog::{Catalog, SourceDef},
        connectors::source::source_partition,
        format::RawRecord,
        parser::{KsqlParser, Statement},
        planner::{ContinuousPlan, QueryPlanner},
        runtime::two_streams::TwoStreams,
    };

    const LEFT: &str = "CREATE TABLE L (ID STRING PRIMARY KEY, A STRING) WITH (KAFKA_TOPIC = 'l', VALUE_FORMAT = 'JSON');";
    const RIGHT: &str = "CREATE TABLE R (ID STRING PRIMARY KEY, B STRING) WITH (KAFKA_TOPIC = 'r', VALUE_FORMAT = 'JSON');";


    async fn plan(kind: &str) -> ContinuousPlan {
        let catalog = Catalog::default();
        catalog.put_stream(SourceDef::from_create(LEFT).unwrap());
        catalog.put_stream(SourceDef::from_create(RIGHT).unwrap());
        let sql = format!("SELECT L.ID, A, B FROM L {kind} JOIN R ON L.ID = R.ID EMIT CHANGES;");
        let Statement::Select(select) = KsqlParser::parse_one(&sql).unwrap().statement else { panic!("not a SELECT") };
        QueryPlanner::plan(&catalog, &select).await.unwrap()
    }

    /// A joined row's `A` and `B`; `None` for a tombstone.
    type Emitted = Option<(Option<String>, Option<String>)>;

    /// Runs updates (right?, value or tombstone, time) of key `k` one at a time; what each emits.
    fn run(plan: &ContinuousPlan, updates: &[(bool, Option<&str>, i64)]) -> Vec<Vec<Emitted>> {
        let pair = plan.pair_join().unwrap();
        let decoder = TwoStreams::new(&plan.source, &pair.right, pair.schema.clone()).unwrap();
        let mut joiner = TablesJoiner::new(pair).unwrap();
        let mut emitted = Vec::new();
        for (offset, (right, value, timestamp)) in updates.iter().enumerate() {
            let field = if *right { "B" } else { "A" };
            let value = value.map(|v| format!("{{\"{field}\": \"{v}\"}}"));
            let record = RawRecord {
                partition: source_partition(usize::from(*right), 0),
                offset: offset as i64,
                timestamp: *timestamp,
                key: Some(b"k"),
                value: value.as_deref().map(str::as_bytes),
            };
            let decoded = decoder.decode(&[record]).unwrap();
            let no_value = (!decoded.no_value.is_empty()).then(|| BooleanArray::from(decoded.no_value.clone()));
            let joined = joiner
                .process(pair, &decoded.batch, None, &[*right], &[(record.partition, record.offset)], no_value.as_ref())
                .unwrap();
            let text = |name: &str| {
                let column = joined.batch.column_by_name(name).unwrap().as_string::<i32>().clone();
                (0..column.len()).map(move |i| column.is_valid(i).then(|| column.value(i).to_string()))
            };
            let rows = text("A")
                .zip(text("B"))
                .enumerate()
                .map(|(i, row)| (!joined.tombstones.get(i).copied().unwrap_or(false)).then_some(row))
                .collect();
            emitted.push(rows);
        }
        emitted
    }

    fn row(a: Option<&str>, b: Option<&str>) -> Emitted {
        Some((a.map(str::to_string), b.map(str::to_string)))
    }

    const UPDATES: [(bool, Option<&str>, i64); 5] =
        [(false, Some("a"), 10), (true, Some("b"), 20), (false, None, 30), (true, None, 40), (false, None, 50)];

    #[tokio::test]
    async fn an_inner_join_deletes_its_row_once_either_side_does() {
        let emitted = run(&plan("INNER").await, &UPDATES);
        assert_eq!(emitted, vec![vec![], vec![row(Some("a"), Some("b"))], vec![None], vec![], vec![]]);
    }

    #[tokio::test]
    async fn a_left_join_keeps_the_left_row_and_deletes_it_with_the_left() {
        let emitted = run(&plan("LEFT").await, &UPDATES);
        assert_eq!(
            emitted,
            vec![vec![row(Some("a"), None)], vec![row(Some("a"), Some("b"))], vec![None], vec![], vec![]]
        );
    }

    #[tokio::test]
    async fn a_full_join_keeps_either_side() {
        let emitted = run(&plan("FULL OUTER").await, &UPDATES);
        assert_eq!(
            emitted,
            vec![
                vec![row(Some("a"), None)],
                vec![row(Some("a"), Some("b"))],
                vec![row(None, Some("b"))],
                vec![None],
                vec![],
            ]
        );
    }
}
