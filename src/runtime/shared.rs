//! Common sub-expressions across the queries of one scan, evaluated once per batch.
//!
//! Six routing queries each filter on `EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = 'n'`; the
//! function call is the same in all six. Each function call that appears in the filters of two
//! or more queries is hoisted: the scan evaluates it once, appends the result to the batch as a
//! column, and the queries' filters read that column instead.

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, RecordBatch},
    datatypes::{Field, Schema},
};
use datafusion::{
    common::tree_node::{Transformed, TreeNode, TreeNodeRecursion},
    physical_expr::{PhysicalExpr, ScalarFunctionExpr, expressions::Column},
};

use super::operator::evaluate_rows;
use crate::{error::Result, planner::ContinuousPlan};

/// The hoisted expressions of a scan and which queries use each.
#[derive(Debug, Default)]
pub struct SharedExprs {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    /// For each hoisted expression, the indices of the queries whose filter reads it.
    pub users: Vec<Vec<usize>>,
}

/// What evaluating the shared expressions over a batch gave.
pub struct SharedBatch {
    /// The decoded batch with one more column per shared expression.
    pub batch: RecordBatch,
    /// Row errors per shared expression.
    pub errors: Vec<Vec<(usize, String)>>,
}

impl SharedExprs {
    /// Finds the function calls shared by the plans' filters and rewrites the filters to read
    /// them as columns after the `base_width` decoded ones.
    pub fn plan(plans: &[&ContinuousPlan], base_width: usize) -> (SharedExprs, Vec<Option<Arc<dyn PhysicalExpr>>>) {
        let mut candidates: Vec<(Arc<dyn PhysicalExpr>, Vec<usize>)> = Vec::new();
        for (query, plan) in plans.iter().enumerate() {
            // A join's filter reads the joined row, which has no shared columns.
            let Some(filter) = plan.filter.as_ref().filter(|_| plan.join.is_none()) else { continue };
            let _ = filter.apply(|node| {
                if node.as_ref().is::<ScalarFunctionExpr>() {
                    match candidates.iter_mut().find(|(e, _)| e.as_ref() == node.as_ref()) {
                        Some((_, users)) if !users.contains(&query) => users.push(query),
                        Some(_) => {}
                        None => candidates.push((node.clone(), vec![query])),
                    }
                    return Ok(TreeNodeRecursion::Jump);
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        candidates.retain(|(_, users)| users.len() > 1);
        let shared = SharedExprs {
            exprs: candidates.iter().map(|(e, _)| e.clone()).collect(),
            users: candidates.into_iter().map(|(_, u)| u).collect(),
        };
        let filters = plans
            .iter()
            .map(|plan| {
                plan.filter.as_ref().filter(|_| plan.join.is_none()).map(|filter| {
                    filter
                        .clone()
                        .transform_down(|node| {
                            match shared.exprs.iter().position(|e| e.as_ref() == node.as_ref()) {
                                Some(i) => Ok(Transformed::new(
                                    Arc::new(Column::new(&shared_name(i), base_width + i)) as Arc<dyn PhysicalExpr>,
                                    true,
                                    TreeNodeRecursion::Jump,
                                )),
                                None => Ok(Transformed::no(node)),
                            }
                        })
                        .map(|t| t.data)
                        .unwrap_or_else(|_| filter.clone())
                })
            })
            .collect();
        (shared, filters)
    }

    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    /// Evaluates every shared expression once and appends the results to the batch.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<SharedBatch> {
        let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let mut errors = Vec::with_capacity(self.exprs.len());
        for (i, expr) in self.exprs.iter().enumerate() {
            let (array, row_errors) = evaluate_rows(expr, batch)?;
            fields.push(Arc::new(Field::new(shared_name(i), array.data_type().clone(), true)));
            columns.push(array);
            errors.push(row_errors);
        }
        Ok(SharedBatch {
            batch: RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?,
            errors,
        })
    }
}

fn shared_name(i: usize) -> String {
    format!("__shared_{i}")
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, BooleanArray};

    use super::*;
    use crate::{
        catalog::{Catalog, SourceDef},
        format::{RawRecord, RecordDecoder},
        parser::{KsqlParser, Statement},
        planner::QueryPlanner,
    };

    async fn routing_plans(catalog: &Catalog) -> Vec<ContinuousPlan> {
        let mut plans = Vec::new();
        for id in 1..=6 {
            let sql = format!(
                "CREATE STREAM SENSOR_ID_{id} AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '{id}';"
            );
            let Statement::CreateAsSelect(csas) = KsqlParser::parse_one(&sql).unwrap().statement else {
                panic!("not a CSAS")
            };
            plans.push(QueryPlanner::plan(catalog, &csas.select).await.unwrap());
        }
        plans
    }

    fn ingestion() -> (Catalog, SourceDef) {
        let sql = "CREATE STREAM STREAM_INGESTION (payload STRING, correlation_id STRING, created_at DOUBLE, schema_version INTEGER) WITH (KAFKA_TOPIC = 'INGESTION', VALUE_FORMAT = 'JSON');";
        let parsed = KsqlParser::parse_one(sql).unwrap();
        let Statement::CreateSource(create) = &parsed.statement else { panic!() };
        let stream = SourceDef::from_declaration(&create.name, create.columns.clone(), &create.properties, None, sql).unwrap();
        let catalog = Catalog::default();
        catalog.put_stream(stream.clone());
        (catalog, stream)
    }

    #[tokio::test]
    async fn six_routing_filters_share_one_extraction() {
        let (catalog, stream) = ingestion();
        let plans = routing_plans(&catalog).await;
        let decoder = RecordDecoder::new(&stream).unwrap();
        let (shared, filters) = SharedExprs::plan(&plans.iter().collect::<Vec<_>>(), decoder.schema().fields().len());
        assert_eq!(shared.exprs.len(), 1, "one EXTRACTJSONFIELD call for six queries");
        assert_eq!(shared.users, vec![vec![0, 1, 2, 3, 4, 5]]);

        let values: Vec<String> = (1..=6)
            .chain([3])
            .map(|s| format!(r#"{{"payload": "{{\"sensor_id\": {s}}}", "correlation_id": "c", "created_at": 1.0, "schema_version": 1}}"#))
            .collect();
        let records: Vec<RawRecord> = values
            .iter()
            .enumerate()
            .map(|(i, v)| RawRecord { partition: 0, offset: i as i64, timestamp: 0, key: None, value: Some(v.as_bytes()), headers: None })
            .collect();
        let decoded = decoder.decode(&records).unwrap();
        let augmented = shared.evaluate(&decoded.batch).unwrap();
        for (plan, filter) in plans.iter().zip(&filters) {
            let original = plan.filter.as_ref().unwrap().evaluate(&decoded.batch).unwrap().into_array(7).unwrap();
            let rewritten = filter.as_ref().unwrap().evaluate(&augmented.batch).unwrap().into_array(7).unwrap();
            let original: &BooleanArray = original.as_boolean();
            assert_eq!(original, rewritten.as_boolean());
        }
    }
}
