//! Rewrites a ksqlDB `SELECT` into the SQL DataFusion plans: identifiers upper-cased as ksqlDB
//! reads them, `*` expanded to the declared columns (in a join, each named as ksqlDB names it),
//! unnamed expressions named `KSQL_COL_n` (a struct field read after its field), and an integer literal that fits 32 bits an INTEGER
//! where ksqlDB types it so (a projected literal, an operand of arithmetic), not DataFusion's
//! BIGINT, the time unit of `DATEADD(DAYS, …)` and its kin the unit's name as a string, and
//! comparisons false on a NULL operand ([`super::comparison`]).

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, CastKind, DataType, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    ObjectNamePart, OneOrManyWithParens, Query, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Value, visit_expressions_mut,
};

use super::{
    comparison,
    join::{self, Joins},
    structs::{self, FieldNames},
};

use crate::{
    catalog::{
        Catalog, SourceDef,
        source::{WINDOWEND, WINDOWSTART},
    },
    error::{Result, SluiceError},
    parser::{Select, normalize_ident},
};

pub struct Rewritten {
    pub query: Query,
    pub source: SourceDef,
    /// `PARTITION BY`'s expressions, as the query reads them.
    pub partition_by: Option<Vec<Expr>>,
    /// The projection is exactly `*` over one source.
    pub is_star: bool,
    /// The projection has a `*`: a `PARTITION BY` expression it lacks is added as a key column.
    pub has_star: bool,
    /// The name of the key column each `PARTITION BY` expression makes when the projection
    /// lacks it: a column's or struct field's name, else ksqlDB's `KSQL_COL_n`.
    pub partition_names: Vec<String>,
    /// Each `PARTITION BY` expression as ksqlDB writes it in its messages.
    pub partition_texts: Vec<String>,
    /// The projection's table function calls (`EXPLODE`, `CUBE_EXPLODE`) and their arrays,
    /// each call now read as its element column.
    pub explode: Vec<(super::explode::TableFunction, Expr)>,
    /// The tables the stream is joined with, and how.
    pub joins: Option<Joins>,
    /// The output columns that project a join's synthetic key (`ROWKEY`, or `ROWKEY_n` when a
    /// source has a column `ROWKEY`).
    pub synthetic_key_names: Vec<String>,
}

pub fn rewrite(catalog: &Catalog, select: &Select) -> Result<Rewritten> {
    super::literals::check(&select.query)?;
    let mut query = select.query.clone();
    if query.with.is_some() || query.order_by.is_some() || query.limit_clause.is_some() || query.fetch.is_some() {
        return Err(SluiceError::NotImplemented(
            "WITH, ORDER BY and OFFSET in a streaming query".into(),
        ));
    }
    let SetExpr::Select(body) = query.body.as_mut() else {
        return Err(SluiceError::NotImplemented(
            "UNION, VALUES and nested queries in a streaming query".into(),
        ));
    };
    if body.from.len() != 1 {
        return Err(SluiceError::NotImplemented(
            "reading several sources without JOIN; join them with JOIN … ON".into(),
        ));
    }
    let grouped = !matches!(&body.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if body.having.is_some() && !grouped {
        return Err(SluiceError::Plan("HAVING requires GROUP BY".into()));
    }
    if select.emit_final && select.window.is_none() {
        return Err(SluiceError::Plan("EMIT FINAL is only supported for windowed aggregations.".into()));
    }
    if select.window.is_some() && grouped {
        window_bounds_only_selected(body)?;
        if let GroupByExpr::Expressions(expressions, _) = &mut body.group_by {
            expressions.extend(WINDOW_BOUNDS.iter().map(|b| Expr::Identifier(quoted(b))));
        }
    }
    if body.distinct.is_some() {
        return Err(SluiceError::NotImplemented("SELECT DISTINCT".into()));
    }
    let from = &mut body.from[0];
    let first = join::resolve(catalog, &mut from.relation)?;
    let source = first.source.clone();
    let first_side = first.clone();
    let partition_texts = select.partition_by.iter().flatten().map(|e| super::partition::ksql_text(e, &first.qualifier)).collect();
    let mut joins = (!from.joins.is_empty())
        .then(|| Joins::analyze(catalog, first, &mut from.joins, &select.withins))
        .transpose()?;

    let is_star = body.projection.len() == 1 && matches!(body.projection[0], SelectItem::Wildcard(_));
    let has_star = body.projection.iter().any(|item| matches!(item, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)));
    let synthetic_key = joins.as_ref().and_then(Joins::synthetic_key);
    let synthetic_name = joins.as_ref().map(Joins::synthetic_key_name).unwrap_or_default();
    let mut synthetic_key_names = Vec::new();
    let is_rowkey = |expr: &Expr| matches!(expr, Expr::Identifier(ident) if normalize_ident(ident) == synthetic_name);
    let mut projection = Vec::new();
    let mut unnamed = 0;
    let sides = match &joins {
        Some(joins) => joins.sides.clone(),
        None => vec![first_side],
    };
    let mut field_names = FieldNames::reserving(&sides);
    for item in std::mem::take(&mut body.projection) {
        match item {
            SelectItem::Wildcard(_) if joins.is_some() => {
                if let Some(key) = &synthetic_key {
                    projection.push(SelectItem::ExprWithAlias { expr: key.clone(), alias: quoted(&synthetic_name) });
                    synthetic_key_names.push(synthetic_name.clone());
                }
                projection.extend(joins.as_ref().expect("joins").expand_star(None)?);
            }
            SelectItem::UnnamedExpr(expr) if synthetic_key.is_some() && is_rowkey(&expr) => {
                projection.push(SelectItem::ExprWithAlias { expr: synthetic_key.clone().expect("a key"), alias: quoted(&synthetic_name) });
                synthetic_key_names.push(synthetic_name.clone());
            }
            SelectItem::ExprWithAlias { expr, alias } if synthetic_key.is_some() && is_rowkey(&expr) => {
                let alias = normalize_ident(&alias);
                projection.push(SelectItem::ExprWithAlias { expr: synthetic_key.clone().expect("a key"), alias: quoted(&alias) });
                synthetic_key_names.push(alias);
            }
            SelectItem::QualifiedWildcard(kind, _) if joins.is_some() => {
                let qualifier = match &kind {
                    SelectItemQualifiedWildcardKind::ObjectName(name) => {
                        name.0.last().and_then(ObjectNamePart::as_ident).map(normalize_ident)
                    }
                    SelectItemQualifiedWildcardKind::Expr(_) => None,
                };
                let qualifier = qualifier.ok_or_else(|| SluiceError::Plan(format!("{kind}.* names no source")))?;
                projection.extend(joins.as_ref().expect("joins").expand_star(Some(&qualifier))?);
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(_, _) => {
                // A windowed table's window bounds follow its key columns, as ksqlDB lists them;
                // under PARTITION BY the old key columns follow the values, as ksqlDB moves them.
                let keys = source.key_columns().map(|c| c.name.as_str());
                let bounds = source.window.iter().flat_map(|_| WINDOW_BOUNDS);
                let values = source.non_key_columns().map(|c| c.name.as_str());
                let names: Vec<&str> = match select.partition_by {
                    Some(_) => values.chain(keys).chain(bounds).collect(),
                    None => keys.chain(bounds).chain(values).collect(),
                };
                projection.extend(names.into_iter().map(|name| SelectItem::UnnamedExpr(Expr::Identifier(quoted(name)))));
            }
            SelectItem::UnnamedExpr(expr) => {
                if let Some(reads) = structs::expand_all_fields(&expr, &sides)? {
                    projection.extend(reads);
                } else if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                    match joins.as_ref().and_then(|j| j.column_alias(&expr)) {
                        Some(alias) => projection.push(SelectItem::ExprWithAlias { expr, alias }),
                        None => projection.push(SelectItem::UnnamedExpr(expr)),
                    }
                } else {
                    let alias = match structs::field_read(&expr) {
                        Some(field) => field_names.next(field),
                        None => {
                            unnamed += 1;
                            format!("KSQL_COL_{}", unnamed - 1)
                        }
                    };
                    let mut expr = expr;
                    narrow_integer(&mut expr);
                    projection.push(SelectItem::ExprWithAlias { expr, alias: quoted(&alias) });
                }
            }
            SelectItem::ExprWithAlias { mut expr, alias } => {
                narrow_integer(&mut expr);
                projection.push(SelectItem::ExprWithAlias {
                    expr,
                    alias: quoted(&normalize_ident(&alias)),
                })
            }
            SelectItem::ExprWithAliases { .. } => {
                return Err(SluiceError::NotImplemented("multiple aliases for one expression".into()));
            }
        }
    }
    body.projection = projection;
    for item in &mut body.projection {
        if let SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) = item {
            comparison::false_on_null(expr);
        }
    }
    for filter in body.selection.iter_mut().chain(body.having.iter_mut()) {
        comparison::filter_false_on_null(filter);
    }

    if let ControlFlow::Break(error) = visit_expressions_mut(&mut query, as_ksqldb_reads) {
        return Err(error);
    }
    // The join conditions as the query now reads them.
    for clause in joins.iter_mut().flat_map(|j| j.clauses.iter_mut()) {
        let further = clause.further.iter_mut().flat_map(|(left, right)| [left, right]);
        for side in [&mut clause.left_expr, &mut clause.right_expr].into_iter().chain(further) {
            // Its type is checked against the other side's, as ksqlDB types it.
            let _ = visit_expressions_mut(side, |e| {
                narrow_integer(e);
                ControlFlow::<()>::Continue(())
            });
            if let ControlFlow::Break(error) = visit_expressions_mut(side, as_ksqldb_reads) {
                return Err(error);
            }
        }
    }
    let explode = super::explode::take_calls(&mut query);
    if !explode.is_empty() {
        if grouped {
            return Err(SluiceError::Plan("Table functions cannot be used with aggregations.".into()));
        }
        if source.is_table() {
            return Err(SluiceError::Plan("Table source is not supported with table functions".into()));
        }
        if joins.is_some() {
            return Err(SluiceError::NotImplemented("table functions (EXPLODE) over a join".into()));
        }
    }
    let mut partition_by = select.partition_by.clone();
    for expr in partition_by.iter_mut().flatten() {
        if let ControlFlow::Break(error) = visit_expressions_mut(expr, as_ksqldb_reads) {
            return Err(error);
        }
        narrow_integer(expr);
    }
    let partition_names = partition_by
        .iter()
        .flatten()
        .map(|expr| match expr {
            Expr::Identifier(ident) => normalize_ident(ident),
            Expr::CompoundIdentifier(parts) => match joins.as_ref().and_then(|j| j.column_alias(expr)) {
                Some(alias) => normalize_ident(&alias),
                None => parts.last().map(normalize_ident).unwrap_or_default(),
            },
            _ => match structs::field_read(expr) {
                Some(field) => field_names.next(field),
                None => {
                    unnamed += 1;
                    format!("KSQL_COL_{}", unnamed - 1)
                }
            },
        })
        .collect();
    Ok(Rewritten {
        query,
        source,
        partition_by,
        is_star: is_star && joins.is_none(),
        has_star,
        partition_names,
        partition_texts,
        explode,
        joins,
        synthetic_key_names,
    })
}

/// `expr` read as ksqlDB reads it: identifiers upper-cased, the struct and map constructors as
/// DataFusion's, text compared with ROWTIME or a window bound as its instant, the operands of
/// arithmetic that fit 32 bits INTEGER.
fn as_ksqldb_reads(expr: &mut Expr) -> ControlFlow<SluiceError> {
    upper_case_identifiers(expr);
    lambda_array_literals(expr);
    if let Err(error) = structs::constructor(expr) {
        return ControlFlow::Break(error);
    }
    time_unit_argument(expr);
    substring_call(expr);
    star_argument(expr);
    super::in_list::decimal_literals(expr);
    if let Err(error) = super::pseudo_time::compared_with_text(expr) {
        return ControlFlow::Break(error);
    }
    if let Expr::BinaryOp { left, op, right } = expr
        && matches!(
            op,
            BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Multiply | BinaryOperator::Divide | BinaryOperator::Modulo
        )
    {
        narrow_integer(left);
        narrow_integer(right);
    }
    ControlFlow::Continue(())
}

/// `f(*)` as ksqlDB reads it, a call without arguments, but for `COUNT(*)`.
fn star_argument(expr: &mut Expr) {
    let Expr::Function(function) = expr else { return };
    if function.name.to_string().eq_ignore_ascii_case("COUNT") {
        return;
    }
    if let FunctionArguments::List(list) = &mut function.args
        && let [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] = list.args.as_slice()
    {
        list.args.clear();
    }
}

/// ksqlDB's `SUBSTRING(text, position[, length])` as a call of Sluice's function of that name:
/// DataFusion plans SQL's SUBSTRING syntax as its own, which counts positions otherwise and
/// takes no BYTES.
fn substring_call(expr: &mut Expr) {
    let Expr::Substring { expr: value, substring_from, substring_for, .. } = expr else { return };
    let arguments = std::iter::once(value.as_ref())
        .chain(substring_from.as_deref())
        .chain(substring_for.as_deref())
        .map(|argument| FunctionArg::Unnamed(FunctionArgExpr::Expr(argument.clone())))
        .collect();
    *expr = function_call("substring", arguments);
}

/// A call of the function `name` with `arguments`.
pub(super) fn function_call(name: &str, arguments: Vec<FunctionArg>) -> Expr {
    Expr::Function(sqlparser::ast::Function {
        name: sqlparser::ast::ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(sqlparser::ast::FunctionArgumentList { duplicate_treatment: None, args: arguments, clauses: Vec::new() }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

/// The columns of a window's bounds, grouped by after the query's own grouping expressions.
pub const WINDOW_BOUNDS: [&str; 2] = [WINDOWSTART, WINDOWEND];

/// The window bound `expr` names, if it is one.
fn window_bound(expr: &Expr) -> Option<&'static str> {
    let ident = match expr {
        Expr::Identifier(ident) => ident,
        Expr::CompoundIdentifier(parts) => parts.last()?,
        _ => return None,
    };
    let name = normalize_ident(ident);
    WINDOW_BOUNDS.into_iter().find(|b| *b == name)
}

/// The first window bound read anywhere in `expr`.
fn first_window_bound(expr: &mut Expr) -> Option<&'static str> {
    let mut found = None;
    let _ = visit_expressions_mut(expr, |e| match window_bound(e) {
        Some(bound) => {
            found = Some(bound);
            ControlFlow::Break(())
        }
        None => ControlFlow::Continue(()),
    });
    found
}

/// ksqlDB's refusal of `WINDOWSTART` and `WINDOWEND` outside the `SELECT` of a windowed
/// aggregation (inside aggregate functions, the planner refuses them).
fn window_bounds_only_selected(body: &mut sqlparser::ast::Select) -> Result<()> {
    if let Some(bound) = body.selection.as_mut().and_then(first_window_bound) {
        return Err(SluiceError::Plan(format!("Error in WHERE expression: Unknown column {bound}.")));
    }
    let grouping = match &mut body.group_by {
        GroupByExpr::Expressions(expressions, _) => expressions.iter_mut().find_map(first_window_bound),
        GroupByExpr::All(_) => None,
    };
    match grouping.or_else(|| body.having.as_mut().and_then(first_window_bound)) {
        Some(bound) => Err(window_bound_misplaced(bound)),
        None => Ok(()),
    }
}

pub fn window_bound_misplaced(bound: &str) -> SluiceError {
    SluiceError::Plan(format!(
        "Window bounds column {bound} can only be used in the SELECT clause of windowed aggregations"
    ))
}

/// The functions whose first argument is a time unit (`DATEADD(DAYS, 10, d)`).
const TAKES_TIME_UNIT: [&str; 6] = ["DATEADD", "DATESUB", "TIMEADD", "TIMESUB", "TIMESTAMPADD", "TIMESTAMPSUB"];
/// ksqlDB's time units.
const TIME_UNITS: [&str; 10] =
    ["MILLISECONDS", "SECONDS", "MINUTES", "HOURS", "DAYS", "MILLISECOND", "SECOND", "MINUTE", "HOUR", "DAY"];

/// In a call of a function taking a time unit, the unit (read as a column so far) becomes the
/// unit's name as a string, and an integer interval an INTEGER, as ksqlDB types it.
fn time_unit_argument(expr: &mut Expr) {
    let Expr::Function(function) = expr else { return };
    let name = function.name.0.last().and_then(ObjectNamePart::as_ident).map(normalize_ident).unwrap_or_default();
    if !TAKES_TIME_UNIT.contains(&name.as_str()) {
        return;
    }
    let FunctionArguments::List(list) = &mut function.args else { return };
    let mut args = list.args.iter_mut().filter_map(|arg| match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
        _ => None,
    });
    if let Some(unit) = args.next()
        && let Expr::Identifier(ident) = unit
        && TIME_UNITS.contains(&ident.value.to_uppercase().as_str())
    {
        *unit = Expr::value(Value::SingleQuotedString(ident.value.to_uppercase()));
    }
    if let Some(interval) = args.next() {
        narrow_integer(interval);
    }
}

/// A value of `INSERT … VALUES` read as ksqlDB reads it: the struct and map constructors as
/// DataFusion's, and every integer literal that fits 32 bits an INTEGER (in an `ARRAY[…]` too).
pub fn literal_value(expr: &Expr) -> Result<Expr> {
    let mut expr = expr.clone();
    if let ControlFlow::Break(error) = visit_expressions_mut(&mut expr, |e| {
        narrow_integer(e);
        as_ksqldb_reads(e)
    }) {
        return Err(error);
    }
    Ok(expr)
}

/// An integer literal that fits 32 bits becomes `CAST(n AS INTEGER)`: ksqlDB types it INTEGER.
fn narrow_integer(expr: &mut Expr) {
    let Expr::Value(literal) = expr else { return };
    let Value::Number(text, _) = &literal.value else { return };
    if text.parse::<i32>().is_ok() {
        *expr = Expr::Cast {
            kind: CastKind::Cast,
            expr: Box::new(expr.clone()),
            data_type: DataType::Int(None),
            array: false,
            format: None,
        };
    }
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}

/// Each `ARRAY[…]` in a lambda's body as the `make_array(…)` call DataFusion would plan it as:
/// DataFusion plans an array literal's elements without the lambda's parameters in scope.
fn lambda_array_literals(expr: &mut Expr) {
    let Expr::Lambda(lambda) = expr else { return };
    let _ = visit_expressions_mut(lambda.body.as_mut(), |e| {
        if let Expr::Array(array) = e {
            let args = std::mem::take(&mut array.elem).into_iter().map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e))).collect();
            *e = structs::call("make_array", args);
        }
        ControlFlow::<()>::Continue(())
    });
}

fn upper_case_identifiers(expr: &mut Expr) {
    match expr {
        Expr::Identifier(ident) => *ident = quoted(&normalize_ident(ident)),
        Expr::CompoundIdentifier(parts) => {
            for ident in parts.iter_mut() {
                *ident = quoted(&normalize_ident(ident));
            }
        }
        Expr::Lambda(lambda) => match &mut lambda.params {
            OneOrManyWithParens::One(param) => param.name = quoted(&normalize_ident(&param.name)),
            OneOrManyWithParens::Many(params) => {
                for param in params {
                    param.name = quoted(&normalize_ident(&param.name));
                }
            }
        },
        _ => {}
    }
}
