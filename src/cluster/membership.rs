//! Heartbeats: each server says every second that it is alive, under its name (the URL it is
//! reached at); a server is alive while its last heartbeat is younger than the session timeout,
//! and gone at once when it says it is leaving.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::follower::Follower;
use crate::{
    connectors::kafka::{KafkaCluster, blocking},
    error::{Result, SluiceError},
};

/// How often a server says it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// How many of the latest heartbeats a joining server reads: every server alive within the
/// timeout is among them, however many there are within reason.
const TAIL: i64 = 5000;

/// One server's word that it is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub server: String,
    /// When it was sent: milliseconds since the epoch, by the sender's clock.
    pub at: i64,
    /// Sent on a clean shutdown: the server is gone without waiting out the timeout.
    #[serde(default)]
    pub leaving: bool,
    /// The state of each query the server runs (`RUNNING`, `ERROR`, …), by query id.
    #[serde(default)]
    pub queries: BTreeMap<String, String>,
    /// Per query the server runs, the next offset it reads of each source partition.
    #[serde(default)]
    pub positions: BTreeMap<String, BTreeMap<i32, i64>>,
}

pub struct Membership {
    me: String,
    topic: String,
    cluster: Arc<KafkaCluster>,
    seen: Arc<Mutex<BTreeMap<String, Heartbeat>>>,
    follower: Follower,
    timeout: Duration,
    /// The end of the topic when this server joined.
    joined_at: i64,
}

impl Membership {
    /// Joins the service `service_id` as `me`, reading the heartbeats of the servers in it.
    pub async fn join(cluster: Arc<KafkaCluster>, service_id: &str, me: String, timeout: Duration) -> Result<Self> {
        let topic = format!("_sluice-{service_id}_heartbeats");
        cluster.ensure_topic(&topic, 1, 1, &[("retention.ms", "3600000")]).await?;
        let (low, high) = blocking(|| cluster.watermark(&topic, 0))?;
        let seen: Arc<Mutex<BTreeMap<String, Heartbeat>>> = Arc::default();
        let follower = Follower::start(&cluster, &topic, low.max(high - TAIL), Duration::from_millis(250), {
            let seen = seen.clone();
            move |_, _, value| {
                if let Some(heartbeat) = value.and_then(|v| serde_json::from_slice::<Heartbeat>(v).ok()) {
                    seen.lock().insert(heartbeat.server.clone(), heartbeat);
                }
            }
        })?;
        Ok(Membership { me, topic, cluster, seen, follower, timeout, joined_at: high })
    }

    /// This server's name.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Waits until the heartbeats sent before this server joined are read, so that it knows
    /// the servers already there before it takes a share.
    pub async fn settle(&self) -> Result<()> {
        if self.follower.wait_until(self.joined_at, Duration::from_secs(60)).await {
            Ok(())
        } else {
            Err(SluiceError::Execution(format!("could not read {} within 60 s", self.topic)))
        }
    }

    /// Says this server is alive, or leaving, and how the queries it runs are: their states
    /// and how far each has read.
    pub async fn beat(&self, leaving: bool, queries: BTreeMap<String, String>, positions: BTreeMap<String, BTreeMap<i32, i64>>) -> Result<()> {
        let heartbeat = Heartbeat { server: self.me.clone(), at: now_ms(), leaving, queries, positions };
        let value = serde_json::to_vec(&heartbeat)?;
        self.cluster.producer().send(&self.topic, Some(0), Some(self.me.as_bytes()), Some(&value), None).await?;
        Ok(())
    }

    /// The servers alive now, this one included, sorted.
    pub fn live(&self) -> Vec<String> {
        let now = now_ms();
        let mut live: Vec<String> = self
            .seen
            .lock()
            .values()
            .filter(|heartbeat| heartbeat.server != self.me && alive(heartbeat, now, self.timeout))
            .map(|heartbeat| heartbeat.server.clone())
            .collect();
        live.push(self.me.clone());
        live.sort();
        live
    }

    /// Whether `server` is alive now.
    pub fn is_live(&self, server: &str) -> bool {
        server == self.me || self.seen.lock().get(server).is_some_and(|heartbeat| alive(heartbeat, now_ms(), self.timeout))
    }

    /// Whether `server` is gone, judged on every heartbeat sent until now: the topic is read to
    /// its current end first, so that a server whose heartbeats this one merely had not read
    /// (Kafka away for a while) is not taken for gone.
    pub async fn confirmed_gone(&self, server: &str) -> Result<bool> {
        let (_, end) = blocking(|| self.cluster.watermark(&self.topic, 0))?;
        if !self.follower.wait_until(end, Duration::from_secs(10)).await {
            return Err(SluiceError::Execution(format!("could not read {} to its end", self.topic)));
        }
        Ok(!self.is_live(server))
    }

    /// The last heartbeat of every server seen.
    pub fn heartbeats(&self) -> Vec<Heartbeat> {
        self.seen.lock().values().cloned().collect()
    }

    /// The last heartbeat of every other server alive now.
    pub fn live_heartbeats(&self) -> Vec<Heartbeat> {
        let now = now_ms();
        self.seen
            .lock()
            .values()
            .filter(|heartbeat| heartbeat.server != self.me && alive(heartbeat, now, self.timeout))
            .cloned()
            .collect()
    }

    /// How long a server may go without a heartbeat before it is taken for gone.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

fn alive(heartbeat: &Heartbeat, now: i64, timeout: Duration) -> bool {
    !heartbeat.leaving && now - heartbeat.at <= timeout.as_millis() as i64
}

/// A server's name as ksqlDB names hosts: `host:port`, without the scheme.
pub fn host_port(server: &str) -> String {
    server.split_once("://").map_or(server, |(_, rest)| rest).trim_end_matches('/').to_string()
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_alive_until_its_heartbeat_is_older_than_the_timeout_or_it_leaves() {
        let beat = |at, leaving| Heartbeat { server: "http://a:1".into(), at, leaving, queries: BTreeMap::new(), positions: BTreeMap::new() };
        let timeout = Duration::from_secs(10);
        assert!(alive(&beat(1_000, false), 11_000, timeout));
        assert!(!alive(&beat(1_000, false), 11_001, timeout));
        assert!(!alive(&beat(1_000, true), 1_000, timeout));
    }
}
