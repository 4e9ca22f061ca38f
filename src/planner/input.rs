//! Expressions a query's clauses read over its input rather than its projection (`PARTITION
//! BY`'s keys, `EXPLODE`'s arrays), planned by DataFusion as a query of them alone over the
//! same `FROM`.

use std::sync::Arc;

use datafusion::{
    common::DFSchema,
    error::DataFusionError,
    execution::SessionState,
    logical_expr::Expr,
    sql::parser::Statement as DFStatement,
};
use sqlparser::ast::{self, GroupByExpr, Ident, Query, SelectItem, SetExpr};

use super::split_plan;

/// `exprs` planned over the input of `query` (its `FROM`, without its `WHERE`, grouping or
/// projection), and the schema they read. A planning failure is DataFusion's, for the caller
/// to word.
pub async fn plan_over_input(
    state: &SessionState,
    query: &Query,
    exprs: &[ast::Expr],
) -> Result<(Vec<Expr>, Arc<DFSchema>), DataFusionError> {
    let mut over_input = query.clone();
    if let SetExpr::Select(body) = over_input.body.as_mut() {
        body.projection = exprs
            .iter()
            .enumerate()
            .map(|(i, expr)| SelectItem::ExprWithAlias { expr: expr.clone(), alias: Ident::with_quote('"', format!("input {i}")) })
            .collect();
        body.selection = None;
        body.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
        body.having = None;
    }
    let statement = DFStatement::Statement(Box::new(ast::Statement::Query(Box::new(over_input))));
    let plan = state.statement_to_plan(statement).await?;
    let plan = state.analyzer().execute_and_check(plan, state.config_options(), |_, _| {})?;
    let parts = split_plan(&plan).map_err(|e| DataFusionError::Plan(e.to_string()))?;
    Ok((parts.projection.into_iter().map(Expr::unalias).collect(), parts.scan_schema))
}
