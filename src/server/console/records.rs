//! The console's topic browser: a topic's partitions and offsets with each reader's lag, its
//! records read from the start, the end or an offset and filtered by text, and a record
//! produced by hand.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    connectors::kafka::{PartitionRange, TopicInfo},
    error::SluiceError,
    server::{AppError, AppState},
};

/// Records shown when the page asks for no number, and the most it may ask for.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// With a text filter, how many records per partition are read for each one shown.
const FILTER_WINDOW: i64 = 20;

/// A failure to reach Kafka, shown with its cause.
fn unavailable(error: SluiceError) -> AppError {
    AppError::Unavailable(format!("Kafka: {error}"))
}

fn topic_info(state: &AppState, name: &str) -> Result<TopicInfo, AppError> {
    state
        .engine
        .cluster
        .topic(name)
        .map_err(unavailable)?
        .ok_or_else(|| AppError::NotFound(format!("Topic {name} does not exist")))
}

/// `GET /console/api/topics`: every topic but Sluice's internal ones, with its partitions'
/// offsets.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, AppError> {
    let cluster = &state.engine.cluster;
    let mut topics = Vec::new();
    for topic in cluster.topics().map_err(unavailable)?.into_iter().filter(|t| !t.name.starts_with('_')) {
        let watermarks = cluster.watermarks(&topic.name, topic.partitions).map_err(unavailable)?;
        let records: i64 = watermarks.iter().map(|(low, high)| high - low).sum();
        topics.push(json!({"name": topic.name, "partitions": topic.partitions, "replicas": topic.replicas, "records": records}));
    }
    Ok(Json(json!(topics)))
}

/// `GET /console/api/topics/{name}`: the partitions' first and next offsets, and how far each
/// query, sink connector and consumer group reading the topic is behind on each partition.
pub async fn describe(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, AppError> {
    let info = topic_info(&state, &name)?;
    let watermarks = state.engine.cluster.watermarks(&name, info.partitions).map_err(unavailable)?;
    let partitions: Vec<Value> = watermarks
        .iter()
        .enumerate()
        .map(|(partition, (low, high))| json!({"partition": partition, "low": low, "high": high}))
        .collect();
    let mut readers: Vec<Value> = state
        .engine
        .queries
        .lags()
        .into_iter()
        .filter(|lag| lag.topic == name)
        .map(|lag| json!({"kind": "query", "name": lag.query, "partition": lag.partition, "lag": lag.records}))
        .collect();
    for (connector, status) in state.engine.connectors.statuses() {
        for ((topic, partition), progress) in status.partitions() {
            if topic == name {
                readers.push(json!({"kind": "connector", "name": connector, "partition": partition, "lag": progress.lag()}));
            }
        }
    }
    // Consumer groups are shown where the broker lists them (Tansu 0.6.0 fails to).
    let groups_error = match state.engine.cluster.group_offsets(&name, info.partitions) {
        Ok(groups) => {
            for group in groups {
                let high = usize::try_from(group.partition).ok().and_then(|p| watermarks.get(p)).map_or(group.next, |(_, high)| *high);
                readers.push(json!({"kind": "group", "name": group.group, "partition": group.partition, "lag": (high - group.next).max(0)}));
            }
            None
        }
        Err(e) => Some(format!("The broker did not list its consumer groups: {e}")),
    };
    Ok(Json(json!({"name": name, "replicas": info.replicas, "partitions": partitions, "readers": readers, "groupsError": groups_error})))
}

#[derive(Debug, Deserialize)]
pub struct Browse {
    /// `start`, `end` (the default) or `offset`.
    from: Option<String>,
    offset: Option<i64>,
    partition: Option<i32>,
    limit: Option<usize>,
    /// Text the key or value must contain.
    filter: Option<String>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Record {
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<String>,
    value: Option<String>,
}

impl Record {
    fn matches(&self, text: &str) -> bool {
        [&self.key, &self.value].into_iter().flatten().any(|field| field.contains(text))
    }
}

/// Where a read of partition with offsets `low..high` begins and ends.
fn window(from: &str, offset: Option<i64>, low: i64, high: i64, span: i64) -> Result<(i64, i64), AppError> {
    let (first, last) = match from {
        "start" => (low, low.saturating_add(span)),
        "end" => (high.saturating_sub(span), high),
        "offset" => {
            let offset = offset.ok_or_else(|| AppError::BadRequest("Reading from an offset needs the offset".into()))?;
            let offset = offset.clamp(low, high);
            (offset, offset.saturating_add(span))
        }
        other => return Err(AppError::BadRequest(format!("Records are read from start, end or offset, not '{other}'"))),
    };
    Ok((first.clamp(low, high), last.clamp(low, high)))
}

/// `GET /console/api/topics/{name}/records`: at most `limit` records, oldest first, from the
/// start, the end or an offset of one partition or all of them; with a filter, only those whose
/// key or value holds its text among the records read.
pub async fn browse(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(browse): Query<Browse>,
) -> Result<Json<Value>, AppError> {
    let info = topic_info(&state, &name)?;
    let limit = browse.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let partitions: Vec<i32> = match browse.partition {
        Some(p) if (0..info.partitions).contains(&p) => vec![p],
        Some(p) => return Err(AppError::BadRequest(format!("Topic {name} has no partition {p}"))),
        None => (0..info.partitions).collect(),
    };
    let filter = browse.filter.filter(|f| !f.is_empty());
    let span = limit as i64 * if filter.is_some() { FILTER_WINDOW } else { 1 };
    let from = browse.from.as_deref().unwrap_or("end");
    let mut ranges = Vec::new();
    for partition in partitions {
        let (low, high) = state.engine.cluster.watermark(&name, partition).map_err(unavailable)?;
        let (first, last) = window(from, browse.offset, low, high, span)?;
        ranges.push(PartitionRange { topic: name.clone(), partition, from: first, until: last });
    }
    let cluster = state.engine.cluster.clone();
    let mut records = tokio::task::spawn_blocking(move || {
        use rdkafka::Message;
        let mut records = Vec::new();
        let lossy = |bytes: Option<&[u8]>| bytes.map(|b| String::from_utf8_lossy(b).into_owned());
        cluster.read_ranges(&ranges, |m| {
            records.push(Record {
                partition: m.partition(),
                offset: m.offset(),
                timestamp: m.timestamp().to_millis(),
                key: lossy(m.key()),
                value: lossy(m.payload()),
            });
        })?;
        Ok::<_, SluiceError>(records)
    })
    .await
    .map_err(|e| AppError::Server(e.to_string()))?
    .map_err(unavailable)?;
    if let Some(text) = &filter {
        records.retain(|r| r.matches(text));
    }
    records.sort_by_key(|r| (r.timestamp, r.partition, r.offset));
    let shown = if from == "end" { records.split_off(records.len().saturating_sub(limit)) } else { records.into_iter().take(limit).collect() };
    Ok(Json(json!(shown)))
}

#[derive(Debug, Deserialize)]
pub struct Produce {
    key: Option<String>,
    value: Option<String>,
    partition: Option<i32>,
}

/// `POST /console/api/topics/{name}/records`: produces one record and answers where it landed.
pub async fn produce(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Json(record): Json<Produce>,
) -> Result<Json<Value>, AppError> {
    let info = topic_info(&state, &name)?;
    if let Some(p) = record.partition.filter(|p| !(0..info.partitions).contains(p)) {
        return Err(AppError::BadRequest(format!("Topic {name} has no partition {p}")));
    }
    let (partition, offset) = state
        .engine
        .cluster
        .producer()
        .send(&name, record.partition, record.key.as_deref().map(str::as_bytes), record.value.as_deref().map(str::as_bytes), None)
        .await
        .map_err(|e| AppError::Unavailable(format!("Kafka: producing to {name} failed: {e}")))?;
    Ok(Json(json!({"topic": name, "partition": partition, "offset": offset})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_window_stays_inside_the_partition() {
        assert_eq!(window("start", None, 5, 100, 10).ok(), Some((5, 15)));
        assert_eq!(window("end", None, 5, 100, 10).ok(), Some((90, 100)));
        assert_eq!(window("end", None, 5, 8, 10).ok(), Some((5, 8)));
        assert_eq!(window("offset", Some(97), 5, 100, 10).ok(), Some((97, 100)));
        assert_eq!(window("offset", Some(1), 5, 100, 10).ok(), Some((5, 15)));
        assert!(window("offset", None, 5, 100, 10).is_err());
        assert!(window("middle", None, 5, 100, 10).is_err());
    }

    #[test]
    fn a_filter_looks_at_key_and_value() {
        let record = Record { partition: 0, offset: 1, timestamp: None, key: Some("3".into()), value: Some(r#"{"sensor_id":"3"}"#.into()) };
        assert!(record.matches("sensor_id"));
        assert!(record.matches("3"));
        assert!(!record.matches("wattage"));
    }
}
