//! Table-table joins on the primary key at run time, as Kafka Streams joins two KTables for
//! ksqlDB: both tables' latest row per key is kept; an update on either side emits the joined
//! row of its key when the join has one (INNER: both sides; LEFT: the left; RIGHT: the right;
//! FULL: either), stamped with the later of the two rows' times; an update or tombstone that
//! ends a joined row emits a tombstone of its key, and one that ends none emits nothing.
//!
//! A foreign-key join's rows are the left table's: each left row joined with the right row its
//! join expression names. A left update emits its row (INNER: only with a right row, or a
//! tombstone when its new key names none where the old one did); a left tombstone, a
//! tombstone; a right update or tombstone, the row of every left row naming it (INNER: a
//! tombstone for each when the right row is deleted).

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use arrow::{
    array::{Array, BooleanArray, RecordBatch},
    row::{RowConverter, SortField},
};

use super::{
    operator::evaluate_rows,
    pair_join::{KeyReader, Origin, PairJoined, Pick, RowKeys},
};
use datafusion::physical_expr::PhysicalExpr;

use crate::{
    error::{Result, SluiceError},
    planner::{JoinKind, PairJoin},
};

/// A table's latest row of a key.
#[derive(Debug, Clone, Copy)]
struct Latest {
    batch: u64,
    row: usize,
    timestamp: i64,
    /// Its record's source partition and offset.
    position: (i32, i64),
}

/// An input row as a foreign-key join takes it.
#[derive(Clone, Copy)]
struct Update {
    row: usize,
    batch: u64,
    timestamp: i64,
    identity: crate::runtime::origin::RowIdentity,
    tombstone: bool,
}

impl Update {
    /// A row this update emits: columns from `left` and `right`.
    fn pick(&self, left: Origin, right: Origin, timestamp: i64, tombstone: bool) -> Pick {
        Pick { left, right, trigger: self.row, timestamp, identity: self.identity, tombstone }
    }
}

/// Both tables' rows by key.
pub struct TablesJoiner {
    kind: JoinKind,
    left_width: usize,
    keys: KeyReader,
    /// Per side (left, right), the latest row of each key: of a foreign-key join, the left's by
    /// the left's own key.
    rows: [HashMap<Vec<u8>, Latest>; 2],
    /// A foreign-key join's: the left table's key converted to bytes, each left row's join key,
    /// and the left rows naming each right key.
    foreign: Option<ForeignKeys>,
    /// The batches the latest rows are in, with how many of them each holds.
    batches: HashMap<u64, (RecordBatch, usize)>,
    next_batch: u64,
}

/// What a foreign-key join keeps beside both tables' rows.
struct ForeignKeys {
    converter: RowConverter,
    /// Each left row's join key (the right key it names), by the left's key.
    names: HashMap<Vec<u8>, Vec<u8>>,
    /// The left rows (their keys, in order) naming each right key.
    named_by: HashMap<Vec<u8>, BTreeSet<Vec<u8>>>,
}

impl TablesJoiner {
    pub fn new(plan: &PairJoin) -> Result<Self> {
        let foreign = match plan.foreign {
            true => Some(ForeignKeys {
                converter: RowConverter::new(vec![SortField::new(foreign_key(plan)?.data_type(&plan.schema)?)])?,
                names: HashMap::new(),
                named_by: HashMap::new(),
            }),
            false => None,
        };
        Ok(Self {
            kind: plan.kind,
            left_width: plan.left_width,
            keys: KeyReader::new(plan)?,
            rows: [HashMap::new(), HashMap::new()],
            foreign,
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
        let RowKeys { keys, times, mut errors } = self.keys.read(plan, batch, right)?;
        let batch_id = self.next_batch;
        self.next_batch += 1;
        self.batches.insert(batch_id, (batch.clone(), 0));
        let mut picks = Vec::new();
        if self.foreign.is_some() {
            let (left_keys, key_errors) = evaluate_rows(foreign_key(plan)?, batch)?;
            errors.extend(key_errors.into_iter().filter(|(row, _)| !right[*row]));
            let converter = &self.foreign.as_ref().expect("a foreign-key join").converter;
            let converted = converter.convert_columns(std::slice::from_ref(&left_keys))?;
            for row in 0..batch.num_rows() {
                if active.is_some_and(|a| !a.value(row)) || errors.iter().any(|(r, _)| *r == row) {
                    continue;
                }
                let tombstone = no_value.is_some_and(|n| n.is_valid(row) && n.value(row));
                let update = Update { row, batch: batch_id, timestamp: times[row], identity: (positions[row], None), tombstone };
                if right[row] {
                    let Some(key) = &keys[row] else { continue };
                    self.right_changed(key, update, &mut picks);
                } else if left_keys.is_valid(row) {
                    let own = converted.row(row).as_ref().to_vec();
                    self.left_changed(own, keys[row].clone(), update, &mut picks);
                }
            }
            let joined = PairJoined::build(batch, &picks, &self.batches, self.left_width, errors)?;
            self.batches.retain(|_, (_, rows)| *rows > 0);
            return Ok(joined);
        }
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
                self.rows[side].insert(key.clone(), Latest { batch: batch_id, row, timestamp: times[row], position: positions[row] })
            };
            if let Some(old) = replaced {
                self.release(old.batch);
            }
            // A row names the record of each side it shows — this update's, and the other
            // side's latest — whichever of them came second: a replay that reads the two topics
            // in another order makes the same row of the same pair.
            let other = self.rows[1 - side].get(key).map(|l| l.position);
            let identity = match (side, other) {
                (0, right) => (positions[row], right),
                (_, Some(left)) => (left, Some(positions[row])),
                (_, None) => (positions[row], None),
            };
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

    /// A foreign-key join's left row of key `own` changed, now naming `names` (none when NULL).
    fn left_changed(&mut self, own: Vec<u8>, names: Option<Vec<u8>>, update: Update, picks: &mut Vec<Pick>) {
        let old_names = {
            let foreign = self.foreign.as_mut().expect("a foreign-key join");
            let old_names = foreign.names.remove(&own);
            if let Some(old) = &old_names
                && let Some(left_rows) = foreign.named_by.get_mut(old)
            {
                left_rows.remove(&own);
                if left_rows.is_empty() {
                    foreign.named_by.remove(old);
                }
            }
            old_names
        };
        if let Some(old) = self.rows[0].remove(&own) {
            self.release(old.batch);
        }
        if update.tombstone {
            picks.push(update.pick(Origin::Input(update.row), Origin::Input(update.row), update.timestamp, true));
            return;
        }
        self.retain(update.batch);
        self.rows[0].insert(own.clone(), Latest { batch: update.batch, row: update.row, timestamp: update.timestamp, position: update.identity.0 });
        if let Some(names) = &names {
            let foreign = self.foreign.as_mut().expect("a foreign-key join");
            foreign.names.insert(own.clone(), names.clone());
            foreign.named_by.entry(names.clone()).or_default().insert(own);
        }
        let matched = names.as_ref().and_then(|n| self.rows[1].get(n)).copied();
        let input = Origin::Input(update.row);
        match matched {
            Some(right) => picks.push(update.pick(input, Origin::Kept(right.batch, right.row), update.timestamp.max(right.timestamp), false)),
            None if self.kind == JoinKind::Left => picks.push(update.pick(input, input, update.timestamp, false)),
            None if old_names.is_some() && old_names != names => picks.push(update.pick(input, input, update.timestamp, true)),
            None => {}
        }
    }

    /// A foreign-key join's right row of `key` changed: every left row naming it is joined again.
    fn right_changed(&mut self, key: &[u8], update: Update, picks: &mut Vec<Pick>) {
        if let Some(old) = self.rows[1].remove(key) {
            self.release(old.batch);
        }
        if !update.tombstone {
            self.retain(update.batch);
            self.rows[1].insert(key.to_vec(), Latest { batch: update.batch, row: update.row, timestamp: update.timestamp, position: update.identity.0 });
        }
        let foreign = self.foreign.as_ref().expect("a foreign-key join");
        let Some(left_rows) = foreign.named_by.get(key) else { return };
        for own in left_rows {
            let Some(left) = self.rows[0].get(own) else { continue };
            let kept = Origin::Kept(left.batch, left.row);
            let timestamp = left.timestamp.max(update.timestamp);
            if update.tombstone {
                // LEFT: the left row goes on alone (its right columns are NULL in its own row).
                picks.push(update.pick(kept, kept, timestamp, self.kind != JoinKind::Left));
            } else {
                picks.push(update.pick(kept, Origin::Input(update.row), timestamp, false));
            }
        }
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

/// A foreign-key join's left key column: the result's one key.
fn foreign_key(plan: &PairJoin) -> Result<&Arc<dyn PhysicalExpr>> {
    plan.keys.first().ok_or_else(|| SluiceError::Internal("a foreign-key join without a key".into()))
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
        runtime::two_sources::TwoSources,
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
        let decoder = TwoSources::new(&plan.source, &pair.right, pair.schema.clone()).unwrap();
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
                headers: None,
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
