//! ksqlDB's table function `EXPLODE(array)`: each input row becomes one row per element of
//! its array — with several calls, as many rows as the longest has elements, the shorter ones
//! NULL past their end. The planner reads each call as a column holding one element; the
//! runtime makes the rows ([`crate::runtime::explode`]).

use std::ops::ControlFlow;

use arrow::datatypes::{DataType, Field};
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectNamePart, Query, SetExpr, visit_expressions_mut};

use crate::{
    catalog::types::SqlType,
    error::{Result, SluiceError},
};

/// The name of the column the `n`th call's element is read from.
pub fn element_column(n: usize) -> String {
    format!("KSQL_EXPLODE_{n}")
}

/// Takes each `EXPLODE(array)` out of the projection of `query`, leaving a read of its element
/// column; the arrays, in order.
pub fn take_calls(query: &mut Query) -> Vec<Expr> {
    let mut arrays = Vec::new();
    let SetExpr::Select(body) = query.body.as_mut() else { return arrays };
    for item in body.projection.iter_mut() {
        let _ = visit_expressions_mut(item, |expr| {
            if let Some(array) = exploded(expr) {
                *expr = Expr::Identifier(Ident::with_quote('"', element_column(arrays.len())));
                arrays.push(array);
            }
            ControlFlow::<()>::Continue(())
        });
    }
    arrays
}

/// The array `expr` explodes, when it is a call of EXPLODE with one argument.
fn exploded(expr: &Expr) -> Option<Expr> {
    let Expr::Function(function) = expr else { return None };
    let name = function.name.0.last().and_then(ObjectNamePart::as_ident)?;
    if !name.value.eq_ignore_ascii_case("EXPLODE") {
        return None;
    }
    let FunctionArguments::List(list) = &function.args else { return None };
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] => Some(array.clone()),
        _ => None,
    }
}

/// The element column a call over an array of `array_type` makes, or ksqlDB's refusal of
/// another type.
pub fn element_field(n: usize, array_type: &DataType) -> Result<Field> {
    match array_type {
        DataType::List(element) | DataType::LargeList(element) => {
            Ok(Field::new(element_column(n), element.data_type().clone(), true))
        }
        other => {
            let shown = SqlType::from_arrow(other).map_or_else(|_| other.to_string(), |t| t.to_string());
            Err(SluiceError::Plan(format!(
                "Function 'explode' does not accept parameters ({shown}).\nValid alternatives are:\nexplode(ARRAY<DECIMAL> input)\nexplode(ARRAY<T> list)"
            )))
        }
    }
}
