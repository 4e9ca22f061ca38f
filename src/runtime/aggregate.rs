//! The `GROUP BY` state of a query: DataFusion accumulators per group, updated by every row the
//! query's `WHERE` passes, and the rows each update emits.
//!
//! With `cache.max.bytes.buffering` 0 every input row emits its group's new row, as ksqlDB's
//! tests run; otherwise each batch emits the latest row of each group it changed, as ksqlDB's
//! record cache does per commit. A row's timestamp is the largest of its group's records. A
//! group whose row stops satisfying `HAVING` gets a tombstone; one that never did emits nothing.
//! A row whose grouping key is NULL is dropped and reported.

use std::{collections::HashMap, sync::Arc};

use arrow::{
    array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array},
    compute::{cast, filter_record_batch, prep_null_mask_filter, take},
    row::{RowConverter, SortField},
};
use datafusion::{logical_expr::Accumulator, scalar::ScalarValue};

use super::operator::evaluate_rows;
use crate::{error::Result, planner::AggregatePlan};

pub struct Aggregator {
    plan: Arc<AggregatePlan>,
    converter: RowConverter,
    /// By the grouping key in Arrow's row format.
    groups: HashMap<Vec<u8>, Group>,
    per_record: bool,
}

struct Group {
    key: Vec<ScalarValue>,
    accumulators: Vec<Box<dyn Accumulator>>,
    /// The largest timestamp of the group's records.
    timestamp: i64,
    /// The group's row is in the output: it satisfied `HAVING` when last emitted.
    present: bool,
}

/// What one batch changed.
pub struct Aggregated {
    /// The emitted rows, in the aggregate's schema.
    pub batch: RecordBatch,
    /// For each emitted row, the input row whose update it shows.
    pub sources: Vec<usize>,
    /// For each emitted row, whether it is the tombstone of a group that left `HAVING`.
    pub tombstones: Vec<bool>,
    pub timestamps: Vec<i64>,
    /// Input rows dropped, with the reason.
    pub errors: Vec<(usize, String)>,
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
            .take(plan.group_by.len())
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        Ok(Self {
            converter: RowConverter::new(keys)?,
            plan,
            groups: HashMap::new(),
            per_record,
        })
    }

    /// Updates the groups with the rows of `batch`, whose timestamps are `rowtime`.
    pub fn process(&mut self, batch: &RecordBatch, rowtime: &[i64]) -> Result<Aggregated> {
        let mut errors = Vec::new();
        let mut keys = Vec::with_capacity(self.plan.group_by.len());
        for expr in &self.plan.group_by {
            let (values, failed) = evaluate_rows(expr, batch)?;
            errors.extend(failed);
            keys.push(values);
        }
        let mut arguments = Vec::with_capacity(self.plan.aggregates.len());
        for aggregate in &self.plan.aggregates {
            let mut values = Vec::new();
            for expr in aggregate.expressions() {
                let (value, failed) = evaluate_rows(&expr, batch)?;
                errors.extend(failed);
                values.push(value);
            }
            arguments.push(values);
        }
        let converted = self.converter.convert_columns(&keys)?;
        let mut segments: Vec<(Vec<u8>, Vec<u32>)> = Vec::new();
        let mut open: HashMap<Vec<u8>, usize> = HashMap::new();
        for row in 0..batch.num_rows() {
            if keys.iter().any(|k| k.is_null(row)) {
                if !errors.iter().any(|(r, _)| *r == row) {
                    errors.push((row, "The GROUP BY key is NULL: the row is dropped".into()));
                }
                continue;
            }
            let key = converted.row(row).as_ref().to_vec();
            match open.get(&key).filter(|_| !self.per_record) {
                Some(segment) => segments[*segment].1.push(row as u32),
                None => {
                    open.insert(key.clone(), segments.len());
                    segments.push((key, vec![row as u32]));
                }
            }
        }
        let width = self.plan.schema.fields().len();
        let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); width];
        let mut emitted_keys = Vec::with_capacity(segments.len());
        let mut sources = Vec::with_capacity(segments.len());
        let mut timestamps = Vec::with_capacity(segments.len());
        for (key, rows) in segments {
            let first = rows[0] as usize;
            if !self.groups.contains_key(&key) {
                let group = Group {
                    key: keys.iter().map(|k| ScalarValue::try_from_array(k, first)).collect::<datafusion::error::Result<_>>()?,
                    accumulators: self
                        .plan
                        .aggregates
                        .iter()
                        .map(|a| a.create_accumulator())
                        .collect::<datafusion::error::Result<_>>()?,
                    timestamp: i64::MIN,
                    present: false,
                };
                self.groups.insert(key.clone(), group);
            }
            let group = self.groups.get_mut(&key).expect("the group was just made");
            let indices = UInt32Array::from(rows.clone());
            for (accumulator, values) in group.accumulators.iter_mut().zip(&arguments) {
                let taken = values.iter().map(|v| take(v, &indices, None)).collect::<Result<Vec<_>, _>>()?;
                accumulator.update_batch(&taken)?;
            }
            for row in &rows {
                group.timestamp = group.timestamp.max(rowtime[*row as usize]);
            }
            for (column, value) in columns.iter_mut().zip(&group.key) {
                column.push(value.clone());
            }
            for (i, accumulator) in group.accumulators.iter_mut().enumerate() {
                columns[group.key.len() + i].push(accumulator.evaluate()?);
            }
            emitted_keys.push(key);
            sources.push(*rows.last().expect("a segment has rows") as usize);
            timestamps.push(group.timestamp);
        }
        let batch = self.rows(columns)?;
        self.apply_having(batch, emitted_keys, sources, timestamps, errors)
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
    fn apply_having(
        &mut self,
        batch: RecordBatch,
        keys: Vec<Vec<u8>>,
        sources: Vec<usize>,
        timestamps: Vec<i64>,
        errors: Vec<(usize, String)>,
    ) -> Result<Aggregated> {
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
        for (key, passed) in keys.iter().zip(&passed) {
            let group = self.groups.get_mut(key).expect("an emitted group exists");
            let kept = *passed || group.present;
            if kept {
                tombstones.push(!passed);
            }
            group.present = *passed;
            keep.push(kept);
        }
        let batch = filter_record_batch(&batch, &BooleanArray::from(keep.clone()))?;
        Ok(Aggregated {
            batch,
            sources: kept(sources, &keep),
            tombstones,
            timestamps: kept(timestamps, &keep),
            errors,
        })
    }
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
        let out = per_batch.process(&batch, &times).unwrap();
        assert_eq!(out.batch.column(1).as_primitive::<Int64Type>().values().to_vec(), vec![4, 2]);
        assert_eq!(out.sources, vec![2, 1], "each row shows the group's last update");
        assert_eq!(out.timestamps, vec![10, 5], "the largest timestamp of the group's records");
        assert_eq!(out.errors.len(), 1, "the NULL key is reported");

        let mut per_record = Aggregator::new(plan, true).unwrap();
        let out = per_record.process(&batch, &times).unwrap();
        assert_eq!(out.batch.column(1).as_primitive::<Int64Type>().values().to_vec(), vec![1, 2, 4]);
    }

    #[tokio::test]
    async fn a_group_leaving_having_gets_a_tombstone_and_one_never_in_it_nothing() {
        let plan = plan("SELECT K, COUNT(*) AS N FROM S GROUP BY K HAVING COUNT(*) < 2 EMIT CHANGES;").await;
        let batch = rows(&[Some("a"), Some("a"), Some("a")], &[1, 1, 1], &[1, 2, 3]);
        let times = vec![1, 2, 3];
        let mut aggregator = Aggregator::new(plan, true).unwrap();
        let out = aggregator.process(&batch, &times).unwrap();
        assert_eq!(out.tombstones, vec![false, true], "in, then out; the third update emits nothing");
        assert_eq!(out.sources, vec![0, 1]);
    }
}
