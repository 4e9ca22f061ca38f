//! The console's view of what a sink connector wrote: the folder tree under its `topics.dir`
//! with each file's size, and a preview of a file's first lines (a Parquet file's first rows,
//! as JSON).

use axum::{
    Json,
    extract::{Path, Query, State},
};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    connectors::hdfs::{HdfsSinkConfig, store::Store},
    error::SluiceError,
    parser::ConnectorKind,
    server::{AppError, AppState},
};

/// Entries listed before the tree is cut off.
const TREE_LIMIT: usize = 5000;
/// Lines (or Parquet rows) a preview shows, and the bytes read for a text file's.
const PREVIEW_LINES: usize = 20;
const PREVIEW_BYTES: usize = 64 * 1024;
/// The largest Parquet file a preview reads (its footer is at the end).
const PARQUET_LIMIT: usize = 64 * 1024 * 1024;

/// The sink connector `name`'s config.
fn sink(state: &AppState, name: &str) -> Result<HdfsSinkConfig, AppError> {
    let connector = state
        .engine
        .catalog
        .connector(name)
        .filter(|c| c.kind == ConnectorKind::Sink)
        .ok_or_else(|| AppError::NotFound(format!("Sink connector {name} not found")))?;
    Ok(HdfsSinkConfig::from_map(&connector.config)?)
}

/// A failure of the store, shown with its cause.
fn unavailable(config: &HdfsSinkConfig) -> impl Fn(SluiceError) -> AppError + '_ {
    move |e| AppError::Unavailable(format!("{}: {e}", config.store_url))
}

/// `topics.dir` as a path from the store's root.
fn root(config: &HdfsSinkConfig) -> String {
    format!("/{}", config.topics_dir.trim_matches('/'))
}

/// `GET /console/api/connectors/{name}/files`: every folder and file under the sink's
/// `topics.dir`, with sizes.
pub async fn tree(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, AppError> {
    let config = sink(&state, &name)?;
    let store = Store::open(&config.store_url)?;
    let root = root(&config);
    let (entries, truncated) = store.tree(&root, TREE_LIMIT).await.map_err(unavailable(&config))?;
    let entries: Vec<Value> = entries.into_iter().map(|e| json!({"path": e.path, "dir": e.is_dir, "bytes": e.length})).collect();
    Ok(Json(json!({"store": config.store_url, "root": root, "entries": entries, "truncated": truncated})))
}

#[derive(Debug, Deserialize)]
pub struct Preview {
    path: String,
}

/// `GET /console/api/connectors/{name}/preview?path=…`: the first lines of a file under the
/// sink's `topics.dir`.
pub async fn preview(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(preview): Query<Preview>,
) -> Result<Json<Value>, AppError> {
    let config = sink(&state, &name)?;
    let root = root(&config);
    let path = preview.path;
    let inside = path.strip_prefix(&root).is_some_and(|rest| rest.starts_with('/') && !rest.split('/').any(|p| p == ".."));
    if !inside {
        return Err(AppError::BadRequest(format!("{path} is not under the connector's topics.dir {root}")));
    }
    let store = Store::open(&config.store_url)?;
    let lines = if path.ends_with(".parquet") {
        parquet_rows(store.head(&path, PARQUET_LIMIT).await.map_err(unavailable(&config))?)?
    } else {
        let head = store.head(&path, PREVIEW_BYTES).await.map_err(unavailable(&config))?;
        String::from_utf8_lossy(&head).lines().take(PREVIEW_LINES).map(str::to_string).collect()
    };
    Ok(Json(json!({"path": path, "lines": lines})))
}

/// The first rows of a Parquet file, each as a JSON object.
fn parquet_rows(file: Bytes) -> Result<Vec<String>, SluiceError> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(PREVIEW_LINES)
        .build()?;
    let mut rows = Vec::new();
    if let Some(batch) = reader.into_iter().next() {
        let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
        writer.write(&batch?)?;
        writer.finish()?;
        rows.extend(String::from_utf8_lossy(&writer.into_inner()).lines().map(str::to_string));
    }
    Ok(rows)
}
