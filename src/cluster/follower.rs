//! Reads a single-partition internal topic as it grows, on a thread of its own.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use tokio::sync::watch;
use tracing::warn;

use crate::{connectors::kafka::KafkaCluster, error::Result};

/// A thread handing each record of partition 0 of a topic, in order, to a function; it stops
/// when the follower is dropped.
pub struct Follower {
    stop: Arc<AtomicBool>,
    applied: watch::Receiver<i64>,
}

impl Follower {
    /// Follows `topic` from offset `from`, calling `apply(offset, key, value)` for each record;
    /// a record is read within about `wait` of its write (the broker holds each fetch that long
    /// when there is nothing new).
    pub fn start(
        cluster: &Arc<KafkaCluster>,
        topic: &str,
        from: i64,
        wait: Duration,
        mut apply: impl FnMut(i64, Option<&[u8]>, Option<&[u8]>) + Send + 'static,
    ) -> Result<Follower> {
        let mut config = cluster.consumer_config();
        config.set("fetch.wait.max.ms", wait.as_millis().to_string());
        let consumer: BaseConsumer = config.create()?;
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(topic, 0, Offset::Offset(from))?;
        consumer.assign(&assignment)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (applied_to, applied) = watch::channel(from);
        let stopped = stop.clone();
        let name = topic.to_string();
        std::thread::Builder::new()
            .name(format!("follow {topic}"))
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    match consumer.poll(Duration::from_millis(200)) {
                        Some(Ok(message)) => {
                            apply(message.offset(), message.key(), message.payload());
                            applied_to.send_replace(message.offset() + 1);
                        }
                        Some(Err(e)) => {
                            warn!(topic = %name, error = %e, "could not read");
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        None => {}
                    }
                }
            })?;
        Ok(Follower { stop, applied })
    }

    /// Waits until every record before `offset` is applied; false when `limit` passes first.
    pub async fn wait_until(&self, offset: i64, limit: Duration) -> bool {
        let mut applied = self.applied.clone();
        tokio::time::timeout(limit, applied.wait_for(|at| *at >= offset)).await.is_ok_and(|r| r.is_ok())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
