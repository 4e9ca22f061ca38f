//! Turns a `SELECT` over a stream into a continuous plan: DataFusion plans the query against the
//! stream's row schema, and its projection and filter become physical expressions the runtime
//! evaluates on every decoded batch. With `GROUP BY`, its grouping expressions and aggregate
//! functions become an [`AggregatePlan`] the runtime keeps state for, and the projection and
//! `HAVING` read the aggregate's rows.

mod rewrite;

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::{
    common::{
        DFSchema,
        tree_node::{TreeNode, TreeNodeRecursion},
    },
    datasource::empty::EmptyTable,
    execution::context::ExecutionProps,
    logical_expr::{Expr, LogicalPlan},
    logical_expr::physical_planning_context::PhysicalPlanningContext,
    physical_expr::{
        PhysicalExpr,
        aggregate::{AggregateFunctionExpr, LoweredAggregateBuilder},
    },
    prelude::SessionContext,
    sql::parser::Statement as DFStatement,
};

use crate::{
    catalog::{Catalog, SourceDef},
    error::{Result, SluiceError},
    functions,
    parser::Select,
};

/// One output column of a query.
#[derive(Debug, Clone)]
pub struct OutputColumn {
    pub name: String,
    pub expr: Arc<dyn PhysicalExpr>,
}

/// A query ready to run over a stream, batch by batch.
#[derive(Debug, Clone)]
pub struct ContinuousPlan {
    pub source: SourceDef,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub projection: Vec<OutputColumn>,
    /// The schema of the projected rows.
    pub output_schema: SchemaRef,
    /// For each output column, whether it is one of the source's key columns, unchanged.
    pub key_outputs: Vec<bool>,
    /// The output is a table's changelog: a row the filter drops, or whose record has no
    /// value, is written as a tombstone of its key. True over a table, except in pull queries.
    pub changelog: bool,
    /// `SELECT *` over a source in the sink's format: the record's value bytes pass unchanged.
    pub forwards_value: bool,
    /// The new key of each record; `None` keeps the source record's key.
    pub partition_by: Option<Arc<dyn PhysicalExpr>>,
    /// With `GROUP BY`: the aggregation, whose rows the projection reads.
    pub aggregation: Option<Arc<AggregatePlan>>,
    /// An aggregation emits its group's row after every input row (`cache.max.bytes.buffering`
    /// 0), not the latest per group per batch.
    pub per_record_updates: bool,
    pub limit: Option<u64>,
}

/// `GROUP BY` and the aggregate functions of a query.
#[derive(Debug)]
pub struct AggregatePlan {
    /// The grouping expressions, over the decoded row.
    pub group_by: Vec<Arc<dyn PhysicalExpr>>,
    /// The aggregate functions; their arguments read the decoded row.
    pub aggregates: Vec<Arc<AggregateFunctionExpr>>,
    /// `HAVING`, over [`AggregatePlan::schema`].
    pub having: Option<Arc<dyn PhysicalExpr>>,
    /// The aggregate's rows: the grouping columns, then one column per aggregate function.
    pub schema: SchemaRef,
    /// For each grouping expression, the output columns that project it unchanged: its key
    /// column in the result.
    pub group_outputs: Vec<Vec<String>>,
}

impl AggregatePlan {
    /// The name of each grouping expression: a column's own name, else the expression.
    pub fn group_names(&self) -> Vec<String> {
        self.schema.fields().iter().take(self.group_by.len()).map(|f| f.name().clone()).collect()
    }
}

/// Plans queries with a session that knows ksqlDB's functions.
pub struct QueryPlanner;

impl QueryPlanner {
    pub async fn plan(catalog: &Catalog, select: &Select) -> Result<ContinuousPlan> {
        let rewritten = rewrite::rewrite(catalog, select)?;
        let source = rewritten.source;
        let ctx = SessionContext::new();
        functions::register_all(&ctx)?;
        ctx.register_table(
            datafusion::common::TableReference::bare(source.name.clone()),
            Arc::new(EmptyTable::new(source.row_schema())),
        )?;
        let state = ctx.state();
        let statement = DFStatement::Statement(Box::new(sqlparser::ast::Statement::Query(
            Box::new(rewritten.query),
        )));
        let plan = state.statement_to_plan(statement).await.map_err(plan_error)?;
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})
            .map_err(plan_error)?;
        let parts = split_plan(&plan)?;
        let scan_schema = parts.scan_schema.clone();
        let df_schema = scan_schema.as_ref();
        let filter = parts
            .filter
            .map(|f| ctx.create_physical_expr(f, df_schema))
            .transpose()?;
        let mut aggregation = match &parts.aggregate {
            Some(aggregate) => Some(plan_aggregate(&ctx, aggregate, parts.having.as_ref(), df_schema, &source)?),
            None => None,
        };
        // The projection reads the aggregate's rows when there is one, else the decoded row.
        let projected_schema: &DFSchema = parts.aggregate.as_ref().map_or(df_schema, |a| a.schema.as_ref());
        let group_names: Vec<String> = parts
            .aggregate
            .as_ref()
            .map(|a| a.schema.fields().iter().take(a.group_expr.len()).map(|f| f.name().clone()).collect())
            .unwrap_or_default();
        let mut columns = Vec::with_capacity(parts.projection.len());
        let mut fields = Vec::with_capacity(parts.projection.len());
        let mut key_outputs = Vec::with_capacity(parts.projection.len());
        for expr in parts.projection {
            let (name, inner) = match expr {
                Expr::Alias(alias) => (alias.name.clone(), *alias.expr),
                Expr::Column(ref column) => (column.name.clone(), expr.clone()),
                other => {
                    let name = other.schema_name().to_string();
                    (name, other)
                }
            };
            let group = match (&inner, aggregation.as_mut()) {
                (Expr::Column(c), Some(aggregation)) => group_names.iter().position(|g| *g == c.name).map(|i| (i, aggregation)),
                _ => None,
            };
            key_outputs.push(match (&inner, group) {
                (_, Some((i, aggregation))) => {
                    aggregation.group_outputs[i].push(name.clone());
                    true
                }
                (Expr::Column(c), None) if parts.aggregate.is_none() => source.key_columns().any(|k| k.name == c.name),
                _ => false,
            });
            let physical = ctx.create_physical_expr(inner, projected_schema)?;
            let data_type = physical.data_type(projected_schema.as_arrow())?;
            crate::catalog::types::SqlType::from_arrow(&data_type)?;
            fields.push(Field::new(&name, data_type, true));
            columns.push(OutputColumn { name, expr: physical });
        }
        let partition_by = match &select.partition_by {
            Some(_) => {
                let expr = rewritten.partition_by.ok_or_else(|| {
                    SluiceError::Internal("PARTITION BY was not rewritten".into())
                })?;
                let logical = state
                    .create_logical_expr(&expr.to_string(), df_schema)
                    .map_err(plan_error)?;
                Some(ctx.create_physical_expr(logical, df_schema)?)
            }
            None => None,
        };
        if aggregation.is_some() && select.partition_by.is_some() {
            return Err(SluiceError::Plan("PARTITION BY cannot be used with GROUP BY: the grouping is the key".into()));
        }
        let is_table = source.is_table();
        Ok(ContinuousPlan {
            aggregation: aggregation.map(Arc::new),
            per_record_updates: false,
            source,
            filter,
            projection: columns,
            output_schema: Arc::new(Schema::new(fields)),
            key_outputs,
            changelog: is_table,
            forwards_value: rewritten.is_star,
            partition_by,
            limit: select.limit,
        })
    }
}

/// The pieces of `Projection([Filter(having)](Aggregate([Filter](Scan))))`, or of
/// `Projection([Filter](Scan))`.
struct PlanParts {
    projection: Vec<Expr>,
    filter: Option<Expr>,
    aggregate: Option<datafusion::logical_expr::Aggregate>,
    having: Option<Expr>,
    scan_schema: Arc<DFSchema>,
}

fn split_plan(plan: &LogicalPlan) -> Result<PlanParts> {
    let LogicalPlan::Projection(projection) = plan else {
        return Err(unsupported(plan));
    };
    let mut input = projection.input.as_ref();
    let mut having = None;
    if let LogicalPlan::Filter(f) = input {
        if matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)) {
            having = Some(f.predicate.clone());
            input = f.input.as_ref();
        }
    }
    let mut aggregate = None;
    if let LogicalPlan::Aggregate(a) = input {
        aggregate = Some(a.clone());
        input = a.input.as_ref();
    }
    let mut filter = None;
    loop {
        match input {
            LogicalPlan::Filter(f) if filter.is_none() => {
                filter = Some(f.predicate.clone());
                input = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(alias) => input = alias.input.as_ref(),
            LogicalPlan::TableScan(scan) => {
                return Ok(PlanParts {
                    projection: projection.expr.clone(),
                    filter,
                    aggregate,
                    having,
                    scan_schema: scan.projected_schema.clone(),
                });
            }
            other => return Err(unsupported(other)),
        }
    }
}

/// The physical grouping expressions, aggregate functions and `HAVING` of `aggregate`.
fn plan_aggregate(
    ctx: &SessionContext,
    aggregate: &datafusion::logical_expr::Aggregate,
    having: Option<&Expr>,
    scan_schema: &DFSchema,
    source: &SourceDef,
) -> Result<AggregatePlan> {
    if source.is_table() {
        return Err(SluiceError::NotImplemented("aggregating a table (GROUP BY over a table's updates)".into()));
    }
    if aggregate.aggr_expr.is_empty() {
        return Err(SluiceError::Plan("GROUP BY requires aggregate functions in either the SELECT or HAVING clause.".into()));
    }
    if aggregate.group_expr.is_empty() {
        return Err(SluiceError::NotImplemented("aggregating without GROUP BY".into()));
    }
    for group in &aggregate.group_expr {
        let mut inner = None;
        group.apply(|e| {
            if let Expr::AggregateFunction(f) = e {
                inner = Some(f.func.name().to_ascii_uppercase());
                return Ok(TreeNodeRecursion::Stop);
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if let Some(function) = inner {
            return Err(SluiceError::Plan(format!(
                "GROUP BY does not support aggregate functions: {function} is an aggregate function."
            )));
        }
    }
    let group_by = aggregate
        .group_expr
        .iter()
        .map(|e| ctx.create_physical_expr(e.clone(), scan_schema))
        .collect::<datafusion::error::Result<Vec<_>>>()?;
    let props = ExecutionProps::new();
    let planning = PhysicalPlanningContext::default();
    let aggregates = aggregate
        .aggr_expr
        .iter()
        .map(|e| {
            let lowered = LoweredAggregateBuilder::new(e, scan_schema, scan_schema.as_arrow(), &props, &planning)
                .with_name(e.schema_name().to_string())
                .build()?;
            if lowered.filter.is_some() || !lowered.order_bys.is_empty() {
                return Err(SluiceError::NotImplemented(format!("FILTER or ORDER BY inside an aggregate ({e})")));
            }
            Ok(lowered.aggregate)
        })
        .collect::<Result<Vec<_>>>()?;
    let having = having
        .map(|h| ctx.create_physical_expr(h.clone(), aggregate.schema.as_ref()))
        .transpose()?;
    Ok(AggregatePlan {
        group_outputs: vec![Vec::new(); group_by.len()],
        group_by,
        aggregates,
        having,
        schema: Arc::new(aggregate.schema.as_arrow().clone()),
    })
}

fn unsupported(plan: &LogicalPlan) -> SluiceError {
    SluiceError::NotImplemented(format!(
        "this kind of query ({}); Sluice runs projections and filters over one stream",
        plan.display()
    ))
}

/// DataFusion's planning errors are the user's: say them without DataFusion's prefix.
fn plan_error(e: datafusion::error::DataFusionError) -> SluiceError {
    let message = e.strip_backtrace();
    let message = message
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ");
    SluiceError::Plan(message.to_string())
}
