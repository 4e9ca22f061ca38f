//! How many records this server produced to and fetched from each topic, for `/metrics`
//! (Prometheus derives the rates).

use std::collections::BTreeMap;

use parking_lot::Mutex;

/// Records produced (delivered) and fetched, per topic.
#[derive(Debug, Default)]
pub struct Traffic {
    topics: Mutex<BTreeMap<String, TopicTraffic>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TopicTraffic {
    pub produced: u64,
    pub fetched: u64,
}

impl Traffic {
    pub fn produced(&self, topic: &str, records: u64) {
        self.count(topic, |t| t.produced += records);
    }

    pub fn fetched(&self, topic: &str, records: u64) {
        self.count(topic, |t| t.fetched += records);
    }

    fn count(&self, topic: &str, add: impl FnOnce(&mut TopicTraffic)) {
        let mut topics = self.topics.lock();
        match topics.get_mut(topic) {
            Some(counts) => add(counts),
            None => add(topics.entry(topic.to_string()).or_default()),
        }
    }

    /// Every topic's counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, TopicTraffic> {
        self.topics.lock().clone()
    }
}
