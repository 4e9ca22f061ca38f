//! Evaluates a continuous plan over one decoded batch: filter, then projection and key.
//!
//! An error is a row's, never the batch's: when an expression fails over a whole batch (a CAST
//! of `'abc'` to INTEGER, an integer division by zero), it is evaluated again row by row, and
//! only the rows that fail take ksqlDB's default — false in `WHERE` (the row is dropped), NULL
//! in a projected column or a `PARTITION BY` key — and are reported with their message.
//!
//! A record without a value is a tombstone in a table and a null row in a stream. Over a table
//! (when the output is its changelog) every row produces output: a tombstone stays one, and a row the filter drops becomes one
//! (its key is no longer in the result). Over a stream a null row passes only a query without
//! `WHERE`, as a record without value.
//!
//! With `GROUP BY`, the rows `WHERE` passes update the query's [`Aggregator`], and the
//! projection reads the rows it emits; their key is the grouping key.

use arrow::{
    array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, new_null_array},
    compute::{concat, filter, filter_record_batch, kernels::boolean::{and, not, or}, prep_null_mask_filter},
};

use std::sync::Arc;

use datafusion::physical_expr::PhysicalExpr;

use super::{aggregate::Aggregator, sink::OutputRow};
use crate::{
    catalog::source::ROWTIME,
    error::Result,
    format::{RawRecord, WindowKey, encode::normalize_array},
    functions,
    java_time::Zone,
    planner::{ContinuousPlan, JoinWindow, OutputTimestamp},
};

/// The rows a query produces from one batch.
pub struct Evaluated {
    /// For each output row, its row in the decoded batch.
    pub rows: Vec<usize>,
    /// Projected columns, one array per output column.
    pub columns: Vec<ArrayRef>,
    /// The new key of each output row, one array per key column (none: the record's key stays):
    /// `PARTITION BY`'s, a join's, or an aggregation's grouping columns.
    pub keys: Vec<ArrayRef>,
    /// The output column each key column is, when there are several.
    pub key_names: Vec<String>,
    /// The keys are the source's own, read again: a record without a key keeps none.
    pub keys_read_again: bool,
    /// Decoded rows that could not be evaluated (they still count as processed).
    pub errors: Vec<(usize, String)>,
    /// For each output row, whether it is written without value; empty when none is.
    pub tombstones: Vec<bool>,
    /// For each output row, its timestamp when not its record's (an aggregate's); else empty.
    pub timestamps: Vec<i64>,
    /// For each output row, its window (a windowed aggregate's); else empty.
    pub windows: Vec<WindowKey>,
    /// For each output row of an aggregation, the decoded rows its state took in (see
    /// [`super::aggregate::Aggregated::contributors`]); else empty.
    pub contributors: Vec<Vec<usize>>,
    /// The rows' values are their records' own, forwarded unchanged; `columns` is empty.
    pub forwarded: bool,
}

impl Evaluated {
    /// The output rows, each with the record its decoded row came from (`decoded_rows` maps a
    /// decoded row to its record).
    pub fn output_rows<'a>(&self, records: &'a [RawRecord<'a>], decoded_rows: &[usize]) -> Vec<OutputRow<'a>> {
        self.rows
            .iter()
            .enumerate()
            .map(|(row, decoded_row)| OutputRow {
                record: &records[decoded_rows[*decoded_row]],
                row,
                tombstone: self.tombstones.get(row).copied().unwrap_or(false),
                timestamp: self.timestamps.get(row).copied(),
                window: self.windows.get(row).copied(),
                identity: None,
            })
            .collect()
    }
}

/// Gives each row the timestamp its sink's `TIMESTAMP` column holds, dropping the rows whose
/// column is NULL, negative or unreadable; returns the dropped rows' records and why.
pub fn stamp_rows<'a>(stamp: &OutputTimestamp, columns: &[ArrayRef], rows: &mut Vec<OutputRow<'a>>) -> Vec<(&'a RawRecord<'a>, String)> {
    let Some(column) = columns.get(stamp.column) else { return Vec::new() };
    let mut dropped = Vec::new();
    rows.retain_mut(|row| {
        if row.tombstone {
            return true;
        }
        match timestamp_at(column, row.row, stamp) {
            Ok(timestamp) if timestamp >= 0 => {
                row.timestamp = Some(timestamp);
                true
            }
            Ok(timestamp) => {
                dropped.push((row.record, format!("The TIMESTAMP column holds a negative timestamp, {timestamp}: the row is dropped")));
                false
            }
            Err(reason) => {
                dropped.push((row.record, reason));
                false
            }
        }
    });
    dropped
}

/// The timestamp in row `row` of a BIGINT, TIMESTAMP or (with a pattern) STRING column.
fn timestamp_at(column: &ArrayRef, row: usize, stamp: &OutputTimestamp) -> std::result::Result<i64, String> {
    use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMillisecondType};
    if column.is_null(row) {
        return Err("The TIMESTAMP column is NULL: the row is dropped".into());
    }
    match (column.data_type(), &stamp.pattern) {
        (DataType::Int64, _) => Ok(column.as_primitive::<Int64Type>().value(row)),
        (DataType::Timestamp(TimeUnit::Millisecond, _), _) => Ok(column.as_primitive::<TimestampMillisecondType>().value(row)),
        (DataType::Utf8, Some(pattern)) => {
            let text = column.as_string::<i32>().value(row);
            pattern.parse_instant(text, &Zone::UTC).map(|t| t.timestamp_millis()).map_err(|e| format!("Failed to parse timestamp '{text}': {e}"))
        }
        (other, _) => Err(format!("The TIMESTAMP column is {other}, not a timestamp")),
    }
}

/// Runs `plan` over `batch`, considering only the rows `eligible` marks (all when `None`).
/// `filter` replaces the plan's filter when the scan rewrote it to read shared columns;
/// `no_value` marks the rows whose record had no value. `aggregator` comes with each row's
/// floor of stream time (see [`Aggregator::process`]). A plan that passes every column on
/// unchanged forwards its records' values only when `canonical` (see
/// [`crate::format::DecodedBatch::canonical`]); otherwise its columns are written again.
pub fn evaluate(
    plan: &ContinuousPlan,
    filter: Option<&Arc<dyn PhysicalExpr>>,
    batch: &RecordBatch,
    eligible: Option<&BooleanArray>,
    no_value: Option<&BooleanArray>,
    aggregator: Option<(&mut Aggregator, &[i64])>,
    canonical: bool,
) -> Result<Evaluated> {
    let forwarded = plan.forwards_value && canonical;
    let mut errors = Vec::new();
    let passed = match filter.or(plan.filter.as_ref()) {
        Some(filter) => {
            let (value, filter_errors) = evaluate_rows(filter, batch)?;
            errors.extend(filter_errors);
            let passed = value
                .as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
                .unwrap_or_else(|| BooleanArray::from(vec![false; batch.num_rows()]));
            Some(if passed.null_count() > 0 { prep_null_mask_filter(&passed) } else { passed })
        }
        None => None,
    };
    let (selected, tombstone) = if let Some((aggregator, floors)) = aggregator {
        // A null row updates no aggregate; over a table, it and a row WHERE drops delete the
        // key's row from its group.
        let selected = match (passed, no_value) {
            (Some(passed), Some(no_value)) => Some(and(&passed, &not(no_value)?)?),
            (None, Some(no_value)) => Some(not(no_value)?),
            (passed, None) => passed,
        };
        return if aggregator.over_table() {
            let live = selected.unwrap_or_else(|| BooleanArray::from(vec![true; batch.num_rows()]));
            aggregate(plan, (aggregator, &[]), batch, None, Some(live), eligible, errors)
        } else {
            aggregate(plan, (aggregator, floors), batch, selected, None, eligible, errors)
        };
    } else if plan.changelog {
        let dropped = passed.as_ref().map(not).transpose()?;
        let tombstone = match (dropped, no_value) {
            (Some(dropped), Some(no_value)) => Some(or(&dropped, no_value)?),
            (dropped, no_value) => dropped.or_else(|| no_value.cloned()),
        };
        (None, tombstone)
    } else {
        let selected = match (passed, no_value) {
            (Some(passed), Some(no_value)) => Some(and(&passed, &not(no_value)?)?),
            (passed, _) => passed,
        };
        (selected, no_value.cloned())
    };
    let mask = match (selected, eligible) {
        (Some(selected), Some(eligible)) => Some(and(&selected, eligible)?),
        (selected, eligible) => selected.or_else(|| eligible.cloned()),
    };
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
    let (filtered, rows) = if plan.explode.is_empty() {
        (filtered, rows)
    } else {
        let (exploded, records, failed) = super::explode::explode(&plan.explode, &filtered, &rows)?;
        errors.extend(failed.into_iter().map(|(i, m)| (rows[i], m)));
        (exploded, records)
    };
    let mut columns = Vec::with_capacity(plan.projection.len());
    if !forwarded {
        for column in &plan.projection {
            let (array, column_errors) = evaluate_rows(&column.expr, &filtered)?;
            errors.extend(column_errors.into_iter().map(|(i, m)| (rows[i], m)));
            columns.push(normalize_array(array)?);
        }
    }
    // The new key: PARTITION BY's leading output columns (none: no key), else a join's (the
    // join expression), else the source's own key columns written again in the sink's key format,
    // as ksqlDB writes every key it read (`"22"` read from a DELIMITED key is written `22`).
    let mut keys_read_again = false;
    let (keys, key_names) = match (&plan.partition_by, plan.join.as_deref()) {
        (Some(partition), _) if partition.keys == 0 => {
            (vec![new_null_array(&arrow::datatypes::DataType::Null, filtered.num_rows())], Vec::new())
        }
        (Some(partition), _) => (
            columns[..partition.keys].to_vec(),
            plan.projection[..partition.keys].iter().map(|c| c.name.clone()).collect(),
        ),
        (None, Some(join)) => {
            let mut keys = Vec::with_capacity(join.keys.len());
            let mut failed = std::collections::HashSet::new();
            for expr in &join.keys {
                let (key, key_errors) = evaluate_rows(expr, &filtered)?;
                // A row whose key fails is counted once, however many of its columns fail.
                errors.extend(key_errors.into_iter().filter(|(i, _)| failed.insert(*i)).map(|(i, m)| (rows[i], m)));
                keys.push(key);
            }
            (keys, join.key_names.clone())
        }
        (None, None) => match rewritten_keys(plan, &filtered) {
            Some(rewritten) => {
                keys_read_again = true;
                rewritten
            }
            None => (Vec::new(), Vec::new()),
        },
    };
    let windows = match plan.join.as_deref().and_then(|join| join.pair.as_ref()).and_then(|pair| pair.window.as_ref()) {
        Some(window) => join_windows(window, &filtered)?,
        None => Vec::new(),
    };
    let tombstones = match tombstone {
        Some(tombstone) if tombstone.true_count() > 0 => rows.iter().map(|r| tombstone.value(*r)).collect(),
        _ => Vec::new(),
    };
    // A row's ROWTIME is its output's timestamp; it differs from its record's when the source
    // reads it from a column (`TIMESTAMP = '…'`).
    let timestamps = match plan.source.timestamp_column {
        Some(_) => filtered
            .column_by_name(ROWTIME)
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>())
            .map(|c| c.values().to_vec())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    Ok(Evaluated {
        rows,
        columns,
        keys,
        key_names,
        keys_read_again,
        errors,
        tombstones,
        timestamps,
        windows,
        contributors: Vec::new(),
        forwarded,
    })
}

/// Each joined row's window, of a join of two windowed sources: its sides' (they are alike).
fn join_windows(window: &JoinWindow, batch: &RecordBatch) -> Result<Vec<WindowKey>> {
    let bound = |expr: &Arc<dyn PhysicalExpr>| -> Result<arrow::array::Int64Array> {
        let array = expr.evaluate(batch)?.into_array(batch.num_rows())?;
        array
            .as_primitive_opt::<arrow::datatypes::Int64Type>()
            .cloned()
            .ok_or_else(|| crate::error::SluiceError::Internal("a window bound is not a BIGINT".into()))
    };
    let (starts, ends) = (bound(&window.start)?, bound(&window.end)?);
    Ok(starts
        .values()
        .iter()
        .zip(ends.values())
        .map(|(start, end)| WindowKey { start: *start, end: *end, session: window.session })
        .collect())
}

/// Updates `aggregator` with the rows `selected` and `eligible` keep — over a table, with each
/// row as its key's new row where `live`, else as its deletion — and projects what it emits.
fn aggregate(
    plan: &ContinuousPlan,
    (aggregator, floors): (&mut Aggregator, &[i64]),
    batch: &RecordBatch,
    selected: Option<BooleanArray>,
    live: Option<BooleanArray>,
    eligible: Option<&BooleanArray>,
    mut errors: Vec<(usize, String)>,
) -> Result<Evaluated> {
    let mask = match (selected, eligible) {
        (Some(selected), Some(eligible)) => Some(and(&selected, eligible)?),
        (selected, eligible) => selected.or_else(|| eligible.cloned()),
    };
    let (filtered, rows): (RecordBatch, Vec<usize>) = match &mask {
        Some(mask) => (filter_record_batch(batch, mask)?, mask.values().set_indices().collect()),
        None => (batch.clone(), (0..batch.num_rows()).collect()),
    };
    if let Some(eligible) = eligible {
        errors.retain(|(row, _)| *row < eligible.len() && eligible.value(*row));
    }
    let rowtime: Vec<i64> = filtered
        .column_by_name(ROWTIME)
        .and_then(|c| c.as_any().downcast_ref::<arrow::array::Int64Array>())
        .map(|c| c.values().to_vec())
        .unwrap_or_else(|| vec![0; filtered.num_rows()]);
    let aggregated = match live {
        Some(live) => {
            let live = match &mask {
                Some(mask) => filter(&live, mask)?.as_boolean().clone(),
                None => live,
            };
            aggregator.process_table(&filtered, &rowtime, &live)?
        }
        None => {
            let floors: Vec<i64> = if floors.is_empty() { Vec::new() } else { rows.iter().map(|r| floors[*r]).collect() };
            aggregator.process(&filtered, &rowtime, &floors)?
        }
    };
    project(plan, aggregated, &rows, errors)
}

/// What an aggregation emits when its stream time moves to `stream_time` without a record
/// ([`Aggregator::advance`]): every row shows row 0 of no batch.
pub fn advance(plan: &ContinuousPlan, aggregator: &mut Aggregator, stream_time: i64) -> Result<Evaluated> {
    let aggregated = aggregator.advance(stream_time)?;
    project(plan, aggregated, &[0], Vec::new())
}

/// Projects the rows an aggregation emitted; `rows` maps the aggregator's input rows to the
/// decoded batch's.
fn project(plan: &ContinuousPlan, aggregated: super::aggregate::Aggregated, rows: &[usize], mut errors: Vec<(usize, String)>) -> Result<Evaluated> {
    errors.extend(aggregated.errors.into_iter().map(|(i, m)| (rows[i], m)));
    let mut columns = Vec::with_capacity(plan.projection.len());
    for column in &plan.projection {
        let (array, column_errors) = evaluate_rows(&column.expr, &aggregated.batch)?;
        errors.extend(column_errors.into_iter().map(|(i, m)| (rows[aggregated.sources[i]], m)));
        columns.push(normalize_array(array)?);
    }
    // The key: the grouping columns, which lead the aggregate's rows.
    let grouping = plan.aggregation.as_ref().map_or(0, |a| a.key_count()).min(aggregated.batch.num_columns());
    let keys = aggregated.batch.columns()[..grouping].to_vec();
    let key_names = plan.aggregation.as_ref().map_or_else(Vec::new, |a| {
        a.group_names()
            .into_iter()
            .zip(&a.group_outputs)
            .map(|(name, outputs)| outputs.first().cloned().unwrap_or(name))
            .collect()
    });
    Ok(Evaluated {
        rows: aggregated.sources.iter().map(|s| rows[*s]).collect(),
        columns,
        keys,
        key_names,
        keys_read_again: false,
        errors,
        tombstones: aggregated.tombstones,
        timestamps: aggregated.timestamps,
        windows: aggregated.windows,
        contributors: aggregated.contributors.iter().map(|c| c.iter().map(|r| rows[*r]).collect()).collect(),
        forwarded: false,
    })
}

/// The source's key columns, to be written again in the sink's key format, with their names
/// when there are several; `None` keeps each record's key bytes: a source without key columns,
/// a windowed one, or several key columns not all projected under their own names.
fn rewritten_keys(plan: &ContinuousPlan, batch: &RecordBatch) -> Option<(Vec<ArrayRef>, Vec<String>)> {
    let keys: Vec<&str> = plan.source.key_columns().map(|c| c.name.as_str()).collect();
    if plan.source.window.is_some() || keys.is_empty() {
        return None;
    }
    if keys.len() > 1 && !keys.iter().all(|name| plan.output_schema.field_with_name(name).is_ok()) {
        return None;
    }
    let arrays = keys.iter().map(|name| batch.column_by_name(name).cloned()).collect::<Option<Vec<_>>>()?;
    let names = if keys.len() > 1 { keys.iter().map(|name| name.to_string()).collect() } else { Vec::new() };
    Some((arrays, names))
}

/// Evaluates `expr` over every row of `batch`: the value of each row, NULL for a row that
/// failed, and the failed rows with their messages. A batch-wide failure is retried row by
/// row, so one bad row costs the others nothing but the retry.
pub fn evaluate_rows(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<(ArrayRef, Vec<(usize, String)>)> {
    let rows = batch.num_rows();
    let (value, errors) = functions::collect_row_errors(|| expr.evaluate(batch).and_then(|v| v.into_array(rows)));
    if let Ok(array) = value {
        return Ok((array, errors));
    }
    let data_type = expr.data_type(&batch.schema())?;
    let mut errors = Vec::new();
    let mut parts: Vec<ArrayRef> = Vec::with_capacity(rows);
    for row in 0..rows {
        let one = batch.slice(row, 1);
        let (value, row_errors) = functions::collect_row_errors(|| expr.evaluate(&one).and_then(|v| v.into_array(1)));
        errors.extend(row_errors.into_iter().map(|(_, m)| (row, m)));
        match value {
            Ok(array) if array.data_type() == &data_type => parts.push(array),
            Ok(array) => parts.push(arrow::compute::cast(&array, &data_type)?),
            Err(e) => {
                errors.push((row, row_error_message(&e)));
                parts.push(new_null_array(&data_type, 1));
            }
        }
    }
    let parts: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    let array = if parts.is_empty() { new_null_array(&data_type, 0) } else { concat(&parts)? };
    Ok((array, errors))
}

/// DataFusion's message for a row's failure, without its category prefixes.
fn row_error_message(error: &datafusion::error::DataFusionError) -> String {
    let message = error.strip_backtrace();
    let mut text = message.as_str();
    for prefix in ["Arrow error: ", "Execution error: ", "Compute error: ", "Cast error: ", "Optimizer rule"] {
        text = text.trim_start_matches(prefix);
    }
    format!("Error computing expression: {text}")
}

#[cfg(test)]
mod tests {
    use arrow::{
        array::{AsArray, Int32Array, StringArray},
        datatypes::{DataType, Field, Int32Type, Schema},
    };
    use datafusion::{
        logical_expr::Operator,
        physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal},
        scalar::ScalarValue,
    };

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![Field::new("V", DataType::Utf8, true), Field::new("D", DataType::Int32, true)]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec![Some("1"), Some("abc"), Some("3")])),
                Arc::new(Int32Array::from(vec![Some(5), Some(0), Some(2)])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_failing_cast_is_null_for_its_row_only() {
        let expr: Arc<dyn PhysicalExpr> = Arc::new(CastExpr::new(Arc::new(Column::new("V", 0)), DataType::Int32, None));
        let (values, errors) = evaluate_rows(&expr, &batch()).unwrap();
        let values = values.as_primitive::<Int32Type>();
        assert_eq!(values.iter().collect::<Vec<_>>(), vec![Some(1), None, Some(3)]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 1);
        assert!(errors[0].1.contains("abc"), "{}", errors[0].1);
    }

    #[test]
    fn a_division_by_zero_is_null_for_its_row_only() {
        let hundred: Arc<dyn PhysicalExpr> = Arc::new(Literal::new(ScalarValue::Int32(Some(100))));
        let expr: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(hundred, Operator::Divide, Arc::new(Column::new("D", 1))));
        let (values, errors) = evaluate_rows(&expr, &batch()).unwrap();
        assert_eq!(values.as_primitive::<Int32Type>().iter().collect::<Vec<_>>(), vec![Some(20), None, Some(50)]);
        assert_eq!(errors.iter().map(|(r, _)| *r).collect::<Vec<_>>(), vec![1]);
        assert!(errors[0].1.to_lowercase().contains("divide by zero"), "{}", errors[0].1);
    }

    fn stream() -> crate::catalog::SourceDef {
        let sql = "CREATE STREAM S (V STRING, D INTEGER) WITH (KAFKA_TOPIC = 's', VALUE_FORMAT = 'JSON');";
        let parsed = crate::parser::KsqlParser::parse_one(sql).unwrap();
        let crate::parser::Statement::CreateSource(create) = &parsed.statement else { panic!("not a CREATE STREAM") };
        crate::catalog::SourceDef::from_declaration(&create.name, create.columns.clone(), &create.properties, None, sql).unwrap()
    }

    #[test]
    fn a_failing_filter_drops_its_row_and_keeps_the_others() {
        let schema = batch().schema();
        let greater: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(CastExpr::new(Arc::new(Column::new("V", 0)), DataType::Int32, None)),
            Operator::Gt,
            Arc::new(Literal::new(ScalarValue::Int32(Some(0)))),
        ));
        let plan = ContinuousPlan {
            source: stream(),
            filter: Some(greater),
            projection: vec![crate::planner::OutputColumn { name: "V".into(), expr: Arc::new(Column::new("V", 0)) }],
            output_schema: schema,
            key_outputs: vec![false],
            changelog: false,
            forwards_value: false,
            partition_by: None,
            explode: Vec::new(),
            aggregation: None,
            join: None,
            per_record_updates: false,
            idle_close: None,
            limit: None,
            output_timestamp: None,
        };
        let evaluated = evaluate(&plan, None, &batch(), None, None, None, true).unwrap();
        assert_eq!(evaluated.rows, vec![0, 2]);
        assert_eq!(evaluated.columns[0].as_string::<i32>().iter().collect::<Vec<_>>(), vec![Some("1"), Some("3")]);
        assert_eq!(evaluated.errors.iter().map(|(r, _)| *r).collect::<Vec<_>>(), vec![1]);
    }
}
