//! `GET /clusterStatus` in ksqlDB's shape: every server of the service seen, whether it is
//! alive, when it last said so, the source partitions of the queries it runs, and how far
//! behind each query is on each of them (`hostStoreLags`, keyed `<query>#<source topic>`).

use std::collections::BTreeMap;

use axum::{Json, extract::State};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::{cluster::membership::host_port, handler::lag::Ends};

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
    let mut ends = Ends::default();
    let mut status = Map::new();
    for heartbeat in servers {
        let mut queries = Map::new();
        let mut lags = Map::new();
        for (id, _) in holders.iter().filter(|(_, holder)| *holder == heartbeat.server) {
            let Some(query) = catalog.queries.get(id) else { continue };
            let read = engine.source_lags(&catalog, query, heartbeat.positions.get(id), &mut ends);
            let partitions: Vec<Value> = read.iter().map(|p| json!({"topic": p.topic, "partition": p.partition})).collect();
            let mut by_topic: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
            for p in &read {
                by_topic.entry(&p.topic).or_default().insert(
                    p.partition.to_string(),
                    json!({"currentOffsetPosition": p.current, "endOffsetPosition": p.end, "offsetLag": p.lag()}),
                );
            }
            for (topic, by_partition) in by_topic {
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
