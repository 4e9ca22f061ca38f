//! Connectors to the systems Sluice reads from and writes to, and what a running connector
//! is: a task with a status and a token that stops it.

pub mod cdc;
pub mod config_keys;
pub mod hdfs;
pub mod jdbc;
pub mod kafka;
pub mod postgres;
pub mod source;
pub mod source_writer;
pub mod status;
pub mod text;

use std::{future::Future, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::error::{Result, SluiceError, panic_message};
use status::{ConnectorState, ConnectorStatus};

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

/// The longest wait between retries of a failing connector, unless its own backoff is longer.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The shortest wait before a failed session is retried, so a zero backoff cannot spin.
const MIN_BACKOFF: Duration = Duration::from_millis(100);

/// Runs `session` until it ends (`Ok`: cancelled) and reports it in `status`. A failed session
/// shows FAILED with its cause and is retried after a backoff that doubles from `backoff`; a
/// bad record (`SluiceError::BadRecord`) leaves the connector FAILED until it is restarted; a
/// panic is a failure like any other.
pub async fn supervise<F, S>(name: &str, status: &ConnectorStatus, cancel: &CancellationToken, backoff: Duration, mut session: S)
where
    S: FnMut() -> F,
    F: Future<Output = Result<()>>,
{
    let first = backoff.max(MIN_BACKOFF);
    let mut backoff = first;
    loop {
        let outcome = AssertUnwindSafe(session())
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(SluiceError::Internal(format!("the connector's task panicked: {}", panic_message(&*panic)))));
        match outcome {
            Ok(()) => break,
            Err(SluiceError::BadRecord(reason)) => {
                warn!(connector = %name, %reason, "connector stopped at a bad record");
                status.set_state(ConnectorState::Failed(reason));
                cancel.cancelled().await;
                break;
            }
            Err(e) => {
                warn!(connector = %name, error = %e, retry_in = ?backoff, "connector failed; retrying");
                status.set_state(ConnectorState::Failed(format!("{e} (retrying in {} ms)", backoff.as_millis())));
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF.max(first));
            }
        }
    }
    status.set_state(ConnectorState::Stopped);
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[tokio::test]
    async fn a_panicking_session_shows_its_message_and_is_run_again() {
        let status = Arc::new(ConnectorStatus::default());
        let cancel = CancellationToken::new();
        let seen: Arc<Mutex<Vec<ConnectorState>>> = Arc::default();
        let mut sessions = 0;
        supervise("c", &status, &cancel, Duration::from_millis(1), || {
            sessions += 1;
            let (first, status, cancel, seen) = (sessions == 1, status.clone(), cancel.clone(), seen.clone());
            async move {
                if first {
                    panic!("the disk is {}", "full");
                }
                seen.lock().unwrap().push(status.state());
                cancel.cancel();
                Ok(())
            }
        })
        .await;
        let seen = seen.lock().unwrap().clone();
        let [ConnectorState::Failed(reason)] = seen.as_slice() else { panic!("{seen:?}") };
        assert!(reason.starts_with("Internal error: the connector's task panicked: the disk is full"), "{reason}");
        assert_eq!((status.failures(), status.state()), (1, ConnectorState::Stopped));
    }
}
