//! A materialized table: the latest record of every key of the table's topic, in memory, for
//! pull queries.
//!
//! It is filled by a scan of the table's topic from its start (for a `CREATE SOURCE TABLE`, the
//! topic it was declared over; for a `CREATE TABLE … AS SELECT`, the topic its query writes,
//! exactly once), so a restarted server, after `kill -9` too, rebuilds it from Kafka: the topic
//! is its changelog. A record without value deletes its key.

use std::collections::{BTreeMap, HashMap};

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
    rows: RwLock<Rows>,
    /// How far into the topic the rows reflect.
    pub progress: Progress,
}

/// The rows in the order their keys first appeared (a deleted key appears anew when it comes
/// back): each write and delete costs O(log n), whatever the table's size.
#[derive(Debug, Default)]
struct Rows {
    /// Each key's place in `ordered`.
    places: HashMap<Vec<u8>, u64>,
    ordered: BTreeMap<u64, StoredRecord>,
    next_place: u64,
}

impl TableState {
    pub fn upsert(&self, record: StoredRecord) {
        let mut rows = self.rows.write();
        let Rows { places, ordered, next_place } = &mut *rows;
        let place = *places.entry(record.key.clone()).or_insert_with(|| {
            *next_place += 1;
            *next_place
        });
        ordered.insert(place, record);
    }

    pub fn delete(&self, key: &[u8]) {
        let mut rows = self.rows.write();
        if let Some(place) = rows.places.remove(key) {
            rows.ordered.remove(&place);
        }
    }

    /// The record of `key`, if the table holds it.
    pub fn get(&self, key: &[u8]) -> Option<StoredRecord> {
        let rows = self.rows.read();
        rows.places.get(key).and_then(|place| rows.ordered.get(place)).cloned()
    }

    /// Every row, in the order their keys first appeared.
    pub fn rows(&self) -> Vec<StoredRecord> {
        self.rows.read().ordered.values().cloned().collect()
    }

    /// How many keys the table holds, and the bytes of their keys and values.
    pub fn size(&self) -> (usize, usize) {
        let rows = self.rows.read();
        let bytes = rows.ordered.values().map(|r| r.key.len() + r.value.len()).sum();
        (rows.ordered.len(), bytes)
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
        table.upsert(record("b", "4", 3));
        let keys: Vec<Vec<u8>> = table.rows().into_iter().map(|r| r.key).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()], "a key deleted and written again comes last");
        assert_eq!(table.get(b"b").map(|r| r.value), Some(b"4".to_vec()));
    }
}
