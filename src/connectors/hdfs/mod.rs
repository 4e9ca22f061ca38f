//! The HDFS sink: Kafka Connect's HDFS 2 sink connector run natively, from SQL or Connect's
//! REST API, writing Connect's layout to HDFS (hdfs-native) or a local directory, exactly once.
//!
//! Split by concern: `config` (Connect's keys), `layout` (paths and names), `store` (the file
//! system), `format` (file content), `writer` (one partition's two-phase commit), `task` (the
//! consumer loop and recovery), `status` (what it reports).

pub mod config;
pub mod format;
pub mod layout;
pub mod status;
pub mod store;
pub mod task;
pub mod writer;

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::HdfsSinkConfig;
pub use status::{PartitionProgress, SinkState, SinkStatus};

use crate::{catalog::Catalog, connectors::kafka::KafkaCluster};

/// How long a stopping sink may take to drop its files in progress.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A sink running as a task of its own.
pub struct RunningSink {
    pub status: Arc<SinkStatus>,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl RunningSink {
    pub fn start(name: &str, config: HdfsSinkConfig, cluster: Arc<KafkaCluster>, catalog: Arc<Catalog>) -> RunningSink {
        let status = Arc::new(SinkStatus::default());
        let cancel = CancellationToken::new();
        let task = task::SinkTask {
            name: name.to_string(),
            config,
            cluster,
            catalog,
            status: status.clone(),
            cancel: cancel.clone(),
        };
        RunningSink {
            status,
            cancel,
            handle: tokio::spawn(task.run()),
        }
    }

    /// Stops the sink; files in progress are dropped, committed files stay.
    pub async fn stop(self) {
        self.cancel.cancel();
        if tokio::time::timeout(STOP_TIMEOUT, self.handle).await.is_err() {
            tracing::warn!("a sink did not stop within {} s", STOP_TIMEOUT.as_secs());
        }
    }
}
