//! Turns a `SELECT` over a stream into a continuous plan: DataFusion plans the query against the
//! stream's row schema, and its projection and filter become physical expressions the runtime
//! evaluates on every decoded batch. With `GROUP BY`, its grouping expressions and aggregate
//! functions become an [`AggregatePlan`] the runtime keeps state for, and the projection and
//! `HAVING` read the aggregate's rows.

pub mod cast;
mod comparison;
mod df_errors;
mod explain;
mod explode;
mod in_list;
mod input;
mod join;
mod literals;
mod partition;
mod pseudo_time;
mod structs;
mod type_check;
mod rewrite;
pub mod pull_rules;
pub mod stages;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::{
    common::{
        DFSchema,
        tree_node::{TreeNode, TreeNodeRecursion},
    },
    datasource::empty::EmptyTable,
    execution::context::ExecutionProps,
    logical_expr::{Expr, LogicalPlan, simplify::SimplifyContext},
    logical_expr::physical_planning_context::PhysicalPlanningContext,
    optimizer::simplify_expressions::ExprSimplifier,
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
    functions::{self, collect::CollectLimits},
    parser::{JoinWithin, Select, WindowKind, WindowSpec},
};

pub use explain::{Operator, SinkTarget};
pub use explode::{TableFunction, element_column as explode_column};
pub use join::{JoinKind, key_missing as join_key_missing};
pub use partition::PartitionBy;
pub use rewrite::{WINDOW_BOUNDS, literal_value};

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
    /// `PARTITION BY`: the leading output columns are each record's new key; `None` keeps the
    /// source record's key.
    pub partition_by: Option<PartitionBy>,
    /// The table functions' arrays, over the decoded row: each row becomes one per element of
    /// the longest (of its combinations, for CUBE_EXPLODE), each element appended to the row as
    /// a column.
    pub explode: Vec<(TableFunction, Arc<dyn PhysicalExpr>)>,
    /// With `GROUP BY`: the aggregation, whose rows the projection reads.
    pub aggregation: Option<Arc<AggregatePlan>>,
    /// With `JOIN`: the tables each row is joined with; the filter, projection and aggregation
    /// read the joined row.
    pub join: Option<Arc<JoinPlan>>,
    /// An aggregation emits its group's row after every input row (`cache.max.bytes.buffering`
    /// 0), not the latest per group per batch.
    pub per_record_updates: bool,
    /// An `EMIT FINAL` windowed aggregation's stream time moves on with the wall clock once its
    /// input has been idle this long (`sluice.window.idle.close.ms`).
    pub idle_close: Option<std::time::Duration>,
    pub limit: Option<u64>,
    /// The sink's `TIMESTAMP` column: each output record's timestamp is read from it.
    pub output_timestamp: Option<OutputTimestamp>,
}

/// Where an output record's timestamp comes from when the sink names a `TIMESTAMP` column.
#[derive(Debug, Clone)]
pub struct OutputTimestamp {
    /// The column's index among the output columns.
    pub column: usize,
    /// `TIMESTAMP_FORMAT`: how a STRING column is read.
    pub pattern: Option<crate::java_time::Pattern>,
}

impl ContinuousPlan {
    /// Whether the query keeps state rebuilt from its input: an aggregation's groups, or a
    /// stream-stream join's records, or a table-table join's rows.
    pub fn is_stateful(&self) -> bool {
        self.aggregation.is_some() || self.pair_join().is_some()
    }

    pub fn pair_join(&self) -> Option<&PairJoin> {
        self.join.as_ref().and_then(|j| j.pair.as_ref())
    }

    /// The topics the query reads, its source's first: with a stream-stream or table-table join,
    /// both sources'.
    pub fn input_topics(&self) -> Vec<String> {
        let mut topics = vec![self.source.topic.clone()];
        topics.extend(self.pair_join().map(|w| w.right.topic.clone()));
        topics
    }

    /// The sources the query joins its source with: a stream-stream or table-table join's
    /// other side first, then each table it looks rows up in.
    pub fn joined_sources(&self) -> Vec<String> {
        let pair = self.pair_join().map(|p| p.right.name.clone());
        let tables = self.join.iter().flat_map(|j| j.tables()).map(|t| t.name.clone());
        pair.into_iter().chain(tables).collect()
    }
}

/// A stream joined with one table after another, each on its primary key: each stream row
/// with each table's row for its join key as of the stream row's time; or first with another
/// stream within a window.
#[derive(Debug)]
pub struct JoinPlan {
    /// The stream joined with another stream within a window, or the table with another table,
    /// before any other join.
    pub pair: Option<PairJoin>,
    /// One per table, in order; each extends the row the one before made.
    pub steps: Vec<JoinStep>,
    /// The join expressions a projection may keep as the result's key, as ksqlDB words them;
    /// with a key of several columns, the first of each column's.
    pub key_expressions: Vec<String>,
    /// The output columns that project the result's key: more than one is refused.
    pub key_aliases: Vec<String>,
    /// No join expression is a column the key could be named after: the key is ksqlDB's
    /// synthetic `ROWKEY`.
    pub synthetic_key: bool,
    /// A foreign-key join: the left table (its name) whose key the result's is.
    pub foreign_key_of: Option<String>,
    /// The result's key, one expression per key column: the last join's expression, or each
    /// of its equalities' when it has several.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// With several key columns, the output column each of [`JoinPlan::keys`] is written as.
    pub key_names: Vec<String>,
}

impl JoinPlan {

    /// The tables joined, in order.
    pub fn tables(&self) -> impl Iterator<Item = &SourceDef> {
        self.steps.iter().map(|s| &s.table)
    }
}

/// Two sources joined where a record of either side makes output: two streams within a window,
/// each record joined with the other's records of the same key whose time is close enough (as
/// ksqlDB's `JOIN … WITHIN` joins them); or two tables on their primary keys, each update
/// joined with the other table's row of its key.
#[derive(Debug)]
pub struct PairJoin {
    /// The source on the right; the query's source is on the left.
    pub right: SourceDef,
    pub kind: JoinKind,
    /// Two streams' window; `None` for two tables.
    pub within: Option<JoinWithin>,
    /// Each side's join expressions (one per equality of the condition), over
    /// [`PairJoin::schema`].
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The result's key, one per equality: the left's join expression, or the right's where
    /// the left is NULL; a foreign-key join's, the left's key column.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The two streams' rows side by side, every column nullable: how the scan decodes a
    /// record of either, NULLs in the other's columns.
    pub schema: SchemaRef,
    /// How many of [`PairJoin::schema`]'s columns are the left stream's.
    pub left_width: usize,
    /// The condition joins both sources' key columns: then both must have as many partitions,
    /// as ksqlDB checks.
    pub keyed: bool,
    /// A foreign-key join of two tables: `left_keys` is an expression over the left's columns,
    /// equal to the right's key; the result's rows and key are the left table's.
    pub foreign: bool,
    /// Two sources whose keys are windowed: the window is part of the join key (the last two of
    /// `left_keys` and `right_keys` are its bounds), and of the result's key.
    pub window: Option<JoinWindow>,
}

/// The window of a join of two windowed sources' rows: the side's the row has.
#[derive(Debug)]
pub struct JoinWindow {
    pub start: Arc<dyn PhysicalExpr>,
    pub end: Arc<dyn PhysicalExpr>,
    /// Session windows: the key holds both bounds.
    pub session: bool,
}

/// One table joined with the row made so far.
#[derive(Debug)]
pub struct JoinStep {
    pub table: SourceDef,
    pub kind: JoinKind,
    /// The other side of the condition, over the row so far (whose columns come first in
    /// every later row, so it evaluates over any of them): one per key column of the table, in
    /// its order.
    pub stream_keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The row this step makes: the row so far, then the table's columns, nullable (a row may
    /// have no match).
    pub schema: SchemaRef,
    /// How many of [`JoinStep::schema`]'s columns are the row so far.
    pub stream_width: usize,
    /// The source whose key column the other side of the condition is: it and the table must
    /// have as many partitions, as ksqlDB checks.
    pub keyed_with: Option<SourceDef>,
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
    /// With `WINDOW`: the rows are per group and window, and [`AggregatePlan::schema`] holds
    /// `WINDOWSTART` and `WINDOWEND` after the grouping columns.
    pub window: Option<WindowPlan>,
    /// `EMIT FINAL`: a window's row is emitted once, when it closes.
    pub emit_final: bool,
    /// Over a table: its key columns, over the decoded row. Each update of a key takes that
    /// key's previous row back out of its group before adding the new one.
    pub source_key: Option<Vec<Arc<dyn PhysicalExpr>>>,
}

/// A `WINDOW` clause with ksqlDB's defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    pub kind: WindowKind,
    /// How long after its end a window still takes late records.
    pub grace_ms: i64,
    /// How long a window is kept: at least its size (or gap) plus its grace.
    pub retention_ms: i64,
}

/// Kafka Streams' grace period when none is given: a window closes a day after it starts.
const DEFAULT_GRACE_HORIZON_MS: i64 = 86_400_000;

impl WindowPlan {
    /// `spec` with its defaults: ksqlDB's grace (0 under `EMIT FINAL`, else up to a day after
    /// the window starts), and a retention of the window's length plus its grace.
    pub fn new(spec: &WindowSpec, emit_final: bool) -> Result<Self> {
        let length = match spec.kind {
            WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms, .. } => size_ms,
            WindowKind::Session { gap_ms } => gap_ms,
        };
        let grace_ms = match spec.grace_ms {
            Some(grace) => grace,
            None if emit_final => 0,
            None => (DEFAULT_GRACE_HORIZON_MS - length).max(0),
        };
        let minimum = length.saturating_add(grace_ms);
        let retention_ms = spec.retention_ms.unwrap_or(minimum);
        if retention_ms < minimum {
            return Err(SluiceError::Plan(format!(
                "The retention period of the window store must be no smaller than its window size plus the grace period. Got size=[{length}], grace=[{grace_ms}], retention=[{retention_ms}]"
            )));
        }
        Ok(Self { kind: spec.kind, grace_ms, retention_ms })
    }
}

impl AggregatePlan {
    /// How many grouping columns the query wrote (the window's bounds not counted).
    pub fn key_count(&self) -> usize {
        self.group_by.len()
    }

    /// The name of each grouping expression: a column's own name, else the expression.
    pub fn group_names(&self) -> Vec<String> {
        self.schema.fields().iter().take(self.key_count()).map(|f| f.name().clone()).collect()
    }

}

/// Plans queries with a session that knows ksqlDB's functions.
pub struct QueryPlanner;

impl QueryPlanner {
    /// Plans `select` with the functions' default settings.
    pub async fn plan(catalog: &Catalog, select: &Select) -> Result<ContinuousPlan> {
        Self::plan_with(catalog, select, CollectLimits::default()).await
    }

    /// Plans `select` with `COLLECT_LIST` and `COLLECT_SET` keeping up to `limits`.
    pub async fn plan_with(catalog: &Catalog, select: &Select, limits: CollectLimits) -> Result<ContinuousPlan> {
        let rewritten = rewrite::rewrite(catalog, select)?;
        let source = rewritten.source;
        let mut ctx = SessionContext::new();
        functions::register_all(&mut ctx, limits)?;
        ctx.register_udf(cast::udf());
        let mut row_schema = source.row_schema();
        if select.window.is_some() {
            // The window's bounds are columns the projection may read; the aggregation fills them.
            let mut fields: Vec<Field> = row_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            fields.extend(WINDOW_BOUNDS.iter().map(|b| Field::new(*b, DataType::Int64, false)));
            row_schema = Arc::new(Schema::new(fields));
        }
        ctx.register_table(
            datafusion::common::TableReference::bare(source.name.clone()),
            Arc::new(EmptyTable::new(row_schema.clone())),
        )?;
        for clause in rewritten.joins.iter().flat_map(|j| &j.clauses) {
            ctx.register_table(
                datafusion::common::TableReference::bare(clause.right.source.name.clone()),
                Arc::new(EmptyTable::new(clause.right.source.row_schema())),
            )?;
        }
        let mut state = ctx.state();
        let query = rewritten.query;
        let partition_keys = match &rewritten.partition_by {
            Some(keys) => Some(partition::plan_keys(&state, &query, keys).await?),
            None => None,
        };
        // The table functions' arrays read the row; their element columns follow the row's own.
        let mut explode = Vec::with_capacity(rewritten.explode.len());
        if !rewritten.explode.is_empty() {
            let calls: Vec<sqlparser::ast::Expr> = rewritten.explode.iter().map(|(_, array)| array.clone()).collect();
            let (arrays, input_schema) = input::plan_over_input(&state, &query, &calls).await.map_err(plan_error)?;
            let mut fields: Vec<Field> = row_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
            for (n, ((function, _), array)) in rewritten.explode.iter().zip(arrays).enumerate() {
                let physical = to_physical(&ctx, array, &input_schema)?;
                fields.push(explode::element_field(n, *function, &physical.data_type(input_schema.as_arrow())?)?);
                explode.push((*function, physical));
            }
            let name = datafusion::common::TableReference::bare(source.name.clone());
            ctx.deregister_table(name.clone())?;
            ctx.register_table(name, Arc::new(EmptyTable::new(Arc::new(Schema::new(fields)))))?;
            state = ctx.state();
        }
        let statement = DFStatement::Statement(Box::new(sqlparser::ast::Statement::Query(Box::new(query.clone()))));
        let plan = match state.statement_to_plan(statement).await {
            Ok(plan) => plan,
            Err(e) => {
                let not_boolean = if e.to_string().contains("non-boolean predicate") { where_not_boolean(&state, &query).await } else { None };
                return Err(not_boolean
                    .or_else(|| unresolved_column(&query, &e))
                    .or_else(|| grouping_error(&ctx, &query, &e))
                    .unwrap_or_else(|| plan_error(e)));
            }
        };
        type_check::check(&plan)?;
        let plan = in_list::coerce(plan).map_err(plan_error)?;
        let plan = cast::nested_to_string(plan).map_err(plan_error)?;
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})
            .map_err(plan_error)?;
        let parts = split_plan(&plan)?;
        if select.window.is_some() && parts.aggregate.as_ref().is_none_or(|a| a.group_expr.is_empty()) {
            return Err(SluiceError::Plan("WINDOW clause requires a GROUP BY clause.".into()));
        }
        let scan_schema = parts.scan_schema.clone();
        let df_schema = scan_schema.as_ref();
        let filter = parts
            .filter
            .map(|f| to_physical(&ctx, f, df_schema))
            .transpose()?;
        let window = select.window.as_ref().map(|w| WindowPlan::new(w, select.emit_final)).transpose()?;
        let mut aggregation = match &parts.aggregate {
            Some(aggregate) => Some(plan_aggregate(&ctx, aggregate, parts.having.as_ref(), df_schema, &source, window)?),
            None => None,
        };
        if let Some(aggregation) = aggregation.as_mut() {
            aggregation.emit_final = select.emit_final;
        }
        // The projection reads the aggregate's rows when there is one, else the decoded row.
        let projected_schema: &DFSchema = parts.aggregate.as_ref().map_or(df_schema, |a| a.schema.as_ref());
        let group_names: Vec<String> = aggregation.as_ref().map(AggregatePlan::group_names).unwrap_or_default();
        let mut columns = Vec::with_capacity(parts.projection.len());
        let mut fields = Vec::with_capacity(parts.projection.len());
        let mut key_outputs = Vec::with_capacity(parts.projection.len());
        let mut projected_columns = Vec::with_capacity(parts.projection.len());
        let mut outputs = Vec::with_capacity(parts.projection.len());
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
                (Expr::Column(c), None) if parts.aggregate.is_none() => {
                    source.key_columns().any(|k| k.name == c.name)
                        || (source.window.is_some() && WINDOW_BOUNDS.contains(&c.name.as_str()) && name == c.name)
                }
                _ => false,
            });
            projected_columns.push(match &inner {
                Expr::Column(c) => Some((c.relation.as_ref().map(|r| r.table().to_string()), c.name.clone())),
                _ => None,
            });
            outputs.push((inner.clone(), name.clone()));
            let physical = to_physical(&ctx, inner, projected_schema)?;
            let data_type = physical.data_type(projected_schema.as_arrow())?;
            crate::catalog::types::SqlType::from_arrow(&data_type)?;
            fields.push(Field::new(&name, data_type, true));
            columns.push(OutputColumn { name, expr: physical });
        }
        if aggregation.is_some() && select.partition_by.is_some() {
            return Err(SluiceError::Plan("PARTITION BY cannot be used with GROUP BY: the grouping is the key".into()));
        }
        let join = match rewritten.joins {
            Some(joins) => {
                let (plan, key) = plan_joins(&ctx, joins, df_schema, &fields, &projected_columns, &rewritten.synthetic_key_names)?;
                if aggregation.is_none() {
                    key_outputs = (0..fields.len()).map(|i| key.contains(&i)).collect();
                }
                Some(Arc::new(plan))
            }
            None => None,
        };
        let partition_by = match partition_keys {
            Some(keys) => {
                let located = partition::locate_keys(
                    keys,
                    &outputs,
                    &rewritten.partition_names,
                    &rewritten.partition_texts,
                    rewritten.has_star,
                )?;
                let mut leading = Vec::with_capacity(located.len());
                let mut missing = Vec::new();
                for key in located {
                    match key {
                        partition::KeyColumn::Projected(i) => leading.push(i),
                        partition::KeyColumn::Added(expr, name) => {
                            let physical = to_physical(&ctx, expr, df_schema)?;
                            let data_type = physical.data_type(df_schema.as_arrow())?;
                            leading.push(fields.len());
                            fields.push(Field::new(&name, data_type, true));
                            columns.push(OutputColumn { name, expr: physical });
                        }
                        partition::KeyColumn::Missing(text) => missing.push(text),
                    }
                }
                // ksqlDB's refusal names every expression once one is missing.
                if !missing.is_empty() {
                    missing = rewritten.partition_texts.clone();
                }
                // The key columns lead, in the clause's order; the others follow as projected.
                let order: Vec<usize> = leading.iter().copied().chain((0..fields.len()).filter(|i| !leading.contains(i))).collect();
                fields = order.iter().map(|i| fields[*i].clone()).collect();
                columns = order.iter().map(|i| columns[*i].clone()).collect();
                key_outputs = (0..order.len()).map(|i| i < leading.len()).collect();
                Some(PartitionBy { keys: leading.len(), missing })
            }
            None => None,
        };
        let is_table = source.is_table();
        // Header columns are written into the value: it is no longer the record's own.
        let forwards_value = rewritten.is_star && partition_by.is_none() && source.header_columns().next().is_none();
        Ok(ContinuousPlan {
            aggregation: aggregation.map(Arc::new),
            join,
            per_record_updates: false,
            idle_close: None,
            source,
            filter,
            projection: columns,
            output_schema: Arc::new(Schema::new(fields)),
            key_outputs,
            changelog: is_table,
            forwards_value,
            partition_by,
            explode,
            limit: select.limit,
            output_timestamp: None,
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
    // A source read under an alias (`FROM S A`): the query's columns are qualified by the alias.
    let mut aliased = None;
    loop {
        match input {
            LogicalPlan::Filter(f) if filter.is_none() => {
                filter = Some(f.predicate.clone());
                input = f.input.as_ref();
            }
            LogicalPlan::SubqueryAlias(alias) => {
                aliased.get_or_insert_with(|| alias.schema.clone());
                input = alias.input.as_ref();
            }
            LogicalPlan::Join(join) => {
                return Ok(PlanParts {
                    projection: projection.expr.clone(),
                    filter,
                    aggregate,
                    having,
                    scan_schema: join.schema.clone(),
                });
            }
            LogicalPlan::TableScan(scan) => {
                return Ok(PlanParts {
                    projection: projection.expr.clone(),
                    filter,
                    aggregate,
                    having,
                    scan_schema: aliased.unwrap_or_else(|| scan.projected_schema.clone()),
                });
            }
            other => return Err(unsupported(other)),
        }
    }
}

/// The runtime's view of `joins` over the joined row `joined`, with the output columns that are
/// the result's key: per key column, the first that projects a join expression equal to it
/// (`projected` holds each output column's source column, if it is one); none unless every key
/// column is projected.
fn plan_joins(
    ctx: &SessionContext,
    joins: join::Joins,
    joined: &DFSchema,
    fields: &[Field],
    projected: &[Option<(Option<String>, String)>],
    synthetic: &[String],
) -> Result<(JoinPlan, Vec<usize>)> {
    if let Some(at) = joins.staged_clause() {
        return Err(SluiceError::NotImplemented(format!(
            "joining {} after another join here: only CREATE STREAM|TABLE … AS SELECT runs the joins before it as a stage of their own",
            joins.clauses[at].right.source.name
        )));
    }
    let stream_width = field_position(joined, &joins.clauses[0].right.qualifier)?;
    let paired = joins.clauses[0].within.is_some() || joins.sides.iter().all(|s| s.source.is_table());
    let nullable = Schema::new(
        joined
            .as_arrow()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| f.as_ref().clone().with_nullable(f.is_nullable() || i >= stream_width || paired))
            .collect::<Vec<_>>(),
    );
    let mut steps = Vec::with_capacity(joins.clauses.len());
    let mut pair = None;
    for (i, clause) in joins.clauses.iter().enumerate() {
        let width = field_position(joined, &clause.right.qualifier)?;
        let end = match joins.clauses.get(i + 1) {
            Some(next) => field_position(joined, &next.right.qualifier)?,
            None => joined.fields().len(),
        };
        if i == 0 && paired {
            pair = Some(plan_pair_join(ctx, clause, joined, &nullable, width, end)?);
            continue;
        }
        steps.push(plan_join_step(ctx, clause, joined, &nullable, width, end)?);
    }
    let last = joins.clauses.last().ok_or_else(|| SluiceError::Internal("a join plan without a join".into()))?;
    let keys = match (steps.last(), &pair) {
        (Some(_), _) if last.is_composite() => {
            last.equalities().map(|(left, _)| physical(ctx, &structs::as_text(left), joined)).collect::<Result<Vec<_>>>()?
        }
        (Some(step), _) => step.stream_keys.clone(),
        (None, Some(pair)) => pair.keys.clone(),
        (None, None) => return Err(SluiceError::Internal("a join plan joins nothing".into())),
    };
    let reads = |output: &Option<(Option<String>, String)>, (qualifier, name): &(String, String)| {
        output.as_ref().is_some_and(|(q, n)| n == name && q.as_deref() == Some(qualifier.as_str()))
    };
    let parts = joins.key_parts();
    // Each part's first join expression the projection has is its key column, wherever it has
    // it.
    let part_keys: Vec<Option<usize>> =
        parts.iter().map(|candidates| candidates.iter().find_map(|c| projected.iter().position(|p| reads(p, c)))).collect();
    let key_aliases = parts
        .iter()
        .zip(&part_keys)
        .filter_map(|(candidates, key)| {
            let key = (*key)?;
            let candidate = candidates.iter().find(|c| reads(&projected[key], c))?;
            let mut names: Vec<String> =
                projected.iter().zip(fields).filter(|(p, _)| reads(p, candidate)).map(|(_, f)| f.name().clone()).collect();
            names.sort();
            Some(names)
        })
        .find(|names| names.len() > 1)
        .unwrap_or_default();
    if parts.iter().all(Vec::is_empty) {
        let key = fields.iter().position(|f| synthetic.contains(f.name()));
        let plan = JoinPlan {
            pair,
            steps,
            key_expressions: vec![joins.synthetic_key_name()],
            key_aliases: if synthetic.len() > 1 { synthetic.to_vec() } else { Vec::new() },
            synthetic_key: true,
            foreign_key_of: None,
            keys,
            key_names: Vec::new(),
        };
        return Ok((plan, key.into_iter().collect()));
    }
    let foreign_key_of = pair.as_ref().filter(|p| p.foreign).map(|_| joins.clauses[0].left.source.name.clone());
    // Every part must be projected for the key to be whole: the key columns are known only then.
    let projected_keys: Vec<usize> = part_keys.iter().copied().collect::<Option<_>>().unwrap_or_default();
    let key_names = match projected_keys.as_slice() {
        [_, _, ..] => projected_keys.iter().map(|k| fields[*k].name().clone()).collect(),
        _ => Vec::new(),
    };
    let key_expressions = match parts.as_slice() {
        [candidates] => candidates.iter().map(|(q, c)| format!("{q}.{c}")).collect(),
        _ => parts.iter().filter_map(|candidates| candidates.first()).map(|(q, c)| format!("{q}.{c}")).collect(),
    };
    let plan = JoinPlan {
        pair,
        steps,
        key_expressions,
        key_aliases,
        synthetic_key: false,
        foreign_key_of,
        keys,
        key_names,
    };
    Ok((plan, projected_keys))
}

/// Where the columns of the source qualified `qualifier` start in the joined row.
fn field_position(joined: &DFSchema, qualifier: &str) -> Result<usize> {
    joined
        .iter()
        .position(|(q, _)| q.is_some_and(|q| q.table() == qualifier))
        .ok_or_else(|| SluiceError::Internal(format!("the joined row has no columns of {qualifier}")))
}

/// The type of `expr` over `schema`, as ksqlDB names it.
fn sql_type(expr: &Arc<dyn PhysicalExpr>, schema: &DFSchema) -> Result<crate::catalog::types::SqlType> {
    crate::catalog::types::SqlType::from_arrow(&expr.data_type(schema.as_arrow())?)
}

/// `expr`, read over `schema`, as the runtime evaluates it.
fn physical(ctx: &SessionContext, expr: &str, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
    let logical = ctx.state().create_logical_expr(expr, schema).map_err(plan_error)?;
    to_physical(ctx, logical, schema)
}

/// `expr` over `schema` as the runtime evaluates it, simplified first as DataFusion's optimizer
/// simplifies every expression before it runs: some functions (`COALESCE`, `NVL`, …) only run
/// once rewritten so.
fn to_physical(ctx: &SessionContext, expr: Expr, schema: &DFSchema) -> Result<Arc<dyn PhysicalExpr>> {
    let context = SimplifyContext::builder().with_schema(Arc::new(schema.clone())).build();
    let simplified = ExprSimplifier::new(context).simplify(expr).map_err(plan_error)?;
    Ok(ctx.create_physical_expr(simplified, schema)?)
}

/// The first join of the query, of two streams within a window or of two tables, over the first
/// `end` columns of the joined row, the right source's starting at `width`.
fn plan_pair_join(
    ctx: &SessionContext,
    clause: &join::JoinClause,
    joined: &DFSchema,
    nullable: &Schema,
    width: usize,
    end: usize,
) -> Result<PairJoin> {
    let (mut left_keys, mut right_keys, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    let foreign = clause.foreign_key();
    for (left, right) in clause.equalities() {
        let (left_key, right_key) = (physical(ctx, &structs::as_text(left), joined)?, physical(ctx, &structs::as_text(right), joined)?);
        check_join_types((left, &sql_type(&left_key, joined)?), (right, &sql_type(&right_key, joined)?))?;
        left_keys.push(left_key);
        right_keys.push(right_key);
        keys.push(match clause.left_key_column().filter(|_| foreign) {
            Some(left_key) => physical(ctx, &left_key.to_string(), joined)?,
            None => physical(ctx, &format!("COALESCE({}, {})", structs::as_text(left), structs::as_text(right)), joined)?,
        });
    }
    // Windowed keys match only with their windows alike, as ksqlDB compares the keys' bytes.
    let window = match clause.left.source.window {
        Some(source_window) => {
            let bound = |side: &join::JoinSide, name: &str| format!("\"{}\".\"{name}\"", side.qualifier);
            for name in WINDOW_BOUNDS {
                left_keys.push(physical(ctx, &bound(&clause.left, name), joined)?);
                right_keys.push(physical(ctx, &bound(&clause.right, name), joined)?);
            }
            let either =
                |name: &str| physical(ctx, &format!("COALESCE({}, {})", bound(&clause.left, name), bound(&clause.right, name)), joined);
            Some(JoinWindow { start: either(WINDOW_BOUNDS[0])?, end: either(WINDOW_BOUNDS[1])?, session: source_window.session })
        }
        None => None,
    };
    Ok(PairJoin {
        right: clause.right.source.clone(),
        kind: clause.kind,
        within: clause.within,
        left_keys,
        right_keys,
        keys,
        schema: Arc::new(Schema::new(nullable.fields()[..end].to_vec())),
        left_width: width,
        keyed: clause.joins_both_keys(),
        foreign,
        window,
    })
}

/// ksqlDB's checks of an equality of a join's condition: both sides of one type, not holding a
/// map (a join expression is a key, the join repartitioning by it under the name ksqlDB gives a
/// column its source's name before it, `L_L0`).
fn check_join_types(
    (left, left_type): (&sqlparser::ast::Expr, &crate::catalog::types::SqlType),
    (right, right_type): (&sqlparser::ast::Expr, &crate::catalog::types::SqlType),
) -> Result<()> {
    if left_type == right_type && left_type.has_map() {
        let name = match left {
            sqlparser::ast::Expr::CompoundIdentifier(parts) => parts.iter().map(crate::parser::normalize_ident).collect::<Vec<_>>().join("_"),
            other => join::display(other),
        };
        return Err(crate::catalog::source::map_key_refused(&name, left_type));
    }
    if left_type == right_type {
        return Ok(());
    }
    Err(SluiceError::Plan(format!(
        "Invalid join condition: types don't match. Got {}{{{left_type}}} = {}{{{right_type}}}.",
        join::display(left),
        join::display(right)
    )))
}

/// One join over the first `end` columns of the joined row, the table's starting at `width`;
/// ksqlDB's check that both sides of the condition are of one type.
fn plan_join_step(
    ctx: &SessionContext,
    clause: &join::JoinClause,
    joined: &DFSchema,
    nullable: &Schema,
    width: usize,
    end: usize,
) -> Result<JoinStep> {
    let mut stream_keys = Vec::new();
    let key_columns: Vec<_> = clause.right.source.key_columns().collect();
    for ((left, right), key) in clause.equalities_by_right_key().into_iter().zip(&key_columns) {
        let stream_key = physical(ctx, &structs::as_text(left), joined)?;
        check_join_types((left, &sql_type(&stream_key, joined)?), (right, &key.data_type))?;
        stream_keys.push(stream_key);
    }
    if stream_keys.is_empty() {
        return Err(SluiceError::Internal("a table without a key column".into()));
    }
    Ok(JoinStep {
        table: clause.right.source.clone(),
        kind: clause.kind,
        stream_keys,
        schema: Arc::new(Schema::new(nullable.fields()[..end].to_vec())),
        stream_width: width,
        keyed_with: clause.joins_keys().then(|| clause.left.source.clone()),
    })
}

/// The physical grouping expressions, aggregate functions and `HAVING` of `aggregate`.
fn plan_aggregate(
    ctx: &SessionContext,
    aggregate: &datafusion::logical_expr::Aggregate,
    having: Option<&Expr>,
    scan_schema: &DFSchema,
    source: &SourceDef,
    window: Option<WindowPlan>,
) -> Result<AggregatePlan> {
    if source.is_table() && window.is_some() {
        return Err(SluiceError::Plan("Windowing not supported for table aggregations.".into()));
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
    for function in &aggregate.aggr_expr {
        if let Some(bound) = window_bound_read(function) {
            return Err(rewrite::window_bound_misplaced(bound));
        }
    }
    // The window's bounds, grouped by last, are the aggregation's to fill.
    let bounds = if window.is_some() { WINDOW_BOUNDS.len() } else { 0 };
    let group_by = aggregate.group_expr[..aggregate.group_expr.len() - bounds]
        .iter()
        .map(|e| to_physical(ctx, e.clone(), scan_schema))
        .collect::<Result<Vec<_>>>()?;
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
            // A function refuses its literal arguments (TOPK's k) when it makes its state: now,
            // not at the first record.
            lowered.aggregate.create_accumulator().map_err(|e| match e.find_root() {
                datafusion::error::DataFusionError::Plan(message) => SluiceError::Plan(message.clone()),
                _ => SluiceError::from(e),
            })?;
            Ok(lowered.aggregate)
        })
        .collect::<Result<Vec<_>>>()?;
    let having = having
        .map(|h| to_physical(ctx, h.clone(), aggregate.schema.as_ref()))
        .transpose()?;
    let source_key = if source.is_table() {
        check_table_aggregates(&aggregates)?;
        let key = source
            .key_columns()
            .map(|c| to_physical(ctx, Expr::Column(datafusion::common::Column::from_name(c.name.clone())), scan_schema))
            .collect::<Result<Vec<_>>>()?;
        Some(key)
    } else {
        None
    };
    Ok(AggregatePlan {
        group_outputs: vec![Vec::new(); group_by.len()],
        group_by,
        aggregates,
        having,
        schema: Arc::new(aggregate.schema.as_arrow().clone()),
        window,
        emit_final: false,
        source_key,
    })
}

/// The aggregate functions whose state can take a value back out in any order, which a table's
/// updates need: ksqlDB's table aggregation functions.
const TABLE_AGGREGATES: [&str; 10] =
    ["count", "sum", "avg", "collect_list", "histogram", "correlation", "stddev_samp", "stddev_sample", "sum_list", "attr"];

/// Refuses, in ksqlDB's words, aggregate functions a table's updates cannot retract from.
fn check_table_aggregates(aggregates: &[Arc<AggregateFunctionExpr>]) -> Result<()> {
    let mut refused: Vec<String> = Vec::new();
    for aggregate in aggregates {
        let name = aggregate.fun().name().to_ascii_uppercase();
        if !TABLE_AGGREGATES.contains(&aggregate.fun().name()) && !refused.contains(&name) {
            refused.push(name);
        }
    }
    let listed = match refused.as_slice() {
        [] => return Ok(()),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    };
    let plural = if refused.len() == 1 { "" } else { "s" };
    Err(SluiceError::Plan(format!("The aggregation function{plural} {listed} cannot be applied to a table source, only to a stream source.")))
}

/// The first window bound `expr` reads.
fn window_bound_read(expr: &Expr) -> Option<&'static str> {
    let mut found = None;
    let _ = expr.apply(|e| {
        if let Expr::Column(c) = e {
            found = WINDOW_BOUNDS.iter().copied().find(|b| *b == c.name);
            if found.is_some() {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

fn unsupported(plan: &LogicalPlan) -> SluiceError {
    SluiceError::NotImplemented(format!(
        "this kind of query ({}); Sluice runs projections, filters and aggregations over one stream or table, or a stream joined with tables",
        plan.display()
    ))
}

/// ksqlDB's words for a column no source has: `WHERE column 'BOB' cannot be resolved.` when the
/// `WHERE` clause names it, else `SELECT column …` when the projection does.
fn unresolved_column(query: &sqlparser::ast::Query, error: &datafusion::error::DataFusionError) -> Option<SluiceError> {
    use sqlparser::ast::SetExpr;
    let datafusion::error::DataFusionError::SchemaError(schema_error, _) = error.find_root() else { return None };
    let datafusion::common::SchemaError::FieldNotFound { field, .. } = schema_error.as_ref() else { return None };
    let SetExpr::Select(body) = query.body.as_ref() else { return None };
    let clause = if body.selection.as_ref().is_some_and(|w| names_column(w, &field.name)) {
        "WHERE"
    } else if names_column(&body.projection, &field.name) {
        "SELECT"
    } else {
        return None;
    };
    let column = match &field.relation {
        Some(relation) => format!("{}.{}", relation.table(), field.name),
        None => field.name.clone(),
    };
    Some(SluiceError::Plan(format!("{clause} column '{column}' cannot be resolved.")))
}

/// Whether `node` reads a column named `name`, qualified or not.
fn names_column<T: sqlparser::ast::Visit>(node: &T, name: &str) -> bool {
    use sqlparser::ast::Expr as Sql;
    sqlparser::ast::visit_expressions(node, |expr| {
        let last = match expr {
            Sql::Identifier(ident) => Some(ident),
            Sql::CompoundIdentifier(parts) => parts.last(),
            _ => None,
        };
        if last.is_some_and(|ident| ident.value.eq_ignore_ascii_case(name)) {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// ksqlDB's words for a projection that does not fit its `GROUP BY`: a grouping without any
/// aggregate function, or a column neither grouped nor aggregated.
fn grouping_error(ctx: &SessionContext, query: &sqlparser::ast::Query, error: &datafusion::error::DataFusionError) -> Option<SluiceError> {
    let message = error.strip_backtrace();
    if let Some(at) = message.find("Column in HAVING must be in GROUP BY or an aggregate function") {
        let column = message[at..].split('"').nth(1)?;
        let column = column.rsplit('.').next().unwrap_or(column);
        return Some(SluiceError::Plan(format!("Non-aggregate HAVING expression not part of GROUP BY: {column}")));
    }
    let at = message.find("Column in SELECT must be in GROUP BY or an aggregate function")?;
    let grouped = matches!(query.body.as_ref(), sqlparser::ast::SetExpr::Select(select)
        if !matches!(&select.group_by, sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty()));
    let mut aggregates = false;
    let _ = sqlparser::ast::visit_expressions(query, |expr| {
        if let sqlparser::ast::Expr::Function(function) = expr {
            aggregates |= datafusion::execution::FunctionRegistry::udaf(ctx, &function.name.to_string().to_ascii_lowercase()).is_ok();
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    if grouped && !aggregates {
        return Some(SluiceError::Plan("GROUP BY requires aggregate functions in either the SELECT or HAVING clause.".into()));
    }
    // The projection's expressions that read a column outside every grouping expression and
    // aggregate; else DataFusion's "… column \"S.ID\" must appear in the GROUP BY clause …".
    let ungrouped = ungrouped_projections(ctx, query);
    let listed = match ungrouped.is_empty() {
        true => {
            let column = message[at..].split('"').nth(1)?;
            column.rsplit('.').next().unwrap_or(column).to_string()
        }
        false => ungrouped.join(", "),
    };
    Some(SluiceError::Plan(format!(
        "Non-aggregate SELECT expression(s) not part of GROUP BY: {listed}\nEither add the column(s) to the GROUP BY or remove them from the SELECT."
    )))
}

/// The projected expressions of a grouped query that read a column other than through a
/// grouping expression or an aggregate function, as ksqlDB prints them (`(F1 - F2)`).
fn ungrouped_projections(ctx: &SessionContext, query: &sqlparser::ast::Query) -> Vec<String> {
    use sqlparser::ast::{Expr as Sql, GroupByExpr, SelectItem, SetExpr};
    let SetExpr::Select(select) = query.body.as_ref() else { return Vec::new() };
    let GroupByExpr::Expressions(groups, _) = &select.group_by else { return Vec::new() };
    let groups: Vec<String> = groups.iter().map(join::ksql_text).collect();
    let reads_ungrouped = |expr: &Sql| {
        // Bottom up, each grouping expression and aggregate call becomes a NULL: a column left
        // is read outside all of them.
        let mut rest = expr.clone();
        let _ = sqlparser::ast::visit_expressions_mut(&mut rest, |e| {
            let aggregate = matches!(e, Sql::Function(f)
                if datafusion::execution::FunctionRegistry::udaf(ctx, &f.name.to_string().to_ascii_lowercase()).is_ok());
            if aggregate || groups.contains(&join::ksql_text(e)) {
                *e = Sql::value(sqlparser::ast::Value::Null);
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
        sqlparser::ast::visit_expressions(&rest, |e| match e {
            Sql::Identifier(_) | Sql::CompoundIdentifier(_) => std::ops::ControlFlow::Break(()),
            _ => std::ops::ControlFlow::Continue(()),
        })
        .is_break()
    };
    select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => Some(expr),
            _ => None,
        })
        .filter(|expr| reads_ungrouped(expr))
        .map(join::ksql_text)
        .collect()
}

/// ksqlDB's refusal of the query's `WHERE` when it is not BOOLEAN.
async fn where_not_boolean(state: &datafusion::execution::SessionState, query: &sqlparser::ast::Query) -> Option<SluiceError> {
    let sqlparser::ast::SetExpr::Select(body) = query.body.as_ref() else { return None };
    let predicate = body.selection.as_ref()?;
    let (exprs, schema) = input::plan_over_input(state, query, std::slice::from_ref(predicate)).await.ok()?;
    type_check::where_not_boolean(exprs.first()?, &schema)
}

/// DataFusion's planning errors are the user's: say them without DataFusion's prefix.
fn plan_error(e: datafusion::error::DataFusionError) -> SluiceError {
    let message = e.strip_backtrace();
    let message = message
        .trim_start_matches("Error during planning: ")
        .trim_start_matches("Schema error: ");
    SluiceError::Plan(df_errors::ksql_text(message).unwrap_or_else(|| message.to_string()))
}
