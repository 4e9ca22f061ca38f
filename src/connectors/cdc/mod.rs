//! Change capture from PostgreSQL: Debezium's `PostgresConnector` run natively — its keys, its
//! snapshot, its change-event envelope — decoding the write-ahead log through a logical
//! replication slot with the built-in `pgoutput` plugin, into `<topic.prefix>.<schema>.<table>`
//! exactly once across restarts and `kill -9`.
//!
//! Split by concern: `config` (the connector's keys), `pgoutput` (the decoded messages),
//! `event` (a change as Debezium's JSON), `task` (publication, slot, snapshot, decoding loop).

pub mod config;
mod event;
mod pgoutput;
mod task;

use std::sync::Arc;

pub use config::{CONNECTOR_CLASS, CdcConfig};

use crate::connectors::{
    RunningConnector,
    kafka::{KafkaCluster, source_offsets::SourceOffsets},
    source_writer::SourceContext,
};

/// Starts the source as a task of its own.
pub fn start(name: &str, config: CdcConfig, cluster: Arc<KafkaCluster>, offsets: Arc<SourceOffsets>) -> RunningConnector {
    SourceContext::start(name, cluster, offsets, |context| task::CdcTask { config, context }.run())
}
