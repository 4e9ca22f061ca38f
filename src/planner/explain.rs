//! A continuous plan's operators as `EXPLAIN` shows them: a tree from the sink down to the
//! sources, each operator with what it does and the schema of the rows it makes.

use std::{fmt, sync::Arc};

use arrow::datatypes::Schema;
use datafusion::{
    physical_expr::{PhysicalExpr, aggregate::AggregateFunctionExpr},
    physical_expr_common::physical_expr::fmt_sql,
};

use super::{ContinuousPlan, JoinKind, PairJoin};
use crate::{
    catalog::{SourceDef, types::SqlType},
    parser::{WindowKind, window::format_duration},
};

/// One operator of a plan and the operators it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// ksqlDB's step name: `SOURCE`, `FILTER`, `PROJECT`, `SINK`, …
    pub name: &'static str,
    /// What the operator does, as `label: value` pairs.
    pub details: Vec<(&'static str, String)>,
    pub inputs: Vec<Operator>,
}

impl Operator {
    fn new(name: &'static str, details: Vec<(&'static str, String)>, inputs: Vec<Operator>) -> Self {
        Self { name, details, inputs }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        write!(f, "{} > [ {} ]", "\t\t".repeat(depth), self.name)?;
        for (label, value) in &self.details {
            write!(f, " | {label}: {value}")?;
        }
        writeln!(f)?;
        self.inputs.iter().try_for_each(|input| input.write(f, depth + 1))
    }
}

/// The tree in ksqlDB's indented `executionPlan` text, the sink on the first line.
impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, 0)
    }
}

/// Where a plan's output goes, for its `SINK` operator; a push query's rows go to its client.
pub struct SinkTarget<'a> {
    pub name: &'a str,
    pub topic: &'a str,
    pub value_format: &'a str,
}

impl ContinuousPlan {
    /// The plan's operators, from its sink (or the push query's client) down to its sources.
    pub fn operators(&self, sink: Option<SinkTarget<'_>>) -> Operator {
        let mut top = self.read_operator();
        if let Some(filter) = &self.filter {
            top = Operator::new("FILTER", vec![("Condition", expr_text(filter))], vec![top]);
        }
        if let Some(partition) = &self.partition_by {
            let keys: Vec<String> = self.projection[..partition.keys].iter().map(|c| expr_text(&c.expr)).collect();
            let keys = if keys.is_empty() { "NULL".to_string() } else { keys.join(", ") };
            top = Operator::new("REKEY", vec![("Key", keys)], vec![top]);
        }
        if let Some(aggregation) = &self.aggregation {
            let mut details = vec![
                ("Group by", exprs_text(&aggregation.group_by)),
                ("Aggregates", aggregation.aggregates.iter().map(|a| aggregate_text(a)).collect::<Vec<_>>().join(", ")),
            ];
            if let Some(window) = &aggregation.window {
                let kind = match window.kind {
                    WindowKind::Tumbling { size_ms } => format!("TUMBLING (SIZE {})", format_duration(size_ms)),
                    WindowKind::Hopping { size_ms, advance_ms } => {
                        format!("HOPPING (SIZE {}, ADVANCE BY {})", format_duration(size_ms), format_duration(advance_ms))
                    }
                    WindowKind::Session { gap_ms } => format!("SESSION ({})", format_duration(gap_ms)),
                };
                details.push(("Window", format!("{kind}, GRACE PERIOD {}", format_duration(window.grace_ms))));
            }
            if aggregation.emit_final {
                details.push(("Emit", "FINAL".into()));
            }
            top = Operator::new("AGGREGATE", details, vec![top]);
            if let Some(having) = &aggregation.having {
                top = Operator::new("HAVING", vec![("Condition", expr_text(having))], vec![top]);
            }
        }
        let projection = if self.forwards_value {
            "every column; record values forwarded unchanged".to_string()
        } else {
            self.projection.iter().map(|c| format!("{} AS {}", expr_text(&c.expr), c.name)).collect::<Vec<_>>().join(", ")
        };
        top = Operator::new("PROJECT", vec![("Columns", projection), ("Schema", schema_text(&self.output_schema))], vec![top]);
        if let Some(limit) = self.limit {
            top = Operator::new("LIMIT", vec![("Rows", limit.to_string())], vec![top]);
        }
        match sink {
            Some(sink) => Operator::new(
                "SINK",
                vec![("Name", sink.name.to_string()), ("Topic", sink.topic.to_string()), ("Value format", sink.value_format.to_string())],
                vec![top],
            ),
            None => Operator::new("PUSH", vec![("Rows", "to the client".into())], vec![top]),
        }
    }

    /// The operators reading the sources and joining them, before the filter.
    fn read_operator(&self) -> Operator {
        let mut top = match self.pair_join() {
            Some(pair) => pair_operator(pair, source_operator(&self.source)),
            None => source_operator(&self.source),
        };
        for step in self.join.iter().flat_map(|j| &j.steps) {
            top = Operator::new(
                "STREAM-TABLE JOIN",
                vec![("Kind", kind_text(step.kind).into()), ("Stream key", exprs_text(&step.stream_keys))],
                vec![top, source_operator(&step.table)],
            );
        }
        top
    }
}

fn pair_operator(pair: &PairJoin, left: Operator) -> Operator {
    let name = match (pair.within, pair.foreign) {
        (Some(_), _) => "STREAM-STREAM JOIN",
        (None, true) => "FOREIGN-KEY JOIN",
        (None, false) => "TABLE-TABLE JOIN",
    };
    let mut details = vec![("Kind", kind_text(pair.kind).to_string())];
    details.push(("Left key", exprs_text(&pair.left_keys)));
    details.push(("Right key", exprs_text(&pair.right_keys)));
    if let Some(within) = pair.within {
        details.push(("Window", within.to_string()));
    }
    Operator::new(name, details, vec![left, source_operator(&pair.right)])
}

fn source_operator(source: &SourceDef) -> Operator {
    let columns = source
        .columns
        .iter()
        .map(|c| format!("{} {}{}", c.name, c.data_type, if c.key { " KEY" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ");
    Operator::new(
        "SOURCE",
        vec![
            ("Name", format!("{} ({})", source.name, source.kind.keyword())),
            ("Topic", source.topic.clone()),
            ("Key format", source.key_format.name().into()),
            ("Value format", source.value_format.name().into()),
            ("Schema", columns),
        ],
        Vec::new(),
    )
}

fn kind_text(kind: JoinKind) -> &'static str {
    match kind {
        JoinKind::Inner => "INNER",
        JoinKind::Left => "LEFT OUTER",
        JoinKind::Right => "RIGHT OUTER",
        JoinKind::Full => "FULL OUTER",
    }
}

fn expr_text(expr: &Arc<dyn PhysicalExpr>) -> String {
    fmt_sql(expr.as_ref()).to_string()
}

/// Expressions a join compares, one per equality of its condition.
fn exprs_text(exprs: &[Arc<dyn PhysicalExpr>]) -> String {
    exprs.iter().map(expr_text).collect::<Vec<_>>().join(", ")
}

/// `NAME(argument, …)`, as a user writes an aggregate call.
fn aggregate_text(aggregate: &AggregateFunctionExpr) -> String {
    let arguments: Vec<String> = aggregate.expressions().iter().map(expr_text).collect();
    format!("{}({})", aggregate.fun().name().to_uppercase(), arguments.join(", "))
}

/// `NAME TYPE, …`, in ksqlDB's type names where a column's type has one.
fn schema_text(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| match SqlType::from_arrow(f.data_type()) {
            Ok(sql) => format!("{} {sql}", f.name()),
            Err(_) => format!("{} {}", f.name(), f.data_type()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
