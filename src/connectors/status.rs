//! What a running connector reports: its state (RUNNING, or FAILED with the cause while it
//! retries) and, per topic-partition, the last committed offset, the log end, and the files,
//! bytes and records written.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
};

use parking_lot::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorState {
    Running,
    /// Failed with this cause; the task retries with backoff.
    Failed(String),
    Stopped,
}

impl ConnectorState {
    /// Connect's name for the state.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectorState::Running => "RUNNING",
            ConnectorState::Failed(_) => "FAILED",
            ConnectorState::Stopped => "UNASSIGNED",
        }
    }
}

/// Progress of one topic-partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionProgress {
    /// The last offset in a committed file, if any.
    pub committed: Option<i64>,
    /// The partition's log end offset when last looked at.
    pub log_end: i64,
    pub files: u64,
    pub bytes: u64,
    pub records: u64,
}

impl PartitionProgress {
    /// Records in the log not yet in a committed file.
    pub fn lag(&self) -> i64 {
        (self.log_end - self.committed.map_or(0, |c| c + 1)).max(0)
    }
}

#[derive(Debug, Default)]
pub struct ConnectorStatus {
    state: Mutex<Option<ConnectorState>>,
    partitions: Mutex<BTreeMap<(String, i32), PartitionProgress>>,
    skipped: Mutex<(u64, Option<String>)>,
    failures: AtomicU64,
}

impl ConnectorStatus {
    pub fn state(&self) -> ConnectorState {
        self.state.lock().clone().unwrap_or(ConnectorState::Running)
    }

    /// Sets the state; each failure is counted.
    pub fn set_state(&self, state: ConnectorState) {
        if matches!(state, ConnectorState::Failed(_)) {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        *self.state.lock() = Some(state);
    }

    /// How many times the connector's task failed.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn partitions(&self) -> BTreeMap<(String, i32), PartitionProgress> {
        self.partitions.lock().clone()
    }

    pub fn update(&self, topic: &str, partition: i32, change: impl FnOnce(&mut PartitionProgress)) {
        change(self.partitions.lock().entry((topic.to_string(), partition)).or_default());
    }

    /// A record whose value could not be read was left out of the files.
    pub fn record_skip(&self, reason: String) {
        let mut skipped = self.skipped.lock();
        skipped.0 += 1;
        skipped.1 = Some(reason);
    }

    /// How many records were left out, and why the last one was.
    pub fn skipped(&self) -> (u64, Option<String>) {
        self.skipped.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_is_counted_and_recovery_is_not() {
        let status = ConnectorStatus::default();
        status.set_state(ConnectorState::Failed("HDFS away".into()));
        status.set_state(ConnectorState::Failed("HDFS still away".into()));
        status.set_state(ConnectorState::Running);
        assert_eq!((status.failures(), status.state()), (2, ConnectorState::Running));
    }
}
