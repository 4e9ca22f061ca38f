//! A table's recent history per key, for stream-table joins: each stream record is joined with
//! the table's row as of the record's time, so a join started over existing data, or replayed
//! after a crash, gives what processing both topics in timestamp order would have given,
//! whatever order they were fetched in.
//!
//! It is filled by a scan of the table's topic from its start, like [`super::table_state`].
//! Each key keeps its last [`MAX_VERSIONS`] versions (a deletion is a version without value),
//! in the order the topic holds them; a record older than every version kept of its key gets
//! the oldest one kept, or no row when the key had none before.

use std::collections::{HashMap, VecDeque};

use parking_lot::RwLock;

use super::progress::Progress;

/// Versions kept per key.
pub const MAX_VERSIONS: usize = 8;

/// One version of a key's row.
#[derive(Debug, Clone)]
pub struct Version {
    pub timestamp: i64,
    /// The record's value; `None` when the key was deleted.
    pub value: Option<Vec<u8>>,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug, Default)]
struct Versions {
    /// Oldest first.
    kept: VecDeque<Version>,
    /// Older versions were dropped.
    truncated: bool,
}

/// The versions of every key of one table, and how far into its topic they reflect.
#[derive(Debug, Default)]
pub struct TableVersions {
    keys: RwLock<HashMap<Vec<u8>, Versions>>,
    pub progress: Progress,
}

impl TableVersions {
    /// Adds the next version of `key`; a deletion of a key never seen is not kept.
    pub fn put(&self, key: &[u8], version: Version) {
        let mut keys = self.keys.write();
        if version.value.is_none() && !keys.contains_key(key) {
            return;
        }
        let versions = keys.entry(key.to_vec()).or_default();
        versions.kept.push_back(version);
        if versions.kept.len() > MAX_VERSIONS {
            versions.kept.pop_front();
            versions.truncated = true;
        }
    }

    /// The value of `key` as of `timestamp`: the last version at or before it.
    pub fn as_of(&self, key: &[u8], timestamp: i64) -> Option<Version> {
        let keys = self.keys.read();
        let versions = keys.get(key)?;
        let found = versions.kept.iter().rev().find(|v| v.timestamp <= timestamp);
        let version = match found {
            Some(version) => version,
            None if versions.truncated => versions.kept.front()?,
            None => return None,
        };
        version.value.is_some().then(|| version.clone())
    }

    /// How many keys have versions.
    pub fn len(&self) -> usize {
        self.keys.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(timestamp: i64, value: Option<&str>) -> Version {
        Version {
            timestamp,
            value: value.map(|v| v.as_bytes().to_vec()),
            partition: 0,
            offset: timestamp,
        }
    }

    fn value_as_of(table: &TableVersions, key: &str, timestamp: i64) -> Option<String> {
        table.as_of(key.as_bytes(), timestamp).map(|v| String::from_utf8(v.value.unwrap()).unwrap())
    }

    #[test]
    fn a_lookup_sees_the_last_version_at_or_before_its_time() {
        let table = TableVersions::default();
        table.put(b"k", version(10, Some("a")));
        table.put(b"k", version(20, Some("b")));
        assert_eq!(value_as_of(&table, "k", 5), None);
        assert_eq!(value_as_of(&table, "k", 10).as_deref(), Some("a"));
        assert_eq!(value_as_of(&table, "k", 19).as_deref(), Some("a"));
        assert_eq!(value_as_of(&table, "k", 25).as_deref(), Some("b"));
        assert_eq!(value_as_of(&table, "other", 25), None);
    }

    #[test]
    fn a_deletion_hides_the_row_from_its_time_on() {
        let table = TableVersions::default();
        table.put(b"k", version(10, Some("a")));
        table.put(b"k", version(30, None));
        assert_eq!(value_as_of(&table, "k", 20).as_deref(), Some("a"));
        assert_eq!(value_as_of(&table, "k", 30), None);
        table.put(b"never seen", version(5, None));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn past_the_versions_kept_the_oldest_one_answers() {
        let table = TableVersions::default();
        for t in 0..(MAX_VERSIONS as i64 + 2) {
            table.put(b"k", version(100 + t, Some(&t.to_string())));
        }
        assert_eq!(value_as_of(&table, "k", 0).as_deref(), Some("2"));
    }
}
