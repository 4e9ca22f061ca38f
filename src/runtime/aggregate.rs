//! The `GROUP BY` state of a query: DataFusion accumulators per group, updated by every row the
//! query's `WHERE` passes, and the rows each update emits.
//!
//! With `cache.max.bytes.buffering` 0 every input row emits its group's new row, as ksqlDB's
//! tests run; otherwise each batch emits the latest row of each group it changed, as ksqlDB's
//! record cache does per commit. A row's timestamp is the largest of its group's records. A
//! group whose row stops satisfying `HAVING` gets a tombstone; one that never did emits nothing.
//! A row whose grouping key is NULL is dropped and reported.
//!
//! With `WINDOW`, the state is per group and window ([`super::window`]): a record updates every
//! window it falls in that is still open, and one no open window takes is dropped and reported
//! as late. Merging sessions emits a tombstone for each session merged away, then the merged
//! session. Under `EMIT FINAL` a window emits nothing until it closes, then its final row once.
//! A window is forgotten once its retention has passed. Stream time may also move without a
//! record ([`Aggregator::advance`], an idle input's wall clock — see [`super::idle`]); a replay
//! repeats such a move before the first row read after it (a row's floor).
//!
//! Over a table ([`table`]), each update takes the key's previous row back out of its group
//! and adds the new one: one row per group it changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow::{
    array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array},
    compute::{cast, filter_record_batch, prep_null_mask_filter, take},
    row::{RowConverter, SortField},
};
use datafusion::{
    common::{HashMap, hash_map::EntryRef},
    logical_expr::Accumulator,
    physical_expr::PhysicalExpr,
    scalar::ScalarValue,
};

use super::{operator::evaluate_rows, window::window_starts};
use crate::{
    error::Result,
    format::WindowKey,
    planner::{AggregatePlan, WindowPlan},
};

mod table;

pub struct Aggregator {
    plan: Arc<AggregatePlan>,
    converter: RowConverter,
    /// By state key: the grouping key in Arrow's row format, then a window's start.
    groups: HashMap<Vec<u8>, Group>,
    per_record: bool,
    windows: Option<Windows>,
    /// Over a table: what each of its keys' current row put into its group.
    contributions: Option<HashMap<Vec<ScalarValue>, table::Contribution>>,
}

struct Group {
    key: Vec<ScalarValue>,
    window: Option<WindowKey>,
    accumulators: Vec<Box<dyn Accumulator>>,
    /// The largest timestamp of the group's records.
    timestamp: i64,
    /// The group's row is in the output: it satisfied `HAVING` when last emitted.
    present: bool,
}

/// The windows of a windowed aggregation, besides their groups.
struct Windows {
    plan: WindowPlan,
    /// The largest timestamp seen.
    stream_time: i64,
    /// Every window's state key by the time it is forgotten.
    expiry: BTreeSet<(i64, Vec<u8>)>,
    /// The sessions of each grouping key: their starts and ends.
    sessions: HashMap<Vec<u8>, BTreeMap<i64, i64>>,
    /// `EMIT FINAL`: windows updated since they were last emitted, by the end that closes them.
    pending: BTreeSet<(i64, Vec<u8>)>,
    /// The batch being processed: the stream time each row raises stream time to first.
    floors: Vec<i64>,
}

impl Windows {
    /// Moves stream time to take in the record of `row`, at `timestamp`.
    fn take_in(&mut self, row: usize, timestamp: i64) {
        let floor = self.floors.get(row).copied().unwrap_or(i64::MIN);
        self.stream_time = self.stream_time.max(timestamp).max(floor);
    }
}

/// What one batch changed.
pub struct Aggregated {
    /// The emitted rows, in the aggregate's schema.
    pub batch: RecordBatch,
    /// For each emitted row, the input row whose update it shows.
    pub sources: Vec<usize>,
    /// For each emitted row, every input row of the batch its state took in since the group's
    /// previous row (the last of them its source): output for input replayed after a crash
    /// may be skipped only when all of them were replayed.
    pub contributors: Vec<Vec<usize>>,
    /// For each emitted row, whether it is the tombstone of a group that left `HAVING` or of a
    /// session merged into another.
    pub tombstones: Vec<bool>,
    pub timestamps: Vec<i64>,
    /// For each emitted row, its window; empty when the aggregation is not windowed.
    pub windows: Vec<WindowKey>,
    /// Input rows dropped, with the reason.
    pub errors: Vec<(usize, String)>,
}

/// The rows one batch emits, column by column, before `HAVING`.
#[derive(Default)]
struct Emitted {
    columns: Vec<Vec<ScalarValue>>,
    keys: Vec<Vec<u8>>,
    /// For each row, the input rows it shows, its source last.
    contributors: Vec<Vec<usize>>,
    timestamps: Vec<i64>,
    windows: Vec<WindowKey>,
    /// Rows emitted as tombstones whatever `HAVING` says (merged sessions).
    removed: Vec<bool>,
}

/// The rows of one state key a batch updates, in order.
struct Segment {
    state_key: Vec<u8>,
    window: Option<WindowKey>,
    rows: Vec<u32>,
}

impl Aggregator {
    /// A fresh aggregator for `plan`, if it aggregates.
    pub fn for_plan(plan: &crate::planner::ContinuousPlan) -> Result<Option<Self>> {
        plan.aggregation.clone().map(|a| Self::new(a, plan.per_record_updates)).transpose()
    }

    pub fn new(plan: Arc<AggregatePlan>, per_record: bool) -> Result<Self> {
        let keys = plan
            .schema
            .fields()
            .iter()
            .take(plan.key_count())
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        Ok(Self {
            converter: RowConverter::new(keys)?,
            windows: plan.window.map(|plan| Windows {
                plan,
                stream_time: i64::MIN,
                expiry: BTreeSet::new(),
                sessions: HashMap::new(),
                pending: BTreeSet::new(),
                floors: Vec::new(),
            }),
            contributions: plan.source_key.is_some().then(HashMap::new),
            plan,
            groups: HashMap::new(),
            per_record,
        })
    }

    /// Updates the groups with the rows of `batch`, whose timestamps are `rowtime`. Before a
    /// row of a windowed aggregation, stream time is raised to its floor in `floors` (none when
    /// empty).
    pub fn process(&mut self, batch: &RecordBatch, rowtime: &[i64], floors: &[i64]) -> Result<Aggregated> {
        if let Some(windows) = self.windows.as_mut() {
            windows.floors = floors.to_vec();
        }
        let (keys, arguments, mut errors) = self.inputs(batch)?;
        let converted = self.converter.convert_columns(&keys)?;
        let mut grouped = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            if keys.iter().any(|k| k.is_null(row)) {
                if !errors.iter().any(|(r, _)| *r == row) {
                    errors.push((row, "The GROUP BY key is NULL: the row is dropped".into()));
                }
                continue;
            }
            grouped.push((row, converted.row(row).as_ref().to_vec()));
        }
        let mut emitted = Emitted { columns: vec![Vec::new(); self.plan.schema.fields().len()], ..Default::default() };
        let session = self.windows.as_ref().is_some_and(|w| w.plan.time_window().is_none());
        if session || self.plan.emit_final {
            // Row by row: each may merge sessions or close windows.
            for (row, key) in grouped {
                if session {
                    self.add_to_session(row, key, &keys, &arguments, rowtime, &mut emitted, &mut errors)?;
                } else {
                    for (state_key, window) in self.assign(row, key, rowtime, &mut errors) {
                        let segment = Segment { state_key, window, rows: vec![row as u32] };
                        self.update(segment, &keys, &arguments, rowtime, &mut emitted)?;
                    }
                }
                self.close_windows(row, &mut emitted)?;
            }
        } else {
            for segment in self.segments(grouped, rowtime, &mut errors) {
                self.update(segment, &keys, &arguments, rowtime, &mut emitted)?;
            }
        }
        self.expire();
        if let Some(windows) = self.windows.as_mut() {
            windows.floors.clear();
        }
        let rows = self.rows(std::mem::take(&mut emitted.columns))?;
        self.apply_having(rows, emitted, errors)
    }

    /// The stream time of a windowed aggregation that has seen a record or been advanced.
    pub fn stream_time(&self) -> Option<i64> {
        self.windows.as_ref().map(|w| w.stream_time).filter(|t| *t != i64::MIN)
    }

    /// Whether moving stream time to `stream_time` closes a window `EMIT FINAL` holds back.
    pub fn closes_by(&self, stream_time: i64) -> bool {
        self.windows
            .as_ref()
            .filter(|_| self.plan.emit_final)
            .and_then(|w| w.pending.first().map(|(end, _)| w.plan.closed(*end, stream_time.max(w.stream_time))))
            .unwrap_or(false)
    }

    /// Moves stream time to `stream_time` without a record: under `EMIT FINAL` the windows it
    /// closes are emitted, each row's source being row 0 of no batch.
    pub fn advance(&mut self, stream_time: i64) -> Result<Aggregated> {
        let mut emitted = Emitted { columns: vec![Vec::new(); self.plan.schema.fields().len()], ..Default::default() };
        if let Some(windows) = self.windows.as_mut() {
            windows.stream_time = windows.stream_time.max(stream_time);
            self.close_windows(0, &mut emitted)?;
            self.expire();
        }
        let rows = self.rows(std::mem::take(&mut emitted.columns))?;
        self.apply_having(rows, emitted, Vec::new())
    }

    /// The grouping keys and each aggregate's arguments of every row of `batch`, and the rows
    /// whose expressions failed. An expression written more than once (`AVG(x)` and `MAX(x)`)
    /// is evaluated once.
    fn inputs(&self, batch: &RecordBatch) -> Result<(Vec<ArrayRef>, Vec<Vec<ArrayRef>>, Vec<(usize, String)>)> {
        let mut errors = Vec::new();
        let mut evaluated: Vec<(Arc<dyn PhysicalExpr>, ArrayRef)> = Vec::new();
        let mut evaluate = |expr: &Arc<dyn PhysicalExpr>| -> Result<ArrayRef> {
            if let Some((_, values)) = evaluated.iter().find(|(e, _)| e == expr) {
                return Ok(values.clone());
            }
            let (values, failed) = evaluate_rows(expr, batch)?;
            errors.extend(failed);
            evaluated.push((expr.clone(), values.clone()));
            Ok(values)
        };
        let keys = self.plan.group_by.iter().map(&mut evaluate).collect::<Result<Vec<_>>>()?;
        let arguments = self
            .plan
            .aggregates
            .iter()
            .map(|aggregate| aggregate.expressions().iter().map(&mut evaluate).collect::<Result<Vec<_>>>())
            .collect::<Result<Vec<_>>>()?;
        Ok((keys, arguments, errors))
    }

    /// The state keys and windows `row` updates: its group's, or its group's in each open
    /// window it falls in. A row no open window takes is reported as late.
    fn assign(&mut self, row: usize, key: Vec<u8>, rowtime: &[i64], errors: &mut Vec<(usize, String)>) -> Vec<(Vec<u8>, Option<WindowKey>)> {
        let Some(windows) = self.windows.as_mut() else { return vec![(key, None)] };
        let timestamp = rowtime[row];
        windows.take_in(row, timestamp);
        let (size, advance) = windows.plan.time_window().expect("time windows");
        let mut assigned = Vec::new();
        let mut late = None;
        for start in window_starts(size, advance, timestamp) {
            let end = start.saturating_add(size);
            if windows.plan.closed(end, windows.stream_time) {
                late = Some((start, end));
            } else {
                assigned.push((state_key(&key, start), Some(WindowKey { start, end, session: false })));
            }
        }
        if let (true, Some((start, end))) = (assigned.is_empty(), late) {
            errors.push((row, late_message(timestamp, start, end, windows)));
        }
        assigned
    }

    /// The updates of a batch: per state key in order of first update, or one per update when
    /// every update is emitted.
    fn segments(&mut self, grouped: Vec<(usize, Vec<u8>)>, rowtime: &[i64], errors: &mut Vec<(usize, String)>) -> Vec<Segment> {
        let mut segments: Vec<Segment> = Vec::new();
        let mut open: HashMap<Vec<u8>, usize> = HashMap::new();
        for (row, key) in grouped {
            for (state_key, window) in self.assign(row, key, rowtime, errors) {
                match open.get(&state_key).filter(|_| !self.per_record) {
                    Some(segment) => segments[*segment].rows.push(row as u32),
                    None => {
                        open.insert(state_key.clone(), segments.len());
                        segments.push(Segment { state_key, window, rows: vec![row as u32] });
                    }
                }
            }
        }
        segments
    }

    /// Applies the rows of one segment to its group, made first if new, and emits its row.
    fn update(
        &mut self,
        segment: Segment,
        keys: &[ArrayRef],
        arguments: &[Vec<ArrayRef>],
        rowtime: &[i64],
        emitted: &mut Emitted,
    ) -> Result<()> {
        let Segment { state_key, window, rows } = segment;
        let group = match self.groups.entry_ref(state_key.as_slice()) {
            EntryRef::Occupied(group) => group.into_mut(),
            EntryRef::Vacant(vacant) => {
                let group = new_group(&self.plan, self.contributions.is_some(), keys, rows[0] as usize, window)?;
                if let (Some(windows), Some(window)) = (self.windows.as_mut(), window) {
                    windows.expiry.insert((window.start.saturating_add(windows.plan.retention_ms), state_key.clone()));
                }
                vacant.insert(group)
            }
        };
        accumulate(&mut group.accumulators, arguments, &rows)?;
        for row in &rows {
            group.timestamp = group.timestamp.max(rowtime[*row as usize]);
        }
        let contributors = rows.iter().map(|r| *r as usize).collect();
        self.changed(state_key, contributors, emitted)
    }

    /// Emits the row of a group `contributors` changed, or under `EMIT FINAL` keeps it for its
    /// close.
    fn changed(&mut self, state_key: Vec<u8>, contributors: Vec<usize>, emitted: &mut Emitted) -> Result<()> {
        match self.windows.as_mut().filter(|_| self.plan.emit_final) {
            Some(windows) => {
                let end = self.groups[&state_key].window.map_or(i64::MAX, |w| w.end);
                windows.pending.insert((end, state_key));
                Ok(())
            }
            None => self.emit(&state_key, contributors, false, emitted),
        }
    }

    /// Adds one row's current values to the emitted rows.
    fn emit(&mut self, state_key: &[u8], contributors: Vec<usize>, removed: bool, emitted: &mut Emitted) -> Result<()> {
        let group = self.groups.get_mut(state_key).expect("an emitted group exists");
        let mut column = 0;
        for value in &group.key {
            emitted.columns[column].push(value.clone());
            column += 1;
        }
        if let Some(window) = group.window {
            emitted.columns[column].push(ScalarValue::Int64(Some(window.start)));
            emitted.columns[column + 1].push(ScalarValue::Int64(Some(window.end)));
            column += 2;
            emitted.windows.push(window);
        }
        for (accumulator, function) in group.accumulators.iter_mut().zip(&self.plan.aggregates) {
            let mut value = accumulator.evaluate()?;
            // ksqlDB's SUM starts at 0: a table group whose rows were all taken out sums to 0.
            if self.contributions.is_some() && value.is_null() && function.fun().name() == "sum" {
                value = ScalarValue::new_zero(&value.data_type())?;
            }
            emitted.columns[column].push(value);
            column += 1;
        }
        emitted.keys.push(state_key.to_vec());
        emitted.contributors.push(contributors);
        emitted.timestamps.push(group.timestamp);
        emitted.removed.push(removed);
        Ok(())
    }

    /// Adds `row` to its key's session: a new one, or the sessions within the gap merged into
    /// one (each merged away emitted as a tombstone first).
    #[allow(clippy::too_many_arguments)]
    fn add_to_session(
        &mut self,
        row: usize,
        key: Vec<u8>,
        keys: &[ArrayRef],
        arguments: &[Vec<ArrayRef>],
        rowtime: &[i64],
        emitted: &mut Emitted,
        errors: &mut Vec<(usize, String)>,
    ) -> Result<()> {
        let timestamp = rowtime[row];
        let windows = self.windows.as_mut().expect("a session aggregation");
        windows.take_in(row, timestamp);
        // Sessions past their retention are gone before the search, as from Kafka Streams'
        // store; under `EMIT FINAL` they have closed, and are emitted first.
        self.close_windows(row, emitted)?;
        self.expire();
        let windows = self.windows.as_mut().expect("a session aggregation");
        let crate::parser::WindowKind::Session { gap_ms } = windows.plan.kind else {
            unreachable!("sessions are only made for session windows")
        };
        let touching: Vec<(i64, i64)> = windows
            .sessions
            .get(&key)
            .map(|sessions| {
                sessions
                    .range(..=timestamp.saturating_add(gap_ms))
                    .filter(|(_, end)| **end >= timestamp.saturating_sub(gap_ms))
                    .map(|(s, e)| (*s, *e))
                    .collect()
            })
            .unwrap_or_default();
        let start = touching.iter().map(|(s, _)| *s).fold(timestamp, i64::min);
        let end = touching.iter().map(|(_, e)| *e).fold(timestamp, i64::max);
        if windows.plan.closed(end, windows.stream_time) {
            errors.push((row, late_message(timestamp, start, end, windows)));
            return Ok(());
        }
        let window = WindowKey { start, end, session: true };
        let mut merged = new_group(&self.plan, self.contributions.is_some(), keys, row, Some(window))?;
        for (old_start, old_end) in touching {
            let old_key = state_key(&key, old_start);
            let windows = self.windows.as_mut().expect("a session aggregation");
            if let Some(sessions) = windows.sessions.get_mut(&key) {
                sessions.remove(&old_start);
            }
            windows.expiry.remove(&(old_end.saturating_add(windows.plan.retention_ms), old_key.clone()));
            windows.pending.remove(&(old_end, old_key.clone()));
            if !self.plan.emit_final && self.groups.contains_key(&old_key) {
                self.emit(&old_key, vec![row], true, emitted)?;
            }
            let Some(mut old) = self.groups.remove(&old_key) else { continue };
            for (into, from) in merged.accumulators.iter_mut().zip(old.accumulators.iter_mut()) {
                let state = from.state()?.into_iter().map(|v| v.to_array()).collect::<datafusion::error::Result<Vec<_>>>()?;
                into.merge_batch(&state)?;
            }
            merged.timestamp = merged.timestamp.max(old.timestamp);
        }
        accumulate(&mut merged.accumulators, arguments, &[row as u32])?;
        merged.timestamp = merged.timestamp.max(timestamp);
        let new_key = state_key(&key, start);
        let windows = self.windows.as_mut().expect("a session aggregation");
        windows.sessions.entry(key).or_default().insert(start, end);
        windows.expiry.insert((end.saturating_add(windows.plan.retention_ms), new_key.clone()));
        self.groups.insert(new_key.clone(), merged);
        self.changed(new_key, vec![row], emitted)
    }

    /// Emits, under `EMIT FINAL`, each window stream time has closed, as if `source` closed it.
    fn close_windows(&mut self, source: usize, emitted: &mut Emitted) -> Result<()> {
        let Some(windows) = self.windows.as_mut() else { return Ok(()) };
        let mut closed = Vec::new();
        while let Some((end, _)) = windows.pending.first() {
            if !windows.plan.closed(*end, windows.stream_time) {
                break;
            }
            closed.push(windows.pending.pop_first().expect("a first entry").1);
        }
        closed.sort();
        for state_key in closed {
            if self.groups.contains_key(&state_key) {
                self.emit(&state_key, vec![source], false, emitted)?;
            }
        }
        Ok(())
    }

    /// Forgets the windows whose retention has passed.
    fn expire(&mut self) {
        let Some(windows) = self.windows.as_mut() else { return };
        while windows.expiry.first().is_some_and(|(at, _)| *at <= windows.stream_time) {
            let (_, state_key) = windows.expiry.pop_first().expect("a first entry");
            let Some(group) = self.groups.remove(&state_key) else { continue };
            if let Some(window) = group.window.filter(|w| w.session) {
                let key = &state_key[..state_key.len() - 8];
                if let Some(sessions) = windows.sessions.get_mut(key) {
                    sessions.remove(&window.start);
                    if sessions.is_empty() {
                        windows.sessions.remove(key);
                    }
                }
            }
        }
    }

    /// The emitted rows as a batch of the aggregate's schema.
    fn rows(&self, columns: Vec<Vec<ScalarValue>>) -> Result<RecordBatch> {
        if columns.first().is_none_or(|c| c.is_empty()) {
            return Ok(RecordBatch::new_empty(self.plan.schema.clone()));
        }
        let arrays = columns
            .into_iter()
            .zip(self.plan.schema.fields())
            .map(|(values, field)| {
                let array = ScalarValue::iter_to_array(values)?;
                Ok(if array.data_type() == field.data_type() { array } else { cast(&array, field.data_type())? })
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(RecordBatch::try_new(self.plan.schema.clone(), arrays)?)
    }

    /// Keeps the rows satisfying `HAVING`, and turns a row that no longer does into its group's
    /// tombstone when the group was in the output.
    fn apply_having(&mut self, batch: RecordBatch, emitted: Emitted, errors: Vec<(usize, String)>) -> Result<Aggregated> {
        let passed: Vec<bool> = match &self.plan.having {
            None => vec![true; batch.num_rows()],
            Some(having) => {
                let (value, _) = evaluate_rows(having, &batch)?;
                let value = value
                    .as_any()
                    .downcast_ref::<BooleanArray>()
                    .cloned()
                    .unwrap_or_else(|| BooleanArray::from(vec![false; batch.num_rows()]));
                let value = if value.null_count() > 0 { prep_null_mask_filter(&value) } else { value };
                value.values().iter().collect()
            }
        };
        let mut keep = Vec::with_capacity(passed.len());
        let mut tombstones = Vec::new();
        for ((key, passed), removed) in emitted.keys.iter().zip(&passed).zip(&emitted.removed) {
            let passed = *passed && !removed;
            let present = match self.groups.get_mut(key) {
                Some(group) if !removed => std::mem::replace(&mut group.present, passed),
                _ => true,
            };
            let kept = passed || present;
            if kept {
                tombstones.push(!passed);
            }
            keep.push(kept);
        }
        let batch = filter_record_batch(&batch, &BooleanArray::from(keep.clone()))?;
        Ok(Aggregated {
            batch,
            sources: kept(emitted.contributors.iter().map(|c| *c.last().expect("a row has a source")).collect(), &keep),
            contributors: kept(emitted.contributors, &keep),
            tombstones,
            timestamps: kept(emitted.timestamps, &keep),
            windows: if emitted.windows.is_empty() { Vec::new() } else { kept(emitted.windows, &keep) },
            errors,
        })
    }
}

/// A group for the key of `row`, in `window`, with fresh accumulators: ones that can retract
/// when the aggregation is over a table (`retracting`).
fn new_group(plan: &AggregatePlan, retracting: bool, keys: &[ArrayRef], row: usize, window: Option<WindowKey>) -> Result<Group> {
    Ok(Group {
        key: keys.iter().map(|k| ScalarValue::try_from_array(k, row)).collect::<datafusion::error::Result<_>>()?,
        window,
        accumulators: plan
            .aggregates
            .iter()
            .map(|a| if retracting { a.create_sliding_accumulator() } else { a.create_accumulator() })
            .collect::<datafusion::error::Result<_>>()?,
        timestamp: i64::MIN,
        present: false,
    })
}

/// Updates `accumulators` with the arguments of `rows`.
fn accumulate(accumulators: &mut [Box<dyn Accumulator>], arguments: &[Vec<ArrayRef>], rows: &[u32]) -> Result<()> {
    let indices = UInt32Array::from(rows.to_vec());
    for (accumulator, values) in accumulators.iter_mut().zip(arguments) {
        let taken = values.iter().map(|v| take(v, &indices, None)).collect::<Result<Vec<_>, _>>()?;
        accumulator.update_batch(&taken)?;
    }
    Ok(())
}

/// A window's state key: the grouping key's bytes, then the window's start.
fn state_key(key: &[u8], start: i64) -> Vec<u8> {
    let mut state_key = Vec::with_capacity(key.len() + 8);
    state_key.extend_from_slice(key);
    state_key.extend_from_slice(&start.to_be_bytes());
    state_key
}

/// Why a record was dropped as late.
fn late_message(timestamp: i64, start: i64, end: i64, windows: &Windows) -> String {
    format!(
        "Late record dropped: its timestamp {timestamp} falls in window [{start}, {end}], closed at stream time {} (grace period {} ms)",
        windows.stream_time, windows.plan.grace_ms
    )
}

/// The values whose `keep` is true.
fn kept<T>(values: Vec<T>, keep: &[bool]) -> Vec<T> {
    values.into_iter().zip(keep).filter(|(_, k)| **k).map(|(v, _)| v).collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::Int64Type;

    use super::*;
    use crate::{
        catalog::{Catalog, SourceDef},
        parser::{KsqlParser, Statement},
        planner::QueryPlanner,
    };

    async fn plan(sql: &str) -> Arc<AggregatePlan> {
        let declaration = "CREATE STREAM S (K STRING KEY, V BIGINT) WITH (KAFKA_TOPIC = 's', VALUE_FORMAT = 'JSON');";
        let Statement::CreateSource(create) = KsqlParser::parse_one(declaration).unwrap().statement else { panic!() };
        let catalog = Catalog::default();
        catalog.put_stream(SourceDef::declared(&create, declaration).unwrap());
        let Statement::Select(select) = KsqlParser::parse_one(sql).unwrap().statement else { panic!() };
        QueryPlanner::plan(&catalog, &select).await.unwrap().aggregation.unwrap()
    }

    /// Rows of the stream's decoded schema: keys, values, timestamps.
    fn rows(keys: &[Option<&str>], values: &[i64], times: &[i64]) -> RecordBatch {
        let declaration = "CREATE STREAM S (K STRING KEY, V BIGINT) WITH (KAFKA_TOPIC = 's', VALUE_FORMAT = 'JSON');";
        let Statement::CreateSource(create) = KsqlParser::parse_one(declaration).unwrap().statement else { panic!() };
        let schema = SourceDef::declared(&create, declaration).unwrap().row_schema();
        let n = keys.len();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(keys.to_vec())),
                Arc::new(Int64Array::from(values.to_vec())),
                Arc::new(Int64Array::from(times.to_vec())),
                Arc::new(arrow::array::Int32Array::from(vec![0; n])),
                Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_batch_emits_the_latest_row_of_each_group_it_changed_or_every_update() {
        let plan = plan("SELECT K, SUM(V) AS TOTAL FROM S GROUP BY K EMIT CHANGES;").await;
        let batch = rows(&[Some("a"), Some("b"), Some("a"), None], &[1, 2, 3, 4], &[10, 5, 7, 1]);
        let times: Vec<i64> = batch.column(2).as_primitive::<Int64Type>().values().to_vec();

        let mut per_batch = Aggregator::new(plan.clone(), false).unwrap();
        let out = per_batch.process(&batch, &times, &[]).unwrap();
        assert_eq!(out.batch.column(1).as_primitive::<Int64Type>().values().to_vec(), vec![4, 2]);
        assert_eq!(out.sources, vec![2, 1], "each row shows the group's last update");
        assert_eq!(out.timestamps, vec![10, 5], "the largest timestamp of the group's records");
        assert_eq!(out.errors.len(), 1, "the NULL key is reported");

        let mut per_record = Aggregator::new(plan, true).unwrap();
        let out = per_record.process(&batch, &times, &[]).unwrap();
        assert_eq!(out.batch.column(1).as_primitive::<Int64Type>().values().to_vec(), vec![1, 2, 4]);
    }

    #[tokio::test]
    async fn a_group_leaving_having_gets_a_tombstone_and_one_never_in_it_nothing() {
        let plan = plan("SELECT K, COUNT(*) AS N FROM S GROUP BY K HAVING COUNT(*) < 2 EMIT CHANGES;").await;
        let batch = rows(&[Some("a"), Some("a"), Some("a")], &[1, 1, 1], &[1, 2, 3]);
        let times = vec![1, 2, 3];
        let mut aggregator = Aggregator::new(plan, true).unwrap();
        let out = aggregator.process(&batch, &times, &[]).unwrap();
        assert_eq!(out.tombstones, vec![false, true], "in, then out; the third update emits nothing");
        assert_eq!(out.sources, vec![0, 1]);
    }

    #[tokio::test]
    async fn a_record_no_open_window_takes_is_reported_late() {
        let plan = plan("SELECT K, COUNT(*) AS N FROM S WINDOW TUMBLING (SIZE 10 MILLISECONDS, GRACE PERIOD 6 MILLISECONDS) GROUP BY K EMIT CHANGES;").await;
        let times = vec![3, 25, 14, 9];
        let batch = rows(&[Some("a"); 4], &[1, 1, 1, 1], &times);
        let mut aggregator = Aggregator::new(plan, true).unwrap();
        let out = aggregator.process(&batch, &times, &[]).unwrap();
        let starts: Vec<i64> = out.windows.iter().map(|w| w.start).collect();
        assert_eq!(starts, vec![0, 20, 10], "[10,20) open until stream time 26; [0,10) closed at 16");
        assert_eq!(out.errors.len(), 1);
        assert_eq!(out.errors[0].0, 3);
        assert!(out.errors[0].1.contains("Late record"), "{}", out.errors[0].1);
    }

    #[tokio::test]
    async fn merging_sessions_tombstones_each_merged_session_then_emits_the_merged_one() {
        let plan = plan("SELECT K, COUNT(*) AS N FROM S WINDOW SESSION (10 MILLISECONDS) GROUP BY K EMIT CHANGES;").await;
        let times = vec![0, 20, 10];
        let batch = rows(&[Some("a"); 3], &[1, 1, 1], &times);
        let mut aggregator = Aggregator::new(plan, true).unwrap();
        let out = aggregator.process(&batch, &times, &[]).unwrap();
        let windows: Vec<(i64, i64)> = out.windows.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(windows, vec![(0, 0), (20, 20), (0, 0), (20, 20), (0, 20)]);
        assert_eq!(out.tombstones, vec![false, false, true, true, false]);
        let counts = out.batch.column(3).as_primitive::<Int64Type>().values().to_vec();
        assert_eq!(counts[4], 3, "the merged session counts every record");
        assert_eq!(out.timestamps, vec![0, 20, 0, 20, 20]);
    }

    #[tokio::test]
    async fn emit_final_emits_each_window_once_when_it_closes() {
        let plan = plan("SELECT K, COUNT(*) AS N FROM S WINDOW TUMBLING (SIZE 10 MILLISECONDS) GROUP BY K EMIT FINAL;").await;
        let mut aggregator = Aggregator::new(plan, true).unwrap();
        let times = vec![1, 5, 9];
        let out = aggregator.process(&rows(&[Some("a"); 3], &[1, 1, 1], &times), &times, &[]).unwrap();
        assert_eq!(out.batch.num_rows(), 0, "the window is still open");
        let times = vec![10];
        let out = aggregator.process(&rows(&[Some("b")], &[1], &times), &times, &[]).unwrap();
        assert_eq!(out.batch.column(3).as_primitive::<Int64Type>().values().to_vec(), vec![3]);
        assert_eq!(out.timestamps, vec![9]);
        let times = vec![30];
        let out = aggregator.process(&rows(&[Some("a")], &[1], &times), &times, &[]).unwrap();
        assert_eq!(out.windows.iter().map(|w| w.start).collect::<Vec<_>>(), vec![10], "only b's window closed since");
    }

    #[tokio::test]
    async fn stream_time_moved_without_a_record_closes_and_emits_each_window_once() {
        let plan = plan("SELECT K, COUNT(*) AS N FROM S WINDOW TUMBLING (SIZE 10 MILLISECONDS, GRACE PERIOD 5 MILLISECONDS) GROUP BY K EMIT FINAL;").await;
        let mut aggregator = Aggregator::new(plan, false).unwrap();
        assert_eq!(aggregator.stream_time(), None);
        let times = vec![1, 12];
        aggregator.process(&rows(&[Some("a"), Some("b")], &[1, 1], &times), &times, &[]).unwrap();
        assert_eq!(aggregator.stream_time(), Some(12));
        assert!(!aggregator.closes_by(14), "[0,10) stays open until 15");
        assert!(aggregator.closes_by(15));
        let out = aggregator.advance(15).unwrap();
        assert_eq!(out.windows.iter().map(|w| w.start).collect::<Vec<_>>(), vec![0]);
        assert_eq!(out.sources, vec![0]);
        assert_eq!(aggregator.advance(24).unwrap().batch.num_rows(), 0, "[10,20) closes at 25");
        assert_eq!(aggregator.advance(25).unwrap().windows.iter().map(|w| w.start).collect::<Vec<_>>(), vec![10]);
        assert_eq!(aggregator.advance(100).unwrap().batch.num_rows(), 0, "each window is emitted once");
        let times = vec![3];
        let out = aggregator.process(&rows(&[Some("a")], &[1], &times), &times, &[]).unwrap();
        assert_eq!(out.errors.len(), 1, "a record for a window the advance closed is late");
    }

    #[tokio::test]
    async fn a_rows_floor_raises_stream_time_before_it_is_taken_in() {
        let plan = plan("SELECT K, COUNT(*) AS N FROM S WINDOW TUMBLING (SIZE 10 MILLISECONDS, GRACE PERIOD 0 MILLISECONDS) GROUP BY K EMIT FINAL;").await;
        let mut aggregator = Aggregator::new(plan, false).unwrap();
        let times = vec![1, 2, 4];
        let out = aggregator.process(&rows(&[Some("a"); 3], &[1, 1, 1], &times), &times, &[i64::MIN, 10, 10]).unwrap();
        assert_eq!(out.batch.num_rows(), 1, "the floor before the second row closed [0,10)");
        assert_eq!(out.batch.column(3).as_primitive::<Int64Type>().values().to_vec(), vec![1]);
        assert_eq!(out.sources, vec![1], "as if the second row closed it");
        assert_eq!(out.errors.iter().map(|(row, _)| *row).collect::<Vec<_>>(), vec![1, 2], "both rows after the floor are late");
    }
}
