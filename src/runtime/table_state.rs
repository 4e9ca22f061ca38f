//! A materialized table: the latest record of every key of the table's topic, in memory, for
//! pull queries.
//!
//! It is filled by a scan of the table's topic from its start (for a `CREATE SOURCE TABLE`, the
//! topic it was declared over; for a `CREATE TABLE … AS SELECT`, the topic its query writes,
//! exactly once), so a restarted server, after `kill -9` too, rebuilds it from Kafka: the topic
//! is its changelog. A record without value deletes its key.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use indexmap::IndexMap;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::connectors::kafka::offsets::PartitionOffsets;

/// The latest record of one key.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub timestamp: i64,
    pub partition: i32,
    pub offset: i64,
}

/// The rows of one table, and how far into its topic they reflect.
#[derive(Debug, Default)]
pub struct TableState {
    /// By key bytes, in the order keys first appeared.
    rows: RwLock<IndexMap<Vec<u8>, StoredRecord>>,
    /// Per partition, the next offset the rows do not reflect yet.
    read: Mutex<PartitionOffsets>,
    advanced: Condvar,
}

impl TableState {
    pub fn upsert(&self, record: StoredRecord) {
        self.rows.write().insert(record.key.clone(), record);
    }

    pub fn delete(&self, key: &[u8]) {
        self.rows.write().shift_remove(key);
    }

    /// Notes that everything before `positions` is reflected.
    pub fn advance(&self, positions: &PartitionOffsets) {
        let mut read = self.read.lock();
        let mut moved = false;
        for (partition, next) in positions {
            let known = read.entry(*partition).or_insert(0);
            if *next > *known {
                *known = *next;
                moved = true;
            }
        }
        if moved {
            self.advanced.notify_all();
        }
    }

    /// Waits up to `limit` until the rows reflect every partition up to `ends` (exclusive);
    /// whether they do.
    pub fn wait_for(&self, ends: &PartitionOffsets, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut read = self.read.lock();
        loop {
            let behind = ends
                .iter()
                .any(|(partition, end)| read.get(partition).copied().unwrap_or(0) < *end);
            if !behind {
                return true;
            }
            if self.advanced.wait_until(&mut read, deadline).timed_out() {
                return false;
            }
        }
    }

    /// The record of `key`, if the table holds it.
    pub fn get(&self, key: &[u8]) -> Option<StoredRecord> {
        self.rows.read().get(key).cloned()
    }

    /// Every row, in the order their keys first appeared.
    pub fn rows(&self) -> Vec<StoredRecord> {
        self.rows.read().values().cloned().collect()
    }

    /// How many keys the table holds, and the bytes of their keys and values.
    pub fn size(&self) -> (usize, usize) {
        let rows = self.rows.read();
        let bytes = rows.values().map(|r| r.key.len() + r.value.len()).sum();
        (rows.len(), bytes)
    }

    /// How far the rows reflect the topic, per partition.
    pub fn positions(&self) -> BTreeMap<i32, i64> {
        self.read.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &str, offset: i64) -> StoredRecord {
        StoredRecord {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            timestamp: 0,
            partition: 0,
            offset,
        }
    }

    #[test]
    fn keeps_the_latest_value_of_each_key_in_first_seen_order() {
        let table = TableState::default();
        table.upsert(record("b", "1", 0));
        table.upsert(record("a", "2", 1));
        table.upsert(record("b", "3", 2));
        let values: Vec<(Vec<u8>, Vec<u8>)> = table.rows().into_iter().map(|r| (r.key, r.value)).collect();
        assert_eq!(values, vec![(b"b".to_vec(), b"3".to_vec()), (b"a".to_vec(), b"2".to_vec())]);
        table.delete(b"b");
        assert!(table.get(b"b").is_none());
        assert_eq!(table.size(), (1, 2));
    }

    #[test]
    fn waits_until_the_rows_reflect_the_ends_asked_for() {
        let table = std::sync::Arc::new(TableState::default());
        let ends = BTreeMap::from([(0, 5), (1, 0)]);
        assert!(!table.wait_for(&ends, Duration::from_millis(10)));
        let writer = table.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            writer.advance(&BTreeMap::from([(0, 5)]));
        });
        assert!(table.wait_for(&ends, Duration::from_secs(5)));
        thread.join().unwrap();
    }
}
