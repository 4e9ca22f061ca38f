//! ksqlDB's type checks that DataFusion would answer otherwise: a comparison of types ksqlDB
//! cannot compare (a number with a string, booleans or collections by order, …) is refused
//! where DataFusion would cast one side, and a `WHERE` or `HAVING` that is not BOOLEAN is refused
//! in ksqlDB's words, each naming the expressions as ksqlDB prints them.

use datafusion::{
    common::{
        DFSchema, ScalarValue,
        tree_node::{TreeNode, TreeNodeRecursion},
    },
    logical_expr::{Aggregate, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator},
};

use crate::{
    catalog::types::SqlType,
    error::{Result, SluiceError},
};

/// Checks the comparisons and filters of a plan as DataFusion's SQL planner made it, before
/// its types are coerced.
pub fn check(plan: &LogicalPlan) -> Result<()> {
    let joined = plan.exists(|node| Ok(matches!(node, LogicalPlan::Join(_)))).unwrap_or(false);
    let mut failure = None;
    let mut outermost = true;
    let _ = plan.apply(|node| {
        // A projected column typed NULL is refused once its expressions pass their own checks.
        if let LogicalPlan::Projection(projection) = node
            && std::mem::take(&mut outermost)
            && projection.expr.iter().all(|e| check_comparisons(e, projection.input.schema(), &Printer { joined, aggregate: None }).is_ok())
            && let Err(refusal) = check_projected_types(&projection.expr, projection.input.schema())
        {
            failure = Some(refusal);
            return Ok(TreeNodeRecursion::Stop);
        }
        let outcome = match node {
            LogicalPlan::Filter(filter) => {
                let (clause, aggregate) = match filter.input.as_ref() {
                    LogicalPlan::Aggregate(aggregate) => ("HAVING", Some(aggregate)),
                    _ => ("WHERE", None),
                };
                let printer = Printer { joined, aggregate };
                check_filter(clause, &filter.predicate, filter.input.schema(), &printer).map_err(SluiceError::Plan)
            }
            LogicalPlan::Projection(projection) => {
                let aggregate = match projection.input.as_ref() {
                    LogicalPlan::Aggregate(aggregate) => Some(aggregate),
                    _ => None,
                };
                let printer = Printer { joined, aggregate };
                projection
                    .expr
                    .iter()
                    .try_for_each(|e| check_comparisons(e, projection.input.schema(), &printer))
                    .map_err(SluiceError::Plan)
            }
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => Ok(TreeNodeRecursion::Continue),
            Err(error) => {
                failure = Some(error);
                Ok(TreeNodeRecursion::Stop)
            }
        }
    });
    failure.map_or(Ok(()), Err)
}

/// A filter's refusal, naming its clause (`WHERE` or `HAVING`) as ksqlDB does.
fn check_filter(clause: &str, predicate: &Expr, schema: &DFSchema, printer: &Printer) -> std::result::Result<(), String> {
    // ksqlDB's REST answer names the whole filter after the reason, as its `Statement`.
    check_comparisons(predicate, schema, printer)
        .map_err(|message| format!("Error in {clause} expression: {message}\nStatement: {}", printer.text(predicate)))?;
    match type_of(predicate, schema) {
        Some(SqlType::Boolean) | None => Ok(()),
        Some(other) => Err(format!(
            "Type error in {clause} expression: Should evaluate to boolean but is {} ({other}) instead.",
            printer.text(predicate)
        )),
    }
}

/// ksqlDB's refusal of a `WHERE` whose expression, planned over the query's input, is not
/// BOOLEAN (DataFusion refuses such a filter before its types can be checked).
pub fn where_not_boolean(predicate: &Expr, schema: &DFSchema) -> Option<SluiceError> {
    check_filter("WHERE", predicate, schema, &Printer { joined: false, aggregate: None }).err().map(SluiceError::Plan)
}

/// The first comparison in `expr` of types ksqlDB cannot compare, or with a bare `NULL`, or
/// arithmetic on a bare `NULL`, or a `CASE` all of whose results are bare `NULL`s (ksqlDB types
/// a `NULL` literal nothing: it must be cast).
fn check_comparisons(expr: &Expr, schema: &DFSchema, printer: &Printer) -> std::result::Result<(), String> {
    let mut failure = None;
    let _ = expr.apply(|e| {
        if let Expr::Case(case) = e
            && case.when_then_expr.iter().all(|(_, then)| is_null(then, schema))
            && case.else_expr.as_ref().is_none_or(|otherwise| is_null(otherwise, schema))
        {
            failure = Some("Invalid Case expression. All case branches have NULL type".to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e else { return Ok(TreeNodeRecursion::Continue) };
        let refusal = if let Some(name) = comparison_name(*op) {
            match (type_of(left, schema), type_of(right, schema)) {
                (Some(l), Some(r)) if !comparable(&l, *op, &r) => {
                    Some(format!("Cannot compare {} ({l}) to {} ({r}) with {name}.", printer.text(left), printer.text(right)))
                }
                (l, r) if is_null(left, schema) || is_null(right, schema) => Some(format!(
                    "Comparison with NULL not supported: {} {} {}\nUse 'IS NULL' or 'IS NOT NULL' instead.",
                    l.as_ref().map_or("NULL", base_type),
                    symbol(*op),
                    r.as_ref().map_or("NULL", base_type)
                )),
                _ => None,
            }
        } else if is_arithmetic(*op) && (is_null(left, schema) || is_null(right, schema)) {
            let name = |side: &Expr| type_of(side, schema).map_or("null".to_string(), |t| t.to_string());
            Some(format!(
                "Error processing expression: {}. Arithmetic on types {} and {} are not supported.",
                printer.text(e),
                name(left),
                name(right)
            ))
        } else {
            None
        };
        match refusal {
            Some(refusal) => {
                failure = Some(refusal);
                Ok(TreeNodeRecursion::Stop)
            }
            None => Ok(TreeNodeRecursion::Continue),
        }
    });
    failure.map_or(Ok(()), Err)
}

/// Whether `expr` is typed NULL: a `NULL` literal no cast gave a type.
fn is_null(expr: &Expr, schema: &DFSchema) -> bool {
    expr.get_type(schema).is_ok_and(|t| t == arrow::datatypes::DataType::Null)
}

/// An operator as ksqlDB prints it.
fn symbol(op: Operator) -> String {
    match op {
        Operator::NotEq => "<>".into(),
        Operator::IsDistinctFrom => "IS DISTINCT FROM".into(),
        Operator::IsNotDistinctFrom => "IS NOT DISTINCT FROM".into(),
        other => other.to_string(),
    }
}

fn is_arithmetic(op: Operator) -> bool {
    matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo)
}

/// ksqlDB's base type name of `data_type` (`DECIMAL` without its precision, `ARRAY` without its
/// element type).
fn base_type(data_type: &SqlType) -> &'static str {
    match data_type {
        SqlType::Boolean => "BOOLEAN",
        SqlType::Integer => "INTEGER",
        SqlType::Bigint => "BIGINT",
        SqlType::Double => "DOUBLE",
        SqlType::Decimal { .. } => "DECIMAL",
        SqlType::String => "STRING",
        SqlType::Bytes => "BYTES",
        SqlType::Timestamp => "TIMESTAMP",
        SqlType::Date => "DATE",
        SqlType::Time => "TIME",
        SqlType::Array(_) => "ARRAY",
        SqlType::Map(_) => "MAP",
        SqlType::Struct(_) => "STRUCT",
    }
}

/// ksqlDB's refusal of a projected column typed NULL (a bare `NULL` selected).
fn check_projected_types(exprs: &[Expr], schema: &DFSchema) -> Result<()> {
    match exprs.iter().any(|e| is_null(e, schema)) {
        true => Err(SluiceError::Plan(
            "Can't infer a type of null. Please explicitly cast it to a required type, e.g. CAST(null AS VARCHAR).".into(),
        )),
        false => Ok(()),
    }
}

/// The type of `expr`, unless it is NULL or DataFusion cannot tell it yet.
fn type_of(expr: &Expr, schema: &DFSchema) -> Option<SqlType> {
    let data_type = expr.get_type(schema).ok()?;
    if data_type == arrow::datatypes::DataType::Null {
        return None;
    }
    SqlType::from_arrow(&data_type).ok()
}

/// ksqlDB's operator names.
fn comparison_name(op: Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "EQUAL",
        Operator::NotEq => "NOT_EQUAL",
        Operator::Lt => "LESS_THAN",
        Operator::LtEq => "LESS_THAN_OR_EQUAL",
        Operator::Gt => "GREATER_THAN",
        Operator::GtEq => "GREATER_THAN_OR_EQUAL",
        Operator::IsDistinctFrom => "IS_DISTINCT_FROM",
        Operator::IsNotDistinctFrom => "IS_NOT_DISTINCT_FROM",
        _ => return None,
    })
}

/// ksqlDB's `ComparisonUtil`: what each type compares with, collections and booleans only for
/// equality.
fn comparable(left: &SqlType, op: Operator, right: &SqlType) -> bool {
    let equality = matches!(op, Operator::Eq | Operator::NotEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom);
    let is_number = |t: &SqlType| matches!(t, SqlType::Integer | SqlType::Bigint | SqlType::Double | SqlType::Decimal { .. });
    let is_time = |t: &SqlType| matches!(t, SqlType::Timestamp | SqlType::Date | SqlType::Time);
    match left {
        l if is_number(l) => is_number(right),
        SqlType::String => matches!(right, SqlType::String) || is_time(right),
        SqlType::Boolean => matches!(right, SqlType::Boolean) && equality,
        SqlType::Array(_) => matches!(right, SqlType::Array(_)) && equality,
        SqlType::Map(_) => matches!(right, SqlType::Map(_)) && equality,
        SqlType::Struct(_) => matches!(right, SqlType::Struct(_)) && equality,
        SqlType::Time => matches!(right, SqlType::Time | SqlType::String),
        SqlType::Date | SqlType::Timestamp => matches!(right, SqlType::Date | SqlType::Timestamp | SqlType::String),
        SqlType::Bytes => matches!(right, SqlType::Bytes),
        _ => true,
    }
}

/// The text of a decimal number an `IN` list's parser wrote as `CAST('10.30' AS DECIMAL(4, 2))`.
pub fn decimal_literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Cast(cast) if matches!(cast.field.data_type(), arrow::datatypes::DataType::Decimal128(..)) => match cast.expr.as_ref() {
            Expr::Literal(ScalarValue::Utf8(Some(text)), _) => Some(text),
            _ => None,
        },
        _ => None,
    }
}

/// `expr` as ksqlDB's messages print it, over a query without joins or aggregates.
pub fn printed(expr: &Expr) -> String {
    Printer { joined: false, aggregate: None }.text(expr)
}

/// Prints expressions as ksqlDB's messages do: bare column names (`SIDE_NAME` over a join),
/// quoted strings, upper-case function names, parenthesised operations, and an aggregate's
/// result as its call.
struct Printer<'a> {
    joined: bool,
    aggregate: Option<&'a Aggregate>,
}

impl Printer<'_> {
    fn text(&self, expr: &Expr) -> String {
        if let Some(text) = decimal_literal(expr) {
            return text.to_string();
        }
        match expr {
            Expr::Column(column) => {
                if let Some(computed) = self.aggregate.and_then(|a| {
                    let i = a.schema.index_of_column(column).ok()?;
                    a.group_expr.iter().chain(&a.aggr_expr).nth(i)
                }) {
                    return Printer { joined: self.joined, aggregate: None }.text(computed);
                }
                match &column.relation {
                    Some(relation) if self.joined => format!("{}_{}", relation.table(), column.name),
                    _ => column.name.clone(),
                }
            }
            Expr::Literal(value, _) => literal(value),
            Expr::Alias(alias) => self.text(&alias.expr),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => format!("({} {} {})", self.text(left), symbol(*op), self.text(right)),
            Expr::Not(inner) => format!("(NOT {})", self.text(inner)),
            Expr::Negative(inner) => format!("-{}", self.text(inner)),
            Expr::ScalarFunction(call) => match call.name() {
                "make_array" => format!("ARRAY[{}]", self.list(&call.args)),
                "named_struct" => {
                    let fields: Vec<String> = call
                        .args
                        .chunks(2)
                        .map(|pair| {
                            let name = match &pair[0] {
                                Expr::Literal(ScalarValue::Utf8(Some(name)), _) => field_name(name),
                                other => self.text(other),
                            };
                            format!("{name}:={}", pair.get(1).map(|v| self.text(v)).unwrap_or_default())
                        })
                        .collect();
                    format!("STRUCT({})", fields.join(", "))
                }
                "map" => match call.args.as_slice() {
                    [Expr::ScalarFunction(keys), Expr::ScalarFunction(values)] if keys.name() == "make_array" && values.name() == "make_array" => {
                        let entries: Vec<String> = keys
                            .args
                            .iter()
                            .zip(&values.args)
                            .map(|(key, value)| {
                                let key = match key {
                                    Expr::Cast(cast) => cast.expr.as_ref(),
                                    other => other,
                                };
                                format!("{}:={}", self.text(key), self.text(value))
                            })
                            .collect();
                        format!("MAP({})", entries.join(", "))
                    }
                    args => format!("MAP({})", self.list(args)),
                },
                name => format!("{}({})", name.to_uppercase(), self.list(&call.args)),
            },
            Expr::AggregateFunction(call) if call.params.args.is_empty() => format!("{}(*)", call.func.name().to_uppercase()),
            Expr::AggregateFunction(call) => match call.params.args.as_slice() {
                [Expr::Literal(..)] if call.func.name() == "count" => "COUNT(*)".to_string(),
                args => format!("{}({})", call.func.name().to_uppercase(), self.list(args)),
            },
            // An integer literal typed INTEGER, as ksqlDB types one that fits, prints bare.
            Expr::Cast(cast) if matches!(cast.expr.as_ref(), Expr::Literal(ScalarValue::Int64(Some(_)), _)) && cast.field.data_type() == &arrow::datatypes::DataType::Int32 => {
                self.text(&cast.expr)
            }
            Expr::Cast(cast) => match SqlType::from_arrow(cast.field.data_type()) {
                Ok(to) => format!("CAST({} AS {to})", self.text(&cast.expr)),
                Err(_) => expr.to_string(),
            },
            other => other.to_string(),
        }
    }

    fn list(&self, args: &[Expr]) -> String {
        args.iter().map(|a| self.text(a)).collect::<Vec<_>>().join(", ")
    }
}

/// A struct field's name as ksqlDB prints it: quoted unless upper case.
fn field_name(name: &str) -> String {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if plain { name.to_string() } else { format!("`{name}`") }
}

fn literal(value: &ScalarValue) -> String {
    if value.is_null() {
        return "null".into();
    }
    match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_compare_as_ksqldbs_comparison_util_allows() {
        let array = SqlType::Array(Box::new(SqlType::String));
        assert!(comparable(&SqlType::Integer, Operator::Lt, &SqlType::Decimal { precision: 4, scale: 2 }));
        assert!(!comparable(&SqlType::Integer, Operator::GtEq, &SqlType::String));
        assert!(comparable(&SqlType::String, Operator::Gt, &SqlType::Timestamp));
        assert!(comparable(&SqlType::Date, Operator::Lt, &SqlType::String));
        assert!(!comparable(&SqlType::Time, Operator::Lt, &SqlType::Date));
        assert!(comparable(&SqlType::Boolean, Operator::Eq, &SqlType::Boolean));
        assert!(!comparable(&SqlType::Boolean, Operator::Lt, &SqlType::Boolean));
        assert!(comparable(&array, Operator::NotEq, &array));
        assert!(!comparable(&array, Operator::Gt, &array));
        assert!(!comparable(&SqlType::Bytes, Operator::Eq, &SqlType::String));
    }
}
