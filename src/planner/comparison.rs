//! ksqlDB's comparisons: `=`, `<>`, `<`, `<=`, `>`, `>=` and `BETWEEN` are false, not NULL, when
//! an operand is NULL, so a projected comparison reads `false` and `NOT (a > b)` holds.
//!
//! Each comparison is read as `COALESCE(comparison, false)`, except where NULL and false already
//! mean the same: the comparisons a `WHERE` or `HAVING` joins with `AND` and `OR` at its top,
//! which stay as written so that DataFusion plans them as it would.

use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Value, visit_expressions_mut};

/// Every comparison in `expr` false when an operand is NULL.
pub fn false_on_null(expr: &mut Expr) {
    let _ = visit_expressions_mut(expr, |e: &mut Expr| {
        if is_comparison(e) {
            let comparison = std::mem::replace(e, Expr::Value(Value::Null.into()));
            *e = coalesce_false(comparison);
        }
        ControlFlow::<()>::Continue(())
    });
}

/// A filter's comparisons false when an operand is NULL, those at its top left as written.
pub fn filter_false_on_null(expr: &mut Expr) {
    false_on_null(expr);
    unwrap_top(expr);
}

fn is_comparison(expr: &Expr) -> bool {
    match expr {
        Expr::BinaryOp { op, .. } => matches!(
            op,
            BinaryOperator::Eq | BinaryOperator::NotEq | BinaryOperator::Lt | BinaryOperator::LtEq | BinaryOperator::Gt | BinaryOperator::GtEq
        ),
        Expr::Between { negated: false, .. } => true,
        _ => false,
    }
}

fn coalesce_false(comparison: Expr) -> Expr {
    let arg = |e: Expr| FunctionArg::Unnamed(FunctionArgExpr::Expr(e));
    super::structs::call("coalesce", vec![arg(comparison), arg(Expr::Value(Value::Boolean(false).into()))])
}

/// The comparison `coalesce_false` wrapped, if `expr` is such a wrapping.
fn wrapped(expr: &mut Expr) -> Option<&mut Expr> {
    let Expr::Function(Function { name, args: FunctionArguments::List(list), .. }) = expr else { return None };
    if !name.to_string().eq_ignore_ascii_case("coalesce") || list.args.len() != 2 {
        return None;
    }
    let is_false = matches!(&list.args[1], FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))) if v.value == Value::Boolean(false));
    match &mut list.args[0] {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(inner)) if is_false && is_comparison(inner) => Some(inner),
        _ => None,
    }
}

fn unwrap_top(expr: &mut Expr) {
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } => {
            unwrap_top(left);
            unwrap_top(right);
        }
        Expr::Nested(inner) => unwrap_top(inner),
        _ => {
            if let Some(inner) = wrapped(expr) {
                let comparison = std::mem::replace(inner, Expr::Value(Value::Null.into()));
                *expr = comparison;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlparser::{dialect::GenericDialect, parser::Parser};

    use super::*;

    fn expr(sql: &str) -> Expr {
        Parser::new(&GenericDialect {}).try_with_sql(sql).unwrap().parse_expr().unwrap()
    }

    #[test]
    fn projected_comparisons_are_false_on_null() {
        let mut e = expr("NOT (a > b) OR c BETWEEN 1 AND 2");
        false_on_null(&mut e);
        assert_eq!(e.to_string(), "NOT (coalesce(a > b, false)) OR coalesce(c BETWEEN 1 AND 2, false)");
    }

    #[test]
    fn a_filters_top_comparisons_stay_as_written() {
        let mut e = expr("a = '3' AND (b < 2 OR NOT c <> 1) AND (d = 1) = e");
        filter_false_on_null(&mut e);
        assert_eq!(e.to_string(), "a = '3' AND (b < 2 OR NOT coalesce(c <> 1, false)) AND (coalesce(d = 1, false)) = e");
    }
}
