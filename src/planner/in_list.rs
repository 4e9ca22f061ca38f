//! ksqlDB's `IN` lists: the value and the list's items brought to one type in order, as
//! ksqlDB's `CoercionUtil.coerceUserList` brings them — literals converted (`'TrUe'` read as a
//! BOOLEAN, `'10'` as a number, `10` as a STRING), other expressions cast, structs widened to
//! every field either side names — and refused in ksqlDB's words when no common type exists.
//!
//! DataFusion would cast one side at run time instead, or fail with a type-coercion error.

use datafusion::{
    common::{
        DFSchema, DataFusionError, ScalarValue,
        tree_node::{Transformed, TreeNode},
    },
    logical_expr::{Cast, Expr, ExprSchemable, LogicalPlan, expr::InList, lit},
};
use sqlparser::ast::{self as ast, CastKind, ExactNumberInfo, UnaryOperator};

use super::{cast, type_check};
use crate::{catalog::types::SqlType, java_number};

/// Each `IN` list of the plan's filters and projections brought to one type.
pub fn coerce(plan: LogicalPlan) -> datafusion::common::Result<LogicalPlan> {
    plan.transform_up(|node| {
        let clause = match &node {
            LogicalPlan::Filter(_) => "Predicate",
            LogicalPlan::Projection(_) => "Select",
            _ => return Ok(Transformed::no(node)),
        };
        let schema = node.inputs()[0].schema().clone();
        let projection = matches!(node, LogicalPlan::Projection(_));
        node.map_expressions(|expr| {
            let name = expr.schema_name().to_string();
            let rewritten = expr.transform_up(|e| match e {
                Expr::InList(in_list) => match coerce_list(&in_list, &schema) {
                    Ok(Some(coerced)) => Ok(Transformed::yes(coerced)),
                    Ok(None) => Ok(Transformed::no(Expr::InList(in_list))),
                    Err(refusal) => Err(DataFusionError::Plan(format!("Invalid {clause}: {}", refusal.message()))),
                },
                other => Ok(Transformed::no(other)),
            })?;
            if projection && rewritten.transformed { rewritten.map_data(|e| e.alias_if_changed(name)) } else { Ok(rewritten) }
        })
    })
    .map(|t| t.data)
}

/// A decimal number written in an `IN` list, `10.30`, as the DECIMAL literal ksqlDB reads it:
/// `CAST('10.30' AS DECIMAL(4, 2))`, which keeps its scale where DataFusion would read a DOUBLE.
pub fn decimal_literals(expr: &mut ast::Expr) {
    let ast::Expr::InList { list, .. } = expr else { return };
    for item in list {
        let text = match item {
            ast::Expr::Value(value) => match &value.value {
                ast::Value::Number(n, _) => n.clone(),
                _ => continue,
            },
            ast::Expr::UnaryOp { op: UnaryOperator::Minus, expr: inner } => match inner.as_ref() {
                ast::Expr::Value(value) => match &value.value {
                    ast::Value::Number(n, _) => format!("-{n}"),
                    _ => continue,
                },
                _ => continue,
            },
            _ => continue,
        };
        if !text.contains('.') || text.contains(['e', 'E']) {
            continue;
        }
        let Some(SqlType::Decimal { precision, scale }) = string_number_type(&text) else { continue };
        *item = ast::Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(ast::Expr::Value(ast::Value::SingleQuotedString(text).into())),
            data_type: ast::DataType::Decimal(ExactNumberInfo::PrecisionAndScale(precision.into(), scale.into())),
            array: false,
            format: None,
        };
    }
}

/// Why a list has no common type: a string literal that is not a value of the type, or two
/// types that do not coerce.
#[derive(Debug, PartialEq)]
enum Refusal {
    Syntax(String),
    Coercion(String),
}

impl Refusal {
    fn message(&self) -> &str {
        match self {
            Refusal::Syntax(m) | Refusal::Coercion(m) => m,
        }
    }
}

/// `in_list` with its value and items of one type, `None` when nothing changes or when a type
/// is one ksqlDB has no coercion for (left to DataFusion).
fn coerce_list(in_list: &InList, schema: &DFSchema) -> Result<Option<Expr>, Refusal> {
    let items: Vec<&Expr> = std::iter::once(in_list.expr.as_ref()).chain(in_list.list.iter().filter(|e| !is_null(e))).collect();
    if items.iter().any(|e| !typeable(e, schema)) {
        return Ok(None);
    }
    let typer = Typer { schema };
    let mut common = None;
    for item in &items {
        common = typer.with(item, common)?;
    }
    let Some(common) = common else { return Ok(None) };
    // A type the SQL types do not tell apart from the common one (an INTEGER literal DataFusion
    // reads as BIGINT, say) is left as it is.
    let target = common.to_arrow();
    let mut changed = false;
    let mut converted = Vec::with_capacity(items.len());
    for item in items {
        if item.get_type(schema).is_ok_and(|t| t == target || SqlType::from_arrow(&t).is_ok_and(|t| t == common)) {
            converted.push(item.clone());
            continue;
        }
        changed = true;
        converted.push(match Literal::of(item) {
            Some(literal) => literal.converted(&common)?,
            None => cast_to(item.clone(), &common),
        });
    }
    if !changed {
        return Ok(None);
    }
    let mut converted = converted.into_iter();
    let value = converted.next().expect("the value is the first item");
    Ok(Some(Expr::InList(InList::new(Box::new(value), converted.collect(), in_list.negated))))
}

/// Whether ksqlDB's coercion can type `expr`: every type Sluice has, and DataFusion's NULL.
fn typeable(expr: &Expr, schema: &DFSchema) -> bool {
    expr.get_type(schema).is_ok_and(|t| t == arrow::datatypes::DataType::Null || SqlType::from_arrow(&t).is_ok())
}

fn is_null(expr: &Expr) -> bool {
    matches!(expr, Expr::Literal(value, _) if value.is_null())
}

/// `expr` cast to `to`: a nested type through ksqlDB's cast (struct fields by name).
fn cast_to(expr: Expr, to: &SqlType) -> Expr {
    match to {
        SqlType::Array(_) | SqlType::Map(_) | SqlType::Struct(_) => cast::udf().call(vec![expr, lit(to.to_string())]),
        _ => Expr::Cast(Cast::new(Box::new(expr), to.to_arrow())),
    }
}

/// The constructors ksqlDB coerces element by element, as DataFusion plans them.
enum Constructor<'a> {
    Array(Vec<&'a Expr>),
    Map(Vec<&'a Expr>),
    Struct(Vec<(String, &'a Expr)>),
}

impl<'a> Constructor<'a> {
    fn of(expr: &'a Expr) -> Option<Self> {
        let Expr::ScalarFunction(call) = expr else { return None };
        match call.name() {
            "make_array" => Some(Constructor::Array(call.args.iter().collect())),
            // DataFusion plans `make_map(k, v, …)` as `map(make_array(k, …), make_array(v, …))`.
            "map" => match call.args.as_slice() {
                [_, Expr::ScalarFunction(values)] if values.name() == "make_array" => Some(Constructor::Map(values.args.iter().collect())),
                _ => None,
            },
            "named_struct" => call
                .args
                .chunks(2)
                .map(|pair| match pair {
                    [Expr::Literal(ScalarValue::Utf8(Some(name)), _), value] => Some((name.clone(), value)),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
                .map(Constructor::Struct),
            _ => None,
        }
    }
}

/// A literal as ksqlDB types it: `10` an INTEGER, `10.30` a DECIMAL(4, 2), `1e3` a DOUBLE.
enum Literal<'a> {
    String(&'a str),
    Boolean(bool),
    Integer(i64),
    Double(f64),
    Decimal(&'a str),
}

impl<'a> Literal<'a> {
    fn of(expr: &'a Expr) -> Option<Self> {
        match expr {
            Expr::Literal(value, _) => match value {
                ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => Some(Literal::String(s)),
                ScalarValue::Boolean(Some(b)) => Some(Literal::Boolean(*b)),
                ScalarValue::Int32(Some(v)) => Some(Literal::Integer((*v).into())),
                ScalarValue::Int64(Some(v)) => Some(Literal::Integer(*v)),
                ScalarValue::Float64(Some(v)) => Some(Literal::Double(*v)),
                _ => None,
            },
            _ => type_check::decimal_literal(expr).map(Literal::Decimal),
        }
    }

    fn sql_type(&self) -> SqlType {
        match self {
            Literal::String(_) => SqlType::String,
            Literal::Boolean(_) => SqlType::Boolean,
            Literal::Integer(v) if i32::try_from(*v).is_ok() => SqlType::Integer,
            Literal::Integer(_) => SqlType::Bigint,
            Literal::Double(_) => SqlType::Double,
            Literal::Decimal(text) => string_number_type(text).unwrap_or(SqlType::Double),
        }
    }

    /// ksqlDB's lax literal coercion to `to`.
    fn converted(&self, to: &SqlType) -> Result<Expr, Refusal> {
        let syntax = |text: &str| Refusal::Syntax(format!("invalid input syntax for type {}: \"{text}\".", base_name(to)));
        let text = match self {
            Literal::String(s) => s.trim().to_string(),
            Literal::Boolean(b) => b.to_string(),
            Literal::Integer(v) => v.to_string(),
            Literal::Double(v) => java_number::double_to_string(*v),
            Literal::Decimal(d) => d.trim_start_matches('+').to_string(),
        };
        Ok(match to {
            SqlType::String => lit(text),
            SqlType::Boolean => match self {
                Literal::Boolean(b) => lit(*b),
                _ => lit(parse_boolean(&text).ok_or_else(|| syntax(&text))?),
            },
            SqlType::Integer => lit(text.parse::<i32>().map_err(|_| syntax(&text))?),
            SqlType::Bigint => lit(text.parse::<i64>().map_err(|_| syntax(&text))?),
            SqlType::Double => lit(text.parse::<f64>().map_err(|_| syntax(&text))?),
            other => Expr::Cast(Cast::new(Box::new(lit(text)), other.to_arrow())),
        })
    }
}

/// ksqlDB's names of a type's base, as its messages give them.
fn base_name(sql_type: &SqlType) -> String {
    match sql_type {
        SqlType::Decimal { .. } => "DECIMAL".into(),
        SqlType::Array(_) => "ARRAY".into(),
        SqlType::Map(_) => "MAP".into(),
        SqlType::Struct(_) => "STRUCT".into(),
        other => other.to_string(),
    }
}

/// ksqlDB's `SqlBooleans.parseBooleanExact`: `true`, `false`, `yes`, `no` or a prefix of one,
/// in any case.
fn parse_boolean(text: &str) -> Option<bool> {
    let matches = |word: &str| !text.is_empty() && text.len() <= word.len() && word[..text.len()].eq_ignore_ascii_case(text);
    if matches("true") || matches("yes") {
        Some(true)
    } else if matches("false") || matches("no") {
        Some(false)
    } else {
        None
    }
}

/// The type ksqlDB gives a number written as text (`CoercionUtil.getStringNumericType`):
/// INTEGER or BIGINT for a whole number strictly inside their ranges, else the DECIMAL that
/// holds it; `None` when Java's `BigDecimal` would not read it.
fn string_number_type(text: &str) -> Option<SqlType> {
    let text = text.trim();
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty() || !whole.chars().chain(fraction.chars()).all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    let scale = fraction.len() as i64 - exponent;
    let scientific = text.contains(['.', 'e', 'E']);
    if !scientific && scale == 0 {
        let negative = text.starts_with('-');
        if let Ok(value) = significant.parse::<i128>().or_else(|e| if significant.is_empty() { Ok(0) } else { Err(e) }) {
            let value = if negative { -value } else { value };
            if value > i32::MIN.into() && value < i32::MAX.into() {
                return Some(SqlType::Integer);
            }
            if value > i64::MIN.into() && value < i64::MAX.into() {
                return Some(SqlType::Bigint);
            }
        }
    }
    // DecimalUtil.fromValue: a negative scale made 0; a value inside (-1, 1) of scale + 1 digits.
    let (precision, scale) = if scale < 0 {
        (significant.len() as i64 - scale, 0)
    } else if (significant.len() as i64) <= scale {
        (scale + 1, scale)
    } else {
        (significant.len() as i64, scale)
    };
    Some(SqlType::Decimal { precision: u8::try_from(precision.max(1)).ok()?, scale: i8::try_from(scale).ok()? })
}

/// The DECIMAL an INTEGER, BIGINT or DECIMAL fits in.
fn as_decimal(sql_type: &SqlType) -> Option<(i16, i16)> {
    match sql_type {
        SqlType::Integer => Some((10, 0)),
        SqlType::Bigint => Some((19, 0)),
        SqlType::Decimal { precision, scale } => Some(((*precision).into(), (*scale).into())),
        _ => None,
    }
}

/// ksqlDB's `DecimalUtil.widen`: the DECIMAL that holds either type.
fn widen(a: &SqlType, b: &SqlType) -> Option<SqlType> {
    let ((p0, s0), (p1, s1)) = (as_decimal(a)?, as_decimal(b)?);
    let scale = s0.max(s1);
    let precision = (p0 - s0).max(p1 - s1) + scale;
    Some(SqlType::Decimal { precision: u8::try_from(precision).ok()?, scale: i8::try_from(scale).ok()? })
}

fn is_number(sql_type: &SqlType) -> bool {
    matches!(sql_type, SqlType::Integer | SqlType::Bigint | SqlType::Decimal { .. } | SqlType::Double)
}

/// The order ksqlDB's numeric types widen in.
fn number_rank(sql_type: &SqlType) -> u8 {
    match sql_type {
        SqlType::Integer => 0,
        SqlType::Bigint => 1,
        SqlType::Decimal { .. } => 2,
        _ => 3,
    }
}

/// ksqlDB's `DefaultSqlValueCoercer.canCoerce`, strict for expressions and lax for literals.
fn can_coerce(lax: bool, from: &SqlType, to: &SqlType) -> Option<SqlType> {
    use SqlType::*;
    match (from, to) {
        (Boolean, Boolean) | (Integer, Integer) | (Bigint, Bigint) | (Double, Double) | (String, String) | (Bytes, Bytes) => Some(to.clone()),
        (Timestamp, Timestamp) | (Time, Time) | (Date, Date) => Some(to.clone()),
        (Integer, Bigint) | (Integer | Bigint | Decimal { .. }, Double) => Some(to.clone()),
        (Integer | Bigint | Decimal { .. }, Decimal { .. }) => widen(from, to),
        (String, Timestamp | Time | Date | Bytes) => Some(to.clone()),
        (Array(f), Array(t)) => can_coerce(lax, f, t).map(|item| Array(Box::new(item))),
        (Map(f), Map(t)) => can_coerce(lax, f, t).map(|value| Map(Box::new(value))),
        (Struct(f), Struct(t)) => {
            let mut fields = Vec::new();
            for name in field_names(f.iter().map(|(n, _)| n), t.iter().map(|(n, _)| n)) {
                let from_field = f.iter().find(|(n, _)| *n == name).map(|(_, t)| t);
                let to_field = t.iter().find(|(n, _)| *n == name).map(|(_, t)| t);
                let field_type = match (from_field, to_field) {
                    (Some(a), Some(b)) => can_coerce(lax, a, b)?,
                    (Some(only), None) | (None, Some(only)) => only.clone(),
                    (None, None) => continue,
                };
                fields.push((name, field_type));
            }
            Some(Struct(fields))
        }
        (Boolean | Integer | Bigint | Decimal { .. } | Double | Timestamp | Time | Date, String) if lax => Some(String),
        (String, Boolean | Integer | Bigint | Decimal { .. } | Double) if lax => Some(to.clone()),
        _ => None,
    }
}

/// The names of two structs' fields, the first's in order, then the second's it lacks.
fn field_names<'n>(first: impl Iterator<Item = &'n String>, second: impl Iterator<Item = &'n String>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in first.chain(second) {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Types expressions as ksqlDB does and finds their common type.
struct Typer<'a> {
    schema: &'a DFSchema,
}

impl Typer<'_> {
    /// ksqlDB's type of `expr`: constructors typed from their elements, literals as written.
    /// `None` for NULL.
    fn type_of(&self, expr: &Expr) -> Result<Option<SqlType>, Refusal> {
        if is_null(expr) {
            return Ok(None);
        }
        if let Some(literal) = Literal::of(expr) {
            return Ok(Some(literal.sql_type()));
        }
        match Constructor::of(expr) {
            Some(Constructor::Array(elements)) => return Ok(self.common(&elements, None)?.map(|t| SqlType::Array(Box::new(t)))),
            Some(Constructor::Map(values)) => return Ok(self.common(&values, None)?.map(|t| SqlType::Map(Box::new(t)))),
            Some(Constructor::Struct(fields)) => {
                let mut typed = Vec::with_capacity(fields.len());
                for (name, value) in fields {
                    let field_type = match self.type_of(value)? {
                        Some(t) => t,
                        None => self.arrow_type(value)?,
                    };
                    typed.push((name, field_type));
                }
                return Ok(Some(SqlType::Struct(typed)));
            }
            None => {}
        }
        self.arrow_type(expr).map(Some)
    }

    fn arrow_type(&self, expr: &Expr) -> Result<SqlType, Refusal> {
        let data_type = expr.get_type(self.schema).map_err(|e| Refusal::Coercion(e.to_string()))?;
        SqlType::from_arrow(&data_type).map_err(|e| Refusal::Coercion(e.to_string()))
    }

    /// The common type of `exprs`, starting from `seed`.
    fn common(&self, exprs: &[&Expr], seed: Option<SqlType>) -> Result<Option<SqlType>, Refusal> {
        let mut common = seed;
        for e in exprs {
            common = self.with(e, common)?;
        }
        Ok(common)
    }

    /// `common` widened to hold `expr` too (`resolveCommonType`).
    fn with(&self, expr: &Expr, common: Option<SqlType>) -> Result<Option<SqlType>, Refusal> {
        let Some(target) = common else { return self.type_of(expr) };
        let Some(source) = self.type_of(expr)? else { return Ok(Some(target)) };
        let refused = || coercion_failure(expr, &source, &target);
        let nested = |result: Result<Option<SqlType>, Refusal>| match result {
            Err(Refusal::Coercion(_)) => Err(refused()),
            other => other,
        };
        match Constructor::of(expr) {
            Some(Constructor::Array(elements)) => {
                let SqlType::Array(item) = &target else { return Err(refused()) };
                return nested(self.common(&elements, Some(item.as_ref().clone()))).map(|t| t.map(|t| SqlType::Array(Box::new(t))));
            }
            Some(Constructor::Map(values)) => {
                let SqlType::Map(value) = &target else { return Err(refused()) };
                return nested(self.common(&values, Some(value.as_ref().clone()))).map(|t| t.map(|t| SqlType::Map(Box::new(t))));
            }
            Some(Constructor::Struct(fields)) => {
                let SqlType::Struct(target_fields) = &target else { return Err(refused()) };
                return nested(self.struct_type(&fields, target_fields));
            }
            None => {}
        }
        if let Some(Literal::String(text)) = Literal::of(expr) {
            if is_number(&target) {
                return number_from_string(text, &target).map(Some);
            }
            if target == SqlType::Boolean {
                return match parse_boolean(text.trim()) {
                    Some(_) => Ok(Some(target)),
                    None => Err(Refusal::Syntax(format!("invalid input syntax for type BOOLEAN: \"{text}\"."))),
                };
            }
        }
        let lax = Literal::of(expr).is_some();
        can_coerce(lax, &source, &target).or_else(|| can_coerce(lax, &target, &source)).map(Some).ok_or_else(refused)
    }

    /// A `STRUCT(…)` constructor's fields and `target`'s, each typed to hold both.
    fn struct_type(&self, fields: &[(String, &Expr)], target: &[(String, SqlType)]) -> Result<Option<SqlType>, Refusal> {
        let mut typed = Vec::new();
        for name in field_names(fields.iter().map(|(n, _)| n), target.iter().map(|(n, _)| n)) {
            let source = fields.iter().find(|(n, _)| *n == name).map(|(_, e)| *e);
            let target_type = target.iter().find(|(n, _)| *n == name).map(|(_, t)| t.clone());
            let field_type = match (source, target_type) {
                (Some(value), Some(target_type)) => self.with(value, Some(target_type.clone()))?.unwrap_or(target_type),
                (Some(value), None) => match self.type_of(value)? {
                    Some(t) => t,
                    // A NULL field the target lacks: DataFusion's type for it.
                    None => self.arrow_type(value)?,
                },
                (None, Some(target_type)) => target_type,
                (None, None) => continue,
            };
            typed.push((name, field_type));
        }
        Ok(Some(SqlType::Struct(typed)))
    }
}

/// The numeric type holding both `target` and the number `text` reads as
/// (`resolveCommonNumericTypeFromStringLiteral`).
fn number_from_string(text: &str, target: &SqlType) -> Result<SqlType, Refusal> {
    let source = string_number_type(text)
        .ok_or_else(|| Refusal::Syntax(format!("invalid input syntax for type {}: \"{text}\".", base_name(target))))?;
    if source == SqlType::Double || *target == SqlType::Double {
        return Ok(SqlType::Double);
    }
    if matches!(source, SqlType::Decimal { .. }) || matches!(target, SqlType::Decimal { .. }) {
        return widen(&source, target).ok_or_else(|| Refusal::Syntax(format!("invalid input syntax for type DECIMAL: \"{text}\".")));
    }
    Ok(if number_rank(&source) <= number_rank(target) { target.clone() } else { source })
}

fn coercion_failure(expr: &Expr, source: &SqlType, target: &SqlType) -> Refusal {
    Refusal::Coercion(format!(
        "operator does not exist: {target} = {source} ({})\nHint: You might need to add explicit type casts.",
        type_check::printed(expr)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_written_as_text_are_typed_as_ksqldb_types_them() {
        assert_eq!(string_number_type("10"), Some(SqlType::Integer));
        assert_eq!(string_number_type(" -10 "), Some(SqlType::Integer));
        assert_eq!(string_number_type("2147483647"), Some(SqlType::Bigint), "ksqlDB's bounds are strict");
        assert_eq!(string_number_type("9223372036854775807"), Some(SqlType::Decimal { precision: 19, scale: 0 }));
        assert_eq!(string_number_type("10.30"), Some(SqlType::Decimal { precision: 4, scale: 2 }));
        assert_eq!(string_number_type("0.005"), Some(SqlType::Decimal { precision: 4, scale: 3 }));
        assert_eq!(string_number_type("1E3"), Some(SqlType::Decimal { precision: 4, scale: 0 }));
        assert_eq!(string_number_type("10 - not a number"), None);
        assert_eq!(string_number_type("."), None);
    }

    #[test]
    fn booleans_are_read_from_any_prefix_of_true_false_yes_or_no() {
        assert_eq!(parse_boolean("TrUe"), Some(true));
        assert_eq!(parse_boolean("tr"), Some(true));
        assert_eq!(parse_boolean("Y"), Some(true));
        assert_eq!(parse_boolean("f"), Some(false));
        assert_eq!(parse_boolean("n"), Some(false));
        assert_eq!(parse_boolean("Not a boolean"), None);
        assert_eq!(parse_boolean(""), None);
    }

    #[test]
    fn literals_coerce_laxly_and_expressions_strictly() {
        let decimal = SqlType::Decimal { precision: 4, scale: 2 };
        assert_eq!(can_coerce(false, &SqlType::Integer, &decimal), Some(SqlType::Decimal { precision: 12, scale: 2 }));
        assert_eq!(can_coerce(false, &SqlType::Integer, &SqlType::String), None);
        assert_eq!(can_coerce(true, &SqlType::Integer, &SqlType::String), Some(SqlType::String));
        assert_eq!(can_coerce(false, &SqlType::Bigint, &SqlType::Integer), None);
        let narrow = SqlType::Struct(vec![("F0".into(), SqlType::Integer)]);
        let wide = SqlType::Struct(vec![("F0".into(), SqlType::Bigint), ("F1".into(), SqlType::String)]);
        assert_eq!(
            can_coerce(false, &narrow, &wide),
            Some(SqlType::Struct(vec![("F0".into(), SqlType::Bigint), ("F1".into(), SqlType::String)]))
        );
        assert_eq!(can_coerce(false, &wide, &narrow), None);
    }

    #[test]
    fn numbers_from_text_widen_the_common_type() {
        assert_eq!(number_from_string("10", &SqlType::Bigint), Ok(SqlType::Bigint));
        assert_eq!(number_from_string("3000000000", &SqlType::Integer), Ok(SqlType::Bigint));
        assert_eq!(number_from_string("10.5", &SqlType::Integer), Ok(SqlType::Decimal { precision: 11, scale: 1 }));
        assert_eq!(number_from_string("1", &SqlType::Double), Ok(SqlType::Double));
        assert!(matches!(number_from_string("ten", &SqlType::Integer), Err(Refusal::Syntax(m)) if m == "invalid input syntax for type INTEGER: \"ten\"."));
    }
}
