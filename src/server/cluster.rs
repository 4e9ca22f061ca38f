//! `GET /clusterStatus` in ksqlDB's shape: every server of the service seen, whether it is
//! alive, when it last said so, the source partitions of the queries it runs, and how far
//! behind each query is on each of them (`hostStoreLags`, keyed `<query>#<source topic>`).

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::{
    cluster::membership::host_port,
    connectors::source::source_partition,
};

pub async fn cluster_status(State(state): State<AppState>) -> Json<Value> {
    let engine = &state.engine;
    let placement = &engine.placement;
    let membership = &placement.membership;
    let catalog = engine.catalog.snapshot();
    let holders: Vec<(String, String)> = placement
        .holders()
        .into_iter()
        .filter_map(|(task, holder)| match task {
            crate::handler::placement::Task::Query(id) => Some((id, holder)),
            crate::handler::placement::Task::Connector(_) => None,
        })
        .collect();
    let mut servers = membership.heartbeats();
    servers.retain(|h| h.server != membership.me());
    servers.push(crate::cluster::Heartbeat {
        server: membership.me().to_string(),
        at: crate::cluster::membership::now_ms(),
        leaving: false,
        queries: Default::default(),
        positions: engine.local_query_positions(),
    });
    // Each source topic's partitions and their ends, read once.
    let mut ends: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut status = Map::new();
    for heartbeat in servers {
        let mut queries = Map::new();
        let mut lags = Map::new();
        for (id, _) in holders.iter().filter(|(_, holder)| *holder == heartbeat.server) {
            let Some(query) = catalog.queries.get(id) else { continue };
            let topics: Vec<String> = std::iter::once(&query.source)
                .chain(&query.joined)
                .filter_map(|name| catalog.streams.get(name).map(|s| s.topic.clone()))
                .collect();
            let read = heartbeat.positions.get(id);
            let mut partitions = Vec::new();
            for (index, topic) in topics.iter().enumerate() {
                if !ends.contains_key(topic) {
                    let count = engine.cluster.topic(topic).ok().flatten().map_or(0, |t| t.partitions);
                    let marks = engine.cluster.watermarks(topic, count).unwrap_or_default();
                    ends.insert(topic.clone(), marks.into_iter().map(|(_, high)| high).collect());
                }
                let mut by_partition = Map::new();
                for (partition, end) in ends[topic].iter().enumerate() {
                    let partition = partition as i32;
                    partitions.push(json!({"topic": topic, "partition": partition}));
                    let current = read.and_then(|r| r.get(&source_partition(index, partition))).copied().unwrap_or(0);
                    by_partition.insert(
                        partition.to_string(),
                        json!({"currentOffsetPosition": current, "endOffsetPosition": end, "offsetLag": (end - current).max(0)}),
                    );
                }
                lags.insert(format!("{id}#{topic}"), json!({"lagByPartition": by_partition}));
            }
            queries.insert(
                id.clone(),
                json!({"activeStores": [], "activePartitions": partitions, "standByStores": [], "standByPartitions": []}),
            );
        }
        status.insert(
            host_port(&heartbeat.server),
            json!({
                "hostAlive": membership.is_live(&heartbeat.server),
                "lastStatusUpdateMs": heartbeat.at,
                "activeStandbyPerQuery": queries,
                "hostStoreLags": {"stateStoreLags": lags, "updateTimeMs": heartbeat.at},
            }),
        );
    }
    Json(json!({"clusterStatus": status}))
}
