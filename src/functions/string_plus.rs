//! ksqlDB's `+` between two strings: their concatenation (DataFusion's `+` is arithmetic
//! only). Planned while the SQL is turned into expressions, where both sides' types are known.

use arrow::datatypes::DataType;
use datafusion::{
    common::{DFSchema, Result},
    logical_expr::{
        BinaryExpr, Expr, ExprSchemable, Operator,
        planner::{ExprPlanner, PlannerResult, RawBinaryExpr},
    },
    sql::sqlparser::ast::BinaryOperator,
};

#[derive(Debug)]
pub struct StringPlus;

fn is_text(expr: &Expr, schema: &DFSchema) -> bool {
    matches!(expr.get_type(schema), Ok(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View))
}

impl ExprPlanner for StringPlus {
    fn plan_binary_op(&self, expr: RawBinaryExpr, schema: &DFSchema) -> Result<PlannerResult<RawBinaryExpr>> {
        if expr.op == BinaryOperator::Plus && is_text(&expr.left, schema) && is_text(&expr.right, schema) {
            let concatenated = BinaryExpr::new(Box::new(expr.left), Operator::StringConcat, Box::new(expr.right));
            return Ok(PlannerResult::Planned(Expr::BinaryExpr(concatenated)));
        }
        Ok(PlannerResult::Original(expr))
    }
}
