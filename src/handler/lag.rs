//! How far a persistent query has read each partition of its sources, beside each partition's
//! end: on the server running it, from its own status; elsewhere, from that server's last
//! heartbeat.

use std::collections::BTreeMap;

use super::{Engine, placement::Task};
use crate::{
    catalog::{CatalogState, QueryDef},
    connectors::source::source_partition,
};

/// One source partition of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The next offset the query reads.
    pub current: i64,
    /// The partition's end.
    pub end: i64,
}

impl PartitionLag {
    pub fn lag(&self) -> i64 {
        (self.end - self.current).max(0)
    }
}

/// Each source topic's partition ends, read from Kafka once per request.
#[derive(Default)]
pub struct Ends(BTreeMap<String, Vec<i64>>);

impl Ends {
    fn of(&mut self, engine: &Engine, topic: &str) -> &[i64] {
        self.0.entry(topic.to_string()).or_insert_with(|| {
            let count = engine.cluster.topic(topic).ok().flatten().map_or(0, |t| t.partitions);
            engine.cluster.watermarks(topic, count).unwrap_or_default().into_iter().map(|(_, high)| high).collect()
        })
    }
}

impl Engine {
    /// `query`'s source partitions as read by a server whose positions for it are `read`.
    pub fn source_lags(&self, catalog: &CatalogState, query: &QueryDef, read: Option<&BTreeMap<i32, i64>>, ends: &mut Ends) -> Vec<PartitionLag> {
        let topics = query
            .scanned_sources(&catalog.streams)
            .into_iter()
            .filter_map(|name| catalog.streams.get(&name).map(|s| s.topic.clone()));
        let mut lags = Vec::new();
        for (index, topic) in topics.enumerate() {
            for (partition, end) in ends.of(self, &topic).iter().enumerate() {
                let partition = partition as i32;
                let current = read.and_then(|r| r.get(&source_partition(index, partition))).copied().unwrap_or(0);
                lags.push(PartitionLag { topic: topic.clone(), partition, current, end: *end });
            }
        }
        lags
    }

    /// How far query `id` has read, on whichever server runs it: here from its status, else
    /// from its holder's last heartbeat; `None` when no server alive runs it.
    pub fn query_positions(&self, id: &str) -> Option<BTreeMap<i32, i64>> {
        if let Some(read) = self.local_query_positions().remove(id) {
            return Some(read);
        }
        let holder = self.placement.holders().remove(&Task::Query(id.to_string()))?;
        let membership = &self.placement.membership;
        membership.live_heartbeats().into_iter().find(|h| h.server == holder).and_then(|mut h| h.positions.remove(id))
    }
}
