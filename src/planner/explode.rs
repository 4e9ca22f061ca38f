//! ksqlDB's table functions: `EXPLODE(array)`, each input row becoming one row per element of
//! its array — with several calls, as many rows as the longest has elements, the shorter ones
//! NULL past their end — and `CUBE_EXPLODE(array)`, one row per combination of the array's
//! elements kept or NULL. The planner reads each call as a column holding one element; the
//! runtime makes the rows ([`crate::runtime::explode`]).

use std::ops::ControlFlow;

use arrow::datatypes::{DataType, Field};
use sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectNamePart, Query, SetExpr, visit_expressions_mut};

use crate::{
    catalog::types::SqlType,
    error::{Result, SluiceError},
};

/// Which table function a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFunction {
    /// One row per element.
    Explode,
    /// One row per combination of elements kept (others NULL), as ksqlDB's CUBE_EXPLODE: the
    /// first element varies slowest, and a NULL element is not varied.
    Cube,
}

/// The name of the column the `n`th call's element is read from.
pub fn element_column(n: usize) -> String {
    format!("KSQL_EXPLODE_{n}")
}

/// Takes each table function call out of the projection of `query`, leaving a read of its
/// element column; the calls' functions and arrays, in order.
pub fn take_calls(query: &mut Query) -> Vec<(TableFunction, Expr)> {
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

/// The table function `expr` calls and its array, when it is a call of one with one argument.
fn exploded(expr: &Expr) -> Option<(TableFunction, Expr)> {
    let Expr::Function(function) = expr else { return None };
    let name = function.name.0.last().and_then(ObjectNamePart::as_ident)?;
    let kind = match name.value.to_ascii_uppercase().as_str() {
        "EXPLODE" => TableFunction::Explode,
        "CUBE_EXPLODE" => TableFunction::Cube,
        _ => return None,
    };
    let FunctionArguments::List(list) = &function.args else { return None };
    match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(array))] => Some((kind, array.clone())),
        _ => None,
    }
}

/// The element column the `n`th call, of `function` over an array of `array_type`, makes; or
/// ksqlDB's refusal of another type.
pub fn element_field(n: usize, function: TableFunction, array_type: &DataType) -> Result<Field> {
    match (function, array_type) {
        (TableFunction::Explode, DataType::List(element)) => Ok(Field::new(element_column(n), element.data_type().clone(), true)),
        (TableFunction::Cube, DataType::List(_)) => Ok(Field::new(element_column(n), array_type.clone(), true)),
        (function, other) => {
            let shown = SqlType::name_of(other);
            let (name, alternatives) = match function {
                TableFunction::Explode => ("explode", "explode(ARRAY<DECIMAL> input)\nexplode(ARRAY<T> list)"),
                TableFunction::Cube => ("cube_explode", "cube_explode(ARRAY<T> columns)"),
            };
            Err(SluiceError::Plan(format!(
                "Function '{name}' does not accept parameters ({shown}).\nValid alternatives are:\n{alternatives}"
            )))
        }
    }
}
