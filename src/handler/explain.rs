//! `EXPLAIN`: a persistent query's description by id — its operators, the topics it reads and
//! writes, the internal topics it keeps its positions and errors in, its state — or the plan a
//! `SELECT`, `CREATE … AS SELECT` or `INSERT INTO … SELECT` would run, without running it.

use serde_json::{Value, json};

use super::{Engine, ddl, entity};
use crate::{
    catalog::{SourceDef, types::SqlType},
    error::{Result, SluiceError},
    parser::{ColumnDef, Explain, KsqlParser, ParsedStatement, Select, Statement},
    planner::{ContinuousPlan, QueryPlanner, SinkTarget},
    runtime::origin::Guarantee,
};

pub async fn explain(engine: &Engine, parsed: &ParsedStatement, explain: &Explain) -> Result<Value> {
    let description = match explain {
        Explain::Query(id) => {
            let query = engine.catalog.query(id).ok_or_else(|| {
                SluiceError::NotFound(format!("Query with id:{id} does not exist, use SHOW QUERIES to view the full set of queries."))
            })?;
            let statement = KsqlParser::parse_one_with_types(&query.statement, &engine.catalog.types())?.statement;
            let plan = QueryPlanner::plan(&engine.catalog, selected(&statement)?).await?;
            let sink = engine.catalog.stream(&query.sink)?;
            let states = engine.query_states(id);
            let (counts, state) = entity::state_counts(&states);
            let mut description = describe(engine, id, &query.statement, &plan, Some(&sink), &query.properties)?;
            description["state"] = json!(state);
            description["statusCount"] = json!(counts);
            description["ksqlHostQueryStatus"] = json!(states);
            description["tasksMetadata"] = tasks_metadata(engine, &query);
            description
        }
        Explain::Statement(statement) => {
            let text = parsed.text.trim_start()["EXPLAIN".len()..].trim().to_string();
            let plan = QueryPlanner::plan(&engine.catalog, selected(statement)?).await?;
            let sink = match statement.as_ref() {
                Statement::CreateAsSelect(csas) => Some(ddl::sink_source(csas, &plan, &text, &Default::default())?.0),
                Statement::InsertSelect(insert) => Some(engine.catalog.stream(&insert.target)?),
                _ => None,
            };
            describe(engine, "", &text, &plan, sink.as_ref(), &Default::default())?
        }
    };
    Ok(json!({"@type": "queryDescription", "statementText": parsed.text, "queryDescription": description, "warnings": []}))
}

/// ksqlDB's `tasksMetadata`: a task per source partition (`0_<partition>`, the partitions of
/// every source topic together, as Kafka Streams groups co-partitioned inputs), with how far the
/// query has read each on the server running it and the partition's end; empty while no server
/// runs it.
fn tasks_metadata(engine: &Engine, query: &crate::catalog::QueryDef) -> Value {
    let Some(read) = engine.query_positions(&query.id) else { return json!([]) };
    let catalog = engine.catalog.snapshot();
    let lags = engine.source_lags(&catalog, query, Some(&read), &mut Default::default());
    let mut tasks: std::collections::BTreeMap<i32, Vec<Value>> = std::collections::BTreeMap::new();
    for p in lags {
        tasks.entry(p.partition).or_default().push(json!({
            "topicPartitionEntity": {"topic": p.topic, "partition": p.partition},
            "endOffset": p.end,
            "committedOffset": p.current,
        }));
    }
    tasks
        .into_iter()
        .map(|(partition, offsets)| json!({"taskId": format!("0_{partition}"), "topicOffsets": offsets, "timeCurrentIdlingStarted": null}))
        .collect()
}

/// The `SELECT` a query-running statement runs.
fn selected(statement: &Statement) -> Result<&Select> {
    match statement {
        Statement::Select(select) => Ok(select),
        Statement::CreateAsSelect(csas) => Ok(&csas.select),
        Statement::InsertSelect(insert) => Ok(&insert.select),
        other => Err(SluiceError::Plan(format!("The provided statement does not run a ksql query: {other}"))),
    }
}

/// ksqlDB's `QueryDescription`, with Sluice's operators as its `executionPlan` and how the
/// runtime runs them as its `topology`.
fn describe(
    engine: &Engine,
    id: &str,
    statement: &str,
    plan: &ContinuousPlan,
    sink: Option<&SourceDef>,
    properties: &std::collections::BTreeMap<String, String>,
) -> Result<Value> {
    let operators = plan.operators(sink.map(|s| SinkTarget {
        name: &s.name,
        topic: &s.topic,
        value_format: s.value_format.name(),
    }));
    let fields = match sink {
        Some(sink) => entity::fields(&sink.columns),
        None => entity::fields(&output_columns(plan)?),
    };
    let mut sources = vec![plan.source.name.clone()];
    sources.extend(plan.pair_join().map(|p| p.right.name.clone()));
    sources.extend(plan.join.iter().flat_map(|j| j.tables()).map(|t| t.name.clone()));
    let window_type = plan.aggregation.as_ref().and_then(|a| a.window).map(|w| match w.kind {
        crate::parser::WindowKind::Tumbling { .. } => "TUMBLING",
        crate::parser::WindowKind::Hopping { .. } => "HOPPING",
        crate::parser::WindowKind::Session { .. } => "SESSION",
    });
    Ok(json!({
        "id": id,
        "statementText": statement,
        "windowType": window_type,
        "fields": fields,
        "sources": sources,
        "sinks": sink.map(|s| vec![s.name.clone()]).unwrap_or_default(),
        "topology": topology(engine, plan, sink, properties)?,
        "executionPlan": operators.to_string(),
        "overriddenProperties": properties,
        "ksqlHostQueryStatus": {},
        "queryType": if sink.is_some() { "PERSISTENT" } else { "PUSH" },
        "queryErrors": [],
        "tasksMetadata": []
    }))
}

/// A push query's columns, its key columns marked.
fn output_columns(plan: &ContinuousPlan) -> Result<Vec<ColumnDef>> {
    plan.output_schema
        .fields()
        .iter()
        .zip(&plan.key_outputs)
        .map(|(field, key)| {
            let data_type = SqlType::from_arrow(field.data_type())?;
            Ok(if *key { ColumnDef::key(field.name(), data_type) } else { ColumnDef::value(field.name(), data_type) })
        })
        .collect()
}

/// How the runtime runs the plan: the topics it reads, whether its scan is shared, where its
/// positions and processing errors go, and its output guarantee.
fn topology(
    engine: &Engine,
    plan: &ContinuousPlan,
    sink: Option<&SourceDef>,
    properties: &std::collections::BTreeMap<String, String>,
) -> Result<String> {
    let mut lines = Vec::new();
    let topics = plan.input_topics();
    lines.push(match plan.pair_join() {
        Some(_) => format!("Scan of topics {} of its own: each record decoded once and joined as it arrives", topics.join(", ")),
        None => format!(
            "Scan of topic {}: each record decoded once, shared by every persistent query over {}",
            topics.join(", "),
            plan.source.name
        ),
    });
    for table in plan.join.iter().flat_map(|j| j.tables()) {
        lines.push(format!("Table {} kept in memory from topic {}, versioned by record time", table.name, table.topic));
    }
    if plan.is_stateful() {
        lines.push("State rebuilt after a restart by replaying the input from the checkpoint it was kept at".into());
    }
    match sink {
        Some(sink) => {
            let guarantee = match Guarantee::from_properties(properties)? {
                Guarantee::ExactlyOnce => "exactly once: on restart the output topic's tail is read back and records already written are skipped",
                Guarantee::AtLeastOnce => "at least once",
            };
            lines.push(format!("Output to topic {} ({guarantee})", sink.topic));
            lines.push(format!("Internal topic {}: the query's input positions and output positions", engine.queries.offsets().topic()));
        }
        None => lines.push("Rows to the client; no positions kept".into()),
    }
    lines.push(format!("Internal topic {}: records the query could not process", engine.queries.processing_log().topic()));
    Ok(lines.join("\n"))
}
