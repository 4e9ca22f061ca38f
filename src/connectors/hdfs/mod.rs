//! The HDFS sink: Kafka Connect's HDFS 2 sink connector run natively, from SQL or Connect's
//! REST API, writing Connect's layout to HDFS (hdfs-native) or a local directory, exactly once.
//!
//! Split by concern: `config` (Connect's keys), `layout` (paths and names), `store` (the file
//! system), `format` (file content), `writer` (one partition's two-phase commit), `task` (the
//! consumer loop and recovery); what it reports is the shared `connectors::status`.

pub mod config;
pub mod format;
pub mod layout;
pub mod store;
pub mod task;
pub mod writer;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::HdfsSinkConfig;

use crate::{
    catalog::Catalog,
    connectors::{RunningConnector, kafka::KafkaCluster, status::ConnectorStatus},
};

/// Starts the sink as a task of its own; stopping it drops files in progress, committed files
/// stay.
pub fn start(name: &str, config: HdfsSinkConfig, cluster: Arc<KafkaCluster>, catalog: Arc<Catalog>) -> RunningConnector {
    let status = Arc::new(ConnectorStatus::default());
    let cancel = CancellationToken::new();
    let task = task::SinkTask {
        name: name.to_string(),
        config,
        cluster,
        catalog,
        status: status.clone(),
        cancel: cancel.clone(),
    };
    RunningConnector::spawn(status, cancel, task.run())
}
