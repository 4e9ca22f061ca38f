//! Kafka Connect's REST API for connectors (`/connectors…`), on the same connectors as the
//! SQL statements: a `POST` or `PUT` becomes a `CREATE SINK CONNECTOR`, a `DELETE` a
//! `DROP CONNECTOR`, each logged in the command topic like any statement.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppState, body::ConnectBody};
use crate::{
    catalog::ConnectorDef,
    handler::{StatementFailure, connector},
    runtime::connectors::ConnectorManager,
};

/// Connect's error body: `{"error_code": <HTTP status>, "message": …}`.
pub struct ConnectError(pub StatusCode, pub String);

impl IntoResponse for ConnectError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error_code": self.0.as_u16(), "message": self.1}))).into_response()
    }
}

impl From<StatementFailure> for ConnectError {
    fn from(failure: StatementFailure) -> Self {
        let status = if failure.error.is_user_error() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ConnectError(status, failure.error.to_string())
    }
}

type Answer = Result<Response, ConnectError>;

fn not_found(name: &str) -> ConnectError {
    ConnectError(StatusCode::NOT_FOUND, format!("Connector {name} not found"))
}

fn find(state: &AppState, name: &str) -> Result<ConnectorDef, ConnectError> {
    state.engine.catalog.connector(name).ok_or_else(|| not_found(name))
}

/// Connect takes config values as strings; numbers and booleans are accepted too.
pub(super) fn config_map(config: &serde_json::Map<String, Value>) -> Result<BTreeMap<String, String>, ConnectError> {
    config
        .iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
            _ => Err(ConnectError(
                StatusCode::BAD_REQUEST,
                format!("config value of {k} must be a string"),
            )),
        })
        .collect()
}

#[derive(Deserialize)]
pub struct ListParams {
    expand: Option<String>,
}

/// `GET /connectors[?expand=status|info]`.
pub async fn list(State(state): State<AppState>, Query(params): Query<ListParams>) -> Json<Value> {
    let connectors = state.engine.catalog.snapshot().connectors;
    match params.expand.as_deref() {
        Some(expand @ ("status" | "info")) => {
            let expanded: serde_json::Map<String, Value> = connectors
                .values()
                .map(|c| {
                    let view = if expand == "status" {
                        connector::state_info(&state.engine, c)
                    } else {
                        connector::info(c)
                    };
                    (c.name.clone(), json!({ expand: view }))
                })
                .collect();
            Json(Value::Object(expanded))
        }
        _ => Json(json!(connectors.keys().collect::<Vec<_>>())),
    }
}

#[derive(Deserialize)]
pub struct CreateRequest {
    name: Option<String>,
    pub(super) config: Option<serde_json::Map<String, Value>>,
}

/// `POST /connectors` with `{"name": …, "config": {…}}`: 201 and the connector's info.
pub async fn create(State(state): State<AppState>, ConnectBody(body): ConnectBody) -> Answer {
    let request: CreateRequest = serde_json::from_slice(&body)
        .map_err(|e| ConnectError(StatusCode::BAD_REQUEST, format!("Invalid request body: {e}")))?;
    let name = request
        .name
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ConnectError(StatusCode::BAD_REQUEST, "Connector name is required".into()))?;
    let config = config_map(&request.config.unwrap_or_default())?;
    if config.get("name").is_some_and(|n| *n != name) {
        return Err(ConnectError(
            StatusCode::BAD_REQUEST,
            "Connector name configuration must match connector name in request".into(),
        ));
    }
    if state.engine.catalog.connector(&name).is_some_and(|c| c.name == name) {
        return Err(ConnectError(StatusCode::CONFLICT, format!("Connector {name} already exists")));
    }
    let sql = connector::create_statement(&name, &config);
    state.engine.execute(&sql, &BTreeMap::new(), &BTreeMap::new()).await?;
    let created = find(&state, &name)?;
    Ok((StatusCode::CREATED, Json(connector::info(&created))).into_response())
}

/// `GET /connectors/{name}`.
pub async fn get_info(State(state): State<AppState>, Path(name): Path<String>) -> Answer {
    Ok(Json(connector::info(&find(&state, &name)?)).into_response())
}

/// `GET /connectors/{name}/config`.
pub async fn get_config(State(state): State<AppState>, Path(name): Path<String>) -> Answer {
    Ok(Json(connector::config(&find(&state, &name)?)).into_response())
}

/// `PUT /connectors/{name}/config`: creates (201) or replaces (200) the connector.
pub async fn put_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ConnectBody(body): ConnectBody,
) -> Answer {
    let body: serde_json::Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|e| ConnectError(StatusCode::BAD_REQUEST, format!("Invalid request body: {e}")))?;
    let config = config_map(&body)?;
    if config.get("name").is_some_and(|n| *n != name) {
        return Err(ConnectError(
            StatusCode::BAD_REQUEST,
            "Connector name configuration must match connector name in request".into(),
        ));
    }
    let candidate = connector::from_config(&name, connector::kind_of(&config), config.clone());
    ConnectorManager::validate(&candidate).map_err(|e| ConnectError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let existed = state.engine.catalog.connector(&name).is_some_and(|c| c.name == name);
    let mut sql = String::new();
    if existed {
        sql.push_str(&connector::drop_statement(&name));
    }
    sql.push_str(&connector::create_statement(&name, &config));
    state.engine.execute(&sql, &BTreeMap::new(), &BTreeMap::new()).await?;
    let status = if existed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(connector::info(&find(&state, &name)?))).into_response())
}

/// `GET /connectors/{name}/status`, with Sluice's per-partition progress.
pub async fn status(State(state): State<AppState>, Path(name): Path<String>) -> Answer {
    let found = find(&state, &name)?;
    Ok(Json(connector::state_info(&state.engine, &found)).into_response())
}

/// `GET /connectors/{name}/tasks`.
pub async fn tasks(State(state): State<AppState>, Path(name): Path<String>) -> Answer {
    let found = find(&state, &name)?;
    let config = connector::config(&found);
    Ok(Json(json!([{"id": {"connector": found.name, "task": 0}, "config": config}])).into_response())
}

/// `GET /connectors/{name}/topics`.
pub async fn topics(State(state): State<AppState>, Path(name): Path<String>) -> Answer {
    let found = find(&state, &name)?;
    Ok(Json(json!({ found.name.clone(): {"topics": found.topics()} })).into_response())
}

/// `DELETE /connectors/{name}`: 204.
pub async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Answer {
    let found = find(&state, &name)?;
    state
        .engine
        .execute(&connector::drop_statement(&found.name), &BTreeMap::new(), &BTreeMap::new())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /connectors/{name}/restart` and `…/tasks/{task}/restart`: 204; the sink recovers
/// from what its store has committed.
pub async fn restart(State(state): State<AppState>, Path(params): Path<Vec<(String, String)>>) -> Answer {
    let name = params
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if let Some((_, task)) = params.iter().find(|(k, _)| k == "task") {
        if task != "0" {
            return Err(ConnectError(StatusCode::NOT_FOUND, format!("Task {name}-{task} not found")));
        }
    }
    let found = find(&state, &name)?;
    if !state.engine.connectors.is_running(&found.name) {
        let task = crate::handler::placement::Task::Connector(found.name.clone());
        let message = match state.engine.placement.holders().remove(&task) {
            Some(holder) => format!("Connector {} runs on {holder}: restart it there", found.name),
            None => format!("Connector {} is not running on any server yet", found.name),
        };
        return Err(ConnectError(StatusCode::CONFLICT, message));
    }
    state
        .engine
        .connectors
        .restart(&found.name)
        .await
        .map_err(|e| ConnectError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
