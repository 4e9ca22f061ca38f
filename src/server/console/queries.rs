//! The console's figures for queries and the flow graph, read from the running queries',
//! connectors' and topics' live status.

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use serde_json::{Value, json};

use super::flow::{ConnectorFigures, Flow, QueryFigures, Snapshot};
use crate::{
    runtime::{QueryState, status::ErrorKind},
    server::AppState,
};

fn error_kind(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Deserialization => "deserialization",
        ErrorKind::RecordProcessing => "record processing",
        ErrorKind::Serialization => "serialization",
        ErrorKind::Production => "production",
    }
}

/// `GET /console/api/queries`: every persistent query with its state, records in and out,
/// processing errors with the last one and where its record is, and its lag per partition.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let engine = &state.engine;
    let mut lags: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for lag in engine.queries.lags() {
        lags.entry(lag.query).or_default().push(json!({"topic": lag.topic, "partition": lag.partition, "records": lag.records}));
    }
    let queries: Vec<Value> = engine
        .catalog
        .snapshot()
        .queries
        .into_values()
        .map(|query| {
            let status = engine.queries.status(&query.id);
            let (records_in, records_out, errors) = status.as_deref().map_or((0, 0, 0), |s| s.counts());
            let state = status.as_deref().map(|s| s.state());
            let state_name = state.as_ref().map_or(if query.paused { "PAUSED" } else { "UNKNOWN" }, QueryState::name);
            let cause = match state {
                Some(QueryState::Error(cause)) => Some(cause),
                _ => None,
            };
            let last_error = status.as_deref().and_then(|s| s.last_error()).map(|e| {
                json!({"kind": error_kind(e.kind), "message": e.message, "topic": e.topic, "partition": e.partition, "offset": e.offset})
            });
            json!({
                "id": query.id,
                "statement": query.statement,
                "source": query.source,
                "joined": query.joined,
                "sink": query.sink,
                "sinkTopic": query.sink_topic,
                "state": state_name,
                "cause": cause,
                "recordsIn": records_in,
                "recordsOut": records_out,
                "errors": errors,
                "lastError": last_error,
                "lag": lags.remove(&query.id).unwrap_or_default()
            })
        })
        .collect();
    Json(json!(queries))
}

/// `GET /console/api/flow`: the graph of topics, streams, tables, queries, connectors and the
/// folders sinks write, with each edge's records so far.
pub async fn flow(State(state): State<AppState>) -> Json<Flow> {
    let engine = &state.engine;
    let catalog = engine.catalog.snapshot();
    let queries: BTreeMap<String, QueryFigures> = engine
        .queries
        .statuses()
        .into_iter()
        .map(|(id, status)| {
            let (records_in, records_out, errors) = status.counts();
            (id, QueryFigures { state: status.state().name().to_string(), records_in, records_out, errors })
        })
        .collect();
    let connectors: BTreeMap<String, ConnectorFigures> = engine
        .connectors
        .statuses()
        .into_iter()
        .map(|(name, status)| {
            let figures = ConnectorFigures {
                state: status.state().name().to_string(),
                skipped: status.skipped().0,
                partitions: status.partitions(),
            };
            (name, figures)
        })
        .collect();
    let traffic = engine.cluster.traffic().snapshot();
    Json(Flow::of(&Snapshot { catalog: &catalog, queries: &queries, connectors: &connectors, traffic: &traffic }))
}
