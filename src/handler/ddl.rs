//! Statements that change the catalog: CREATE STREAM|TABLE, CSAS, CTAS, INSERT INTO,
//! DROP STREAM|TABLE, TERMINATE, CREATE/DROP CONNECTOR.
//!
//! `validate` checks a statement against the catalog before it is logged; `apply` makes it take
//! effect where it was accepted, where the command log is followed and when it is replayed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Engine, connector, entity};
use crate::{
    catalog::{Format, QueryDef, SourceDef, topic_template::TopicTemplate},
    error::{Result, SluiceError},
    functions::collect::CollectLimits,
    parser::{
        AlterSource, ColumnDef, CreateAsSelect, CreateSource, DropSource, KsqlParser, ParsedStatement, Select, SourceKind,
        QueryAction, QueryControl, QueryTarget, Statement,
    },
    planner::{ContinuousPlan, QueryPlanner},
    properties,
    connectors::kafka::offsets::Checkpoint,
    runtime::{
        OffsetReset,
        connectors::ConnectorManager,
        origin::Guarantee,
        sink::{Destination, QuerySink, Router, TopicSink},
    },
};

/// How a logged statement is applied. The topics a statement needs and where a query it
/// creates starts were settled before it was logged ([`prepare`]); queries are started and
/// stopped by placement, on the server whose share they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Replaying the log at start: the catalog only.
    Replay,
    /// This server accepted the statement: it also forgets a terminated query's positions and
    /// deletes a dropped source's topic when told to.
    Accepted,
    /// Another server of the service accepted it, and did what is done once.
    Followed,
}

impl Mode {
    /// Whether the statement takes effect beyond the catalog now (a table materialized for
    /// pull queries, a query paused), as it does except while replaying.
    fn runs(self) -> bool {
        self != Mode::Replay
    }
}

/// Checks that a logged statement can still be applied to the catalog as it stands: two servers
/// may each accept a statement the other's makes impossible (the same name created twice, a
/// source dropped while a query starts reading it), and the one logged later is refused on
/// every server, as the catalog is the same on every server at that point of the log.
pub fn check_logged(engine: &Engine, parsed: &ParsedStatement) -> Result<()> {
    match &parsed.statement {
        Statement::CreateSource(create) => {
            let existing = engine.catalog.stream(&create.name).ok();
            check_replace(create.kind, &create.name, existing.as_ref(), create.or_replace, create.if_not_exists, create.read_only)
        }
        Statement::CreateAsSelect(csas) => {
            let existing = engine.catalog.stream(&csas.name).ok();
            check_replace(csas.kind, &csas.name, existing.as_ref(), csas.or_replace, csas.if_not_exists, false)
        }
        Statement::DropSource(drop) => {
            let Ok(existing) = engine.catalog.stream(&drop.name) else {
                return if drop.if_exists {
                    Ok(())
                } else {
                    Err(SluiceError::NotFound(format!(
                        "{} {} does not exist.",
                        capitalized(drop.kind.word()),
                        drop.name
                    )))
                };
            };
            if existing.kind != drop.kind {
                return Err(SluiceError::Plan(format!(
                    "Incompatible data source type is {}, but statement was DROP {}",
                    existing.kind, drop.kind
                )));
            }
            let (reads, _) = engine.catalog.queries_of(&drop.name);
            if !reads.is_empty() {
                let ids: Vec<&str> = reads.iter().map(|q| q.id.as_str()).collect();
                return Err(SluiceError::Plan(format!(
                    "Cannot drop {}.\nThe following queries read from this source: [{}].\nYou need to terminate them before dropping {}.",
                    drop.name,
                    ids.join(", "),
                    drop.name
                )));
            }
            Ok(())
        }
        Statement::AlterSource(alter) => altered(engine, alter, &parsed.text).map(|_| ()),
        Statement::CreateConnector(create) if engine.catalog.connector(&create.name).is_some() && !create.if_not_exists => {
            Err(SluiceError::Plan(format!("Connector {} already exists", create.name)))
        }
        _ => Ok(()),
    }
}

/// Checks that `parsed` can be applied to the catalog as it stands.
pub async fn validate(
    engine: &Engine,
    parsed: &ParsedStatement,
    properties: &BTreeMap<String, String>,
) -> Result<()> {
    match &parsed.statement {
        Statement::CreateSource(create) => {
            check_logged(engine, parsed)?;
            let stream = SourceDef::declared(&with_default_formats(create, properties), &parsed.text)?;
            if TopicTemplate::parse(&stream.topic)?.is_some() {
                return Err(SluiceError::Plan(format!(
                    "KAFKA_TOPIC '{}' names a topic per record, which only a query's output can do: use CREATE STREAM … AS SELECT",
                    stream.topic
                )));
            }
            crate::format::RecordDecoder::new(&stream)?;
            if engine.cluster.topic(&stream.topic)?.is_none() && create.properties.get("PARTITIONS").is_none() {
                return Err(SluiceError::Plan(format!(
                    "Topic '{}' does not exist. If you want to create a new topic for the stream/table please re-run the statement providing the required 'PARTITIONS' configuration in the WITH clause (and optionally 'REPLICAS'). For example: CREATE {} {} (...) WITH (KAFKA_TOPIC='{}', PARTITIONS=2, REPLICAS=1, ...);",
                    stream.topic, create.kind, create.name, stream.topic
                )));
            }
            Ok(())
        }
        Statement::CreateAsSelect(csas) => {
            check_logged(engine, parsed)?;
            if csas.select.limit.is_some() {
                return Err(SluiceError::Plan(format!("CREATE {} AS SELECT statements don't support LIMIT clause.", csas.kind)));
            }
            OffsetReset::from_properties(properties)?;
            Guarantee::from_properties(properties)?;
            reserved_names_refused(&csas.select)?;
            let plan = QueryPlanner::plan_with(&engine.catalog, &csas.select, collect_limits(engine, properties)?).await?;
            check_result_kind(csas, &plan)?;
            check_copartitioned(engine, &plan)?;
            let (sink, _, _) = sink_source(csas, &plan, &parsed.text, properties)?;
            if csas.kind == SourceKind::Stream {
                check_source_key(csas, &plan)?;
            }
            if let Some(template) = TopicTemplate::parse(&sink.topic)? {
                if csas.kind == SourceKind::Table {
                    return Err(SluiceError::Plan(format!(
                        "KAFKA_TOPIC '{}' names a topic per record, which only a stream's output can do: a table's rows go to one topic",
                        sink.topic
                    )));
                }
                template_columns(&template, &plan)?;
            }
            Ok(())
        }
        Statement::InsertSelect(insert) => {
            let target = engine.catalog.stream(&insert.target)?;
            writable_stream(&target, "insert into")?;
            OffsetReset::from_properties(properties)?;
            Guarantee::from_properties(properties)?;
            reserved_names_refused(&insert.select)?;
            let plan = QueryPlanner::plan_with(&engine.catalog, &insert.select, collect_limits(engine, properties)?).await?;
            reserved_columns_refused(&plan.output_schema.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>())?;
            check_copartitioned(engine, &plan)?;
            check_insert_schema(&target, &plan)
        }
        Statement::DropSource(drop) => {
            check_logged(engine, parsed)?;
            let Ok(existing) = engine.catalog.stream(&drop.name) else {
                return Ok(());
            };
            if existing.read_only && drop.delete_topic {
                return Err(SluiceError::Plan(format!("Cannot delete topic for read-only source: {}", drop.name)));
            }
            if drop.delete_topic && engine.config.bootstrap_servers.is_none() {
                return Err(SluiceError::NotImplemented(
                    "DELETE TOPIC on the embedded broker: Tansu 0.6.0 deletes the metadata of every topic when it deletes one (tansu-storage src/sql/topic_delete_by.sql). Drop the stream without DELETE TOPIC; its topic stays".into(),
                ));
            }
            Ok(())
        }
        Statement::QueryControl(QueryControl { target: QueryTarget::Query(id), .. }) => match engine.catalog.query(id) {
            Some(_) => Ok(()),
            None => Err(SluiceError::NotFound(format!("Unknown queryId: {id}"))),
        },
        Statement::QueryControl(QueryControl { target: QueryTarget::All, .. }) => Ok(()),
        Statement::CreateConnector(create) => {
            check_logged(engine, parsed)?;
            ConnectorManager::validate(&connector::definition(create))?;
            Ok(())
        }
        Statement::DropConnector(drop) => match engine.catalog.connector(&drop.name) {
            Some(_) => Ok(()),
            None if drop.if_exists => Ok(()),
            None => Err(SluiceError::NotFound(format!("Connector {} does not exist.", drop.name))),
        },
        Statement::AlterSource(alter) => {
            let source = altered(engine, alter, &parsed.text)?;
            crate::format::RecordDecoder::new(&source)?;
            Ok(())
        }
        Statement::CreateType(create) => match engine.catalog.types().get(&create.name) {
            Some(existing) if !create.if_not_exists => Err(SluiceError::Plan(format!(
                "Cannot register custom type '{}' since it is already registered with type: {existing}",
                create.name
            ))),
            _ => Ok(()),
        },
        Statement::DropType(drop) => match engine.catalog.types().get(&drop.name) {
            None if !drop.if_exists => Err(SluiceError::Plan(format!("Type {} does not exist.", drop.name))),
            _ => Ok(()),
        },
        other => Err(SluiceError::Internal(format!("{other} is not a catalog command"))),
    }
}

/// Does what a statement needs before it is logged, as ksqlDB does before it distributes one:
/// creates the topics it declares or writes to, and sets where a query it creates starts (the
/// command carries it, so whichever server runs the query starts it there).
pub async fn prepare(engine: &Engine, parsed: &ParsedStatement, properties: &BTreeMap<String, String>) -> Result<Option<Checkpoint>> {
    match &parsed.statement {
        Statement::CreateSource(create) if !(create.if_not_exists && engine.catalog.has_stream(&create.name)) => {
            let source = SourceDef::declared(&with_default_formats(create, properties), &parsed.text)?;
            let partitions = number(create.properties.get("PARTITIONS"), 1)?;
            let replicas = number(create.properties.get("REPLICAS"), 1)?;
            engine.cluster.ensure_topic(&source.topic, partitions, replicas, &[]).await?;
            Ok(None)
        }
        Statement::CreateAsSelect(csas) if !(csas.if_not_exists && engine.catalog.has_stream(&csas.name)) => {
            let plan = QueryPlanner::plan_with(&engine.catalog, &csas.select, collect_limits(engine, properties)?).await?;
            let (sink, partitions, replicas) = sink_source(csas, &plan, &parsed.text, properties)?;
            let partitions = match partitions {
                Some(p) => p,
                None => engine.cluster.topic(&plan.source.topic)?.map_or(1, |t| t.partitions),
            };
            if TopicTemplate::parse(&sink.topic)?.is_none() {
                engine.cluster.ensure_topic(&sink.topic, partitions, replicas, &[]).await?;
            }
            initial_checkpoint(engine, &plan, &sink.topic, properties).map(Some)
        }
        Statement::InsertSelect(insert) => {
            let target = engine.catalog.stream(&insert.target)?;
            let plan = QueryPlanner::plan_with(&engine.catalog, &insert.select, collect_limits(engine, properties)?).await?;
            initial_checkpoint(engine, &plan, &target.topic, properties).map(Some)
        }
        _ => Ok(None),
    }
}

/// Where a new query starts: its input from `auto.offset.reset`, its output at the ends of
/// `sink_topic` now.
fn initial_checkpoint(engine: &Engine, plan: &ContinuousPlan, sink_topic: &str, properties: &BTreeMap<String, String>) -> Result<Checkpoint> {
    let reset = OffsetReset::from_properties(properties)?;
    let input = engine.queries.plan_start(plan, reset)?;
    Ok(Checkpoint {
        start: plan.is_stateful().then(|| input.clone()),
        input,
        output: Some(engine.queries.output_ends(sink_topic)?),
        idle: Vec::new(),
    })
}

/// Applies a logged statement as `mode` says; `start` is where a query it creates starts.
pub async fn apply(
    engine: &Engine,
    parsed: &ParsedStatement,
    properties: &BTreeMap<String, String>,
    seq: i64,
    mode: Mode,
    start: Option<Checkpoint>,
) -> Result<Value> {
    let text = &parsed.text;
    match &parsed.statement {
        Statement::CreateSource(create) => {
            let word = create.kind.word();
            if engine.catalog.has_stream(&create.name) && create.if_not_exists {
                let message = format!("{} already exists", capitalized(word));
                return Ok(entity::command_status(text, word, &create.name, &message, None, seq));
            }
            let source = SourceDef::declared(&with_default_formats(create, properties), text)?;
            engine.catalog.put_stream(source.clone());
            engine.queries.dematerialize(&create.name);
            if mode.runs() && source.is_materialized() {
                engine.queries.materialize(&source)?;
            }
            Ok(entity::command_status(text, word, &create.name, &format!("{} created", capitalized(word)), None, seq))
        }
        Statement::CreateAsSelect(csas) => {
            let word = csas.kind.word();
            if engine.catalog.has_stream(&csas.name) && csas.if_not_exists {
                let message = format!("{} already exists", capitalized(word));
                return Ok(entity::command_status(text, word, &csas.name, &message, None, seq));
            }
            let plan = QueryPlanner::plan_with(&engine.catalog, &csas.select, collect_limits(engine, properties)?).await?;
            let (sink, _, _) = sink_source(csas, &plan, text, properties)?;
            let prefix = match csas.kind {
                SourceKind::Stream => "CSAS",
                SourceKind::Table => "CTAS",
            };
            let query = QueryDef {
                id: format!("{prefix}_{}_{seq}", csas.name),
                statement: text.clone(),
                source: plan.source.name.clone(),
                joined: plan.joined_sources(),
                sink: sink.name.clone(),
                sink_topic: sink.topic.clone(),
                properties: properties.clone(),
                paused: false,
                sequence: seq,
                initial: start,
            };
            engine.catalog.put_stream(sink.clone());
            let id = query.id.clone();
            engine.catalog.put_query(query);
            engine.queries.dematerialize(&csas.name);
            if mode.runs() && sink.is_materialized() {
                engine.queries.materialize(&sink)?;
            }
            Ok(entity::command_status(text, word, &csas.name, &format!("Created query with ID {id}"), Some(&id), seq))
        }
        Statement::InsertSelect(insert) => {
            let target = engine.catalog.stream(&insert.target)?;
            if target.header_columns().next().is_some() {
                return Err(SluiceError::Plan(format!("Cannot insert into {} because it has header columns", target.name)));
            }
            let plan = QueryPlanner::plan_with(&engine.catalog, &insert.select, collect_limits(engine, properties)?).await?;
            let query = QueryDef {
                id: format!("INSERTQUERY_{seq}"),
                statement: text.clone(),
                source: plan.source.name.clone(),
                joined: plan.joined_sources(),
                sink: target.name.clone(),
                sink_topic: target.topic.clone(),
                properties: properties.clone(),
                paused: false,
                sequence: seq,
                initial: start,
            };
            let id = query.id.clone();
            engine.catalog.put_query(query);
            Ok(entity::command_status(text, "stream", &insert.target, &format!("Created query with ID {id}"), Some(&id), seq))
        }
        Statement::DropSource(drop) => drop_source(engine, drop, text, seq, mode).await,
        Statement::QueryControl(control) => {
            let (ids, target) = match &control.target {
                QueryTarget::Query(id) => (vec![id.clone()], id.as_str()),
                QueryTarget::All => (engine.catalog.snapshot().queries.into_keys().collect(), "ALL"),
            };
            for id in &ids {
                match control.action {
                    QueryAction::Terminate => terminate_query(engine, id, mode).await?,
                    QueryAction::Pause => pause_query(engine, id, mode),
                    QueryAction::Resume => resume_query(engine, id),
                }
            }
            let message = match control.action {
                QueryAction::Terminate => "Query terminated.",
                QueryAction::Pause => "Query paused.",
                QueryAction::Resume => "Query resumed.",
            };
            let command_id = format!("{}/{target}/execute", control.action.word().to_lowercase());
            Ok(serde_json::json!({
                "@type": "currentStatus",
                "statementText": text,
                "commandId": command_id,
                "commandStatus": {"status": "SUCCESS", "message": message, "queryId": null},
                "commandSequenceNumber": seq,
                "warnings": []
            }))
        }
        Statement::CreateConnector(create) => {
            if engine.catalog.connector(&create.name).is_some() && create.if_not_exists {
                let mut answer = connector::created(text, &connector::definition(create));
                answer["warnings"] = serde_json::json!([{"message": format!("Connector {} already exists", create.name)}]);
                return Ok(answer);
            }
            let definition = connector::definition(create);
            engine.catalog.put_connector(definition.clone());
            Ok(connector::created(text, &definition))
        }
        Statement::DropConnector(drop) => {
            if let Some(existing) = engine.catalog.connector(&drop.name) {
                engine.catalog.remove_connector(&existing.name);
                engine.connectors.stop(&existing.name).await;
            }
            Ok(connector::dropped(text, &drop.name))
        }
        Statement::AlterSource(alter) => {
            let source = altered(engine, alter, text)?;
            let message = format!("{} {} altered.", capitalized(source.kind.word()), source.name);
            let command_id = format!("{}/`{}`/alter", source.kind.word(), source.name);
            engine.catalog.put_stream(source);
            Ok(entity::command_done(text, command_id, &message, seq))
        }
        Statement::CreateType(create) => {
            let message = if engine.catalog.put_type(&create.name, create.data_type.clone()) {
                format!("Registered custom type with name '{}' and SQL type {}", create.name, create.data_type)
            } else {
                let existing = engine.catalog.types().get(&create.name).cloned().unwrap_or_else(|| create.data_type.clone());
                format!("{} is already registered with type {existing}", create.name)
            };
            Ok(entity::command_done(text, format!("type/{}/create", create.name), &message, seq))
        }
        Statement::DropType(drop) => {
            let message = match engine.catalog.remove_type(&drop.name) {
                Some(_) => format!("Dropped type '{}'", drop.name),
                None => format!("Type '{}' does not exist", drop.name),
            };
            Ok(entity::command_done(text, format!("type/{}/drop", drop.name), &message, seq))
        }
        other => Err(SluiceError::Internal(format!("{other} is not a catalog command"))),
    }
}

/// `create` with the formats `ksql.persistence.default.format.key` and `….value` give
/// where it names none.
fn with_default_formats(create: &CreateSource, settings: &BTreeMap<String, String>) -> CreateSource {
    let mut create = create.clone();
    if create.properties.get("FORMAT").is_none() {
        for (property, setting) in [("KEY_FORMAT", properties::DEFAULT_KEY_FORMAT), ("VALUE_FORMAT", properties::DEFAULT_VALUE_FORMAT)] {
            if let (None, Some(format)) = (create.properties.get(property), settings.get(setting)) {
                create.properties.0.push((property.into(), crate::parser::PropertyValue::String(format.clone())));
            }
        }
    }
    create
}

/// The limits of `COLLECT_LIST` and `COLLECT_SET` for a query: the server's, overridden by
/// the query's `properties`.
pub fn collect_limits(engine: &Engine, properties: &BTreeMap<String, String>) -> Result<CollectLimits> {
    let mut merged = engine.config.function_properties.clone();
    merged.extend(properties.iter().map(|(k, v)| (k.clone(), v.clone())));
    CollectLimits::from_properties(&merged)
}

/// Starts a catalogued query where it stopped: from its committed checkpoint, else where the
/// server that accepted it set, else from `auto.offset.reset` now.
pub async fn start_query(engine: &Engine, query: &QueryDef) -> Result<()> {
    let parsed = KsqlParser::parse_one_with_types(&query.statement, &engine.catalog.types())?;
    let select: &Select = match &parsed.statement {
        Statement::CreateAsSelect(csas) => &csas.select,
        Statement::InsertSelect(insert) => &insert.select,
        other => return Err(SluiceError::Internal(format!("query {} is {other}", query.id))),
    };
    let plan = QueryPlanner::plan_with(&engine.catalog, select, collect_limits(engine, &query.properties)?).await?;
    let start = match engine.queries.offsets().get(&query.id).or_else(|| query.initial.clone()) {
        Some(start) => start,
        None => {
            let reset = OffsetReset::from_properties(&query.properties)?;
            let input = engine.queries.plan_start(&plan, reset)?;
            Checkpoint {
                start: plan.is_stateful().then(|| input.clone()),
                input,
                output: None,
                idle: Vec::new(),
            }
        }
    };
    start_planned(engine, query, plan, start)
}

fn start_planned(engine: &Engine, query: &QueryDef, mut plan: ContinuousPlan, start: Checkpoint) -> Result<()> {
    let sink = engine.catalog.stream(&query.sink)?;
    plan.per_record_updates = crate::properties::per_record_updates(&query.properties);
    plan.idle_close = crate::properties::window_idle_close(&query.properties);
    // A DELIMITED value is written again, as ksqlDB's serializer quotes it (`"-10"`), and so
    // is a single value wrapped on one side only; a JSON or KAFKA one is forwarded as read.
    plan.forwards_value &= sink.value_format == plan.source.value_format
        && sink.value_format != Format::Delimited
        && sink.wrap_single_value == plan.source.wrap_single_value;
    // The sink's `TIMESTAMP` column stamps each output record.
    if let Some(column) = sink.timestamp_column.as_ref().and_then(|ts| plan.output_schema.fields().iter().position(|f| f.name() == ts)) {
        let pattern = sink.timestamp_format.as_deref().map(crate::java_time::Pattern::parse).transpose().map_err(SluiceError::Plan)?;
        plan.output_timestamp = Some(crate::planner::OutputTimestamp { column, pattern });
        plan.forwards_value = false;
    }
    let destination = match TopicTemplate::parse(&sink.topic)? {
        None => Destination::Fixed {
            name: sink.topic.clone(),
            topic: engine.cluster.output_producer().topic(&sink.topic)?,
            partitions: engine.cluster.topic(&sink.topic)?.map_or(1, |t| t.partitions),
        },
        Some(template) => {
            plan.forwards_value = false;
            let columns = template_columns(&template, &plan)?;
            let partitions = engine.cluster.topic(&plan.source.topic)?.map_or(1, |t| t.partitions);
            Destination::Routed(Router::new(template, columns, engine.cluster.clone(), tokio::runtime::Handle::current(), partitions))
        }
    };
    let (value_columns, names): (Vec<usize>, Vec<String>) = plan
        .output_schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(i, f)| !sink.key_columns().any(|k| &k.name == f.name()) && !in_windowed_key(&plan, *i))
        .map(|(i, f)| (i, f.name().clone()))
        .unzip();
    let output = QuerySink::Topic(TopicSink {
        destination,
        key_format: sink.key_format,
        key_delimiter: sink.key_delimiter,
        key_names: sink.key_columns().map(|c| c.name.clone()).collect(),
        format: sink.value_format,
        delimiter: sink.value_delimiter,
        wrap_single_value: sink.wrap_single_value,
        value_columns,
        names,
    });
    let guarantee = Guarantee::from_properties(&query.properties)?;
    engine.queries.start_persistent(&query.id, plan, output, start, guarantee)?;
    Ok(())
}

/// Pauses a running query; replaying the log only marks it, and the replay shows it paused
/// instead of starting it.
fn pause_query(engine: &Engine, id: &str, mode: Mode) {
    if engine.catalog.query(id).is_some_and(|q| !q.paused) && engine.catalog.set_paused(id, true) && mode.runs() {
        engine.queries.pause(id);
    }
}

/// Marks a paused query to run again; the server whose share it is starts it from its
/// committed positions.
fn resume_query(engine: &Engine, id: &str) {
    if engine.catalog.query(id).is_some_and(|q| q.paused) {
        engine.catalog.set_paused(id, false);
    }
}

/// Stops a query and takes it out of the catalog; the server that accepted the statement
/// forgets its positions.
async fn terminate_query(engine: &Engine, id: &str, mode: Mode) -> Result<()> {
    if engine.catalog.remove_query(id).is_some() {
        engine.queries.stop_persistent(id);
        if mode == Mode::Accepted {
            engine.queries.offsets().forget(id).await?;
        }
    }
    Ok(())
}

async fn drop_source(engine: &Engine, drop: &DropSource, text: &str, seq: i64, mode: Mode) -> Result<Value> {
    let command_id = format!("{}/`{}`/drop", drop.kind.word(), drop.name);
    let Some(stream) = engine.catalog.stream(&drop.name).ok() else {
        return Ok(entity::command_done(text, command_id, &format!("Source `{}` does not exist.", drop.name), seq));
    };
    let (_, writes) = engine.catalog.queries_of(&drop.name);
    for query in writes {
        terminate_query(engine, &query.id, mode).await?;
    }
    engine.catalog.remove_stream(&drop.name);
    engine.queries.dematerialize(&drop.name);
    drop_stages(engine, &drop.name, mode).await?;
    if mode == Mode::Accepted && drop.delete_topic {
        engine.cluster.delete_topic(&stream.topic).await?;
    }
    Ok(entity::command_done(text, command_id, &format!("Source `{}` (topic: {}) was dropped.", drop.name, stream.topic), seq))
}

/// Drops the join stages of `sink`'s query (see [`crate::planner::stages`]) that no other
/// query reads, and theirs.
async fn drop_stages(engine: &Engine, sink: &str, mode: Mode) -> Result<()> {
    for stage in crate::planner::stages::stages_of(&engine.catalog, sink) {
        let (reads, writes) = engine.catalog.queries_of(&stage);
        if !reads.is_empty() {
            continue;
        }
        for query in writes {
            terminate_query(engine, &query.id, mode).await?;
        }
        engine.catalog.remove_stream(&stage);
        engine.queries.dematerialize(&stage);
        Box::pin(drop_stages(engine, &stage, mode)).await?;
    }
    Ok(())
}

/// The output columns a topic template reads, by position; an error names a missing one.
fn template_columns(template: &TopicTemplate, plan: &ContinuousPlan) -> Result<Vec<usize>> {
    template
        .columns()
        .map(|column| {
            plan.output_schema
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(column))
                .ok_or_else(|| {
                    SluiceError::Plan(format!(
                        "KAFKA_TOPIC names a topic by {column}, which is not a column of the query's output"
                    ))
                })
        })
        .collect()
}

/// The source `alter` names with its new value columns after its others, or ksqlDB's refusal:
/// a source it does not name, of the other kind, a `CREATE SOURCE` or `CREATE … AS SELECT`
/// one, or a column whose name is taken or reserved. Its statement becomes `text`, as ksqlDB's
/// does.
fn altered(engine: &Engine, alter: &AlterSource, text: &str) -> Result<SourceDef> {
    let word = alter.kind.word();
    let existing = engine.catalog.stream(&alter.name).ok();
    if existing.as_ref().is_some_and(|e| e.read_only) {
        return Err(SluiceError::Plan(format!(
            "Cannot alter {word} '{}': ALTER operations are not supported on source {word}s.",
            alter.name
        )));
    }
    let Some(mut source) = existing else {
        return Err(SluiceError::Plan(format!("Source {} does not exist.", alter.name)));
    };
    if source.kind != alter.kind {
        return Err(SluiceError::Plan(format!(
            "Incompatible data source type is {}, but statement was ALTER {}",
            source.kind, alter.kind
        )));
    }
    if source.created_by_query {
        return Err(SluiceError::Plan("ALTER command is not supported for CREATE ... AS statements.".into()));
    }
    for (name, data_type) in &alter.columns {
        if crate::catalog::source::is_reserved(name) {
            return Err(SluiceError::Plan(format!(
                "'{name}' is a reserved column name. You cannot use it as a name for a column."
            )));
        }
        if source.columns.iter().any(|c| &c.name == name) {
            return Err(SluiceError::Plan(format!(
                "Cannot add column `{name}` to schema. A column with the same name already exists."
            )));
        }
        source.columns.push(ColumnDef { name: name.clone(), data_type: data_type.clone(), key: false, header: None });
    }
    source.statement = text.to_string();
    Ok(source)
}

/// Whether a CREATE of `kind` named `name` may go ahead given the source of that name, if any:
/// ksqlDB's refusals of a name taken, of a kind changed, and of replacing a read-only source.
fn check_replace(
    kind: SourceKind,
    name: &str,
    existing: Option<&SourceDef>,
    or_replace: bool,
    if_not_exists: bool,
    read_only: bool,
) -> Result<()> {
    if or_replace && (read_only || existing.is_some_and(|e| e.read_only)) {
        return Err(SluiceError::Plan(format!(
            "Cannot add {} '{name}': CREATE OR REPLACE is not supported on source {}s.",
            kind.word(),
            kind.word()
        )));
    }
    match existing {
        Some(existing) if existing.kind != kind || (!or_replace && !if_not_exists) => Err(SluiceError::Plan(format!(
            "Cannot add {} '{name}': A {} with the same name already exists",
            kind.word(),
            existing.kind.word()
        ))),
        _ => Ok(()),
    }
}

/// A CREATE STREAM AS SELECT must read a stream and a CREATE TABLE AS SELECT a table (until
/// aggregations make tables of streams); a table's query keeps its key in its projection and
/// cannot change it.
fn check_result_kind(csas: &CreateAsSelect, plan: &ContinuousPlan) -> Result<()> {
    if plan.source.window.is_some() && plan.source.is_table() {
        return Err(SluiceError::Plan("KSQL does not support persistent queries on windowed tables.".into()));
    }
    let produces = result_kind(plan);
    if csas.kind != produces {
        return Err(SluiceError::Plan(format!(
            "Invalid result type. Your SELECT query produces a {produces}. Please use CREATE {produces} AS SELECT statement instead."
        )));
    }
    if let (Some(join), None) = (&plan.join, &plan.aggregation) {
        check_join_key(&csas.name, plan, join)?;
    }
    if let Some(partition) = plan.partition_by.as_ref().filter(|p| !p.missing.is_empty()) {
        return Err(keys_missing(&csas.name, "partitioning expression", &partition.missing));
    }
    if csas.kind != SourceKind::Table {
        return Ok(());
    }
    if plan.partition_by.is_some() {
        return Err(SluiceError::Plan(
            "PARTITION BY changes the key of a stream's records; a table's key is its PRIMARY KEY".into(),
        ));
    }
    if let Some(aggregation) = &plan.aggregation {
        return check_grouped_projection(&csas.name, plan, aggregation);
    }
    if plan.join.is_some() {
        // A join's key is its join expression, checked above.
        return Ok(());
    }
    check_source_key(csas, plan)
}

/// ksqlDB's rules that a query which keeps its source's key projects every key column (after
/// the sink's properties are checked, as ksqlDB checks them first for a stream), and at least
/// one value column.
fn check_source_key(csas: &CreateAsSelect, plan: &ContinuousPlan) -> Result<()> {
    if plan.partition_by.is_some() || plan.join.is_some() || plan.aggregation.is_some() {
        return Ok(());
    }
    let keys: Vec<String> = plan.source.key_columns().map(|k| k.name.clone()).collect();
    // A key column is projected when an output column reads it, under any name.
    let projected = |key: &String| {
        plan.projection.iter().zip(&plan.key_outputs).any(|(output, is_key)| {
            *is_key
                && output
                    .expr
                    .downcast_ref::<datafusion::physical_expr::expressions::Column>()
                    .is_some_and(|c| c.name() == key)
        })
    };
    if !keys.iter().all(projected) {
        return Err(keys_missing(&csas.name, "key column", &keys));
    }
    if !plan.key_outputs.is_empty() && plan.key_outputs.iter().all(|k| *k) {
        return Err(SluiceError::Plan("The projection contains no value columns.".into()));
    }
    Ok(())
}

/// ksqlDB's rules for the projection of an aggregation: each grouping expression in it once (it
/// is the key), and at least one value column.
fn check_grouped_projection(name: &str, plan: &ContinuousPlan, aggregation: &crate::planner::AggregatePlan) -> Result<()> {
    let missing: Vec<String> = aggregation
        .group_names()
        .into_iter()
        .zip(&aggregation.group_outputs)
        .filter(|(_, outputs)| outputs.is_empty())
        .map(|(name, _)| name)
        .collect();
    if !missing.is_empty() {
        return Err(keys_missing(name, "grouping expression", &missing));
    }
    if let Some(twice) = aggregation.group_outputs.iter().find(|outputs| outputs.len() > 1) {
        let quoted: Vec<String> = twice.iter().map(|o| format!("`{o}`")).collect();
        return Err(SluiceError::Plan(format!(
            "The projection contains a key column more than once: {}.",
            quoted.join(" and ")
        )));
    }
    if plan.key_outputs.iter().all(|k| *k) {
        return Err(SluiceError::Plan("The projection contains no value columns.".into()));
    }
    Ok(())
}

/// ksqlDB's rules for the key of a join's result: one of the join expressions in the projection
/// (the first one there is the key), and not twice.
fn check_join_key(sink: &str, plan: &ContinuousPlan, join: &crate::planner::JoinPlan) -> Result<()> {
    if plan.partition_by.is_some() {
        return Ok(());
    }
    if let (Some(left), false) = (&join.foreign_key_of, plan.key_outputs.iter().any(|k| *k)) {
        let missing: Vec<String> = join.key_expressions.iter().map(|e| format!("`{}`", e.rsplit('.').next().unwrap_or(e))).collect();
        let plural = if missing.len() > 1 { "s" } else { "" };
        return Err(SluiceError::Plan(format!(
            "Primary key column{plural} missing in projection. For foreign-key table-table joins, the projection must include all primary key columns from the left input table (`{left}`). Missing column{plural}: {}.",
            missing.join(", ")
        )));
    }
    if !plan.key_outputs.iter().any(|k| *k) {
        if join.keys.len() > 1 {
            return Err(SluiceError::Plan(format!(
                "Key missing from projection (ie, SELECT).\nThe query used to build `{sink}` must include a join expression of each condition of its join in its projection: the result's key has a column per condition (eg, SELECT {}...).",
                join.key_expressions.join(", ")
            )));
        }
        return Err(crate::planner::join_key_missing(sink, &join.key_expressions, join.synthetic_key));
    }
    if let [_, _, ..] = join.key_aliases.as_slice() {
        let key = plan
            .output_schema
            .fields()
            .iter()
            .zip(&plan.key_outputs)
            .find(|(_, k)| **k)
            .map(|(f, _)| f.name().clone())
            .unwrap_or_default();
        return Err(SluiceError::Plan(format!(
            "The projection contains a key column (`{key}`) more than once, aliased as: {}.",
            join.key_aliases.join(" and ")
        )));
    }
    Ok(())
}

/// ksqlDB's refusal of a join on keys whose topics have different partition counts. Sluice
/// reads every partition of a table, so it would not need them alike; ksqlDB's users rely on the
/// check to find topics that were not co-partitioned.
fn check_copartitioned(engine: &Engine, plan: &ContinuousPlan) -> Result<()> {
    let pair = plan.pair_join().filter(|p| p.keyed).map(|p| (&plan.source, &p.right));
    let steps = plan.join.iter().flat_map(|j| &j.steps).filter_map(|s| s.keyed_with.as_ref().map(|left| (left, &s.table)));
    for (left, right) in pair.into_iter().chain(steps) {
        let partitions = |source: &SourceDef| -> Result<i32> { Ok(engine.cluster.topic(&source.topic)?.map_or(1, |t| t.partitions)) };
        let (left_count, right_count) = (partitions(left)?, partitions(right)?);
        if left_count != right_count {
            return Err(SluiceError::Plan(format!(
                "Can't join `{}` with `{}` since the number of partitions don't match. `{}` partitions = {left_count}; `{}` partitions = {right_count}. Please repartition either one so that the number of partitions match.",
                left.name, right.name, left.name, right.name
            )));
        }
    }
    Ok(())
}

/// ksqlDB's "Key missing from projection", naming `keys` (all of which the projection needs).
fn keys_missing(sink: &str, what: &str, keys: &[String]) -> SluiceError {
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (plural, joined) = match keys.as_slice() {
        [one] => ("", one.to_string()),
        [init @ .., last] => ("s", format!("{} and {last}", init.join(", "))),
        [] => ("", String::new()),
    };
    SluiceError::Plan(format!(
        "Key{plural} missing from projection (ie, SELECT). \nThe query used to build `{sink}` must include the {what}{plural} {joined} in its projection (eg, SELECT {}...).",
        keys.join(", ")
    ))
}

/// What a query's rows are: a table when it aggregates or reads a table, else a stream.
fn result_kind(plan: &ContinuousPlan) -> SourceKind {
    if plan.aggregation.is_some() { SourceKind::Table } else { plan.source.kind }
}

/// Refuses to write into a table or a read-only stream with `action` (INSERT INTO).
pub fn writable_stream(target: &SourceDef, action: &str) -> Result<()> {
    if target.is_table() {
        return Err(SluiceError::Plan(format!(
            "INSERT INTO can only be used to insert into a stream. {} is a table.",
            target.name
        )));
    }
    if target.read_only {
        return Err(SluiceError::Plan(format!("Cannot {action} read-only stream: {}", target.name)));
    }
    Ok(())
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// ksqlDB's refusals of a persistent query projecting a column under a reserved name: one it
/// names so (`x AS ROWTIME`), or a pseudo column it selects under its own name (`SELECT
/// ROWTIME`, `l.WINDOWSTART AS WINDOWSTART`) — the window bounds only a windowed aggregation
/// projects. A join names a source's column it selects unaliased after the source when another
/// has it too (`S1_ROWTIME`): [`reserved_columns_refused`] checks those once named.
fn reserved_names_refused(select: &Select) -> Result<()> {
    use crate::catalog::source::is_reserved;
    use sqlparser::ast::{Expr, SelectItem};
    let sqlparser::ast::SetExpr::Select(body) = select.query.body.as_ref() else { return Ok(()) };
    let joined = body.from.iter().any(|from| !from.joins.is_empty());
    for item in &body.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(_)) if joined => continue,
            SelectItem::UnnamedExpr(expr) => (expr, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(crate::parser::normalize_ident(alias))),
            _ => continue,
        };
        let read = match expr {
            Expr::Identifier(ident) => Some(crate::parser::normalize_ident(ident)),
            Expr::CompoundIdentifier(parts) => parts.last().map(crate::parser::normalize_ident),
            _ => None,
        };
        let Some(name) = alias.clone().or_else(|| read.clone()).filter(|name| is_reserved(name)) else { continue };
        if read.as_deref() != Some(name.as_str()) {
            return Err(SluiceError::Plan(format!("`{name}` is a reserved column name. You cannot use it as an alias for a column.")));
        }
        if !(select.window.is_some() && crate::planner::WINDOW_BOUNDS.contains(&name.as_str())) {
            return Err(reserved_in_select(&name));
        }
    }
    Ok(())
}

/// ksqlDB's refusal of an output column a query names after a pseudo column (`columns`, the
/// output's names but for the key columns PARTITION BY adds).
fn reserved_columns_refused(columns: &[String]) -> Result<()> {
    use crate::catalog::source::{ROWOFFSET, ROWPARTITION, ROWTIME};
    match columns.iter().find(|c| [ROWTIME, ROWPARTITION, ROWOFFSET].contains(&c.as_str())) {
        Some(column) => Err(reserved_in_select(column)),
        None => Ok(()),
    }
}

fn reserved_in_select(name: &str) -> SluiceError {
    SluiceError::Plan(format!("Reserved column name in select: `{name}`. Please remove or alias the column."))
}

/// A DELIMITED key or value (`side`) of a sink whose source's is DELIMITED too keeps the
/// source's delimiter unless the statement names one.
fn inherit_delimiter(properties: &mut crate::parser::Properties, side: &str, source_format: Format, source_delimiter: u8) {
    let delimited = |v: Option<&crate::parser::PropertyValue>| v.is_some_and(|f| f.as_text().eq_ignore_ascii_case("DELIMITED"));
    let property = format!("{side}_DELIMITER");
    let sink_delimited = delimited(properties.get(&format!("{side}_FORMAT"))) || delimited(properties.get("FORMAT"));
    if sink_delimited && source_format == Format::Delimited && properties.get(&property).is_none() {
        let delimiter = match source_delimiter {
            b' ' => "SPACE".to_string(),
            b'\t' => "TAB".to_string(),
            other => char::from(other).to_string(),
        };
        properties.0.push((property, crate::parser::PropertyValue::String(delimiter)));
    }
}

/// The stream or table a CSAS or CTAS creates, with the partitions and replicas asked for.
/// `settings` are the query's properties: `ksql.output.topic.name.prefix` names a topic the
/// statement does not, and `ksql.persistence.wrap.single.values` wraps a single value column.
pub(super) fn sink_source(
    csas: &CreateAsSelect,
    plan: &ContinuousPlan,
    text: &str,
    settings: &BTreeMap<String, String>,
) -> Result<(SourceDef, Option<i32>, i32)> {
    let mut properties = csas.properties.clone();
    if properties.get("VALUE_FORMAT").is_none() && properties.get("FORMAT").is_none() {
        properties.0.push((
            "VALUE_FORMAT".into(),
            crate::parser::PropertyValue::String(plan.source.value_format.name().into()),
        ));
    }
    inherit_delimiter(&mut properties, "VALUE", plan.source.value_format, plan.source.value_delimiter);
    // The key keeps its source's format unless the statement names one, as in ksqlDB; a
    // result with key columns over a source keyed in NONE takes the default key format.
    if properties.get("KEY_FORMAT").is_none() && properties.get("FORMAT").is_none() {
        let inherited = match plan.source.key_format {
            Format::None if plan.key_outputs.iter().any(|k| *k) => {
                settings.get(crate::properties::DEFAULT_KEY_FORMAT).map_or("KAFKA", String::as_str)
            }
            format => format.name(),
        };
        properties.0.push(("KEY_FORMAT".into(), crate::parser::PropertyValue::String(inherited.to_string())));
    }
    inherit_delimiter(&mut properties, "KEY", plan.source.key_format, plan.source.key_delimiter);
    let mut columns = plan
        .output_schema
        .fields()
        .iter()
        .zip(&plan.key_outputs)
        .enumerate()
        .filter(|(i, _)| !in_windowed_key(plan, *i))
        .map(|(_, (f, is_key))| {
            let data_type = crate::catalog::types::SqlType::from_arrow(f.data_type())?;
            Ok(if *is_key { ColumnDef::key(f.name(), data_type) } else { ColumnDef::value(f.name(), data_type) })
        })
        .collect::<Result<Vec<_>>>()?;
    // An aggregation's key columns are in its GROUP BY's order, as ksqlDB orders them.
    if let Some(aggregation) = &plan.aggregation {
        let group = |c: &ColumnDef| aggregation.group_outputs.iter().position(|outputs| outputs.contains(&c.name));
        columns.sort_by_key(|c| if c.key { group(c) } else { None }.unwrap_or(usize::MAX));
    }
    reserved_names_refused(&csas.select)?;
    // A key column PARTITION BY adds is named after what it reads, `ROWTIME` included.
    let named: Vec<String> = columns.iter().filter(|c| !(c.key && plan.partition_by.is_some())).map(|c| c.name.clone()).collect();
    reserved_columns_refused(&named)?;
    let names_key_format = csas.properties.get("KEY_FORMAT").is_some_and(|f| !f.as_text().eq_ignore_ascii_case("NONE"));
    if plan.partition_by.as_ref().is_some_and(|p| p.keys == 0) && names_key_format {
        return Err(SluiceError::Plan("Key format specified for stream without key columns.".into()));
    }
    let topic = format!("{}{}", settings.get(crate::properties::OUTPUT_TOPIC_PREFIX).map_or("", String::as_str), csas.name);
    let mut stream = SourceDef::from_declaration(&csas.name, columns, &properties, Some(&topic), text)?;
    let unwrapped = settings.get(crate::properties::WRAP_SINGLE_VALUES).is_some_and(|w| w.trim().eq_ignore_ascii_case("false"));
    if unwrapped && properties.get("WRAP_SINGLE_VALUE").is_none() && stream.value_columns().count() == 1 {
        stream.wrap_single_value = false;
    }
    stream.kind = csas.kind;
    stream.created_by_query = true;
    // A windowed aggregate's rows are per window; a query keeping its source's keys keeps their
    // windows.
    stream.window = match plan.aggregation.as_ref() {
        Some(aggregation) => aggregation.window.map(|w| crate::catalog::SourceWindow {
            session: w.time_window().is_none(),
            type_name: w.type_name(),
            size_ms: w.time_window().map(|(size, _)| size),
        }),
        None if plan.partition_by.is_none() => plan.source.window,
        None => None,
    };
    let partitions = csas.properties.get("PARTITIONS").map(|p| number(Some(p), 1)).transpose()?;
    let replicas = number(csas.properties.get("REPLICAS"), 1)?;
    Ok((stream, partitions, replicas))
}

/// Whether output column `column` is a window bound a windowed source's key carries to the
/// sink (`SELECT *` over a `WINDOW_TYPE` stream): it is in the key, not a column.
fn in_windowed_key(plan: &ContinuousPlan, column: usize) -> bool {
    plan.source.window.is_some()
        && plan.aggregation.is_none()
        && plan.partition_by.is_none()
        && plan.key_outputs[column]
        && crate::planner::WINDOW_BOUNDS.contains(&plan.output_schema.field(column).name().as_str())
}

fn check_insert_schema(target: &SourceDef, plan: &ContinuousPlan) -> Result<()> {
    let wanted: Vec<(&str, arrow::datatypes::DataType)> = target
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.data_type.to_arrow()))
        .collect();
    let got: Vec<(&str, arrow::datatypes::DataType)> = plan
        .output_schema
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type().clone()))
        .collect();
    if wanted != got {
        return Err(SluiceError::Plan(format!(
            "Incompatible schema between results and sink. Result schema is {}, but sink schema is {}.",
            describe_columns(&got),
            describe_columns(&wanted)
        )));
    }
    Ok(())
}

fn describe_columns(columns: &[(&str, arrow::datatypes::DataType)]) -> String {
    columns
        .iter()
        .map(|(n, t)| format!("`{n}` {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn number(value: Option<&crate::parser::PropertyValue>, default: i32) -> Result<i32> {
    match value {
        None => Ok(default),
        Some(v) => v.as_text().parse().map_err(|_| {
            SluiceError::Plan(format!("'{}' is not a whole number", v.as_text()))
        }),
    }
}
