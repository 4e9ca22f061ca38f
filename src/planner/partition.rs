//! `PARTITION BY` as ksqlDB plans it: each expression, read over the query's input, becomes a
//! key column of the result — the output column that projects it, or one added when the
//! projection is a `*` — and the key columns lead the result in the clause's order.

use std::ops::ControlFlow;

use datafusion::{common::SchemaError, error::DataFusionError, execution::SessionState, logical_expr::Expr};
use sqlparser::ast::{self, Ident, Query, SelectItem, SetExpr, visit_expressions_mut};

use super::plan_error;
use crate::{
    error::{Result, SluiceError},
    parser::normalize_ident,
};

/// `PARTITION BY` in a plan: the records' new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionBy {
    /// How many output columns, from the first, make the key; none for `PARTITION BY NULL`,
    /// whose records have no key.
    pub keys: usize,
    /// The expressions the projection lacks, as ksqlDB writes them: a query that writes its
    /// rows to a topic must project every one.
    pub missing: Vec<String>,
}

/// `PARTITION BY NULL`: the records lose their key.
fn is_null(expr: &ast::Expr) -> bool {
    matches!(expr, ast::Expr::Value(v) if v.value == ast::Value::Null)
}

/// The key expressions of `PARTITION BY keys` over the input of `query` (its `FROM`), as
/// DataFusion plans them; empty for `PARTITION BY NULL`.
pub async fn plan_keys(state: &SessionState, query: &Query, keys: &[ast::Expr]) -> Result<Vec<Expr>> {
    if let [only] = keys
        && is_null(only)
    {
        return Ok(Vec::new());
    }
    if keys.iter().any(is_null) {
        return Err(SluiceError::Plan("Cannot PARTITION BY multiple columns including NULL".into()));
    }
    let aliases: Vec<String> = match query.body.as_ref() {
        SetExpr::Select(body) => body
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::ExprWithAlias { alias, .. } => Some(normalize_ident(alias)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let unresolved = |e: DataFusionError| {
        let unknown = match e.find_root() {
            DataFusionError::SchemaError(error, _) => match error.as_ref() {
                SchemaError::FieldNotFound { field, .. } => Some(field.name().to_string()),
                _ => None,
            },
            _ => None,
        };
        let Some(name) = unknown else { return plan_error(e) };
        let hint = if aliases.contains(&name) {
            format!(" '{name}' must be a column in the source schema since PARTITION BY is applied on the input.")
        } else {
            String::new()
        };
        SluiceError::Plan(format!("PARTITION BY column '{name}' cannot be resolved.{hint}"))
    };
    Ok(super::input::plan_over_input(state, query, keys).await.map_err(unresolved)?.0)
}

/// `expr` as ksqlDB writes an expression in its messages: columns qualified by their source,
/// function names upper-cased, arithmetic in parentheses (`ABS(INPUT.ID)`, `(INPUT.AGE + 2)`).
pub fn ksql_text(expr: &ast::Expr, source: &str) -> String {
    let mut expr = expr.clone();
    let _ = visit_expressions_mut(&mut expr, |e| {
        match e {
            ast::Expr::Identifier(ident) => {
                *e = ast::Expr::CompoundIdentifier(vec![Ident::new(source), Ident::new(normalize_ident(ident))]);
            }
            ast::Expr::CompoundIdentifier(parts) => {
                for part in parts.iter_mut() {
                    *part = Ident::new(normalize_ident(part));
                }
            }
            ast::Expr::Function(function) => {
                for part in function.name.0.iter_mut() {
                    if let ast::ObjectNamePart::Identifier(ident) = part {
                        *ident = Ident::new(ident.value.to_uppercase());
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_expressions_mut(&mut expr, |e| {
        if matches!(e, ast::Expr::BinaryOp { .. }) {
            *e = ast::Expr::Nested(Box::new(e.clone()));
        }
        ControlFlow::<()>::Continue(())
    });
    expr.to_string()
}

/// Where a key column of the result comes from.
#[derive(Debug)]
pub enum KeyColumn {
    /// The output column at this index projects the key's expression.
    Projected(usize),
    /// The projection is a `*` without it: a column of this name is added.
    Added(Expr, String),
    /// The projection lacks it; its expression as ksqlDB writes it.
    Missing(String),
}

/// The output column of each key expression in `keys`, given each output column's expression
/// and name (`outputs`). `names` holds the name each key takes when added, `texts` each key
/// as ksqlDB writes it; a key projected more than once is refused in ksqlDB's words.
pub fn locate_keys(keys: Vec<Expr>, outputs: &[(Expr, String)], names: &[String], texts: &[String], has_star: bool) -> Result<Vec<KeyColumn>> {
    keys.into_iter()
        .enumerate()
        .map(|(i, key)| {
            let projected: Vec<usize> = outputs.iter().enumerate().filter(|(_, (e, _))| *e == key).map(|(j, _)| j).collect();
            match projected.as_slice() {
                [one] => Ok(KeyColumn::Projected(*one)),
                [] if has_star => Ok(KeyColumn::Added(key, names[i].clone())),
                [] => Ok(KeyColumn::Missing(texts[i].clone())),
                several => {
                    let aliases: Vec<&str> = several.iter().map(|j| outputs[*j].1.as_str()).collect();
                    Err(SluiceError::Plan(format!(
                        "The projection contains a key column (`{}`) more than once, aliased as: {}.",
                        names[i],
                        aliases.join(" and ")
                    )))
                }
            }
        })
        .collect()
}
