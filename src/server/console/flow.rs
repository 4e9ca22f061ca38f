//! The console's flow graph: topics → streams and tables → queries → their sinks' topics →
//! connectors → the folders sinks write, each edge carrying a cumulative record count the
//! page turns into records per second between two reads.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::{
    catalog::CatalogState,
    connectors::{hdfs::HdfsSinkConfig, kafka::traffic::TopicTraffic, status::PartitionProgress},
    parser::{ConnectorKind, SourceKind},
    runtime::processing_log,
};

#[derive(Debug, Serialize, PartialEq)]
pub struct Flow {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Node {
    pub id: String,
    /// `topic`, `stream`, `table`, `query`, `connector` or `store`.
    pub kind: &'static str,
    pub name: String,
    /// A query's or connector's state (`RUNNING`, `ERROR`, `FAILED`, `PAUSED`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Records a query or connector skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// Records that passed along the edge so far, where they are counted.
    pub records: Option<u64>,
}

/// A running query's figures, as the graph shows them.
pub struct QueryFigures {
    pub state: String,
    pub records_in: u64,
    pub records_out: u64,
    pub errors: u64,
}

/// A connector's figures, as the graph shows them.
pub struct ConnectorFigures {
    pub state: String,
    pub skipped: u64,
    pub partitions: BTreeMap<(String, i32), PartitionProgress>,
}

/// What the graph is drawn from, read at one moment.
pub struct Snapshot<'a> {
    pub catalog: &'a CatalogState,
    pub queries: &'a BTreeMap<String, QueryFigures>,
    pub connectors: &'a BTreeMap<String, ConnectorFigures>,
    pub traffic: &'a BTreeMap<String, TopicTraffic>,
}

fn topic_id(topic: &str) -> String {
    format!("topic:{topic}")
}

fn source_id(name: &str) -> String {
    format!("source:{name}")
}

impl Flow {
    pub fn of(snapshot: &Snapshot<'_>) -> Flow {
        let mut flow = Builder::default();
        let catalog = snapshot.catalog;
        let sources = catalog.streams.values().filter(|s| s.name != processing_log::STREAM_NAME);
        for source in sources {
            let kind = match source.kind {
                SourceKind::Stream => "stream",
                SourceKind::Table => "table",
            };
            flow.node(source_id(&source.name), kind, &source.name, None, None);
            flow.topic(&source.topic);
            let traffic = snapshot.traffic.get(&source.topic);
            if source.created_by_query {
                flow.edge(source_id(&source.name), topic_id(&source.topic), traffic.map(|t| t.produced));
            } else {
                flow.edge(topic_id(&source.topic), source_id(&source.name), traffic.map(|t| t.fetched));
            }
        }
        for query in catalog.queries.values() {
            let figures = snapshot.queries.get(&query.id);
            let id = format!("query:{}", query.id);
            let state = figures.map_or_else(|| if query.paused { "PAUSED" } else { "UNKNOWN" }.to_string(), |f| f.state.clone());
            flow.node(id.clone(), "query", &query.id, Some(state), figures.map(|f| f.errors));
            flow.edge(source_id(&query.source), id.clone(), figures.map(|f| f.records_in));
            for joined in &query.joined {
                flow.edge(source_id(joined), id.clone(), None);
            }
            flow.edge(id, source_id(&query.sink), figures.map(|f| f.records_out));
        }
        let topics: Vec<String> = flow.topics.iter().cloned().collect();
        for connector in catalog.connectors.values() {
            let figures = snapshot.connectors.get(&connector.name);
            let id = format!("connector:{}", connector.name);
            flow.node(id.clone(), "connector", &connector.name, figures.map(|f| f.state.clone()), figures.map(|f| f.skipped));
            let records_of = |topic: &str| {
                figures.map(|f| f.partitions.iter().filter(|((t, _), _)| t == topic).map(|(_, p)| p.records).sum::<u64>())
            };
            match connector.kind {
                ConnectorKind::Source => {
                    for topic in connector.topics() {
                        flow.topic(&topic);
                        flow.edge(id.clone(), topic_id(&topic), records_of(&topic));
                    }
                }
                ConnectorKind::Sink => {
                    let Ok(config) = HdfsSinkConfig::from_map(&connector.config) else { continue };
                    for topic in topics.iter().filter(|t| config.topics.matches(t)) {
                        flow.edge(topic_id(topic), id.clone(), records_of(topic));
                    }
                    let folder = format!("{}/{}", config.store_url.trim_end_matches('/'), config.topics_dir.trim_matches('/'));
                    let store = format!("store:{folder}");
                    flow.node(store.clone(), "store", &folder, None, None);
                    let written = figures.map(|f| f.partitions.values().map(|p| p.records).sum());
                    flow.edge(id, store, written);
                }
            }
        }
        Flow { nodes: flow.nodes.into_values().collect(), edges: flow.edges }
    }
}

#[derive(Default)]
struct Builder {
    nodes: BTreeMap<String, Node>,
    edges: Vec<Edge>,
    topics: BTreeSet<String>,
}

impl Builder {
    fn node(&mut self, id: String, kind: &'static str, name: &str, state: Option<String>, errors: Option<u64>) {
        self.nodes.insert(id.clone(), Node { id, kind, name: name.to_string(), state, errors });
    }

    fn topic(&mut self, topic: &str) {
        if self.topics.insert(topic.to_string()) {
            self.node(topic_id(topic), "topic", topic, None, None);
        }
    }

    fn edge(&mut self, from: String, to: String, records: Option<u64>) {
        if !self.edges.iter().any(|e| e.from == from && e.to == to) {
            self.edges.push(Edge { from, to, records });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ConnectorDef, QueryDef, SourceDef};

    fn routing() -> CatalogState {
        let mut catalog = CatalogState::default();
        let ingestion = SourceDef::from_create(
            "CREATE STREAM STREAM_INGESTION (PAYLOAD STRING) WITH (KAFKA_TOPIC='INGESTION', VALUE_FORMAT='KAFKA');",
        )
        .unwrap();
        let mut routed = SourceDef::from_create(
            "CREATE STREAM SENSOR_ID_3 (PAYLOAD STRING) WITH (KAFKA_TOPIC='SENSOR_ID_3', VALUE_FORMAT='KAFKA');",
        )
        .unwrap();
        routed.created_by_query = true;
        catalog.streams.insert(ingestion.name.clone(), ingestion);
        catalog.streams.insert(routed.name.clone(), routed);
        catalog.queries.insert(
            "CSAS_SENSOR_ID_3_1".into(),
            QueryDef {
                id: "CSAS_SENSOR_ID_3_1".into(),
                statement: String::new(),
                source: "STREAM_INGESTION".into(),
                joined: Vec::new(),
                sink: "SENSOR_ID_3".into(),
                sink_topic: "SENSOR_ID_3".into(),
                properties: BTreeMap::new(),
                paused: false,
                sequence: 1,
                initial: None,
            },
        );
        let config = [
            ("connector.class", "io.confluent.connect.hdfs.HdfsSinkConnector"),
            ("topics.regex", "SENSOR_ID_.*"),
            ("hdfs.url", "hdfs://namenode:9000"),
            ("flush.size", "3"),
            ("format.class", "io.confluent.connect.hdfs.json.JsonFormat"),
        ];
        catalog.connectors.insert(
            "HDFS".into(),
            ConnectorDef {
                name: "HDFS".into(),
                kind: ConnectorKind::Sink,
                config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            },
        );
        catalog
    }

    #[test]
    fn a_routing_query_and_its_sink_connector_form_one_path_with_their_counts() {
        let catalog = routing();
        let queries = BTreeMap::from([(
            "CSAS_SENSOR_ID_3_1".to_string(),
            QueryFigures { state: "ERROR".into(), records_in: 10, records_out: 4, errors: 1 },
        )]);
        let progress = PartitionProgress { records: 3, ..Default::default() };
        let connectors = BTreeMap::from([(
            "HDFS".to_string(),
            ConnectorFigures {
                state: "RUNNING".into(),
                skipped: 0,
                partitions: BTreeMap::from([(("SENSOR_ID_3".to_string(), 0), progress)]),
            },
        )]);
        let traffic = BTreeMap::from([("SENSOR_ID_3".to_string(), TopicTraffic { produced: 4, fetched: 3 })]);
        let flow = Flow::of(&Snapshot { catalog: &catalog, queries: &queries, connectors: &connectors, traffic: &traffic });

        let path: Vec<(&str, &str, Option<u64>)> = flow.edges.iter().map(|e| (e.from.as_str(), e.to.as_str(), e.records)).collect();
        assert_eq!(
            path,
            [
                ("source:SENSOR_ID_3", "topic:SENSOR_ID_3", Some(4)),
                ("topic:INGESTION", "source:STREAM_INGESTION", None),
                ("source:STREAM_INGESTION", "query:CSAS_SENSOR_ID_3_1", Some(10)),
                ("query:CSAS_SENSOR_ID_3_1", "source:SENSOR_ID_3", Some(4)),
                ("topic:SENSOR_ID_3", "connector:HDFS", Some(3)),
                ("connector:HDFS", "store:hdfs://namenode:9000/topics", Some(3)),
            ]
        );
        let query = flow.nodes.iter().find(|n| n.kind == "query").unwrap();
        assert_eq!((query.state.as_deref(), query.errors), (Some("ERROR"), Some(1)));
        assert_eq!(flow.nodes.iter().filter(|n| n.kind == "topic").count(), 2);
    }
}
