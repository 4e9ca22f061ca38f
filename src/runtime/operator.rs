//! Evaluates a continuous plan over one decoded batch: filter, then projection and key.

use arrow::{
    array::{Array, ArrayRef, BooleanArray, RecordBatch},
    compute::{filter_record_batch, kernels::boolean::and, prep_null_mask_filter},
};

use std::sync::Arc;

use datafusion::physical_expr::PhysicalExpr;

use crate::{error::Result, format::encode::normalize_array, functions, planner::ContinuousPlan};

/// The rows a query produces from one batch.
pub struct Evaluated {
    /// For each output row, its row in the decoded batch.
    pub rows: Vec<usize>,
    /// Projected columns, one array per output column.
    pub columns: Vec<ArrayRef>,
    /// The new key of each output row, with `PARTITION BY`.
    pub keys: Option<ArrayRef>,
    /// Decoded rows that functions could not evaluate (they still count as processed).
    pub errors: Vec<(usize, String)>,
}

/// Runs `plan` over `batch`, considering only the rows `eligible` marks (all when `None`).
/// `filter` replaces the plan's filter when the scan rewrote it to read shared columns.
pub fn evaluate(
    plan: &ContinuousPlan,
    filter: Option<&Arc<dyn PhysicalExpr>>,
    batch: &RecordBatch,
    eligible: Option<&BooleanArray>,
) -> Result<Evaluated> {
    let mut errors = Vec::new();
    let mask = match filter.or(plan.filter.as_ref()) {
        Some(filter) => {
            let (value, mut filter_errors) = functions::collect_row_errors(|| {
                filter
                    .evaluate(batch)
                    .and_then(|v| v.into_array(batch.num_rows()))
            });
            errors.append(&mut filter_errors);
            let value = value?;
            let passed = value
                .as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
                .unwrap_or_else(|| BooleanArray::from(vec![false; batch.num_rows()]));
            Some(match eligible {
                Some(eligible) => and(&passed, eligible)?,
                None => passed,
            })
        }
        None => eligible.cloned(),
    };
    let mask = mask.map(|m| if m.null_count() > 0 { prep_null_mask_filter(&m) } else { m });
    let (filtered, rows): (RecordBatch, Vec<usize>) = match &mask {
        Some(mask) => (
            filter_record_batch(batch, mask)?,
            mask.values().set_indices().collect(),
        ),
        None => (batch.clone(), (0..batch.num_rows()).collect()),
    };
    if let Some(eligible) = eligible {
        errors.retain(|(row, _)| *row < eligible.len() && eligible.value(*row));
    }
    let (columns, projection_errors) = functions::collect_row_errors(|| -> Result<Vec<ArrayRef>> {
        if plan.forwards_value {
            return Ok(Vec::new());
        }
        plan.projection
            .iter()
            .map(|c| {
                let array = c.expr.evaluate(&filtered)?.into_array(filtered.num_rows())?;
                normalize_array(array)
            })
            .collect()
    });
    let columns = columns?;
    errors.extend(
        projection_errors
            .into_iter()
            .filter_map(|(i, m)| rows.get(i).map(|r| (*r, m))),
    );
    let keys = match &plan.partition_by {
        Some(expr) => Some(expr.evaluate(&filtered)?.into_array(filtered.num_rows())?),
        None => None,
    };
    Ok(Evaluated {
        rows,
        columns,
        keys,
        errors,
    })
}
