//! `GET /clusterStatus` in ksqlDB's shape: every server of the service seen, whether it is
//! alive, when it last said so, and the source partitions of the queries it runs.

use axum::{Json, extract::State};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::cluster::membership::host_port;

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
    if !servers.iter().any(|h| h.server == membership.me()) {
        servers.push(crate::cluster::Heartbeat {
            server: membership.me().to_string(),
            at: crate::cluster::membership::now_ms(),
            leaving: false,
            queries: Default::default(),
        });
    }
    let mut status = Map::new();
    for heartbeat in servers {
        let mut queries = Map::new();
        for (id, _) in holders.iter().filter(|(_, holder)| *holder == heartbeat.server) {
            let Some(query) = catalog.queries.get(id) else { continue };
            let topics = std::iter::once(&query.source)
                .chain(&query.joined)
                .filter_map(|name| catalog.streams.get(name).map(|s| s.topic.clone()));
            let mut partitions = Vec::new();
            for topic in topics {
                let count = engine.cluster.topic(&topic).ok().flatten().map_or(0, |t| t.partitions);
                partitions.extend((0..count).map(|partition| json!({"topic": topic, "partition": partition})));
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
                "hostStoreLags": {"stateStoreLags": {}, "updateTimeMs": heartbeat.at},
            }),
        );
    }
    Json(json!({"clusterStatus": status}))
}
