//! Push queries: `POST /query`, `POST /query-stream` and `POST /close-query`.
//!
//! Each row is written as its own chunk, in the format the `Accept` header picks: ksqlDB's
//! StreamedRow array, the delimited format (one JSON value per line) or one JSON array.

use std::collections::BTreeMap;

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, header},
    response::Response,
};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    AppError, AppState,
    body::KsqlBody,
    forward::{self, Routing},
    ksql::property_text,
};
use crate::{
    catalog::types::SqlType,
    parser::{KsqlParser, Statement, variables::substitute},
    planner::QueryPlanner,
    properties,
    runtime::{
        OffsetReset, pull,
        sink::{PushRow, QuerySink, RowsSink},
    },
};

/// How long a pull query waits for a materialized table to reflect its topic as it is when the
/// query arrives; past it, the query answers from the rows there are.
const PULL_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    StreamedRow,
    Delimited,
    JsonArray,
}

#[derive(Debug, Deserialize)]
pub(super) struct LegacyQueryRequest {
    pub(super) ksql: String,
    #[serde(default, deserialize_with = "super::ksql::null_as_empty", rename = "streamsProperties")]
    pub(super) streams_properties: BTreeMap<String, Value>,
    #[serde(default, deserialize_with = "super::ksql::null_as_empty", rename = "sessionVariables")]
    pub(super) session_variables: BTreeMap<String, Value>,
    #[serde(default, rename = "commandSequenceNumber")]
    pub(super) command_sequence_number: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(super) struct QueryStreamArgs {
    pub(super) sql: String,
    #[serde(default, deserialize_with = "super::ksql::null_as_empty")]
    pub(super) properties: BTreeMap<String, Value>,
    #[serde(default, deserialize_with = "super::ksql::null_as_empty", rename = "sessionVariables")]
    pub(super) session_variables: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct CloseQuery {
    #[serde(rename = "queryId")]
    pub(super) query_id: String,
}

fn accept(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or("").trim().to_ascii_lowercase())
}

pub async fn query(State(state): State<AppState>, headers: HeaderMap, KsqlBody(body): KsqlBody) -> Result<Response, AppError> {
    let request: LegacyQueryRequest = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("Invalid request body: {e}")))?;
    let layout = match accept(&headers).as_deref() {
        Some("*/*") | Some("application/vnd.ksqlapi.delimited.v1") => Layout::Delimited,
        _ => Layout::StreamedRow,
    };
    super::ksql::await_command(&state, request.command_sequence_number).await?;
    let sql = substitute(&request.ksql, &property_text(&request.session_variables));
    let routing = Routing::of("/query", &headers, &body);
    run(state, &sql, property_text(&request.streams_properties), layout, routing).await
}

pub async fn query_stream(State(state): State<AppState>, headers: HeaderMap, KsqlBody(body): KsqlBody) -> Result<Response, AppError> {
    let request: QueryStreamArgs = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("Invalid request body: {e}")))?;
    let layout = match accept(&headers).as_deref() {
        Some("application/json") => Layout::JsonArray,
        Some("application/vnd.ksql.v1+json") => Layout::StreamedRow,
        _ => Layout::Delimited,
    };
    let sql = substitute(&request.sql, &property_text(&request.session_variables));
    let routing = Routing::of("/query-stream", &headers, &body);
    run(state, &sql, property_text(&request.properties), layout, routing).await
}

pub async fn close_query(State(state): State<AppState>, KsqlBody(body): KsqlBody) -> Result<Response, AppError> {
    let request: CloseQuery = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("Invalid request body: {e}")))?;
    match state.push_queries.lock().remove(&request.query_id) {
        Some(token) => {
            token.cancel();
            Ok(Response::new(Body::empty()))
        }
        None => Err(AppError::BadRequest(format!("No query with id {}", request.query_id))),
    }
}

async fn run(state: AppState, sql: &str, properties: BTreeMap<String, String>, layout: Layout, routing: Routing) -> Result<Response, AppError> {
    let mut properties = properties::normalize(&properties).map_err(|e| AppError::from(e).with_statement(sql))?;
    let statements = KsqlParser::parse_with_types(sql, &state.engine.catalog.types()).map_err(|e| AppError::from(e).with_statement(sql))?;
    let mut select = None;
    for parsed in statements {
        match parsed.statement {
            Statement::Set(set) => {
                properties::set(&mut properties, &set.name, &set.value).map_err(|e| AppError::from(e).with_statement(&parsed.text))?;
            }
            Statement::Unset(unset) => {
                properties::unset(&mut properties, &unset.name).map_err(|e| AppError::from(e).with_statement(&parsed.text))?;
            }
            Statement::Select(s) if select.is_none() => select = Some((s, parsed.text)),
            Statement::Print(print) => return print_topic(state, print, &parsed.text).await,
            other => {
                return Err(AppError::Statement {
                    message: format!("Only a SELECT can be sent to this endpoint, not: {other}"),
                    statement_text: parsed.text,
                    entities: Vec::new(),
                });
            }
        }
    }
    let Some((select, text)) = select else {
        return Err(AppError::Statement {
            message: "The request holds no SELECT statement.".into(),
            statement_text: sql.to_string(),
            entities: Vec::new(),
        });
    };
    if !select.emit_changes {
        let limit_enabled = crate::properties::pull_limit_enabled(&properties);
        crate::planner::pull_rules::check(&select, limit_enabled).map_err(|e| AppError::from(e).with_statement(&text))?;
    }
    let engine = state.engine.clone();
    let limits = crate::handler::ddl::collect_limits(&engine, &properties).map_err(|e| AppError::from(e).with_statement(&text))?;
    let plan = QueryPlanner::plan_with(&engine.catalog, &select, limits)
        .await
        .map_err(|e| AppError::from(e).with_statement(&text))?;
    let reset = OffsetReset::from_properties(&properties).map_err(|e| AppError::from(e).with_statement(&text))?;
    let mut plan = plan;
    plan.per_record_updates = crate::properties::per_record_updates(&properties);
    plan.idle_close = crate::properties::window_idle_close(&properties);
    let query_id = format!("transient_{}_{}", plan.source.name, rand_id());
    let names: Vec<String> = plan.output_schema.fields().iter().map(|f| f.name().clone()).collect();
    let types: Vec<String> = plan
        .output_schema
        .fields()
        .iter()
        .map(|f| SqlType::from_arrow(f.data_type()).map_or("STRING".into(), |t| t.to_string()))
        .collect();
    let limit = plan.limit;
    let pulls_table = plan.source.is_table() && !select.emit_changes;
    // A pull query's schema marks the key columns, as ksqlDB's does.
    let key_marks: Vec<&str> = plan
        .key_outputs
        .iter()
        .map(|key| if *key && pulls_table { " KEY" } else { "" })
        .collect();
    if pulls_table
        && let Some(origin) = &routing.origin
        && let Some(owner) = forward::owner(&engine, &plan.source.name)
        && let Some(response) = forward::forward(&state.peers, &owner, origin).await
    {
        return Ok(response);
    }
    // A debug request's rows name the server that read them, as ksqlDB's `sourceHost`.
    let source_host = (routing.debug && pulls_table).then(|| {
        let me = crate::cluster::membership::host_port(engine.placement.membership.me());
        let (host, port) = me.rsplit_once(':').unwrap_or((me.as_str(), "0"));
        json!({"host": host, "port": port.parse::<u16>().unwrap_or(0)}).to_string()
    });
    if state.push_queries.lock().len() >= engine.config.max_push_queries {
        return Err(AppError::TooManyPushQueries);
    }
    let (sender, receiver) = mpsc::channel::<PushRow>(1024);
    let sink = QuerySink::Rows(RowsSink {
        sender,
        key_outputs: plan.key_outputs.clone(),
        tombstones: plan.source.is_table() || plan.aggregation.is_some(),
    });
    let scan = if pulls_table {
        let table_name = plan.source.name.clone();
        let lookup = engine.clone();
        let table = tokio::task::spawn_blocking(move || {
            caught_up_writers(&lookup, &table_name)?;
            lookup.queries.table_state(&table_name, PULL_CATCH_UP)
        })
            .await
            .map_err(|e| AppError::Server(e.to_string()))?
            .map_err(|e| AppError::from(e).with_statement(&text))?
            .ok_or_else(|| {
                let name = &plan.source.name;
                AppError::from(crate::error::SluiceError::Plan(format!(
                    "The `{name}` table isn't queryable. To derive a queryable table, you can do 'CREATE TABLE QUERYABLE_{name} AS SELECT * FROM {name}'. See https://cnfl.io/queries for more info."
                )))
                .with_statement(&text)
            })?;
        tokio::task::spawn_blocking(move || {
            if let Err(e) = pull::run(&table, plan, sink) {
                tracing::warn!(error = %e, "a pull query failed");
            }
        });
        None
    } else {
        Some(
            engine
                .queries
                .start_transient(&query_id, plan, sink, reset, !select.emit_changes)
                .map_err(|e| AppError::from(e).with_statement(&text))?,
        )
    };
    let token = CancellationToken::new();
    state.push_queries.lock().insert(query_id.clone(), token.clone());

    let header = match layout {
        Layout::StreamedRow => {
            let schema: Vec<String> = names
                .iter()
                .zip(&types)
                .zip(&key_marks)
                .map(|((n, t), k)| format!("`{n}` {t}{k}"))
                .collect();
            format!("[{}", json!({"header": {"queryId": query_id, "schema": schema.join(", ")}}))
        }
        Layout::Delimited => format!("{}\n", json!({"queryId": query_id, "columnNames": names, "columnTypes": types})),
        Layout::JsonArray => format!("[{}", json!({"queryId": query_id, "columnNames": names, "columnTypes": types})),
    };
    let registered = Registered {
        registry: state.push_queries.clone(),
        id: query_id.clone(),
        _scan: scan,
    };
    let rows = futures::stream::unfold((receiver, token, registered), move |(mut receiver, token, registered)| async move {
        tokio::select! {
            row = receiver.recv() => row.map(|row| (row, (receiver, token, registered))),
            _ = token.cancelled() => None,
        }
    });
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(header)) })
        .chain(rows.map(move |row| {
            let chunk = match layout {
                Layout::StreamedRow => {
                    let mut c = b",\n{\"row\":{\"columns\":".to_vec();
                    c.extend_from_slice(&row.columns);
                    if row.tombstone {
                        c.extend_from_slice(b",\"tombstone\":true");
                    }
                    c.push(b'}');
                    if let Some(host) = &source_host {
                        c.extend_from_slice(b",\"sourceHost\":");
                        c.extend_from_slice(host.as_bytes());
                    }
                    c.push(b'}');
                    c
                }
                Layout::Delimited => {
                    let mut c = row.columns;
                    c.push(b'\n');
                    c
                }
                Layout::JsonArray => {
                    let mut c = b",".to_vec();
                    c.extend_from_slice(&row.columns);
                    c
                }
            };
            Ok(Bytes::from(chunk))
        }))
        .chain(futures::stream::once(async move {
            let end: &str = match layout {
                Layout::StreamedRow if limit.is_some() => ",\n{\"finalMessage\":\"Limit Reached\"}\n]\n",
                Layout::StreamedRow => ",\n{\"finalMessage\":\"Query Completed\"}\n]\n",
                Layout::Delimited => "",
                Layout::JsonArray => "]",
            };
            Ok(Bytes::from(end))
        }));
    let content_type = match layout {
        Layout::StreamedRow => "application/vnd.ksql.v1+json",
        Layout::Delimited => "application/vnd.ksqlapi.delimited.v1",
        Layout::JsonArray => "application/json",
    };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from_stream(body))
        .map_err(|e| AppError::Server(e.to_string()))
}

/// Waits (up to [`PULL_CATCH_UP`] each) until the queries writing `table` have their output in
/// Kafka for everything their sources hold now — the queries writing those sources first — so
/// a pull query sees what was written before it. Blocking.
fn caught_up_writers(engine: &crate::handler::Engine, table: &str) -> crate::error::Result<()> {
    let streams = engine.catalog.snapshot().streams;
    catch_up(engine, &streams, table, &mut std::collections::HashSet::new())
}

/// [`caught_up_writers`] of `name`, skipping sources already caught up in `done`; `streams`
/// are the catalog's.
fn catch_up(
    engine: &crate::handler::Engine,
    streams: &BTreeMap<String, crate::catalog::SourceDef>,
    name: &str,
    done: &mut std::collections::HashSet<String>,
) -> crate::error::Result<()> {
    if !done.insert(name.to_string()) {
        return Ok(());
    }
    let (_, writers) = engine.catalog.queries_of(name);
    for writer in writers {
        for upstream in std::iter::once(&writer.source).chain(&writer.joined) {
            catch_up(engine, streams, upstream, done)?;
        }
        let topics: Vec<String> = writer
            .scanned_sources(streams)
            .iter()
            .map(|name| engine.catalog.stream(name).map(|s| s.topic))
            .collect::<crate::error::Result<_>>()?;
        engine.queries.wait_for_query(&writer.id, &topics, PULL_CATCH_UP)?;
    }
    Ok(())
}

/// Streams `PRINT` lines, one per chunk, until the limit or the client goes away.
async fn print_topic(state: AppState, print: crate::parser::Print, text: &str) -> Result<Response, AppError> {
    let cluster = state.engine.cluster.clone();
    let (sender, receiver) = mpsc::channel::<String>(1024);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    tokio::task::spawn_blocking(move || {
        let topic = crate::runtime::print::resolve_topic(&cluster, &print)?;
        crate::runtime::print::start(cluster, topic, print, sender, flag)
    })
    .await
    .map_err(|e| AppError::Server(e.to_string()))?
    .map_err(|e| AppError::from(e).with_statement(text))?;
    let guard = StopOnDrop(stop);
    let lines = futures::stream::unfold((receiver, guard), |(mut receiver, guard)| async move {
        receiver
            .recv()
            .await
            .map(|line| (Ok::<_, std::io::Error>(Bytes::from(line + "\n")), (receiver, guard)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(lines))
        .map_err(|e| AppError::Server(e.to_string()))
}

/// A running push query: its scan stops and its id is forgotten when the response is dropped,
/// whether it ended or the client went away.
struct Registered {
    registry: std::sync::Arc<parking_lot::Mutex<BTreeMap<String, CancellationToken>>>,
    id: String,
    /// A push query's scan; a pull query over a table has none.
    _scan: Option<crate::runtime::scan::ScanHandle>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// Tells a printing thread to stop when the response is dropped.
struct StopOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    hasher.finish() >> 1
}
