//! ksqlDB's struct and map expressions as DataFusion plans them: `s->field` (which the parser
//! hands over as `s["FIELD"]`) and the column name ksqlDB gives it, `s->*` expanded to every
//! field, the `STRUCT(name := value, …)` and `MAP(key := value, …)` constructors, and ksqlDB's
//! refusals of constructors whose type cannot be told.

use std::collections::HashSet;

use sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArgumentList,
    FunctionArgOperator, FunctionArguments, Ident, ObjectName, SelectItem, Subscript, Value,
};

use super::join::JoinSide;
use crate::{
    catalog::types::SqlType,
    error::{Result, SluiceError},
    parser::normalize_ident,
};

/// What `s->*` reads: the parser hands it over as `s["*"]`.
const ALL_FIELDS: &str = "*";

/// The struct field `expr` reads last, when it ends in one (`s->field`).
pub fn field_read(expr: &Expr) -> Option<&str> {
    let Expr::CompoundFieldAccess { access_chain, .. } = expr else { return None };
    access_chain.last().and_then(field_of).filter(|field| *field != ALL_FIELDS)
}

/// The struct field an access names, when it is one.
fn field_of(access: &AccessExpr) -> Option<&str> {
    match access {
        AccessExpr::Subscript(Subscript::Index { index: Expr::Value(value) }) => match &value.value {
            Value::DoubleQuotedString(field) => Some(field),
            _ => None,
        },
        _ => None,
    }
}

/// ksqlDB's names for projected struct field reads: the field's name, or `FIELD_n` with the
/// least `n` that names no source column and no earlier read.
pub struct FieldNames(HashSet<String>);

impl FieldNames {
    pub fn reserving(sides: &[JoinSide]) -> Self {
        Self(sides.iter().flat_map(|side| side.source.columns.iter().map(|c| c.name.clone())).collect())
    }

    pub fn next(&mut self, field: &str) -> String {
        let name = std::iter::once(field.to_string())
            .chain((1..).map(|n| format!("{field}_{n}")))
            .find(|name| !self.0.contains(name))
            .expect("an unused name");
        self.0.insert(name.clone());
        name
    }
}

/// `s->*` as one projected read per field of `s`, each named after its field; None when `expr`
/// is no `s->*`.
pub fn expand_all_fields(expr: &Expr, sides: &[JoinSide]) -> Result<Option<Vec<SelectItem>>> {
    let Expr::CompoundFieldAccess { root, access_chain } = expr else { return Ok(None) };
    let Some((last, path)) = access_chain.split_last() else { return Ok(None) };
    if field_of(last) != Some(ALL_FIELDS) {
        return Ok(None);
    }
    let parent = match path {
        [] => root.as_ref().clone(),
        _ => Expr::CompoundFieldAccess { root: root.clone(), access_chain: path.to_vec() },
    };
    let Some(SqlType::Struct(fields)) = type_of(root, path, sides) else {
        return Err(SluiceError::Plan(format!("{parent}->* reads no struct")));
    };
    let reads = fields
        .iter()
        .map(|(field, _)| {
            let mut access_chain = path.to_vec();
            access_chain.push(field_access(field));
            SelectItem::ExprWithAlias {
                expr: Expr::CompoundFieldAccess { root: root.clone(), access_chain },
                alias: Ident::with_quote('"', field),
            }
        })
        .collect();
    Ok(Some(reads))
}

/// `expr` as text DataFusion's parser reads back as the same expression: a struct field read
/// (`s["F"]` in the tree, which a double-quoted name would read as a column) written `s['F']`.
pub fn as_text(expr: &Expr) -> String {
    let mut text = expr.clone();
    let _ = sqlparser::ast::visit_expressions_mut(&mut text, |e| {
        if let Expr::CompoundFieldAccess { access_chain, .. } = e {
            for access in access_chain.iter_mut() {
                if let Some(field) = field_of(access).map(str::to_string) {
                    *access = AccessExpr::Subscript(Subscript::Index { index: Expr::value(Value::SingleQuotedString(field)) });
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    text.to_string()
}

fn field_access(field: &str) -> AccessExpr {
    AccessExpr::Subscript(Subscript::Index { index: Expr::Value(Value::DoubleQuotedString(field.to_string()).into()) })
}

/// The declared type of `root` read through `path`: a column, optionally qualified by its
/// source, then struct fields.
fn type_of<'a>(root: &Expr, path: &[AccessExpr], sides: &'a [JoinSide]) -> Option<&'a SqlType> {
    let mut names: Vec<String> = match root {
        Expr::Identifier(ident) => vec![normalize_ident(ident)],
        Expr::CompoundIdentifier(parts) => parts.iter().map(normalize_ident).collect(),
        _ => return None,
    };
    let mut fields = path;
    while let Some((AccessExpr::Dot(Expr::Identifier(ident)), rest)) = fields.split_first() {
        names.push(normalize_ident(ident));
        fields = rest;
    }
    let column = |side: &'a JoinSide, name: &str| side.source.columns.iter().find(|c| c.name == name).map(|c| &c.data_type);
    let mut sql_type = match names.as_slice() {
        [name] => sides.iter().find_map(|side| column(side, name))?,
        [qualifier, name] => sides.iter().filter(|side| &side.qualifier == qualifier).find_map(|side| column(side, name))?,
        _ => return None,
    };
    for access in fields {
        let SqlType::Struct(struct_fields) = sql_type else { return None };
        let field = field_of(access)?;
        sql_type = struct_fields.iter().find(|(name, _)| name == field).map(|(_, t)| t)?;
    }
    Some(sql_type)
}

/// `STRUCT(name := value, …)` as DataFusion's `named_struct('NAME', value, …)` and
/// `MAP(key := value, …)` as `make_map(CAST(key AS VARCHAR), value, …)`; a struct's field names
/// are identifiers, upper-cased already unless quoted.
pub fn constructor(expr: &mut Expr) -> Result<()> {
    if let Expr::Array(array) = expr {
        return array_constructor(&array.elem);
    }
    let (is_struct, pairs) = match expr {
        Expr::Struct { values, fields } if fields.is_empty() => (true, values.iter().map(assigned).collect::<Option<Vec<_>>>()),
        Expr::Function(function) if function.name.to_string().eq_ignore_ascii_case("MAP") => match &function.args {
            FunctionArguments::List(list) => (false, list.args.iter().map(assigned_argument).collect()),
            _ => return Ok(()),
        },
        _ => return Ok(()),
    };
    let Some(pairs) = pairs else { return Ok(()) };
    if !is_struct && pairs.is_empty() {
        return Err(SluiceError::Plan(
            "Map constructor cannot be empty. Please supply at least one key value pair (see https://github.com/confluentinc/ksql/issues/4239).".into(),
        ));
    }
    if !is_struct && pairs.iter().all(|(key, _)| is_null(key)) {
        return Err(SluiceError::Plan("Cannot construct a map with all NULL keys".into()));
    }
    if !is_struct && pairs.iter().all(|(_, value)| is_null(value)) {
        return Err(SluiceError::Plan("Cannot construct a map with all NULL values".into()));
    }
    let mut args = Vec::with_capacity(pairs.len() * 2);
    let mut names = HashSet::new();
    for (key, value) in pairs {
        let key = if is_struct {
            let Expr::Identifier(field) = &key else {
                return Err(SluiceError::Plan(format!("a STRUCT field is named by an identifier, not by {key}")));
            };
            if !names.insert(field.value.clone()) {
                return Err(SluiceError::Plan(format!("Duplicate field names found in STRUCT: '{}'", field.value)));
            }
            Expr::Value(Value::SingleQuotedString(field.value.clone()).into())
        } else {
            Expr::Cast { kind: CastKind::Cast, expr: Box::new(key), data_type: DataType::Varchar(None), array: false, format: None }
        };
        args.push(FunctionArg::Unnamed(FunctionArgExpr::Expr(key)));
        args.push(FunctionArg::Unnamed(FunctionArgExpr::Expr(value)));
    }
    let planned = if is_struct { "named_struct" } else { "make_map" };
    *expr = call(planned, args);
    Ok(())
}

/// A plain call of the function `name` with positional `args`.
pub fn call(name: &str, args: Vec<FunctionArg>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList { duplicate_treatment: None, args, clauses: Vec::new() }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// ksqlDB's refusals of an `ARRAY[…]` whose elements' type cannot be told.
fn array_constructor(elements: &[Expr]) -> Result<()> {
    if elements.is_empty() {
        return Err(SluiceError::Plan(
            "Array constructor cannot be empty. Please supply at least one element (see https://github.com/confluentinc/ksql/issues/4239).".into(),
        ));
    }
    if elements.iter().all(is_null) {
        return Err(SluiceError::Plan(
            "Cannot construct an array with all NULL elements (see https://github.com/confluentinc/ksql/issues/4239). As a workaround, you may cast a NULL value to the desired type.".into(),
        ));
    }
    Ok(())
}

fn is_null(expr: &Expr) -> bool {
    matches!(expr, Expr::Value(value) if value.value == Value::Null)
}

/// The `key := value` an expression is, when it is one.
fn assigned(expr: &Expr) -> Option<(Expr, Expr)> {
    match expr {
        Expr::BinaryOp { left, op: BinaryOperator::Assignment, right } => Some((left.as_ref().clone(), right.as_ref().clone())),
        _ => None,
    }
}

/// The `key := value` a function's argument is, when it is one: sqlparser reads one whose key is
/// an identifier as a named argument, which is not visited as an expression, so its identifier
/// is read here as ksqlDB reads it.
fn assigned_argument(arg: &FunctionArg) -> Option<(Expr, Expr)> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => assigned(expr),
        FunctionArg::Named { name, arg: FunctionArgExpr::Expr(value), operator: FunctionArgOperator::Assignment } => {
            let key = match name.quote_style {
                None if name.value.eq_ignore_ascii_case("NULL") => Expr::Value(Value::Null.into()),
                Some('\'') => Expr::Value(Value::SingleQuotedString(name.value.clone()).into()),
                _ => Expr::Identifier(Ident::with_quote('"', normalize_ident(name))),
            };
            Some((key, value.clone()))
        }
        _ => None,
    }
}
