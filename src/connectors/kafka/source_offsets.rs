//! Where each source connector has got to in what it reads, in Kafka Connect's shape: a
//! compacted topic keyed by `["<connector>", {<source partition>}]` holding the source offset
//! (`{"incrementing": 42}`, `{"timestamp": …, "timestamp_nanos": …}`), plus where in the
//! connector's topics the records read after that offset may start, for reading them back.

use std::{collections::BTreeMap, sync::Arc};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::{KafkaCluster, offsets::OutputPositions};
use crate::error::{Result, SluiceError};

/// The field of an offset record holding Sluice's output positions.
const OUTPUT_FIELD: &str = "sluice.output";

/// A committed source offset and the output positions that go with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceCheckpoint {
    /// The source's own offset, a JSON object as Connect stores it.
    pub offset: serde_json::Map<String, Value>,
    /// By topic and partition: at or before where records read after `offset` start.
    pub output: OutputPositions,
}

pub struct SourceOffsets {
    topic: String,
    cluster: Arc<KafkaCluster>,
    committed: Mutex<BTreeMap<String, SourceCheckpoint>>,
}

impl SourceOffsets {
    /// Opens the store of `service_id`, reading every committed offset.
    pub async fn open(cluster: Arc<KafkaCluster>, service_id: &str) -> Result<SourceOffsets> {
        let topic = format!("_sluice-{service_id}_connect_offsets");
        cluster.ensure_topic(&topic, 1, 1, &[("cleanup.policy", "compact")]).await?;
        let committed = read_committed(&cluster, &topic).await?;
        Ok(SourceOffsets { topic, cluster, committed: Mutex::new(committed) })
    }

    /// Reads every committed offset again: what another server committed since this one
    /// opened the store (a connector it ran before this one took it over) is then what
    /// [`get`](SourceOffsets::get) gives.
    pub async fn reload(&self) -> Result<()> {
        let committed = read_committed(&self.cluster, &self.topic).await?;
        *self.committed.lock() = committed;
        Ok(())
    }

    /// The committed checkpoint of `connector`'s source partition `partition`.
    pub fn get(&self, connector: &str, partition: &Value) -> Option<SourceCheckpoint> {
        self.committed.lock().get(&key(connector, partition)).cloned()
    }

    /// Durably records `checkpoint` for `connector`'s source partition `partition`.
    pub async fn commit(&self, connector: &str, partition: &Value, checkpoint: &SourceCheckpoint) -> Result<()> {
        let key = key(connector, partition);
        let mut value = checkpoint.offset.clone();
        value.insert(OUTPUT_FIELD.to_string(), serde_json::to_value(&checkpoint.output)?);
        let bytes = serde_json::to_vec(&value)?;
        self.cluster.producer().send(&self.topic, None, Some(key.as_bytes()), Some(&bytes), None).await?;
        self.committed.lock().insert(key, checkpoint.clone());
        Ok(())
    }
}

/// Connect's offset key: the JSON array `[connector, partition]`.
fn key(connector: &str, partition: &Value) -> String {
    json!([connector, partition]).to_string()
}

/// Every committed offset in `topic`, by connector and source partition.
async fn read_committed(cluster: &Arc<KafkaCluster>, topic: &str) -> Result<BTreeMap<String, SourceCheckpoint>> {
    let reader = cluster.clone();
    let name = topic.to_string();
    let records = tokio::task::spawn_blocking(move || reader.read_partition_to_end(&name))
        .await
        .map_err(|e| SluiceError::Internal(e.to_string()))??;
    let mut committed = BTreeMap::new();
    for record in records {
        let Some(key) = record.key.and_then(|k| String::from_utf8(k).ok()) else { continue };
        match record.value.as_deref().map(serde_json::from_slice::<Value>).transpose()? {
            Some(Value::Object(mut offset)) => {
                let output = offset
                    .remove(OUTPUT_FIELD)
                    .map(serde_json::from_value)
                    .transpose()?
                    .unwrap_or_default();
                committed.insert(key, SourceCheckpoint { offset, output });
            }
            _ => {
                committed.remove(&key);
            }
        }
    }
    Ok(committed)
}
