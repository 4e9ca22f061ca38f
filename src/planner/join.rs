//! The `JOIN` of a query, read from its AST before DataFusion plans it: which sources it joins,
//! how and on what, checked by ksqlDB's rules and refused in ksqlDB's words; and the names
//! ksqlDB gives the joined columns (`L_A` for `L.A` when both sources have an `A`).

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, Join, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, SelectItem,
    TableFactor, visit_expressions_mut,
};

use crate::{
    catalog::{
        Catalog, SourceDef,
        source::{ROWOFFSET, ROWPARTITION, ROWTIME},
        topic_template::TopicTemplate,
    },
    error::{Result, SluiceError},
    parser::normalize_ident,
};

/// A source a query reads, and the name its columns are qualified with (its alias, else its
/// name).
#[derive(Debug, Clone)]
pub struct JoinSide {
    pub source: SourceDef,
    pub qualifier: String,
}

impl JoinSide {
    /// Every column a query can name: declared ones, then the pseudo-columns.
    fn has_column(&self, name: &str) -> bool {
        self.source.columns.iter().any(|c| c.name == name) || [ROWTIME, ROWPARTITION, ROWOFFSET].contains(&name)
    }

    /// What `*` selects: key columns, then value columns, as ksqlDB orders them.
    fn star_columns(&self) -> impl Iterator<Item = &str> {
        self.source.key_columns().chain(self.source.value_columns()).map(|c| c.name.as_str())
    }
}

/// How the rows of the two sides are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
}

/// A stream joined with a table on the table's primary key.
#[derive(Debug, Clone)]
pub struct JoinClause {
    pub left: JoinSide,
    pub right: JoinSide,
    pub kind: JoinKind,
    /// The stream side of the condition, its columns qualified.
    pub left_expr: Expr,
    /// The table's primary key column.
    pub right_key: String,
}

/// The stream or table a `FROM` item names; its name and alias are rewritten as DataFusion
/// reads them.
pub fn resolve(catalog: &Catalog, relation: &mut TableFactor) -> Result<JoinSide> {
    let TableFactor::Table { name, alias, .. } = relation else {
        return Err(SluiceError::NotImplemented("reading from anything but a stream or table name".into()));
    };
    let source_name = name
        .0
        .last()
        .and_then(ObjectNamePart::as_ident)
        .map(normalize_ident)
        .ok_or_else(|| SluiceError::Plan("the FROM clause names no stream".into()))?;
    let source = catalog.stream(&source_name)?;
    if TopicTemplate::parse(&source.topic)?.is_some() {
        return Err(SluiceError::NotImplemented(format!(
            "reading {source_name}, whose records go to a topic per value of {}; declare a stream over the topics to read",
            source.topic
        )));
    }
    *name = ObjectName::from(vec![quoted(&source.name)]);
    let qualifier = match alias {
        Some(alias) => {
            let normalized = normalize_ident(&alias.name);
            alias.name = quoted(&normalized);
            normalized
        }
        None => source.name.clone(),
    };
    Ok(JoinSide { source, qualifier })
}

/// Reads the join of `left` with `join`, refusing what ksqlDB refuses, in its words.
pub fn analyze(catalog: &Catalog, left: JoinSide, join: &mut Join) -> Result<JoinClause> {
    let right = resolve(catalog, &mut join.relation)?;
    let (kind_text, kind, constraint) = match &mut join.join_operator {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => ("[INNER] JOIN", Some(JoinKind::Inner), c),
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => ("LEFT [OUTER] JOIN", Some(JoinKind::Left), c),
        JoinOperator::Right(c) | JoinOperator::RightOuter(c) => ("RIGHT [OUTER] JOIN", None, c),
        JoinOperator::FullOuter(c) => ("[FULL] OUTER JOIN", None, c),
        other => return Err(SluiceError::NotImplemented(format!("this kind of join ({other:?})"))),
    };
    // As ksqlDB: the condition's columns are resolved before the kinds of join are checked.
    let JoinConstraint::On(condition) = constraint else {
        return Err(SluiceError::Plan("A join needs an ON clause: JOIN … ON left.column = right.column".into()));
    };
    let sides = [&left, &right];
    let (left_expr, right_expr) = split_condition(condition, &sides)?;
    let got = format!("Got {} {kind_text} {}.", left.source.name, right.source.name);
    match (left.source.is_table(), right.source.is_table()) {
        (false, true) => {}
        (true, false) => {
            return Err(SluiceError::Plan(format!(
                "Invalid join order: table-stream joins are not supported; only stream-table joins. {got}"
            )));
        }
        (false, false) => return Err(SluiceError::NotImplemented("stream-stream joins (JOIN … WITHIN)".into())),
        (true, true) => return Err(SluiceError::NotImplemented("table-table joins".into())),
    }
    let kind = match (kind, kind_text) {
        (Some(kind), _) => kind,
        (None, "[FULL] OUTER JOIN") => {
            return Err(SluiceError::Plan(format!(
                "Invalid join type: full-outer join not supported for stream-table join. {got}"
            )));
        }
        (None, _) => {
            return Err(SluiceError::Plan(format!(
                "Invalid join type: right join not supported for stream-table join. {got}"
            )));
        }
    };
    let keys: Vec<&str> = right.source.key_columns().map(|c| c.name.as_str()).collect();
    let right_key = match (&right_expr, keys.as_slice()) {
        (Expr::CompoundIdentifier(parts), [key]) if normalize_ident(&parts[1]) == *key => key.to_string(),
        _ => {
            return Err(SluiceError::Plan(format!(
                "Invalid join condition: stream-table joins require to join on the table's primary key. Got {} = {}.",
                display(&left_expr),
                display(&right_expr)
            )));
        }
    };
    Ok(JoinClause { left, right, kind, left_expr, right_key })
}

/// The two operands of `left = right`, every column qualified, the left source's first.
fn split_condition(condition: &mut Expr, sides: &[&JoinSide; 2]) -> Result<(Expr, Expr)> {
    let whole = display(condition);
    let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = condition else {
        let multiple = matches!(condition, Expr::BinaryOp { op: BinaryOperator::And, .. });
        return Err(SluiceError::Plan(if multiple {
            "Invalid join condition: joins on multiple conditions are not yet supported.".to_string()
        } else {
            format!("Unsupported join expression: {whole}. Only equality conditions are supported.")
        }));
    };
    let first = qualify(left, sides)?;
    let second = qualify(right, sides)?;
    for (operand, side) in [(left.as_ref(), first), (right.as_ref(), second)] {
        if side.is_none() {
            return Err(SluiceError::Plan(format!(
                "Invalid comparison expression '{}' in join '({whole})'. Each side of the join comparision must contain references from exactly one source.",
                display(operand)
            )));
        }
    }
    match (first, second) {
        (Some(0), Some(1)) => Ok((*left.clone(), *right.clone())),
        (Some(1), Some(0)) => Ok((*right.clone(), *left.clone())),
        _ => Err(SluiceError::Plan(format!(
            "Invalid join condition: each side must read a different source. Got {whole}."
        ))),
    }
}

/// Qualifies every column `operand` reads; the one side they all belong to, `None` when
/// they read none or both.
fn qualify(operand: &mut Expr, sides: &[&JoinSide; 2]) -> Result<Option<usize>> {
    let mut read = [false, false];
    let mut failure = None;
    let _ = visit_expressions_mut(operand, |expr| {
        match resolve_column(expr, sides) {
            Ok(Some((side, qualified))) => {
                read[side] = true;
                *expr = qualified;
            }
            Ok(None) => {}
            Err(e) => {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(match read {
        [true, false] => Some(0),
        [false, true] => Some(1),
        _ => None,
    })
}

/// The side a column reference reads and the reference qualified; `None` for anything else.
fn resolve_column(expr: &Expr, sides: &[&JoinSide; 2]) -> Result<Option<(usize, Expr)>> {
    let (qualifier, column) = match expr {
        Expr::Identifier(ident) => (None, normalize_ident(ident)),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => (Some(normalize_ident(&parts[0])), normalize_ident(&parts[1])),
        _ => return Ok(None),
    };
    let side = match &qualifier {
        Some(qualifier) => {
            let side = sides
                .iter()
                .position(|s| s.qualifier == *qualifier)
                .ok_or_else(|| SluiceError::Plan(format!("'{qualifier}' is not a valid stream/table name or alias.")))?;
            if !sides[side].has_column(&column) {
                return Err(SluiceError::Plan(format!("JOIN ON column '{qualifier}.{column}' cannot be resolved.")));
            }
            side
        }
        None => match (sides[0].has_column(&column), sides[1].has_column(&column)) {
            (true, true) => {
                return Err(SluiceError::Plan(format!(
                    "Column '{column}' is ambiguous. Could be {}.{column} or {}.{column}.",
                    sides[0].qualifier, sides[1].qualifier
                )));
            }
            (true, false) => 0,
            (false, true) => 1,
            (false, false) => return Err(SluiceError::Plan(format!("JOIN ON column '{column}' cannot be resolved."))),
        },
    };
    Ok(Some((side, Expr::CompoundIdentifier(vec![quoted(&sides[side].qualifier), quoted(&column)]))))
}

impl JoinClause {
    fn sides(&self) -> [&JoinSide; 2] {
        [&self.left, &self.right]
    }

    /// The condition as the planner reads it: the stream's side, equal to the table's key.
    pub fn condition(&self) -> Expr {
        Expr::BinaryOp {
            left: Box::new(self.left_expr.clone()),
            op: BinaryOperator::Eq,
            right: Box::new(Expr::CompoundIdentifier(vec![quoted(&self.right.qualifier), quoted(&self.right_key)])),
        }
    }

    /// Whether both sources have a column named `name`: ksqlDB then names a selected
    /// `Q.NAME` `Q_NAME`.
    fn clashes(&self, name: &str) -> bool {
        self.left.has_column(name) && self.right.has_column(name)
    }

    /// What `*` (every source) or `Q.*` (the source qualified `Q`) selects: each column
    /// qualified and named `Q_COLUMN`, as ksqlDB names them in a join.
    pub fn expand_star(&self, only: Option<&str>) -> Result<Vec<SelectItem>> {
        let sides: Vec<&JoinSide> = self.sides().into_iter().filter(|s| only.is_none_or(|q| s.qualifier == q)).collect();
        if let (Some(qualifier), []) = (only, sides.as_slice()) {
            return Err(SluiceError::Plan(format!("'{qualifier}' is not a valid stream/table name or alias.")));
        }
        Ok(sides
            .into_iter()
            .flat_map(|side| {
                side.star_columns().map(|column| SelectItem::ExprWithAlias {
                    expr: Expr::CompoundIdentifier(vec![quoted(&side.qualifier), quoted(column)]),
                    alias: quoted(&format!("{}_{column}", side.qualifier)),
                })
            })
            .collect())
    }

    /// The name ksqlDB gives a selected column reference without alias: `Q_NAME` when both
    /// sources have `NAME`, else `NAME`.
    pub fn column_alias(&self, expr: &Expr) -> Option<Ident> {
        let Expr::CompoundIdentifier(parts) = expr else { return None };
        let [qualifier, column] = parts.as_slice() else { return None };
        let column = normalize_ident(column);
        self.clashes(&column)
            .then(|| quoted(&format!("{}_{column}", normalize_ident(qualifier))))
    }

    /// The join expressions a projection may hold as the result's key, as ksqlDB words them
    /// (`L.A`, `R.A`): the stream side's when it is a column, then the table's key.
    pub fn key_expressions(&self) -> Vec<String> {
        let left = matches!(self.left_expr, Expr::CompoundIdentifier(_)).then(|| display(&self.left_expr));
        left.into_iter().chain([format!("{}.{}", self.right.qualifier, self.right_key)]).collect()
    }
}

/// `expr` as ksqlDB prints it in messages: identifiers upper-cased, unquoted.
pub fn display(expr: &Expr) -> String {
    let mut plain = expr.clone();
    let _ = visit_expressions_mut(&mut plain, |e| {
        match e {
            Expr::Identifier(ident) => *ident = Ident::new(normalize_ident(ident)),
            Expr::CompoundIdentifier(parts) => {
                for ident in parts.iter_mut() {
                    *ident = Ident::new(normalize_ident(ident));
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    plain.to_string()
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}
