//! The holders log: which server holds each task. A server claims a task nobody holds, lets go
//! of one it holds, or takes over one whose holder stopped beating; each record names the epoch
//! it expects, and every server applies the log in order by the same rules, so all agree on
//! each task's holder, and of two servers claiming one task at once only the first wins.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::follower::Follower;
use crate::{
    connectors::kafka::{KafkaCluster, blocking},
    error::{Result, SluiceError},
};

/// Who holds a task, and how many times it has been claimed or taken over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hold {
    pub server: Option<String>,
    pub epoch: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Change {
    Claim,
    Release,
    Takeover,
}

/// One record of the log: `server` makes `change` to `task`, expecting it at `epoch` (and held
/// by `from`, for a takeover).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct HoldRecord {
    task: String,
    server: String,
    change: Change,
    epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
}

/// Applies one record; a record whose expectation no longer holds changes nothing.
fn apply(holds: &mut BTreeMap<String, Hold>, record: &HoldRecord) {
    let hold = holds.entry(record.task.clone()).or_default();
    if hold.epoch != record.epoch {
        return;
    }
    match record.change {
        Change::Claim if hold.server.is_none() => {
            *hold = Hold { server: Some(record.server.clone()), epoch: record.epoch + 1 };
        }
        Change::Release if hold.server.as_deref() == Some(record.server.as_str()) => hold.server = None,
        Change::Takeover if hold.server.is_some() && hold.server == record.from => {
            *hold = Hold { server: Some(record.server.clone()), epoch: record.epoch + 1 };
        }
        _ => {}
    }
}

/// How long a change may take to be read back before it counts as failed.
const CHANGE_LIMIT: Duration = Duration::from_secs(30);

pub struct Holders {
    me: String,
    topic: String,
    cluster: Arc<KafkaCluster>,
    holds: Arc<Mutex<BTreeMap<String, Hold>>>,
    follower: Follower,
}

impl Holders {
    /// Reads the holders log of the service `service_id` to its end and follows it, as `me`.
    pub async fn open(cluster: Arc<KafkaCluster>, service_id: &str, me: String) -> Result<Self> {
        let topic = format!("_sluice-{service_id}_holders");
        cluster.ensure_topic(&topic, 1, 1, &[("retention.ms", "-1")]).await?;
        let (low, high) = blocking(|| cluster.watermark(&topic, 0))?;
        let holds: Arc<Mutex<BTreeMap<String, Hold>>> = Arc::default();
        // Short fetches: a statement that creates a query waits for its claim to be read back.
        let follower = Follower::start(&cluster, &topic, low, Duration::from_millis(20), {
            let holds = holds.clone();
            move |_, _, value| {
                if let Some(record) = value.and_then(|v| serde_json::from_slice::<HoldRecord>(v).ok()) {
                    apply(&mut holds.lock(), &record);
                }
            }
        })?;
        if !follower.wait_until(high, Duration::from_secs(60)).await {
            return Err(SluiceError::Execution(format!("could not read {topic} within 60 s")));
        }
        Ok(Holders { me, topic, cluster, holds, follower })
    }

    /// Who holds `task` now, as far as the log is read.
    pub fn hold(&self, task: &str) -> Hold {
        self.holds.lock().get(task).cloned().unwrap_or_default()
    }

    /// Every task's hold.
    pub fn holds(&self) -> BTreeMap<String, Hold> {
        self.holds.lock().clone()
    }

    /// Claims `task`, found unheld at `epoch`; whether this server holds it now.
    pub async fn claim(&self, task: &str, epoch: u64) -> Result<bool> {
        Ok(self.change(task, Change::Claim, epoch, None).await?.server.as_deref() == Some(self.me.as_str()))
    }

    /// Lets go of `task`, held here at `epoch`.
    pub async fn release(&self, task: &str, epoch: u64) -> Result<()> {
        self.change(task, Change::Release, epoch, None).await.map(|_| ())
    }

    /// Takes `task` over from `from`, which held it at `epoch` and is gone; whether this server
    /// holds it now.
    pub async fn take_over(&self, task: &str, from: &str, epoch: u64) -> Result<bool> {
        let hold = self.change(task, Change::Takeover, epoch, Some(from.to_string())).await?;
        Ok(hold.server.as_deref() == Some(self.me.as_str()))
    }

    /// Appends a change and waits until the log is read past it; gives the task's hold then.
    async fn change(&self, task: &str, change: Change, epoch: u64, from: Option<String>) -> Result<Hold> {
        let record = HoldRecord { task: task.to_string(), server: self.me.clone(), change, epoch, from };
        let value = serde_json::to_vec(&record)?;
        let (_, offset) = self.cluster.producer().send(&self.topic, Some(0), Some(task.as_bytes()), Some(&value), None).await?;
        if !self.follower.wait_until(offset + 1, CHANGE_LIMIT).await {
            return Err(SluiceError::Execution(format!("could not read {} back within {CHANGE_LIMIT:?}", self.topic)));
        }
        Ok(self.hold(task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(server: &str, change: Change, epoch: u64, from: Option<&str>) -> HoldRecord {
        HoldRecord { task: "query/Q".into(), server: server.into(), change, epoch, from: from.map(str::to_string) }
    }

    fn after(records: &[HoldRecord]) -> Hold {
        let mut holds = BTreeMap::new();
        for r in records {
            apply(&mut holds, r);
        }
        holds.remove("query/Q").unwrap_or_default()
    }

    fn held(server: &str, epoch: u64) -> Hold {
        Hold { server: Some(server.into()), epoch }
    }

    #[test]
    fn of_two_claims_at_once_the_first_in_the_log_wins() {
        assert_eq!(after(&[record("a", Change::Claim, 0, None), record("b", Change::Claim, 0, None)]), held("a", 1));
    }

    #[test]
    fn a_released_task_is_claimed_at_the_same_epoch_and_a_stale_release_changes_nothing() {
        let log = [
            record("a", Change::Claim, 0, None),
            record("a", Change::Release, 1, None),
            record("b", Change::Claim, 1, None),
            record("a", Change::Release, 1, None),
        ];
        assert_eq!(after(&log), held("b", 2));
    }

    #[test]
    fn a_takeover_needs_the_holder_and_epoch_it_names() {
        let claimed = record("a", Change::Claim, 0, None);
        assert_eq!(after(&[claimed.clone(), record("b", Change::Takeover, 1, Some("a"))]), held("b", 2));
        assert_eq!(after(&[claimed.clone(), record("b", Change::Takeover, 1, Some("c"))]), held("a", 1));
        assert_eq!(after(&[claimed.clone(), record("b", Change::Takeover, 0, Some("a"))]), held("a", 1));
        assert_eq!(after(&[record("b", Change::Takeover, 0, Some("a"))]), Hold::default());
        // The taken-over holder's late release no longer applies.
        assert_eq!(
            after(&[claimed, record("b", Change::Takeover, 1, Some("a")), record("a", Change::Release, 1, None)]),
            held("b", 2)
        );
    }
}
