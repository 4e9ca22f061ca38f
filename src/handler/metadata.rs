//! Statements that only read: SHOW/LIST and DESCRIBE, of streams, queries and connectors.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Engine, connector, entity};
use crate::{
    catalog::SourceDef,
    error::{Result, SluiceError},
    parser::{Describe, DescribeConnector, DescribeTarget, ParsedStatement, Show, ShowKind, SourceKind},
    properties,
    runtime::processing_log,
};

pub fn show(
    engine: &Engine,
    parsed: &ParsedStatement,
    show: &Show,
    properties: &BTreeMap<String, String>,
    variables: &BTreeMap<String, String>,
) -> Result<Value> {
    let text = &parsed.text;
    let snapshot = engine.catalog.snapshot();
    Ok(match show.kind {
        ShowKind::Streams | ShowKind::Tables => {
            let kind = if show.kind == ShowKind::Tables { SourceKind::Table } else { SourceKind::Stream };
            let sources = listed(snapshot.streams.into_values(), kind);
            if show.extended {
                let descriptions: Vec<Value> = sources
                    .iter()
                    .map(|s| source_description(engine, s, true))
                    .collect::<Result<_>>()?;
                json!({"@type": "source_descriptions", "statementText": text, "sourceDescriptions": descriptions, "warnings": []})
            } else {
                entity::sources(text, kind, &sources)
            }
        }
        ShowKind::Topics => {
            let topics: Vec<_> = engine
                .cluster
                .topics()?
                .into_iter()
                .filter(|t| !t.name.starts_with('_'))
                .collect();
            entity::topics(text, &topics)
        }
        ShowKind::Queries => {
            let queries: Vec<_> = snapshot
                .queries
                .into_values()
                .map(|q| {
                    let states = engine.query_states(&q.id);
                    (q, states)
                })
                .collect();
            entity::queries(text, &queries)
        }
        ShowKind::Properties => {
            let mut list = vec![
                json!({"name": "ksql.service.id", "scope": "KSQL", "value": engine.config.service_id}),
                json!({"name": "ksql.streams.bootstrap.servers", "scope": "KSQL", "value": engine.cluster.bootstrap_servers()}),
            ];
            let mut defaults = Vec::new();
            for (name, default) in properties::DEFAULTS {
                if !properties.contains_key(name) {
                    list.push(json!({"name": properties::display_name(name), "scope": "KSQL", "value": default}));
                    defaults.push(properties::display_name(name));
                }
            }
            list.extend(properties.iter().map(|(k, v)| json!({"name": properties::display_name(k), "scope": "SESSION", "value": v})));
            let overwritten: Vec<String> = properties.keys().map(|k| properties::display_name(k)).collect();
            json!({"@type": "properties", "statementText": text, "properties": list, "overwrittenProperties": overwritten, "defaultProperties": defaults, "warnings": []})
        }
        ShowKind::Connectors => connector::list(engine, text),
        ShowKind::Variables => entity::variables(text, variables),
        ShowKind::Functions => entity::function_names(text, &crate::functions::listing::all()?),
        ShowKind::Types => entity::types(text, &engine.catalog.types()),
    })
}

pub fn describe(engine: &Engine, parsed: &ParsedStatement, describe: &Describe) -> Result<Value> {
    let text = &parsed.text;
    let descriptions = |streams: Vec<SourceDef>| -> Result<Value> {
        let descriptions: Vec<Value> = streams
            .iter()
            .map(|s| source_description(engine, s, describe.extended))
            .collect::<Result<_>>()?;
        Ok(json!({"@type": "source_descriptions", "statementText": text, "sourceDescriptions": descriptions, "warnings": []}))
    };
    match &describe.target {
        DescribeTarget::Source(name) => {
            let stream = engine.catalog.stream(name)?;
            Ok(json!({
                "@type": "sourceDescription",
                "statementText": text,
                "sourceDescription": source_description(engine, &stream, describe.extended)?,
                "warnings": []
            }))
        }
        DescribeTarget::Streams => descriptions(listed(engine.catalog.snapshot().streams.into_values(), SourceKind::Stream)),
        DescribeTarget::Tables => descriptions(listed(engine.catalog.snapshot().streams.into_values(), SourceKind::Table)),
        DescribeTarget::Function(name) => match crate::functions::listing::find(name)? {
            Some(function) => Ok(entity::function_description(text, &function)),
            None => Err(SluiceError::NotFound(format!("Can't find any functions with the name '{name}'"))),
        },
    }
}

/// The streams or tables SHOW and DESCRIBE list. The processing log's stream is there to
/// query, but listed no more than ksqlDB lists KSQL_PROCESSING_LOG by default (it creates none
/// unless configured to).
fn listed(sources: impl Iterator<Item = SourceDef>, kind: SourceKind) -> Vec<SourceDef> {
    sources
        .filter(|s| s.kind == kind && s.name != processing_log::STREAM_NAME)
        .collect()
}

pub fn describe_connector(engine: &Engine, parsed: &ParsedStatement, describe: &DescribeConnector) -> Result<Value> {
    let found = engine
        .catalog
        .connector(&describe.name)
        .ok_or_else(|| SluiceError::NotFound(format!("Connector {} does not exist.", describe.name)))?;
    Ok(connector::description(engine, &parsed.text, &found))
}

fn source_description(engine: &Engine, stream: &SourceDef, extended: bool) -> Result<Value> {
    let (reads, writes) = engine.catalog.queries_of(&stream.name);
    let running = |queries: &[crate::catalog::QueryDef]| -> Vec<Value> {
        queries
            .iter()
            .map(|q| entity::running_query(q, &engine.query_states(&q.id)))
            .collect()
    };
    let fields = entity::fields(&stream.columns);
    let topic = engine.cluster.topic(&stream.topic)?;
    let (mut statistics, mut error_stats) = (String::new(), String::new());
    if extended {
        let mut stats = Vec::new();
        let mut errors = Vec::new();
        for query in reads.iter().chain(&writes) {
            if let Some(status) = engine.queries.status(&query.id) {
                let (s, e) = entity::query_statistics(&status);
                stats.push(format!("{}: {s}", query.id));
                errors.push(format!("{}: {e}", query.id));
            }
        }
        if let Some(((keys, bytes), status)) = engine.queries.table_status(&stream.name) {
            let (s, e) = entity::query_statistics(&status);
            stats.push(format!("materialized: {keys} keys, {bytes} bytes, {s}"));
            errors.push(format!("materialized: {e}"));
        }
        statistics = stats.join("; ");
        error_stats = errors.join("; ");
    }
    Ok(json!({
        "name": stream.name,
        "windowType": stream.window.map(|w| w.type_name),
        "readQueries": running(&reads),
        "writeQueries": running(&writes),
        "fields": fields,
        "type": stream.kind.keyword(),
        "timestamp": stream.timestamp_column.clone().unwrap_or_default(),
        "statistics": statistics,
        "errorStats": error_stats,
        "extended": extended,
        "keyFormat": stream.key_format.name(),
        "valueFormat": stream.value_format.name(),
        "topic": stream.topic,
        "partitions": topic.as_ref().map_or(0, |t| t.partitions),
        "replication": topic.as_ref().map_or(0, |t| t.replicas),
        "statement": stream.statement,
        "queryOffsetSummaries": [],
        "sourceConstraints": [],
        "clusterStatistics": [],
        "clusterErrorStats": []
    }))
}
