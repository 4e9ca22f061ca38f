//! Turns a `SELECT` over a stream into a continuous plan: DataFusion plans the query against the
//! stream's row schema, and its projection and filter become physical expressions the runtime
//! evaluates on every decoded batch.

mod rewrite;

use std::sync::Arc;

use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::{
    common::DFSchema,
    datasource::empty::EmptyTable,
    logical_expr::{Expr, LogicalPlan},
    physical_expr::PhysicalExpr,
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
    pub limit: Option<u64>,
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
        let (projection, filter, scan_schema) = split_plan(&plan)?;
        let df_schema = scan_schema.as_ref();
        let filter = filter
            .map(|f| ctx.create_physical_expr(f, df_schema))
            .transpose()?;
        let mut columns = Vec::with_capacity(projection.len());
        let mut fields = Vec::with_capacity(projection.len());
        let mut key_outputs = Vec::with_capacity(projection.len());
        for expr in projection {
            let (name, inner) = match expr {
                Expr::Alias(alias) => (alias.name.clone(), *alias.expr),
                Expr::Column(ref column) => (column.name.clone(), expr.clone()),
                other => {
                    let name = other.schema_name().to_string();
                    (name, other)
                }
            };
            key_outputs.push(matches!(&inner, Expr::Column(c) if source.key_columns().any(|k| k.name == c.name)));
            let physical = ctx.create_physical_expr(inner, df_schema)?;
            let data_type = physical.data_type(df_schema.as_arrow())?;
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
        let is_table = source.is_table();
        Ok(ContinuousPlan {
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

/// Takes the projection, the filter and the scanned schema out of `Projection(Filter(Scan))`.
fn split_plan(plan: &LogicalPlan) -> Result<(Vec<Expr>, Option<Expr>, Arc<DFSchema>)> {
    let LogicalPlan::Projection(projection) = plan else {
        return Err(unsupported(plan));
    };
    let mut input = projection.input.as_ref();
    let mut filter = None;
    loop {
        match input {
            LogicalPlan::Filter(f) if filter.is_none() => {
                filter = Some(f.predicate.clone());
                input = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(alias) => input = alias.input.as_ref(),
            LogicalPlan::TableScan(scan) => {
                return Ok((projection.expr.clone(), filter, scan.projected_schema.clone()));
            }
            other => return Err(unsupported(other)),
        }
    }
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
