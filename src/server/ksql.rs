//! `POST /ksql`, `GET /info` and `GET /healthcheck`.

use std::collections::BTreeMap;

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppError, AppState, body::KsqlBody};

/// ksqlDB's `KsqlRequest`; unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub struct KsqlRequest {
    pub ksql: String,
    #[serde(default, deserialize_with = "null_as_empty", rename = "streamsProperties")]
    pub streams_properties: BTreeMap<String, Value>,
    #[serde(default, deserialize_with = "null_as_empty", rename = "sessionVariables")]
    pub session_variables: BTreeMap<String, Value>,
    /// The request runs once this command is applied on this server (read your own writes
    /// across the servers of a service, as ksqlDB's clients do).
    #[serde(default, rename = "commandSequenceNumber")]
    pub command_sequence_number: Option<i64>,
}

/// How long a request waits for the command it names to be applied here (ksqlDB's
/// `ksql.server.command.response.timeout.ms`).
const COMMAND_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits until the command a request names, if any, is applied on this server.
pub async fn await_command(state: &AppState, seq: Option<i64>) -> Result<(), AppError> {
    match seq {
        Some(seq) if !state.engine.await_command(seq, COMMAND_WAIT).await => Err(AppError::CommandTimeout(seq)),
        _ => Ok(()),
    }
}

/// A map field that a client may also send as `null`, as ksqlDB's Jackson model allows.
pub fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, Value>, D::Error> {
    use serde::Deserialize;
    Ok(Option::<BTreeMap<String, Value>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Property and variable values arrive as JSON strings, numbers or booleans; Sluice keeps
/// them as text.
pub fn property_text(properties: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    properties
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

pub async fn ksql(State(state): State<AppState>, KsqlBody(body): KsqlBody) -> Result<Json<Vec<Value>>, AppError> {
    let request: KsqlRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("Invalid request body: {e}")))?;
    await_command(&state, request.command_sequence_number).await?;
    let properties = property_text(&request.streams_properties);
    let variables = property_text(&request.session_variables);
    let entities = state.engine.execute(&request.ksql, &properties, &variables).await?;
    Ok(Json(entities))
}

pub async fn info(State(state): State<AppState>) -> Json<Value> {
    let engine = &state.engine;
    Json(json!({
        "KsqlServerInfo": {
            "version": env!("CARGO_PKG_VERSION"),
            "kafkaClusterId": engine.cluster.cluster_id().unwrap_or_default(),
            "ksqlServiceId": engine.config.service_id,
            "serverStatus": if engine.replay_failures().is_empty() { "RUNNING" } else { "DEGRADED" },
        }
    }))
}

/// ksqlDB's health check; a command-log entry that could not be applied makes the server
/// unhealthy (503) while it goes on serving everything else, and is named here.
pub async fn healthcheck(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let engine = &state.engine;
    let kafka = matches!(engine.cluster.topic(engine.commands.topic()), Ok(Some(_)));
    let failures: Vec<Value> = engine
        .replay_failures()
        .into_iter()
        .map(|f| json!({"commandSequenceNumber": f.sequence, "statement": f.statement, "error": f.error}))
        .collect();
    let commands = failures.is_empty();
    let healthy = kafka && commands;
    (
        if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE },
        Json(json!({
            "isHealthy": healthy,
            "details": {
                "metastore": {"isHealthy": true},
                "kafka": {"isHealthy": kafka},
                "commandRunner": {"isHealthy": commands, "failedCommands": failures}
            },
            "serverState": if !kafka { "ERROR" } else if commands { "READY" } else { "DEGRADED" }
        })),
    )
}
