//! How far a reader has got into a topic, per partition, and a wait for it to get somewhere.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::connectors::kafka::offsets::PartitionOffsets;

#[derive(Debug, Default)]
pub struct Progress {
    /// Per partition, the next offset not read yet.
    read: Mutex<PartitionOffsets>,
    advanced: Condvar,
}

impl Progress {
    /// Notes that everything before `positions` is read.
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

    /// Per partition, the next offset not read yet.
    pub fn read(&self) -> PartitionOffsets {
        self.read.lock().clone()
    }

    /// Waits up to `limit` until every partition is read up to `ends` (exclusive); whether it
    /// is.
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
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Arc};

    use super::*;

    #[test]
    fn waits_until_every_partition_is_read_up_to_the_ends_asked_for() {
        let progress = Arc::new(Progress::default());
        let ends = BTreeMap::from([(0, 5), (1, 0)]);
        assert!(!progress.wait_for(&ends, Duration::from_millis(10)));
        let reader = progress.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            reader.advance(&BTreeMap::from([(0, 5)]));
        });
        assert!(progress.wait_for(&ends, Duration::from_secs(5)));
        thread.join().unwrap();
    }
}
