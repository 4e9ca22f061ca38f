//! The catalog: the streams, persistent queries and connectors that exist, read from a snapshot behind a lock.
//!
//! It is changed only by applying commands from the command log, so every server that replays
//! the log holds the same catalog.

pub mod command_log;
pub mod connector;
pub mod source;
pub mod topic_template;
pub mod types;

use std::collections::BTreeMap;

use parking_lot::RwLock;

pub use connector::ConnectorDef;
pub use source::{Format, SourceDef, SourceWindow};
pub use types::{CustomTypes, SqlType};

use crate::{
    connectors::kafka::offsets::Checkpoint,
    error::{Result, SluiceError},
};

/// A persistent query as the catalog knows it.
#[derive(Debug, Clone)]
pub struct QueryDef {
    pub id: String,
    pub statement: String,
    pub source: String,
    /// The sources the query joins its source with: a stream-stream or table-table join's
    /// other side first, then the tables it looks rows up in.
    pub joined: Vec<String>,
    pub sink: String,
    pub sink_topic: String,
    /// Properties in force when the query was created (`auto.offset.reset`, …).
    pub properties: BTreeMap<String, String>,
    /// `PAUSE`d: not running, its positions and state kept until `RESUME`.
    pub paused: bool,
    /// The sequence number of the statement that created it: the servers of a service deal
    /// queries out in this order.
    pub sequence: i64,
    /// Where it starts when it has committed no checkpoint yet, as the server that accepted
    /// it set (`None` in commands logged before it was set: from `auto.offset.reset` then).
    pub initial: Option<Checkpoint>,
}

impl QueryDef {
    /// The sources the query's scan reads, in the order it numbers their partitions: its
    /// source, and a stream-stream or table-table join's other side (the tables it looks rows
    /// up in are read apart).
    pub fn scanned_sources(&self, streams: &BTreeMap<String, SourceDef>) -> Vec<String> {
        let kind = |name: &str| streams.get(name).map(|s| s.kind);
        let pair = self.joined.first().filter(|right| kind(right).is_some() && kind(right) == kind(&self.source));
        std::iter::once(&self.source).chain(pair).cloned().collect()
    }
}

#[derive(Debug, Default, Clone)]
pub struct CatalogState {
    pub streams: BTreeMap<String, SourceDef>,
    pub queries: BTreeMap<String, QueryDef>,
    pub connectors: BTreeMap<String, ConnectorDef>,
    /// The types `CREATE TYPE` named.
    pub types: CustomTypes,
}

#[derive(Debug, Default)]
pub struct Catalog {
    state: RwLock<CatalogState>,
}

impl Catalog {
    pub fn snapshot(&self) -> CatalogState {
        self.state.read().clone()
    }

    pub fn stream(&self, name: &str) -> Result<SourceDef> {
        self.state.read().streams.get(name).cloned().ok_or_else(|| {
            SluiceError::NotFound(format!("Could not find STREAM/TABLE '{name}' in the Metastore"))
        })
    }

    pub fn has_stream(&self, name: &str) -> bool {
        self.state.read().streams.contains_key(name)
    }

    pub fn query(&self, id: &str) -> Option<QueryDef> {
        self.state.read().queries.get(id).cloned()
    }

    pub fn put_stream(&self, stream: SourceDef) {
        self.state.write().streams.insert(stream.name.clone(), stream);
    }

    pub fn remove_stream(&self, name: &str) -> Option<SourceDef> {
        self.state.write().streams.remove(name)
    }

    pub fn put_query(&self, query: QueryDef) {
        self.state.write().queries.insert(query.id.clone(), query);
    }

    /// Marks query `id` paused or not; false when there is no such query.
    pub fn set_paused(&self, id: &str, paused: bool) -> bool {
        self.state.write().queries.get_mut(id).map(|q| q.paused = paused).is_some()
    }

    pub fn remove_query(&self, id: &str) -> Option<QueryDef> {
        self.state.write().queries.remove(id)
    }

    /// The connector named `name`: an exact match, else the one match ignoring case.
    pub fn connector(&self, name: &str) -> Option<ConnectorDef> {
        let state = self.state.read();
        if let Some(found) = state.connectors.get(name) {
            return Some(found.clone());
        }
        let mut matches = state.connectors.values().filter(|c| c.name.eq_ignore_ascii_case(name));
        match (matches.next(), matches.next()) {
            (Some(only), None) => Some(only.clone()),
            _ => None,
        }
    }

    pub fn put_connector(&self, connector: ConnectorDef) {
        self.state.write().connectors.insert(connector.name.clone(), connector);
    }

    pub fn remove_connector(&self, name: &str) -> Option<ConnectorDef> {
        self.state.write().connectors.remove(name)
    }

    /// The types column types may name.
    pub fn types(&self) -> CustomTypes {
        self.state.read().types.clone()
    }

    /// Names `data_type` `name`, unless the name is taken; whether it was free.
    pub fn put_type(&self, name: &str, data_type: SqlType) -> bool {
        let mut state = self.state.write();
        if state.types.contains_key(name) {
            return false;
        }
        state.types.insert(name.to_string(), data_type);
        true
    }

    pub fn remove_type(&self, name: &str) -> Option<SqlType> {
        self.state.write().types.remove(name)
    }

    /// Queries reading from and writing into a stream.
    pub fn queries_of(&self, stream: &str) -> (Vec<QueryDef>, Vec<QueryDef>) {
        let state = self.state.read();
        let reads = state
            .queries
            .values()
            .filter(|q| q.source == stream || q.joined.iter().any(|j| j == stream))
            .cloned()
            .collect();
        let writes = state.queries.values().filter(|q| q.sink == stream).cloned().collect();
        (reads, writes)
    }
}
