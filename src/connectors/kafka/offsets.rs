//! Where each query has got to, per source partition: the next offset to process, and where in
//! its output topics the output of that offset onwards may start. Kept in a compacted topic,
//! one record per (query, partition), so a restarted server resumes every query where its output
//! was flushed, reads back what it wrote after that, and partitions commit independently.
//! A query whose stream time the wall clock moved keeps those advances under `query/idle`.

use std::{collections::BTreeMap, sync::Arc};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::KafkaCluster;
use crate::error::{Result, SluiceError};

/// Next offset to read, by partition.
pub type PartitionOffsets = BTreeMap<i32, i64>;

/// By output topic and partition: an offset at or before which a query's output past its
/// checkpoint starts.
pub type OutputPositions = BTreeMap<String, BTreeMap<i32, i64>>;

/// What a query has done, as committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The next offset to process, per source partition.
    pub input: PartitionOffsets,
    /// Where output written after `input` may start; `None` when not recorded (a checkpoint
    /// from before output positions were kept), meaning anywhere in the output topics.
    pub output: Option<OutputPositions>,
    /// A stateful query's: where the input its state is rebuilt from starts, per partition.
    pub start: Option<PartitionOffsets>,
    /// The advances of its stream time the wall clock made while its input was idle, oldest
    /// first, whose output is in Kafka.
    pub idle: Vec<IdleAdvance>,
}

/// Stream time moved to `stream_time` without a record, when the input stood at `at`: a replay
/// repeats it before the first record read after `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleAdvance {
    pub at: PartitionOffsets,
    pub stream_time: i64,
}

/// One (query, partition) record of the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartitionCheckpoint {
    offset: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    output: Option<OutputPositions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<i64>,
}

pub struct OffsetStore {
    topic: String,
    cluster: Arc<KafkaCluster>,
    committed: Mutex<Committed>,
}

/// What the store holds, by owner: each partition's checkpoint, and the idle advances.
#[derive(Default)]
struct Committed {
    partitions: BTreeMap<String, BTreeMap<i32, PartitionCheckpoint>>,
    idle: BTreeMap<String, Vec<IdleAdvance>>,
}

impl OffsetStore {
    /// Opens the store for `service_id`, reading every committed position.
    pub async fn open(cluster: Arc<KafkaCluster>, service_id: &str) -> Result<Self> {
        let topic = format!("_sluice-{service_id}_offsets");
        cluster
            .ensure_topic(&topic, 1, 1, &[("cleanup.policy", "compact")])
            .await?;
        let committed = read_committed(&cluster, &topic).await?;
        Ok(Self {
            topic,
            cluster,
            committed: Mutex::new(committed),
        })
    }

    /// Reads every committed position again: what another server committed since this one
    /// opened the store (a query it ran, paused or handed over) is then what [`get`] gives.
    ///
    /// [`get`]: OffsetStore::get
    pub async fn reload(&self) -> Result<()> {
        let committed = read_committed(&self.cluster, &self.topic).await?;
        *self.committed.lock() = committed;
        Ok(())
    }

    /// The compacted topic the positions are kept in.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn get(&self, owner: &str) -> Option<Checkpoint> {
        let committed = self.committed.lock();
        let idle = committed.idle.get(owner).cloned().unwrap_or_default();
        committed.partitions.get(owner).map(|partitions| {
            let input = partitions.iter().map(|(p, c)| (*p, c.offset)).collect();
            let mut output: Option<OutputPositions> = Some(BTreeMap::new());
            for checkpoint in partitions.values() {
                output = match (output, &checkpoint.output) {
                    (Some(merged), Some(positions)) => Some(lower_bounds(merged, positions)),
                    _ => None,
                };
            }
            let start = partitions.iter().map(|(p, c)| c.start.map(|s| (*p, s))).collect();
            Checkpoint { input, output, start, idle }
        })
    }

    /// Durably records `checkpoint` for `owner` (a query id): one record per source partition
    /// whose checkpoint changed, sent together, after the idle advances when they changed (an
    /// advance recorded without the positions past it is repeated by a replay without output;
    /// positions recorded without the advance would have it made, and written, again).
    pub async fn commit(&self, owner: &str, checkpoint: &Checkpoint) -> Result<()> {
        let idle_changed = self.committed.lock().idle.get(owner).map_or(!checkpoint.idle.is_empty(), |idle| *idle != checkpoint.idle);
        if idle_changed {
            let value = serde_json::to_vec(&checkpoint.idle)?;
            let key = idle_key(owner);
            self.cluster.producer().send(&self.topic, None, Some(key.as_bytes()), Some(&value), None).await?;
            self.committed.lock().idle.insert(owner.to_string(), checkpoint.idle.clone());
        }
        let changed: Vec<(i32, PartitionCheckpoint)> = {
            let committed = self.committed.lock();
            let previous = committed.partitions.get(owner);
            checkpoint
                .input
                .iter()
                .map(|(p, offset)| {
                    (*p, PartitionCheckpoint {
                        offset: *offset,
                        output: checkpoint.output.clone(),
                        start: checkpoint.start.as_ref().and_then(|s| s.get(p).copied()),
                    })
                })
                .filter(|(p, c)| previous.and_then(|prev| prev.get(p)) != Some(c))
                .collect()
        };
        let sends = changed.iter().map(|(partition, c)| async move {
            let value = serde_json::to_vec(c)?;
            let key = partition_key(owner, *partition);
            self.cluster.producer().send(&self.topic, None, Some(key.as_bytes()), Some(&value), None).await?;
            Ok::<_, SluiceError>(())
        });
        for sent in futures::future::join_all(sends).await {
            sent?;
        }
        let mut committed = self.committed.lock();
        let entry = committed.partitions.entry(owner.to_string()).or_default();
        entry.extend(changed);
        Ok(())
    }

    /// Forgets an owner's positions (tombstones, so compaction drops them).
    pub async fn forget(&self, owner: &str) -> Result<()> {
        let (partitions, idle) = {
            let committed = self.committed.lock();
            let partitions: Vec<i32> = committed.partitions.get(owner).map(|p| p.keys().copied().collect()).unwrap_or_default();
            (partitions, committed.idle.contains_key(owner))
        };
        for partition in partitions {
            let key = partition_key(owner, partition);
            self.cluster.producer().send(&self.topic, None, Some(key.as_bytes()), None, None).await?;
        }
        if idle {
            self.cluster.producer().send(&self.topic, None, Some(idle_key(owner).as_bytes()), None, None).await?;
        }
        self.cluster.producer().send(&self.topic, None, Some(owner.as_bytes()), None, None).await?;
        let mut committed = self.committed.lock();
        committed.partitions.remove(owner);
        committed.idle.remove(owner);
        Ok(())
    }
}

/// Every record of the store's topic, applied in order.
async fn read_committed(cluster: &Arc<KafkaCluster>, topic: &str) -> Result<Committed> {
    let reader = cluster.clone();
    let name = topic.to_string();
    let records = tokio::task::spawn_blocking(move || reader.read_partition_to_end(&name))
        .await
        .map_err(|e| SluiceError::Internal(e.to_string()))??;
    let mut committed = Committed::default();
    for record in records {
        let Some(key) = record.key.and_then(|k| String::from_utf8(k).ok()) else {
            continue;
        };
        apply_record(&mut committed, &key, record.value.as_deref())?;
    }
    Ok(committed)
}

fn partition_key(owner: &str, partition: i32) -> String {
    format!("{owner}/{partition}")
}

const IDLE_SUFFIX: &str = "/idle";

fn idle_key(owner: &str) -> String {
    format!("{owner}{IDLE_SUFFIX}")
}

/// Applies one record of the store: `owner/partition` keys hold a partition's checkpoint,
/// `owner/idle` its idle advances; a key without either is the older form, a whole query's
/// offsets in one map.
fn apply_record(store: &mut Committed, key: &str, value: Option<&[u8]>) -> Result<()> {
    if let Some(owner) = key.strip_suffix(IDLE_SUFFIX) {
        match value {
            Some(value) => store.idle.insert(owner.to_string(), serde_json::from_slice(value)?),
            None => store.idle.remove(owner),
        };
        return Ok(());
    }
    let committed = &mut store.partitions;
    let split = key.rsplit_once('/').and_then(|(owner, p)| p.parse::<i32>().ok().map(|p| (owner, p)));
    match (split, value) {
        (Some((owner, partition)), Some(value)) => {
            let checkpoint: PartitionCheckpoint = serde_json::from_slice(value)?;
            committed.entry(owner.to_string()).or_default().insert(partition, checkpoint);
        }
        (Some((owner, partition)), None) => {
            if let Some(partitions) = committed.get_mut(owner) {
                partitions.remove(&partition);
                if partitions.is_empty() {
                    committed.remove(owner);
                }
            }
        }
        (None, Some(value)) => {
            let offsets: PartitionOffsets = serde_json::from_slice(value)?;
            let partitions = offsets
                .into_iter()
                .map(|(p, offset)| (p, PartitionCheckpoint { offset, output: None, start: None }))
                .collect();
            committed.insert(key.to_string(), partitions);
        }
        (None, None) => {
            committed.remove(key);
        }
    }
    Ok(())
}

/// The smaller position of the two for every output partition either names.
fn lower_bounds(mut merged: OutputPositions, other: &OutputPositions) -> OutputPositions {
    for (topic, partitions) in other {
        let entry = merged.entry(topic.clone()).or_default();
        for (p, offset) in partitions {
            entry.entry(*p).and_modify(|o| *o = (*o).min(*offset)).or_insert(*offset);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(records: &[(&str, Option<&str>)]) -> BTreeMap<String, BTreeMap<i32, PartitionCheckpoint>> {
        read(records).partitions
    }

    fn read(records: &[(&str, Option<&str>)]) -> Committed {
        let mut committed = Committed::default();
        for (key, value) in records {
            apply_record(&mut committed, key, value.map(str::as_bytes)).unwrap();
        }
        committed
    }

    #[test]
    fn idle_advances_are_kept_beside_the_partitions_and_removed_by_a_tombstone() {
        let committed = read(&[
            ("Q/0", Some(r#"{"offset": 4}"#)),
            ("Q/idle", Some(r#"[{"at": {"0": 4, "1": 2}, "stream_time": 1000}]"#)),
        ]);
        assert_eq!(committed.partitions["Q"].keys().copied().collect::<Vec<_>>(), vec![0]);
        assert_eq!(committed.idle["Q"], vec![IdleAdvance { at: BTreeMap::from([(0, 4), (1, 2)]), stream_time: 1000 }]);
        let committed = read(&[("Q/idle", Some("[]")), ("Q/idle", None)]);
        assert!(committed.idle.is_empty());
    }

    #[test]
    fn partitions_are_kept_apart_and_the_older_form_is_read() {
        let committed = store(&[
            ("CSAS_A_1", Some(r#"{"0": 5, "1": 7}"#)),
            ("CSAS_B_2/0", Some(r#"{"offset": 3, "output": {"B": {"0": 10}}}"#)),
            ("CSAS_B_2/1", Some(r#"{"offset": 4, "output": {"B": {"0": 12, "1": 2}}}"#)),
        ]);
        assert_eq!(committed["CSAS_A_1"][&1], PartitionCheckpoint { offset: 7, output: None, start: None });
        assert_eq!(committed["CSAS_B_2"][&0].offset, 3);
        assert_eq!(committed["CSAS_B_2"][&1].offset, 4);
    }

    #[test]
    fn tombstones_remove_a_partition_then_the_query() {
        let committed = store(&[
            ("Q/0", Some(r#"{"offset": 1}"#)),
            ("Q/1", Some(r#"{"offset": 2}"#)),
            ("Q/0", None),
        ]);
        assert_eq!(committed["Q"].keys().copied().collect::<Vec<_>>(), vec![1]);
        let committed = store(&[("Q/0", Some(r#"{"offset": 1}"#)), ("Q/0", None)]);
        assert!(committed.is_empty());
    }

    #[test]
    fn the_output_positions_of_a_query_are_the_lowest_of_its_partitions() {
        let a: OutputPositions = serde_json::from_str(r#"{"B": {"0": 10}}"#).unwrap();
        let b: OutputPositions = serde_json::from_str(r#"{"B": {"0": 12, "1": 2}}"#).unwrap();
        let merged = lower_bounds(lower_bounds(BTreeMap::new(), &a), &b);
        assert_eq!(merged["B"], BTreeMap::from([(0, 10), (1, 2)]));
    }
}
