//! Connectors to the systems Sluice reads from and writes to, and what a running connector
//! is: a task with a status and a token that stops it.

pub mod hdfs;
pub mod kafka;
pub mod postgres;
pub mod source;
pub mod status;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use status::ConnectorStatus;

/// How long a stopping connector may take to drop what it has in progress.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A connector running as a task of its own.
pub struct RunningConnector {
    pub status: Arc<ConnectorStatus>,
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

impl RunningConnector {
    /// Runs `task`, which reports into `status` and ends when `cancel` is cancelled.
    pub fn spawn(status: Arc<ConnectorStatus>, cancel: CancellationToken, task: impl Future<Output = ()> + Send + 'static) -> RunningConnector {
        RunningConnector { status, cancel, handle: tokio::spawn(task) }
    }

    /// Stops the connector and waits (boundedly) for its task to end.
    pub async fn stop(self) {
        self.cancel.cancel();
        if tokio::time::timeout(STOP_TIMEOUT, self.handle).await.is_err() {
            tracing::warn!("a connector did not stop within {} s", STOP_TIMEOUT.as_secs());
        }
    }
}
