//! A materialized table: the latest record of every key of the table's topic, in memory, for
//! pull queries.
//!
//! It is filled by a scan of the table's topic from its start (for a `CREATE SOURCE TABLE`, the
//! topic it was declared over; for a `CREATE TABLE … AS SELECT`, the topic its query writes,
//! exactly once), so a restarted server, after `kill -9` too, rebuilds it from Kafka: the topic
//! is its changelog. A record without value deletes its key.

use std::collections::BTreeMap;

use parking_lot::RwLock;

use super::progress::Progress;

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
    /// By key bytes, in their order, as ksqlDB's state store (RocksDB) holds them: each write
    /// and delete costs O(log n), whatever the table's size.
    rows: RwLock<BTreeMap<Vec<u8>, StoredRecord>>,
    /// How far into the topic the rows reflect.
    pub progress: Progress,
}

impl TableState {
    pub fn upsert(&self, record: StoredRecord) {
        self.rows.write().insert(record.key.clone(), record);
    }

    pub fn delete(&self, key: &[u8]) {
        self.rows.write().remove(key);
    }

    /// The record of `key`, if the table holds it.
    pub fn get(&self, key: &[u8]) -> Option<StoredRecord> {
        self.rows.read().get(key).cloned()
    }

    /// Every row, in the order of their key bytes.
    pub fn rows(&self) -> Vec<StoredRecord> {
        self.rows.read().values().cloned().collect()
    }

    /// How many keys the table holds, and the bytes of their keys and values.
    pub fn size(&self) -> (usize, usize) {
        let rows = self.rows.read();
        let bytes = rows.values().map(|r| r.key.len() + r.value.len()).sum();
        (rows.len(), bytes)
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
    fn keeps_the_latest_value_of_each_key_in_key_order() {
        let table = TableState::default();
        table.upsert(record("b", "1", 0));
        table.upsert(record("a", "2", 1));
        table.upsert(record("b", "3", 2));
        let values: Vec<(Vec<u8>, Vec<u8>)> = table.rows().into_iter().map(|r| (r.key, r.value)).collect();
        assert_eq!(values, vec![(b"a".to_vec(), b"2".to_vec()), (b"b".to_vec(), b"3".to_vec())]);
        table.delete(b"b");
        assert!(table.get(b"b").is_none());
        assert_eq!(table.size(), (1, 2));
        table.upsert(record("b", "4", 3));
        assert_eq!(table.get(b"b").map(|r| r.value), Some(b"4".to_vec()));
    }
}
