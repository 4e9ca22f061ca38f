//! Connector statements and views: CREATE/DROP/DESCRIBE/SHOW CONNECTORS as ksqlDB answers
//! them, and the same connectors in Kafka Connect's REST shapes (`ConnectorInfo`,
//! `ConnectorStateInfo`), with Sluice's per-partition progress added.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::Engine;
use crate::{
    catalog::ConnectorDef,
    connectors::{
        cdc, jdbc,
        status::{ConnectorState, ConnectorStatus},
        text,
    },
    parser::{ConnectorKind, CreateConnector, Properties, PropertyValue, display_ident},
};

/// The catalog entry a `CREATE … CONNECTOR` statement makes.
pub fn definition(create: &CreateConnector) -> ConnectorDef {
    let config = create.properties.0.iter().map(|(k, v)| (k.clone(), v.as_text()));
    from_config(&create.name, create.kind, config)
}

/// A connector from Connect's string config; its `name` key is the connector's name, not config.
pub fn from_config(name: &str, kind: ConnectorKind, config: impl IntoIterator<Item = (String, String)>) -> ConnectorDef {
    ConnectorDef {
        name: name.to_string(),
        kind,
        config: config.into_iter().filter(|(k, _)| k != "name").collect(),
    }
}

/// Whether a config posted to Connect's REST API is a source or a sink, by its class.
pub fn kind_of(config: &BTreeMap<String, String>) -> ConnectorKind {
    match config.get("connector.class") {
        Some(class) if jdbc::config::is_connector_class(class) || cdc::config::is_connector_class(class) || text::kind_of_class(class).is_some() => {
            ConnectorKind::Source
        }
        _ => ConnectorKind::Sink,
    }
}

/// The `CREATE SOURCE|SINK CONNECTOR` statement for a config posted to Connect's REST API.
pub fn create_statement(name: &str, config: &BTreeMap<String, String>) -> String {
    let properties = Properties(
        config
            .iter()
            .filter(|(k, _)| k.as_str() != "name")
            .map(|(k, v)| (k.clone(), PropertyValue::String(v.clone())))
            .collect(),
    );
    format!("CREATE {} CONNECTOR {} {properties};", kind_of(config).as_str(), display_ident(name))
}

/// The `DROP CONNECTOR` statement for a REST `DELETE`.
pub fn drop_statement(name: &str) -> String {
    format!("DROP CONNECTOR {};", display_ident(name))
}

fn connect_type(connector: &ConnectorDef) -> String {
    connector.kind.as_str().to_ascii_lowercase()
}

fn worker_id(engine: &Engine) -> String {
    engine.config.listen.to_string()
}

/// Connect's `ConnectorInfo`.
pub fn info(connector: &ConnectorDef) -> Value {
    let mut config: serde_json::Map<String, Value> =
        connector.config.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    config.insert("name".into(), json!(connector.name));
    json!({
        "name": connector.name,
        "config": config,
        "tasks": [{"connector": connector.name, "task": 0}],
        "type": connect_type(connector)
    })
}

/// Connect's config map, `name` included.
pub fn config(connector: &ConnectorDef) -> Value {
    info(connector)["config"].clone()
}

/// Connect's `ConnectorStateInfo`, plus `progress`: per topic-partition the last committed
/// offset, the lag behind the log end, and the files, bytes and records written.
pub fn state_info(engine: &Engine, connector: &ConnectorDef) -> Value {
    let status = engine.connectors.status(&connector.name);
    let state = status.as_deref().map_or(ConnectorState::Stopped, ConnectorStatus::state);
    let mut task = json!({"id": 0, "state": state.name(), "worker_id": worker_id(engine)});
    if let ConnectorState::Failed(cause) = &state {
        task["trace"] = json!(cause);
    }
    let connector_state = if matches!(state, ConnectorState::Stopped) { "UNASSIGNED" } else { "RUNNING" };
    let progress: Vec<Value> = status
        .as_deref()
        .map(|s| s.partitions())
        .unwrap_or_default()
        .into_iter()
        .map(|((topic, partition), p)| {
            json!({
                "topic": topic,
                "partition": partition,
                "committedOffset": p.committed,
                "logEndOffset": p.log_end,
                "lag": p.lag(),
                "files": p.files,
                "bytes": p.bytes,
                "records": p.records
            })
        })
        .collect();
    let (skipped, last_skip) = status.as_deref().map_or((0, None), ConnectorStatus::skipped);
    json!({
        "name": connector.name,
        "connector": {"state": connector_state, "worker_id": worker_id(engine)},
        "tasks": [task],
        "type": connect_type(connector),
        "progress": progress,
        "skippedRecords": skipped,
        "lastSkipped": last_skip
    })
}

/// ksqlDB's one-line state, `RUNNING (1/1 tasks RUNNING)`.
fn state_summary(engine: &Engine, connector: &ConnectorDef) -> String {
    let state = engine
        .connectors
        .status(&connector.name)
        .map_or(ConnectorState::Stopped, |s| s.state());
    let running = usize::from(state == ConnectorState::Running);
    format!("RUNNING ({running}/1 tasks RUNNING)")
}

/// ksqlDB's `connector_list`.
pub fn list(engine: &Engine, statement: &str) -> Value {
    let connectors: Vec<Value> = engine
        .catalog
        .snapshot()
        .connectors
        .values()
        .map(|c| {
            json!({
                "name": c.name,
                "type": connect_type(c),
                "className": c.class(),
                "state": state_summary(engine, c)
            })
        })
        .collect();
    json!({"@type": "connector_list", "statementText": statement, "warnings": [], "connectors": connectors})
}

/// ksqlDB's `connector_description`.
pub fn description(engine: &Engine, statement: &str, connector: &ConnectorDef) -> Value {
    json!({
        "@type": "connector_description",
        "statementText": statement,
        "connectorClass": connector.class(),
        "status": state_info(engine, connector),
        "sources": [],
        "topics": connector.topics(),
        "warnings": []
    })
}

/// ksqlDB's answer to `CREATE … CONNECTOR`.
pub fn created(statement: &str, connector: &ConnectorDef) -> Value {
    json!({"@type": "connector_info", "statementText": statement, "info": info(connector), "warnings": []})
}

/// ksqlDB's answer to `DROP CONNECTOR`.
pub fn dropped(statement: &str, name: &str) -> Value {
    json!({"@type": "drop_connector", "statementText": statement, "connectorName": name, "warnings": []})
}
