//! Joins of two sources where a record of either side makes output — two streams within a
//! window, two tables on their keys — and what they share: the join key of each input row, and
//! the joined rows they emit, built from the batch being joined and the rows they keep.

use std::collections::{BTreeMap, HashMap};

use arrow::{
    array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch},
    compute::{cast, interleave},
    row::{RowConverter, SortField},
};

use super::{operator::evaluate_rows, origin::RowIdentity, tables_join::TablesJoiner, window_join::WindowJoiner};
use crate::{
    catalog::source::ROWTIME,
    error::{Result, SluiceError},
    planner::PairJoin,
};

/// The state of a join of two sources.
pub enum PairJoiner {
    Window(WindowJoiner),
    Tables(TablesJoiner),
}

impl PairJoiner {
    pub fn new(plan: &PairJoin) -> Result<Self> {
        Ok(match plan.within {
            Some(_) => PairJoiner::Window(WindowJoiner::new(plan)?),
            None => PairJoiner::Tables(TablesJoiner::new(plan)?),
        })
    }

    /// Joins the rows of `batch` that `active` marks (all when `None`), in order: `right[row]`
    /// tells the right source's rows, `positions[row]` is each record's source partition and
    /// offset, `no_value` marks the records without value (a table's tombstones).
    pub fn process(
        &mut self,
        plan: &PairJoin,
        batch: &RecordBatch,
        active: Option<&BooleanArray>,
        right: &[bool],
        positions: &[(i32, i64)],
        no_value: Option<&BooleanArray>,
    ) -> Result<PairJoined> {
        match self {
            PairJoiner::Window(joiner) => joiner.process(plan, batch, active, right, positions),
            PairJoiner::Tables(joiner) => joiner.process(plan, batch, active, right, positions, no_value),
        }
    }

    /// Where the input the state is rebuilt from starts, per source partition, when it moves
    /// (a window's oldest record kept); `None` when the state needs the sources from the
    /// query's start (tables).
    pub fn earliest_kept(&self) -> Option<BTreeMap<i32, i64>> {
        match self {
            PairJoiner::Window(joiner) => Some(joiner.earliest_kept()),
            PairJoiner::Tables(_) => None,
        }
    }
}

/// Where a joined row's columns come from: a row of the batch being joined, or a kept one (by
/// its batch's number and its row there).
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin {
    Input(usize),
    Kept(u64, usize),
}

/// One output row: the left's columns from one row, the right's from another (the same row for
/// a row padded with NULLs, whose other side's columns are NULL already).
pub(super) struct Pick {
    pub left: Origin,
    pub right: Origin,
    /// The input row whose processing emitted it.
    pub trigger: usize,
    pub timestamp: i64,
    pub identity: RowIdentity,
    /// The joined row is deleted: written as a tombstone of its key.
    pub tombstone: bool,
}

/// A row of one side with NULLs for the other: its own row's columns for both, the other side's
/// being NULL there.
pub(super) fn unmatched(origin: Origin, trigger: usize, timestamp: i64, identity: RowIdentity) -> Pick {
    Pick { left: origin, right: origin, trigger, timestamp, identity, tombstone: false }
}

/// The rows a batch made, each with the input row whose processing emitted it.
pub struct PairJoined {
    /// Joined rows, in the schema the input rows were decoded in.
    pub batch: RecordBatch,
    /// For each joined row, the input row that emitted it.
    pub rows: Vec<usize>,
    /// For each joined row, its timestamp.
    pub timestamps: Vec<i64>,
    /// For each joined row, the records it shows, by source position: the same on any replay,
    /// whatever order the two sources' records are read in again.
    pub identities: Vec<RowIdentity>,
    /// For each joined row, whether it is a tombstone (a table-table join's deleted row).
    pub tombstones: Vec<bool>,
    /// Input rows that could not be joined, and why.
    pub errors: Vec<(usize, String)>,
}

impl PairJoined {
    /// The rows `picks` describe, their columns taken from `input` and the kept `batches`.
    pub(super) fn build(
        input: &RecordBatch,
        picks: &[Pick],
        batches: &HashMap<u64, (RecordBatch, usize)>,
        left_width: usize,
        errors: Vec<(usize, String)>,
    ) -> Result<Self> {
        let mut sources: Vec<&RecordBatch> = vec![input];
        let mut index: HashMap<u64, usize> = HashMap::new();
        let mut locate = |origin: Origin| -> Result<(usize, usize)> {
            match origin {
                Origin::Input(row) => Ok((0, row)),
                Origin::Kept(batch, row) => {
                    let at = match index.get(&batch) {
                        Some(at) => *at,
                        None => {
                            let (kept, _) = batches
                                .get(&batch)
                                .ok_or_else(|| SluiceError::Internal("a kept row whose batch is gone".into()))?;
                            sources.push(kept);
                            index.insert(batch, sources.len() - 1);
                            sources.len() - 1
                        }
                    };
                    Ok((at, row))
                }
            }
        };
        let mut left = Vec::with_capacity(picks.len());
        let mut right = Vec::with_capacity(picks.len());
        for pick in picks {
            left.push(locate(pick.left)?);
            right.push(locate(pick.right)?);
        }
        let columns: Vec<ArrayRef> = (0..input.num_columns())
            .map(|column| {
                let arrays: Vec<&dyn Array> = sources.iter().map(|b| b.column(column).as_ref()).collect();
                let rows = if column < left_width { &left } else { &right };
                interleave(&arrays, rows)
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(PairJoined {
            batch: RecordBatch::try_new(input.schema(), columns)?,
            rows: picks.iter().map(|p| p.trigger).collect(),
            timestamps: picks.iter().map(|p| p.timestamp).collect(),
            identities: picks.iter().map(|p| p.identity).collect(),
            tombstones: if picks.iter().any(|p| p.tombstone) { picks.iter().map(|p| p.tombstone).collect() } else { Vec::new() },
            errors,
        })
    }
}

/// Each input row's join key, from its own side's expression, and its time.
pub(super) struct RowKeys {
    /// The key as comparable bytes; `None` where it is NULL or failed.
    pub keys: Vec<Option<Vec<u8>>>,
    pub times: Vec<i64>,
    /// Rows whose key could not be evaluated, and why.
    pub errors: Vec<(usize, String)>,
}

/// Reads the join keys and times of `batch`'s rows; `right[row]` tells the right source's rows.
pub(super) struct KeyReader {
    converter: RowConverter,
    rowtime: [usize; 2],
}

impl KeyReader {
    pub fn new(plan: &PairJoin) -> Result<Self> {
        let rowtime = |from: usize| {
            plan.schema
                .fields()
                .iter()
                .skip(from)
                .position(|f| f.name() == ROWTIME)
                .map(|i| i + from)
                .ok_or_else(|| SluiceError::Internal("a joined source without ROWTIME".into()))
        };
        let fields = plan
            .left_keys
            .iter()
            .map(|key| Ok(SortField::new(key.data_type(&plan.schema)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { converter: RowConverter::new(fields)?, rowtime: [rowtime(0)?, rowtime(plan.left_width)?] })
    }

    pub fn read(&self, plan: &PairJoin, batch: &RecordBatch, right: &[bool]) -> Result<RowKeys> {
        let mut errors: Vec<(usize, String)> = Vec::new();
        let mut failed = std::collections::HashSet::new();
        let (mut left_keys, mut right_keys) = (Vec::new(), Vec::new());
        for (left, right_key) in plan.left_keys.iter().zip(&plan.right_keys) {
            let (left_key, left_errors) = evaluate_rows(left, batch)?;
            let (right_key, right_errors) = evaluate_rows(right_key, batch)?;
            // A row's error is its own side's, and one per row.
            let own = left_errors.into_iter().filter(|(row, _)| !right[*row]).chain(right_errors.into_iter().filter(|(row, _)| right[*row]));
            errors.extend(own.filter(|(row, _)| failed.insert(*row)));
            let right_key = if right_key.data_type() == left_key.data_type() { right_key } else { cast(&right_key, left_key.data_type())? };
            left_keys.push(left_key);
            right_keys.push(right_key);
        }
        let rows = [self.converter.convert_columns(&left_keys)?, self.converter.convert_columns(&right_keys)?];
        let arrays = [left_keys, right_keys];
        let times = [self.times(batch, 0)?, self.times(batch, 1)?];
        let mut keys = Vec::with_capacity(batch.num_rows());
        let mut row_times = Vec::with_capacity(batch.num_rows());
        for (row, is_right) in right.iter().enumerate().take(batch.num_rows()) {
            let side = usize::from(*is_right);
            // A NULL on either side of any equality matches nothing.
            let valid = !failed.contains(&row) && arrays[side].iter().all(|key| !key.is_null(row));
            keys.push(valid.then(|| rows[side].row(row).as_ref().to_vec()));
            row_times.push(times[side].value(row));
        }
        Ok(RowKeys { keys, times: row_times, errors })
    }

    fn times(&self, batch: &RecordBatch, side: usize) -> Result<Int64Array> {
        batch
            .column(self.rowtime[side])
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| SluiceError::Internal("ROWTIME is not a BIGINT".into()))
    }
}
