//! The `JOIN`s of a query, read from its AST before DataFusion plans it: which sources it joins,
//! how and on what, checked by ksqlDB's rules and refused in ksqlDB's words; and the names
//! ksqlDB gives the joined columns (`L_A` for `L.A` when another source has an `A` too).

use std::ops::ControlFlow;

use sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, FunctionArg, FunctionArgExpr, Ident, Join, JoinConstraint, JoinOperator, ObjectName,
    ObjectNamePart, SelectItem, TableFactor, visit_expressions_mut,
};

use crate::{
    catalog::{
        Catalog, Format, SourceDef,
        source::{ROWOFFSET, ROWPARTITION, ROWTIME},
        topic_template::TopicTemplate,
    },
    error::{Result, SluiceError},
    parser::{JoinWithin, normalize_ident},
};

/// ksqlDB's refusal of a stream-stream join without a window (`JoinNode.java`).
const NO_WITHIN: &str = "Stream-Stream joins must have a WITHIN clause specified. None was provided. To learn about how to specify a WITHIN clause with a stream-stream join, please visit: https://docs.confluent.io/current/ksql/docs/syntax-reference.html#create-stream-as-select";

/// A source a query reads, and the name its columns are qualified with (its alias, else its
/// name).
#[derive(Debug, Clone)]
pub struct JoinSide {
    pub source: SourceDef,
    pub qualifier: String,
    /// A join stage's key (see [`super::stages`]): what holds it, as a join of all the sources
    /// would have it.
    pub stage_key: super::stages::StageKey,
}

impl JoinSide {
    /// Every column a query can name: declared ones, then the pseudo-columns.
    pub(super) fn has_column(&self, name: &str) -> bool {
        self.source.columns.iter().any(|c| c.name == name) || [ROWTIME, ROWPARTITION, ROWOFFSET].contains(&name)
    }

    /// Whether `exprs` are this source's key columns, each once, in any order.
    fn keyed_by(&self, exprs: &[&Expr]) -> bool {
        let keys: Vec<&str> = self.source.key_columns().map(|c| c.name.as_str()).collect();
        keys.len() == exprs.len()
            && keys.iter().all(|key| {
                exprs
                    .iter()
                    .filter(|e| matches!(e, Expr::CompoundIdentifier(parts) if parts.len() == 2 && parts[1].value == *key))
                    .count()
                    == 1
            })
    }

    /// What `*` selects: key columns, then value columns, as ksqlDB orders them.
    fn star_columns(&self) -> impl Iterator<Item = &str> {
        self.source.key_columns().chain(self.source.non_key_columns()).map(|c| c.name.as_str())
    }
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
    let stage_key = super::stages::stage_key(catalog, &source.name)?;
    Ok(JoinSide { source, qualifier, stage_key })
}

/// How the rows of two sources are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
}

impl JoinKind {
    /// Whether a left row without a match is kept, NULLs in the right's columns.
    pub fn keeps_unmatched_left(self) -> bool {
        matches!(self, JoinKind::Left | JoinKind::Full)
    }

    /// Whether a right row without a match is kept, NULLs in the left's columns.
    pub fn keeps_unmatched_right(self) -> bool {
        matches!(self, JoinKind::Right | JoinKind::Full)
    }
}

/// One source joined with what the query read before it: a table on its primary key, or a
/// stream within a window.
#[derive(Debug, Clone)]
pub struct JoinClause {
    /// The earlier source the condition reads.
    pub left: JoinSide,
    /// The table joined.
    pub right: JoinSide,
    pub kind: JoinKind,
    /// The other side of the condition, its columns qualified; it reads one earlier source.
    pub left_expr: Expr,
    /// The joined source's side of the condition, its columns qualified: a table's primary key
    /// column, or any expression over a stream's columns.
    pub right_expr: Expr,
    /// The condition's further equalities, as (earlier source's side, joined source's side):
    /// `ON a = b AND c = d` matches rows where all hold (beyond ksqlDB, which joins on one).
    pub further: Vec<(Expr, Expr)>,
    /// A stream joined with a stream: how far apart in time their records may be.
    pub within: Option<JoinWithin>,
}

impl JoinClause {
    /// The condition as the planner reads it: each earlier side equal to the joined source's.
    pub fn condition(&self) -> Expr {
        let equal = |left: &Expr, right: &Expr| Expr::BinaryOp {
            left: Box::new(left.clone()),
            op: BinaryOperator::Eq,
            right: Box::new(right.clone()),
        };
        self.further.iter().fold(equal(&self.left_expr, &self.right_expr), |all, (left, right)| Expr::BinaryOp {
            left: Box::new(all),
            op: BinaryOperator::And,
            right: Box::new(equal(left, right)),
        })
    }

    /// Every equality of the condition, the first first, as (earlier side, joined side).
    pub fn equalities(&self) -> impl Iterator<Item = (&Expr, &Expr)> {
        std::iter::once((&self.left_expr, &self.right_expr)).chain(self.further.iter().map(|(l, r)| (l, r)))
    }

    /// Whether the condition is more than one equality.
    pub fn is_composite(&self) -> bool {
        !self.further.is_empty()
    }

    /// The equalities, in the order of the joined source's key columns (as the condition has
    /// them when that side is not keyed by them).
    pub fn equalities_by_right_key(&self) -> Vec<(&Expr, &Expr)> {
        let mut pairs: Vec<(&Expr, &Expr)> = self.equalities().collect();
        let position = |expr: &Expr| match expr {
            Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                self.right.source.key_columns().position(|k| k.name == parts[1].value).unwrap_or(usize::MAX)
            }
            _ => usize::MAX,
        };
        pairs.sort_by_key(|(_, right)| position(right));
        pairs
    }

    /// Whether the condition's other side is its source's key columns: then both sides must be
    /// partitioned alike, as ksqlDB checks.
    pub fn joins_keys(&self) -> bool {
        let lefts: Vec<&Expr> = self.equalities().map(|(l, _)| l).collect();
        self.left.keyed_by(&lefts)
    }

    /// Whether the joined source's side of the condition is its key columns.
    fn joins_right_key(&self) -> bool {
        let rights: Vec<&Expr> = self.equalities().map(|(_, r)| r).collect();
        self.right.keyed_by(&rights)
    }

    /// Whether both sides of the condition are their sources' key columns.
    pub fn joins_both_keys(&self) -> bool {
        self.joins_keys() && self.joins_right_key()
    }

    /// The condition as ksqlDB's refusals quote it: `A = B`, or each equality in parentheses.
    fn quoted_condition(&self, flipped: bool) -> String {
        let (left, right) = (display(&self.left_expr), display(&self.right_expr));
        if !self.is_composite() {
            let (first, second) = if flipped { (right, left) } else { (left, right) };
            return format!("{first} = {second}");
        }
        parenthesized(&self.condition())
    }

    /// A foreign-key join: two tables, the left's side of the condition not its key.
    pub fn foreign_key(&self) -> bool {
        self.left.source.is_table() && self.right.source.is_table() && !self.joins_keys()
    }

    /// The left source's key column, qualified.
    pub fn left_key_column(&self) -> Option<Expr> {
        let key = self.left.source.key_columns().next()?;
        Some(Expr::CompoundIdentifier(vec![quoted(&self.left.qualifier), quoted(&key.name)]))
    }
}

/// A stream joined with one table after another (`FROM s JOIN t1 ON … JOIN t2 ON …`).
#[derive(Debug, Clone)]
pub struct Joins {
    /// Every source, the stream first.
    pub sides: Vec<JoinSide>,
    /// One per table, in order.
    pub clauses: Vec<JoinClause>,
}

impl Joins {
    /// Reads the joins of `first`, each with its `WITHIN` from `withins` (by the join's
    /// position), refusing what ksqlDB refuses, in its words; each join's condition is rewritten
    /// to read qualified columns.
    pub fn analyze(catalog: &Catalog, first: JoinSide, joins: &mut [Join], withins: &[(usize, JoinWithin)]) -> Result<Joins> {
        // As ksqlDB: every condition's columns are resolved before the kinds of join are checked.
        let mut sides = vec![first];
        let mut read = Vec::with_capacity(joins.len());
        for join in joins.iter_mut() {
            let right = resolve(catalog, &mut join.relation)?;
            if sides.iter().any(|s| s.source.name == right.source.name) {
                let name = &right.source.name;
                return Err(SluiceError::Plan(if sides.len() > 1 {
                    format!("N-way joins do not support multiple occurrences of the same source. Source: '{name}'.")
                } else {
                    format!("Can not join '{name}' to '{name}': self joins are not yet supported.")
                }));
            }
            sides.push(right);
            read.push(read_condition(&sides, join)?);
        }
        let mut clauses = Vec::with_capacity(joins.len());
        for (i, (join, condition)) in joins.iter_mut().zip(read).enumerate() {
            let within = withins.iter().find(|(at, _)| *at == i).map(|(_, w)| *w);
            let clause = check_join(&sides[..i + 1], &sides[i + 1], condition, within)?;
            let on = JoinConstraint::On(clause.condition());
            join.join_operator = match clause.kind {
                JoinKind::Inner => JoinOperator::Inner(on),
                JoinKind::Left => JoinOperator::LeftOuter(on),
                JoinKind::Right => JoinOperator::RightOuter(on),
                JoinKind::Full => JoinOperator::FullOuter(on),
            };
            clauses.push(clause);
        }
        let kafka: Vec<&str> = sides
            .iter()
            .filter(|s| s.source.value_format == Format::Kafka)
            .map(|s| s.qualifier.as_str())
            .collect();
        if !kafka.is_empty() {
            return Err(SluiceError::Plan(format!(
                "Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.",
                kafka.join(", ")
            )));
        }
        Ok(Joins { sides, clauses })
    }

    /// The last join after the first whose records of both sides make output — a stream
    /// joined within a window, or a table joined with what tables made — which one scan cannot
    /// run after another join: the sources before it are joined in a stage of their own.
    pub fn staged_clause(&self) -> Option<usize> {
        (1..self.clauses.len()).rev().find(|i| {
            let clause = &self.clauses[*i];
            clause.within.is_some() || self.sides[..=*i + 1].iter().all(|s| s.source.is_table())
        })
    }

    /// Whether more than one source has a column named `name`: ksqlDB then names a selected
    /// `Q.NAME` `Q_NAME`.
    fn clashes(&self, name: &str) -> bool {
        self.sides.iter().filter(|s| s.has_column(name)).count() > 1
    }

    /// What `*` (every source) or `Q.*` (the source qualified `Q`) selects: each column
    /// qualified and named `Q_COLUMN`, as ksqlDB names them in a join.
    pub fn expand_star(&self, only: Option<&str>) -> Result<Vec<SelectItem>> {
        let sides: Vec<&JoinSide> = self.sides.iter().filter(|s| only.is_none_or(|q| s.qualifier == q)).collect();
        if let (Some(qualifier), []) = (only, sides.as_slice()) {
            return Err(SluiceError::Plan(format!("Failed to prepare statement: '{qualifier}' is not a valid stream/table name or alias.")));
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

    /// The name ksqlDB gives a selected column reference without alias: `Q_NAME` when more
    /// than one source has `NAME`, else `NAME`.
    pub fn column_alias(&self, expr: &Expr) -> Option<Ident> {
        let Expr::CompoundIdentifier(parts) = expr else { return None };
        let [qualifier, column] = parts.as_slice() else { return None };
        let column = normalize_ident(column);
        self.clashes(&column)
            .then(|| quoted(&format!("{}_{column}", normalize_ident(qualifier))))
    }

    /// The result's key when no join expression that is a column equals it (`key_columns` is
    /// empty): ksqlDB's synthetic `ROWKEY`, the last join's expression, taken from the side that
    /// has one.
    pub fn synthetic_key(&self) -> Option<Expr> {
        let last = self.clauses.last()?;
        if !self.key_columns().is_empty() || last.is_composite() {
            return None;
        }
        let argument = |expr: &Expr| FunctionArg::Unnamed(FunctionArgExpr::Expr(expr.clone()));
        Some(super::rewrite::function_call("COALESCE", vec![argument(&last.left_expr), argument(&last.right_expr)]))
    }

    /// The name ksqlDB gives the synthetic key: `ROWKEY`, or `ROWKEY_n` for the least `n` no
    /// source's column takes (a column `ROWKEY` taking 0; a join stage's key columns are the
    /// join's own, not a source's).
    pub fn synthetic_key_name(&self) -> String {
        let taken: std::collections::HashSet<u64> = self
            .sides
            .iter()
            .flat_map(|side| side.source.columns.iter().filter(|c| !(c.key && super::stages::is_stage(&side.source.name))))
            .filter_map(|column| match column.name.strip_prefix(SYNTHETIC_KEY) {
                Some("") => Some(0),
                Some(rest) => rest.strip_prefix('_').filter(|n| n.bytes().all(|b| b.is_ascii_digit())).and_then(|n| n.parse().ok()),
                None => None,
            })
            .collect();
        match (0..).find(|n| !taken.contains(n)) {
            Some(0) | None => SYNTHETIC_KEY.to_string(),
            Some(n) => format!("{SYNTHETIC_KEY}_{n}"),
        }
    }

    /// The join expressions that are columns and equal the result's key, in join order, as
    /// (qualifier, column): the last join's, and an earlier join's as long as the one after it
    /// joins on the same column. None under `FULL OUTER JOIN`, where either side may be NULL:
    /// ksqlDB's key is then the synthetic `ROWKEY`, as it is when no join expression is a column.
    pub fn key_columns(&self) -> Vec<(String, String)> {
        // A foreign-key join's rows are the left table's: its key is theirs.
        if let [clause] = self.clauses.as_slice()
            && clause.foreign_key()
        {
            return clause.left.source.key_columns().map(|k| (clause.left.qualifier.clone(), k.name.clone())).collect();
        }
        if self.clauses.last().is_some_and(JoinClause::is_composite) {
            return self.key_parts().concat();
        }
        let mut columns = Vec::new();
        for (i, clause) in self.clauses.iter().enumerate().rev() {
            // An earlier join on several equalities keys its rows by all of them, not by one.
            if let Some(next) = self.clauses.get(i + 1)
                && (clause.is_composite() || (next.left_expr != clause.left_expr && next.left_expr != clause.right_expr))
            {
                break;
            }
            if clause.kind == JoinKind::Full {
                break;
            }
            if let Expr::CompoundIdentifier(parts) = &clause.right_expr {
                columns.push((parts[0].value.clone(), parts[1].value.clone()));
            }
            if let Expr::CompoundIdentifier(parts) = &clause.left_expr {
                columns.push((parts[0].value.clone(), parts[1].value.clone()));
            }
            // A stage joined on its key: every column of it the key equals is a key column, in
            // the order the joins it ran have them.
            if clause.left.stage_key.is_read_by(&clause.left_expr) {
                let stage = &clause.left.qualifier;
                columns.extend(clause.left.stage_key.columns.iter().rev().map(|c| (stage.clone(), c.clone())));
            }
        }
        columns.reverse();
        let mut unique = Vec::with_capacity(columns.len());
        for column in columns {
            if !unique.contains(&column) {
                unique.push(column);
            }
        }
        unique
    }

    /// The result's key, one part per key column: for each, the join expressions that are
    /// columns and equal it, in the order [`Joins::key_columns`] gives. A last join on several
    /// equalities keys its rows by each of them: one part per equality, its columns, the
    /// earlier side's first.
    pub fn key_parts(&self) -> Vec<Vec<(String, String)>> {
        match self.clauses.last() {
            Some(last) if last.is_composite() => last
                .equalities()
                .map(|(left, right)| [left, right].into_iter().filter_map(qualified_column).collect())
                .collect(),
            _ => vec![self.key_columns()],
        }
    }

    /// Whether any join is on several equalities.
    pub fn has_composite(&self) -> bool {
        self.clauses.iter().any(JoinClause::is_composite)
    }
}

/// The (qualifier, column) a qualified column reference reads.
fn qualified_column(expr: &Expr) -> Option<(String, String)> {
    match expr {
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => Some((parts[0].value.clone(), parts[1].value.clone())),
        _ => None,
    }
}

/// A join's condition read: how the sources are matched (ksqlDB's words for it), the operand
/// reading an earlier source and which one, and the operand reading the table joined.
struct ReadCondition {
    kind_text: &'static str,
    kind: JoinKind,
    left_expr: Expr,
    left_side: usize,
    right_expr: Expr,
    /// The condition was written with the joined source's side first.
    flipped: bool,
    /// Equalities after the first (`… AND c = d`), as (earlier side, joined side).
    further: Vec<(Expr, Expr)>,
}

/// Reads the condition of `join`, whose table is the last of `sides`.
fn read_condition(sides: &[JoinSide], join: &mut Join) -> Result<ReadCondition> {
    let (kind_text, kind, constraint) = match &mut join.join_operator {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => ("[INNER] JOIN", JoinKind::Inner, c),
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => ("LEFT [OUTER] JOIN", JoinKind::Left, c),
        JoinOperator::Right(c) | JoinOperator::RightOuter(c) => ("RIGHT [OUTER] JOIN", JoinKind::Right, c),
        JoinOperator::FullOuter(c) => ("[FULL] OUTER JOIN", JoinKind::Full, c),
        other => return Err(SluiceError::NotImplemented(format!("this kind of join ({other:?})"))),
    };
    let JoinConstraint::On(condition) = constraint else {
        return Err(SluiceError::Plan("A join needs an ON clause: JOIN … ON left.column = right.column".into()));
    };
    let all: Vec<&JoinSide> = sides.iter().collect();
    let mut equalities = Vec::new();
    conjuncts(condition, &mut equalities);
    let whole = parenthesized(condition);
    let composite = equalities.len() > 1;
    let mut splits = Vec::with_capacity(equalities.len());
    for mut equality in equalities {
        if composite && !matches!(&equality, Expr::BinaryOp { op: BinaryOperator::Eq, .. }) {
            return Err(SluiceError::Plan(format!(
                "Invalid join condition: each condition of a join on several conditions must be an equality of an expression over the joined source and one over a source before it; a filter belongs in WHERE. Got {}.",
                display(&equality)
            )));
        }
        let split = split_condition(&mut equality, &all)?;
        let (left, side, right) = split.operands;
        if splits.first().is_some_and(|(_, first_side, _, _): &(Expr, usize, Expr, bool)| *first_side != side) {
            return Err(SluiceError::Plan(format!(
                "Invalid join condition: the conditions of one join must all compare the same two sources. Got {whole}."
            )));
        }
        if !splits.iter().any(|(l, _, r, _)| *l == left && *r == right) {
            splits.push((left, side, right, split.flipped));
        }
    }
    let mut splits = splits.into_iter();
    let (left_expr, left_side, right_expr, flipped) = splits.next().ok_or_else(|| SluiceError::Internal("a join condition without an equality".into()))?;
    let further = splits.map(|(left, _, right, _)| (left, right)).collect();
    Ok(ReadCondition { kind_text, kind, left_expr, left_side, right_expr, flipped, further })
}

/// The conditions `condition` joins with `AND`, in order.
fn conjuncts(condition: &Expr, out: &mut Vec<Expr>) {
    match condition {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner) => conjuncts(inner, out),
        other => out.push(other.clone()),
    }
}

/// The join of `right` with `before`, refused where ksqlDB refuses it.
fn check_join(before: &[JoinSide], right: &JoinSide, condition: ReadCondition, within: Option<JoinWithin>) -> Result<JoinClause> {
    let ReadCondition { kind_text, kind, left_expr, left_side, right_expr, flipped, further } = condition;
    let left = &before[left_side];
    let got = format!("Got {} {kind_text} {}.", left.source.name, right.source.name);
    let clause = JoinClause { left: left.clone(), right: right.clone(), kind, left_expr, right_expr, further, within };
    check_windows(before, &clause)?;
    check_composite(&clause)?;
    // What the sources before make is a table only when every one of them is.
    let left_is_table = before.iter().all(|s| s.source.is_table());
    match (left_is_table, right.source.is_table()) {
        (false, true) => check_stream_table(clause, &got),
        (true, false) => Err(SluiceError::Plan(format!(
            "Invalid join order: table-stream joins are not supported; only stream-table joins. {got}"
        ))),
        (false, false) if within.is_none() => Err(SluiceError::Plan(NO_WITHIN.into())),
        (false, false) => Ok(clause),
        (true, true) => check_table_table(clause, before.len(), flipped),
    }
}

/// Two tables joined: not windowed, on the right table's primary key; on the left's too, or on
/// any expression over the left's columns (a foreign-key join, INNER or LEFT, only as the first
/// join, as ksqlDB allows it).
fn check_table_table(clause: JoinClause, before: usize, flipped: bool) -> Result<JoinClause> {
    if clause.within.is_some() {
        return Err(SluiceError::Plan(
            "A window definition was provided for a Table-Table join. These joins are not windowed. Please drop the window definition (i.e. the WITHIN clause) and try to execute your Table-Table join again.".into(),
        ));
    }
    if !clause.joins_right_key() {
        return Err(SluiceError::Plan(format!(
            "Invalid join condition: table-table joins require to join on the primary key of the right input table. Got {}.",
            clause.quoted_condition(flipped)
        )));
    }
    if clause.foreign_key() {
        if clause.is_composite() {
            return Err(SluiceError::NotImplemented("a foreign-key join on several conditions".into()));
        }
        if before > 1 {
            return Err(SluiceError::Plan(format!(
                "Invalid join condition: foreign-key table-table joins are not supported as part of n-way joins. Got {} = {}.",
                display(&clause.left_expr),
                display(&clause.right_expr)
            )));
        }
        if clause.left.source.key_columns().count() > 1 {
            return Err(SluiceError::NotImplemented(
                "a foreign-key join of a table whose key has several columns".into(),
            ));
        }
        match clause.kind {
            JoinKind::Right => return Err(SluiceError::Plan("RIGHT OUTER JOIN on a foreign key is not supported".into())),
            JoinKind::Full => return Err(SluiceError::Plan("FULL OUTER JOIN on a foreign key is not supported".into())),
            JoinKind::Inner | JoinKind::Left => {}
        }
    }
    Ok(clause)
}

/// ksqlDB's rules for sources whose keys are windowed: both or neither, of compatible kinds,
/// joined on their keys with windows alike (a row matches the other side's rows of the same key
/// and window). Sluice joins two such sources, not more yet.
fn check_windows(before: &[JoinSide], clause: &JoinClause) -> Result<()> {
    let (left, right) = (&clause.left, &clause.right);
    match (left.source.window, right.source.window) {
        (None, None) => Ok(()),
        (Some(_), None) | (None, Some(_)) => {
            let kind = |side: &JoinSide| side.source.window.map_or("not", |w| w.type_name);
            Err(SluiceError::Plan(format!(
                "Can not join windowed source to non-windowed source.\n`{}` is {} windowed\n`{}` is {} windowed",
                left.qualifier,
                kind(left),
                right.qualifier,
                kind(right)
            )))
        }
        (Some(l), Some(r)) => {
            if l.session != r.session {
                return Err(SluiceError::Plan(format!(
                    "Incompatible windowed sources.\nLeft source: {}\nRight source: {}\nSession windowed sources can only be joined to other session windowed sources, and may still not result in expected behaviour as session bounds must be an exact match for the join to work\nHopping and tumbling windowed sources can only be joined to other hopping and tumbling windowed sources",
                    l.type_name, r.type_name
                )));
            }
            if clause.foreign_key() {
                return Err(SluiceError::Plan("Foreign-key table-table joins are not supported on windowed tables.".into()));
            }
            if !clause.joins_both_keys() || l.size_ms != r.size_ms {
                return Err(SluiceError::Plan(
                    "Implicit repartitioning of windowed sources is not supported. See https://github.com/confluentinc/ksql/issues/4385.".into(),
                ));
            }
            if before.len() > 1 {
                return Err(SluiceError::NotImplemented("joining more than two sources whose keys are windowed".into()));
            }
            Ok(())
        }
    }
}

/// A stream joined with a table: not windowed, INNER or LEFT, on the table's primary key.
fn check_stream_table(clause: JoinClause, got: &str) -> Result<JoinClause> {
    if clause.within.is_some() {
        return Err(SluiceError::Plan(
            "A window definition was provided for a Stream-Table join. These joins are not windowed. Please drop the window definition (ie. the WITHIN clause) and try to execute your join again.".into(),
        ));
    }
    match clause.kind {
        JoinKind::Inner | JoinKind::Left => {}
        JoinKind::Full => {
            return Err(SluiceError::Plan(format!(
                "Invalid join type: full-outer join not supported for stream-table join. {got}"
            )));
        }
        JoinKind::Right => {
            return Err(SluiceError::Plan(format!(
                "Invalid join type: right join not supported for stream-table join. {got}"
            )));
        }
    }
    if clause.joins_right_key() {
        return Ok(clause);
    }
    Err(SluiceError::Plan(format!(
        "Invalid join condition: stream-table joins require to join on the table's primary key. Got {}.",
        clause.quoted_condition(false)
    )))
}

/// What a join on several equalities needs: a column on one side of each, which the result's
/// key is made of, a key column per equality; under `FULL OUTER JOIN` either side may be NULL,
/// and ksqlDB's synthetic key is one column.
fn check_composite(clause: &JoinClause) -> Result<()> {
    if !clause.is_composite() {
        return Ok(());
    }
    if clause.kind == JoinKind::Full {
        return Err(SluiceError::NotImplemented(
            "a FULL OUTER JOIN on several conditions: its result would need a synthetic key of several columns".into(),
        ));
    }
    match clause.equalities().find(|(left, right)| qualified_column(left).is_none() && qualified_column(right).is_none()) {
        Some((left, right)) => Err(SluiceError::NotImplemented(format!(
            "a join on several conditions where one compares no column ({} = {}): the result's key has a column per condition, named after a column it compares",
            display(left),
            display(right)
        ))),
        None => Ok(()),
    }
}

/// A condition's operands: the one reading an earlier source, which source that is, and the one
/// reading the source joined; and whether they were written the other way round.
struct Split {
    operands: (Expr, usize, Expr),
    flipped: bool,
}

/// The operands of `a = b`, every column qualified: the one reading an earlier source (and
/// which), then the one reading the source joined (the last of `sides`).
fn split_condition(condition: &mut Expr, sides: &[&JoinSide]) -> Result<Split> {
    let whole = display(condition);
    let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = condition else {
        return Err(SluiceError::Plan(format!("Unsupported join expression: {whole}. Only equality conditions are supported.")));
    };
    let first = qualify(left, sides)?;
    let second = qualify(right, sides)?;
    let (Some(first), Some(second)) = (first, second) else {
        let operand = if first.is_none() { left.as_ref() } else { right.as_ref() };
        return Err(SluiceError::Plan(format!(
            "Invalid comparison expression '{}' in join '({whole})'. Each side of the join comparision must contain references from exactly one source.",
            display(operand)
        )));
    };
    let joined = sides.len() - 1;
    let name = |side: usize| &sides[side].source.name;
    if first == second {
        return Err(SluiceError::Plan(format!(
            "Each side of the join must reference exactly one source and not the same source. Left side references `{}` and right references `{}`",
            name(first),
            name(second)
        )));
    }
    match (first == joined, second == joined) {
        (false, true) => Ok(Split { operands: (*left.clone(), first, *right.clone()), flipped: false }),
        (true, false) => Ok(Split { operands: (*right.clone(), second, *left.clone()), flipped: true }),
        _ => Err(SluiceError::Plan(format!(
            "A join criteria is expected to reference the source (`{}`) in the FROM clause, instead the right source references `{}` and the left source references `{}`",
            name(joined),
            name(second),
            name(first)
        ))),
    }
}

/// Qualifies every column `operand` reads; the one source they all belong to, `None` when
/// they read none or several.
fn qualify(operand: &mut Expr, sides: &[&JoinSide]) -> Result<Option<usize>> {
    let _ = visit_expressions_mut(operand, |expr| {
        qualified_root(expr, sides);
        ControlFlow::<()>::Continue(())
    });
    let mut read = std::collections::BTreeSet::new();
    let mut failure = None;
    let _ = visit_expressions_mut(operand, |expr| {
        match resolve_column(expr, sides) {
            Ok(Some((side, qualified))) => {
                read.insert(side);
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
    Ok(match read.len() {
        1 => read.first().copied(),
        _ => None,
    })
}

/// A struct field or element read through a qualified column (`Q.C->F`, `Q.C[1]`, which the
/// parser hands over as `Q` accessed by `.C`, then the rest) made to read the column `Q.C`, as
/// an unqualified `C->F` reads `C`.
fn qualified_root(expr: &mut Expr, sides: &[&JoinSide]) {
    let Expr::CompoundFieldAccess { root, access_chain } = expr else { return };
    let (Expr::Identifier(qualifier), Some(AccessExpr::Dot(Expr::Identifier(column)))) = (root.as_ref(), access_chain.first()) else {
        return;
    };
    if !sides.iter().any(|s| s.qualifier == normalize_ident(qualifier)) {
        return;
    }
    let column = Expr::CompoundIdentifier(vec![qualifier.clone(), column.clone()]);
    access_chain.remove(0);
    *expr = match access_chain.is_empty() {
        true => column,
        false => Expr::CompoundFieldAccess { root: Box::new(column), access_chain: std::mem::take(access_chain) },
    };
}

/// The source a column reference reads and the reference qualified; `None` for anything else.
fn resolve_column(expr: &Expr, sides: &[&JoinSide]) -> Result<Option<(usize, Expr)>> {
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
                .ok_or_else(|| SluiceError::Plan(format!("Failed to prepare statement: '{qualifier}' is not a valid stream/table name or alias.")))?;
            if !sides[side].has_column(&column) {
                return Err(SluiceError::Plan(format!("JOIN ON column '{qualifier}.{column}' cannot be resolved.")));
            }
            side
        }
        None => {
            let having: Vec<usize> = (0..sides.len()).filter(|i| sides[*i].has_column(&column)).collect();
            match having.as_slice() {
                [side] => *side,
                [] => return Err(SluiceError::Plan(format!("JOIN ON column '{column}' cannot be resolved."))),
                [init @ .., last] => {
                    let names: Vec<String> = init.iter().map(|i| format!("{}.{column}", sides[*i].qualifier)).collect();
                    return Err(SluiceError::Plan(format!(
                        "Column '{column}' is ambiguous. Could be {} or {}.{column}.",
                        names.join(", "),
                        sides[*last].qualifier
                    )));
                }
            }
        }
    };
    Ok(Some((side, Expr::CompoundIdentifier(vec![quoted(&sides[side].qualifier), quoted(&column)]))))
}

/// What ksqlDB names a join's synthetic key, when no source has a column of that name.
pub const SYNTHETIC_KEY: &str = "ROWKEY";

/// ksqlDB's refusal of a join's result whose projection lacks the key: one of `expressions`, the
/// join expressions the key equals, or the synthetic key (its name alone).
pub fn key_missing(sink: &str, expressions: &[String], synthetic_key: bool) -> SluiceError {
    let (plural, listed) = match expressions {
        [one] => ("", one.clone()),
        [init @ .., last] => ("s", format!("{} or {last}", init.join(", "))),
        [] => ("", String::new()),
    };
    let (see, synthetic) = if synthetic_key {
        (
            "See https://cnfl.io/2LV7ouS.",
            format!("\n{listed} was added as a synthetic key column because the join criteria did not match any source column. This expression must be included in the projection and may be aliased. "),
        )
    } else {
        ("", String::new())
    };
    SluiceError::Plan(format!(
        "Key missing from projection (ie, SELECT). {see}\nThe query used to build `{sink}` must include the join expression{plural} {listed} in its projection (eg, SELECT {}...).{synthetic}",
        expressions.first().map_or("", String::as_str)
    ))
}

/// `expr` as ksqlDB prints it in messages: identifiers upper-cased, unquoted.
pub fn display(expr: &Expr) -> String {
    let mut plain = expr.clone();
    let _ = visit_expressions_mut(&mut plain, |e| {
        match e {
            // ksqlDB prints a NULL literal in lower case.
            Expr::Value(value) if value.value == sqlparser::ast::Value::Null => *e = Expr::Identifier(Ident::new("null")),
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

/// `expr` as ksqlDB prints an expression: names upper-cased, columns unqualified, each binary
/// operation in parentheses (`(F1 * SUM(F2))`).
pub fn ksql_text(expr: &Expr) -> String {
    let mut plain = expr.clone();
    let _ = visit_expressions_mut(&mut plain, |e| {
        match e {
            Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last().cloned() {
                    *e = Expr::Identifier(last);
                }
            }
            Expr::Function(function) => {
                function.name = ObjectName::from(vec![Ident::new(function.name.to_string().to_uppercase())]);
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    parenthesized(&plain)
}

/// `expr` as ksqlDB prints a condition: each binary operation in parentheses.
fn parenthesized(expr: &Expr) -> String {
    match expr {
        Expr::BinaryOp { left, op, right } => format!("({} {op} {})", parenthesized(left), parenthesized(right)),
        Expr::Nested(inner) => parenthesized(inner),
        other => display(other),
    }
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}
