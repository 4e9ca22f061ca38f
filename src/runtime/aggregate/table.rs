//! Aggregating a table: an update takes its key's previous row back out of that row's group
//! (the accumulators retract its arguments) and adds the new row to its group; a tombstone, or
//! a row `WHERE` no longer passes, only takes the previous row out. Each update emits the groups
//! it changed — the one the row left first, one row when it stays in its group — and a group
//! left empty keeps its row (a `COUNT` of 0), as ksqlDB's.

use arrow::array::{Array, BooleanArray, RecordBatch};
use datafusion::{
    common::{HashMap, hash_map::EntryRef},
    logical_expr::Accumulator,
    scalar::ScalarValue,
};

use super::{Aggregated, Aggregator, Emitted, accumulate, kept, new_group};
use crate::{error::Result, runtime::operator::evaluate_rows};

/// What one row of the table put into its group.
pub(super) struct Contribution {
    state_key: Vec<u8>,
    /// Per aggregate, the values of its arguments in the row.
    arguments: Vec<Vec<ScalarValue>>,
}

impl Aggregator {
    /// Whether the aggregation reads a table's updates.
    pub fn over_table(&self) -> bool {
        self.contributions.is_some()
    }

    /// Applies a table's updates in order: row `i` of `batch` is its key's new row when
    /// `live[i]`, else the key's deletion.
    pub fn process_table(&mut self, batch: &RecordBatch, rowtime: &[i64], live: &BooleanArray) -> Result<Aggregated> {
        let (keys, arguments, mut errors) = self.inputs(batch)?;
        let mut source_keys = Vec::new();
        for expr in self.plan.source_key.clone().unwrap_or_default() {
            let (values, failed) = evaluate_rows(&expr, batch)?;
            errors.extend(failed);
            source_keys.push(values);
        }
        let converted = self.converter.convert_columns(&keys)?;
        let mut emitted = Emitted { columns: vec![Vec::new(); self.plan.schema.fields().len()], ..Default::default() };
        for row in 0..batch.num_rows() {
            let source_key = source_keys.iter().map(|k| ScalarValue::try_from_array(k, row)).collect::<datafusion::error::Result<Vec<_>>>()?;
            let mut changed: Vec<Vec<u8>> = Vec::new();
            let previous = self.contributions.as_mut().and_then(|c| c.remove(&source_key));
            if let Some(previous) = previous {
                if let Some(group) = self.groups.get_mut(&previous.state_key) {
                    retract(&mut group.accumulators, &previous.arguments)?;
                    group.timestamp = group.timestamp.max(rowtime[row]);
                    changed.push(previous.state_key);
                }
            }
            if live.is_valid(row) && live.value(row) {
                if keys.iter().any(|k| k.is_null(row)) {
                    if !errors.iter().any(|(r, _)| *r == row) {
                        errors.push((row, "The GROUP BY key is NULL: the row is dropped".into()));
                    }
                } else {
                    let state_key = converted.row(row).as_ref().to_vec();
                    let retracting = self.contributions.is_some();
                    let group = match self.groups.entry_ref(state_key.as_slice()) {
                        EntryRef::Occupied(group) => group.into_mut(),
                        EntryRef::Vacant(vacant) => vacant.insert(new_group(&self.plan, retracting, &keys, row, None)?),
                    };
                    accumulate(&mut group.accumulators, &arguments, &[row as u32])?;
                    group.timestamp = group.timestamp.max(rowtime[row]);
                    let values = arguments
                        .iter()
                        .map(|columns| columns.iter().map(|c| ScalarValue::try_from_array(c, row)).collect())
                        .collect::<datafusion::error::Result<Vec<Vec<_>>>>()?;
                    if let Some(contributions) = self.contributions.as_mut() {
                        contributions.insert(source_key, Contribution { state_key: state_key.clone(), arguments: values });
                    }
                    if !changed.contains(&state_key) {
                        changed.push(state_key);
                    }
                }
            }
            for state_key in changed {
                self.emit(&state_key, vec![row], false, &mut emitted)?;
            }
        }
        if !self.per_record {
            emitted = latest_per_group(emitted);
        }
        let rows = self.rows(std::mem::take(&mut emitted.columns))?;
        self.apply_having(rows, emitted, errors)
    }
}

/// Takes `arguments`, the values one row added, back out of `accumulators`.
fn retract(accumulators: &mut [Box<dyn Accumulator>], arguments: &[Vec<ScalarValue>]) -> Result<()> {
    for (accumulator, values) in accumulators.iter_mut().zip(arguments) {
        let arrays = values.iter().map(|v| v.to_array_of_size(1)).collect::<datafusion::error::Result<Vec<_>>>()?;
        accumulator.retract_batch(&arrays)?;
    }
    Ok(())
}

/// Each group's last row of a batch, as a record cache keeps it, showing every input row that
/// changed the group in the batch.
fn latest_per_group(emitted: Emitted) -> Emitted {
    let (keep, mut contributors) = {
        let mut last: HashMap<&[u8], usize> = HashMap::new();
        for (i, key) in emitted.keys.iter().enumerate() {
            last.insert(key, i);
        }
        let mut contributors: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, key) in emitted.keys.iter().enumerate() {
            contributors.entry(last[key.as_slice()]).or_default().extend(&emitted.contributors[i]);
        }
        let keep: Vec<bool> = emitted.keys.iter().enumerate().map(|(i, key)| last[key.as_slice()] == i).collect();
        (keep, contributors)
    };
    Emitted {
        columns: emitted.columns.into_iter().map(|column| kept(column, &keep)).collect(),
        contributors: (0..keep.len()).filter(|i| keep[*i]).map(|i| contributors.remove(&i).unwrap_or_default()).collect(),
        keys: kept(emitted.keys, &keep),
        timestamps: kept(emitted.timestamps, &keep),
        windows: emitted.windows,
        removed: kept(emitted.removed, &keep),
    }
}
