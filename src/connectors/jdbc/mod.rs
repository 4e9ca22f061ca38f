//! The JDBC source: Confluent's `JdbcSourceConnector` run natively for PostgreSQL — its keys,
//! its four modes, its record shapes with JsonConverter — writing each table's rows to
//! `<topic.prefix><table>` exactly once across restarts and `kill -9`.
//!
//! Split by concern: `config` (the connector's keys), `querier` (each poll's SELECT and the
//! offset), `record` (a row as Connect's JSON), `task` (the poll loop, batches, commits and
//! recovery).

pub mod config;
mod querier;
mod record;
mod task;

use std::sync::Arc;

pub use config::{CONNECTOR_CLASS, JdbcSourceConfig};

use crate::connectors::{
    RunningConnector,
    kafka::{KafkaCluster, source_offsets::SourceOffsets},
    source_writer::SourceContext,
};

/// Starts the source as a task of its own.
pub fn start(name: &str, config: JdbcSourceConfig, cluster: Arc<KafkaCluster>, offsets: Arc<SourceOffsets>) -> RunningConnector {
    SourceContext::start(name, cluster, offsets, |context| task::SourceTask { config, context }.run())
}
