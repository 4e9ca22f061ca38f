//! Where each query has got to: the next offset to process per partition, kept in a compacted
//! topic so that a restarted server resumes every query exactly where its output was flushed.

use std::{collections::BTreeMap, sync::Arc};

use parking_lot::Mutex;

use super::KafkaCluster;
use crate::error::{Result, SluiceError};

/// Next offset to read, by partition.
pub type PartitionOffsets = BTreeMap<i32, i64>;

pub struct OffsetStore {
    topic: String,
    cluster: Arc<KafkaCluster>,
    committed: Mutex<BTreeMap<String, PartitionOffsets>>,
}

impl OffsetStore {
    /// Opens the store for `service_id`, reading every committed position.
    pub async fn open(cluster: Arc<KafkaCluster>, service_id: &str) -> Result<Self> {
        let topic = format!("_sluice-{service_id}_offsets");
        cluster
            .ensure_topic(&topic, 1, 1, &[("cleanup.policy", "compact")])
            .await?;
        let reader = cluster.clone();
        let name = topic.clone();
        let records = tokio::task::spawn_blocking(move || reader.read_partition_to_end(&name))
            .await
            .map_err(|e| SluiceError::Internal(e.to_string()))??;
        let mut committed = BTreeMap::new();
        for record in records {
            let Some(key) = record.key.and_then(|k| String::from_utf8(k).ok()) else {
                continue;
            };
            match record.value {
                Some(value) => {
                    committed.insert(key, serde_json::from_slice::<PartitionOffsets>(&value)?);
                }
                None => {
                    committed.remove(&key);
                }
            }
        }
        Ok(Self {
            topic,
            cluster,
            committed: Mutex::new(committed),
        })
    }

    pub fn get(&self, owner: &str) -> Option<PartitionOffsets> {
        self.committed.lock().get(owner).cloned()
    }

    /// Durably records `offsets` for `owner` (a query or connector id).
    pub async fn commit(&self, owner: &str, offsets: &PartitionOffsets) -> Result<()> {
        let value = serde_json::to_vec(offsets)?;
        self.cluster
            .producer()
            .send(&self.topic, None, Some(owner.as_bytes()), Some(&value))
            .await?;
        self.committed.lock().insert(owner.to_string(), offsets.clone());
        Ok(())
    }

    /// Forgets an owner's offsets (a tombstone, so compaction drops them).
    pub async fn forget(&self, owner: &str) -> Result<()> {
        self.cluster.producer().send(&self.topic, None, Some(owner.as_bytes()), None).await?;
        self.committed.lock().remove(owner);
        Ok(())
    }
}
