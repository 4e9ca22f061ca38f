//! N-way joins run as stages: one scan pairs two sources, so a join whose records of both
//! sides make output (a stream within a window, a table with what tables made) that comes after
//! another join reads a stage — a `CREATE … AS SELECT *` of the joins before it, a query of its
//! own writing a topic of its own (`<sink>_STAGE<n>`), as ksqlDB's topology passes one join's
//! result to the next. The statement's columns of those sources become the stage's, named as
//! ksqlDB names a join's columns (`S1_V0`), so the result is the one ksqlDB computes.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, GroupByExpr, Ident, ObjectName, ObjectNamePart, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, TableFactor,
    WildcardAdditionalOptions, visit_expressions_mut, visit_relations_mut,
};

use super::{
    join::{self, JoinSide, Joins},
    rewrite,
};
use crate::{
    catalog::Catalog,
    error::{Result, SluiceError},
    parser::{CreateAsSelect, KsqlParser, Properties, PropertyValue, Select, SourceKind, Statement, normalize_ident},
};

/// What follows the sink's name in a stage's.
const STAGE: &str = "_STAGE";

/// A `CREATE … AS SELECT` whose joins need a stage: the stage's statement, and the query
/// reading the stage in place of the sources it joins.
#[derive(Debug)]
pub struct Staged {
    pub stage: CreateAsSelect,
    pub select: Select,
}

/// The stage `select`, the query of sink `sink`, needs, if any; refuses what ksqlDB refuses
/// of its joins.
pub fn split(catalog: &Catalog, sink: &str, select: &Select) -> Result<Option<Staged>> {
    let mut query = select.query.clone();
    let SetExpr::Select(body) = query.body.as_mut() else { return Ok(None) };
    let [from] = body.from.as_mut_slice() else { return Ok(None) };
    if from.joins.len() < 2 {
        return Ok(None);
    }
    let mut analyzed = from.joins.clone();
    let first = join::resolve(catalog, &mut from.relation.clone())?;
    let joins = Joins::analyze(catalog, first, &mut analyzed, &select.withins)?;
    let Some(at) = joins.staged_clause() else { return Ok(None) };
    if joins.has_composite() {
        return Err(SluiceError::NotImplemented(
            "a join on several conditions in a statement whose joins run in stages (a stream joined within a window, or tables joined, after another join)".into(),
        ));
    }
    let name = format!("{sink}{STAGE}{at}");
    let stage = stage_statement(catalog, &name, &joins, select, at)?;

    let mut projection = Vec::with_capacity(body.projection.len());
    for item in std::mem::take(&mut body.projection) {
        match item {
            SelectItem::Wildcard(_) => {
                if joins.synthetic_key().is_some() {
                    projection.push(SelectItem::UnnamedExpr(Expr::Identifier(Ident::new(joins.synthetic_key_name()))));
                }
                projection.extend(joins.expand_star(None)?);
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(source), _) => {
                let qualifier = source.0.last().and_then(ObjectNamePart::as_ident).map(normalize_ident).unwrap_or_default();
                projection.extend(joins.expand_star(Some(&qualifier))?);
            }
            // A column keeps the name the join of every source gives it.
            SelectItem::UnnamedExpr(expr) => match reference(&expr, &joins.sides) {
                Some((side, column, [])) => {
                    let qualified = Expr::CompoundIdentifier(vec![quoted(&joins.sides[side].qualifier), quoted(&column)]);
                    let alias = joins.column_alias(&qualified).unwrap_or_else(|| quoted(&column));
                    projection.push(SelectItem::ExprWithAlias { expr: qualified, alias });
                }
                _ => projection.push(SelectItem::UnnamedExpr(expr)),
            },
            other => projection.push(other),
        }
    }
    // ksqlDB's refusal names the join expressions of every source, not the stage's.
    let grouped = !matches!(&body.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    let candidates = joins.key_columns();
    let projects_key = projection.iter().any(|item| match item {
        SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => match reference(expr, &joins.sides) {
            Some((side, column, [])) => candidates.contains(&(joins.sides[side].qualifier.clone(), column)),
            _ => false,
        },
        _ => false,
    });
    if !grouped && select.partition_by.is_none() && !candidates.is_empty() && !projects_key {
        let expressions: Vec<String> = candidates.iter().map(|(q, c)| format!("{q}.{c}")).collect();
        return Err(join::key_missing(sink, &expressions, false));
    }
    body.projection = projection;
    if let TableFactor::Table { name: relation, alias, .. } = &mut from.relation {
        *relation = ObjectName::from(vec![quoted(&name)]);
        *alias = None;
    }
    from.joins = analyzed.split_off(at);
    let mut outer = Select {
        query,
        withins: select.withins.iter().filter(|(i, _)| *i >= at).map(|(i, w)| (i - at, *w)).collect(),
        window: select.window.clone(),
        partition_by: select.partition_by.clone(),
        emit_changes: select.emit_changes,
        emit_final: select.emit_final,
        limit: select.limit,
    };
    let read_stage = |expr: &mut Expr| {
        if let Some((side, column, rest)) = reference(expr, &joins.sides).filter(|(side, _, _)| *side <= at) {
            let mut parts = vec![quoted(&name), quoted(&format!("{}_{column}", joins.sides[side].qualifier))];
            parts.extend(rest.iter().cloned());
            *expr = Expr::CompoundIdentifier(parts);
        }
    };
    let _ = visit_expressions_mut(&mut outer.query, |expr| {
        read_stage(expr);
        ControlFlow::<()>::Continue(())
    });
    for key in outer.partition_by.iter_mut().flatten() {
        let _ = visit_expressions_mut(key, |expr| {
            read_stage(expr);
            ControlFlow::<()>::Continue(())
        });
    }
    Ok(Some(Staged { stage, select: reparsed_select(catalog, &outer)? }))
}

/// The stage of `name`: every column of the sources up to join `at`, joined as `select` joins
/// them, into a topic of its own; JSON holds every type exactly.
fn stage_statement(catalog: &Catalog, name: &str, joins: &Joins, select: &Select, at: usize) -> Result<CreateAsSelect> {
    let mut query = select.query.clone();
    if let SetExpr::Select(body) = query.body.as_mut() {
        body.projection = vec![SelectItem::Wildcard(WildcardAdditionalOptions::default())];
        body.from[0].joins.truncate(at);
        body.selection = None;
        body.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
        body.having = None;
    }
    let tables = joins.sides[..=at].iter().all(|s| s.source.is_table());
    let stage = CreateAsSelect {
        or_replace: false,
        kind: if tables { SourceKind::Table } else { SourceKind::Stream },
        if_not_exists: false,
        name: name.to_string(),
        properties: Properties(vec![
            ("KAFKA_TOPIC".into(), PropertyValue::String(name.to_string())),
            ("VALUE_FORMAT".into(), PropertyValue::String("JSON".into())),
        ]),
        select: Select {
            query,
            withins: select.withins.iter().filter(|(i, _)| *i < at).copied().collect(),
            window: None,
            partition_by: None,
            emit_changes: false,
            emit_final: false,
            limit: None,
        },
    };
    match KsqlParser::parse_one_with_types(&format!("{stage};"), &catalog.types())?.statement {
        Statement::CreateAsSelect(parsed) => Ok(parsed),
        other => Err(SluiceError::Internal(format!("a join stage reads back as {other}"))),
    }
}

/// `select` as it reads back from its text, as the command log holds it: what runs now is what
/// a restarted server runs.
fn reparsed_select(catalog: &Catalog, select: &Select) -> Result<Select> {
    let mut select = select.clone();
    // ksqlDB quotes identifiers in backticks.
    let _ = visit_expressions_mut(&mut select.query, |expr| {
        match expr {
            Expr::Identifier(ident) => backticked(ident),
            Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(backticked),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_relations_mut(&mut select.query, |name| {
        name.0.iter_mut().filter_map(|part| match part {
            ObjectNamePart::Identifier(ident) => Some(ident),
            _ => None,
        })
        .for_each(backticked);
        ControlFlow::<()>::Continue(())
    });
    if let SetExpr::Select(body) = select.query.body.as_mut() {
        for item in &mut body.projection {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                backticked(alias);
            }
        }
        for join in body.from.iter_mut().flat_map(|f| f.joins.iter_mut()) {
            if let TableFactor::Table { alias: Some(alias), .. } = &mut join.relation {
                backticked(&mut alias.name);
            }
        }
    }
    match KsqlParser::parse_one_with_types(&format!("{select};"), &catalog.types())?.statement {
        Statement::Select(parsed) => Ok(parsed),
        other => Err(SluiceError::Internal(format!("a query reading a join stage reads back as {other}"))),
    }
}

fn backticked(ident: &mut Ident) {
    if ident.quote_style == Some('"') {
        ident.quote_style = Some('`');
    }
}

/// The source (by position in `sides`), column and struct fields a column reference reads:
/// `Q.C…`, or `C…` when one source has a column `C`.
fn reference<'a>(expr: &'a Expr, sides: &[JoinSide]) -> Option<(usize, String, &'a [Ident])> {
    let parts: &[Ident] = match expr {
        Expr::Identifier(ident) => std::slice::from_ref(ident),
        Expr::CompoundIdentifier(parts) => parts,
        _ => return None,
    };
    if let [qualifier, column, rest @ ..] = parts
        && let Some(side) = sides.iter().position(|s| s.qualifier == normalize_ident(qualifier))
    {
        return Some((side, normalize_ident(column), rest));
    }
    let [column, rest @ ..] = parts else { return None };
    let column = normalize_ident(column);
    let mut having = sides.iter().enumerate().filter(|(_, s)| s.has_column(&column)).map(|(i, _)| i);
    match (having.next(), having.next()) {
        (Some(side), None) => Some((side, column, rest)),
        _ => None,
    }
}

/// Whether the stream `name` is a join stage (`<sink>_STAGE<n>`).
pub fn is_stage(name: &str) -> bool {
    name.rsplit_once(STAGE).is_some_and(|(sink, n)| !sink.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A join stage's key: its columns that hold it (those its query projects from the join
/// expressions equal to the key) and the expressions over its columns that compute it (its last
/// join's), as a join of all the sources has them. Empty for any other source.
#[derive(Debug, Clone, Default)]
pub struct StageKey {
    pub columns: Vec<String>,
    expressions: Vec<String>,
}

impl StageKey {
    /// Whether `expr`, a join's side reading the stage, is the stage's key.
    pub fn is_read_by(&self, expr: &Expr) -> bool {
        match expr {
            Expr::CompoundIdentifier(parts) if parts.len() == 2 && self.columns.contains(&normalize_ident(&parts[1])) => true,
            _ => self.expressions.contains(&join::display(expr)),
        }
    }
}

/// The key of stage `name`, read from the query writing it.
pub fn stage_key(catalog: &Catalog, name: &str) -> Result<StageKey> {
    if !is_stage(name) {
        return Ok(StageKey::default());
    }
    let (_, writers) = catalog.queries_of(name);
    let Some(writer) = writers.first() else { return Ok(StageKey::default()) };
    let Statement::CreateAsSelect(csas) = KsqlParser::parse_one_with_types(&writer.statement, &catalog.types())?.statement else {
        return Ok(StageKey::default());
    };
    let rewritten = rewrite::rewrite(catalog, &csas.select)?;
    let (Some(joins), SetExpr::Select(body)) = (&rewritten.joins, rewritten.query.body.as_ref()) else {
        return Ok(StageKey::default());
    };
    // Each column the stage's query projects as it is, by the name it writes it under.
    let outputs: Vec<((String, String), String)> = body
        .projection
        .iter()
        .filter_map(|item| {
            let (expr, alias) = match item {
                SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
                SelectItem::UnnamedExpr(expr) => (expr, None),
                _ => return None,
            };
            let Expr::CompoundIdentifier(parts) = expr else { return None };
            let [qualifier, column] = parts.as_slice() else { return None };
            let read = (normalize_ident(qualifier), normalize_ident(column));
            let output = alias.map_or_else(|| read.1.clone(), normalize_ident);
            Some((read, output))
        })
        .collect();
    let candidates = joins.key_columns();
    let columns = outputs.iter().filter(|(read, _)| candidates.contains(read)).map(|(_, output)| output.clone()).collect();
    // The last join's expressions, over the stage's columns.
    let expressions = joins
        .clauses
        .last()
        .into_iter()
        .flat_map(|clause| [&clause.left_expr, &clause.right_expr])
        .filter_map(|expr| {
            let mut over_stage = expr.clone();
            let mut complete = true;
            let _ = visit_expressions_mut(&mut over_stage, |e| {
                if let Expr::CompoundIdentifier(parts) = e
                    && let [qualifier, column] = parts.as_slice()
                {
                    let read = (normalize_ident(qualifier), normalize_ident(column));
                    match outputs.iter().find(|(r, _)| *r == read) {
                        Some((_, output)) => *e = Expr::CompoundIdentifier(vec![quoted(name), quoted(output)]),
                        None => complete = false,
                    }
                }
                ControlFlow::<()>::Continue(())
            });
            complete.then(|| join::display(&over_stage))
        })
        .collect();
    Ok(StageKey { columns, expressions })
}

/// The join stages a query writing `sink` reads.
pub fn stages_of(catalog: &Catalog, sink: &str) -> Vec<String> {
    let prefix = format!("{sink}{STAGE}");
    catalog
        .snapshot()
        .streams
        .into_keys()
        .filter(|name| name.strip_prefix(&prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
        .collect()
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('`', name)
}
