//! Windows closed by the wall clock while a query's input is idle (`sluice.window.idle.close.ms`).
//!
//! Under `EMIT FINAL` a window is emitted when stream time — the largest timestamp read —
//! passes its end and grace period, so with no new record it never is (ksqlDB #9688, #9840).
//! With the property set, once an `EMIT FINAL` windowed aggregation has taken in no record for
//! that long, its stream time moves on with the wall clock from where the records left it: a
//! window closes as if records had kept arriving, and a record arriving later for a window so
//! closed is late.
//!
//! Such a move is not in the input, so rebuilding the state by replaying the input (after a
//! restart or a failure) would not repeat it. Each one whose output is in Kafka is kept in the
//! query's checkpoint with where its input stood; a replay raises stream time to it before the
//! first record read after that point, or once everything before it is read, and writes nothing
//! for it: its output is in Kafka already.

use std::time::{Duration, Instant};

use crate::connectors::kafka::offsets::{IdleAdvance, PartitionOffsets};

/// One query's wall-clock advances of stream time.
pub struct IdleClose {
    after: Duration,
    /// When the query last took in a record, or started.
    last_input: Instant,
    /// The stream time the records left when the input went idle; set by the first look after.
    base: Option<i64>,
    /// The advances whose output is in Kafka, oldest first.
    settled: Vec<IdleAdvance>,
}

impl IdleClose {
    /// Closes idle windows `after` the last record, repeating the `settled` advances of a
    /// checkpoint on a replay.
    pub fn new(after: Duration, settled: Vec<IdleAdvance>) -> Self {
        Self {
            after,
            last_input: Instant::now(),
            base: None,
            settled,
        }
    }

    /// The query took in a record: the input is not idle.
    pub fn took_input(&mut self) {
        self.last_input = Instant::now();
        self.base = None;
    }

    /// The stream time the wall clock has brought a query at `stream_time` to, once its input
    /// has been idle long enough: the records' stream time plus the idle time.
    pub fn due(&mut self, stream_time: i64) -> Option<i64> {
        let idle = self.last_input.elapsed();
        if idle < self.after {
            return None;
        }
        let base = *self.base.get_or_insert(stream_time);
        Some(base.saturating_add(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Keeps an advance whose output is in Kafka. Advances made with the input at one place
    /// are one: the last.
    pub fn settle(&mut self, advance: IdleAdvance) {
        match self.settled.last_mut() {
            Some(last) if last.at == advance.at => last.stream_time = last.stream_time.max(advance.stream_time),
            _ => self.settled.push(advance),
        }
    }

    /// The advances to keep in the checkpoint.
    pub fn settled(&self) -> &[IdleAdvance] {
        &self.settled
    }

    /// The stream time the kept advances give a record at `partition` and `offset`: the latest
    /// made before it was read (a partition the advance does not name was not there yet).
    pub fn floor(&self, partition: i32, offset: i64) -> i64 {
        self.settled
            .iter()
            .rev()
            .find(|a| a.at.get(&partition).is_none_or(|at| offset >= *at))
            .map_or(i64::MIN, |a| a.stream_time)
    }

    /// The latest stream time of the kept advances made after nothing more than `read` had
    /// been read: a replay that has read that far repeats them.
    pub fn reached(&self, read: &PartitionOffsets) -> Option<i64> {
        self.settled
            .iter()
            .filter(|a| a.at.iter().all(|(p, at)| read.get(p).is_some_and(|r| r >= at)))
            .map(|a| a.stream_time)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn advance(at: &[(i32, i64)], stream_time: i64) -> IdleAdvance {
        IdleAdvance { at: at.iter().copied().collect(), stream_time }
    }

    #[test]
    fn idle_time_is_added_to_the_records_stream_time_once_the_wait_is_over() {
        let mut idle = IdleClose::new(Duration::from_secs(3600), Vec::new());
        assert_eq!(idle.due(1_000), None, "not idle long enough");
        let mut idle = IdleClose::new(Duration::ZERO, Vec::new());
        std::thread::sleep(Duration::from_millis(20));
        let first = idle.due(1_000).unwrap();
        assert!(first >= 1_020, "{first}");
        std::thread::sleep(Duration::from_millis(20));
        let second = idle.due(first).unwrap();
        assert!(second >= 1_040 && second < first + 1_000, "counted from the records' stream time, not the advanced one: {second}");
        idle.took_input();
        assert!(idle.due(5_000).unwrap() < 5_020, "a record starts the idle time over");
    }

    #[test]
    fn advances_made_at_one_place_in_the_input_are_kept_as_the_last() {
        let mut idle = IdleClose::new(Duration::ZERO, Vec::new());
        idle.settle(advance(&[(0, 5)], 100));
        idle.settle(advance(&[(0, 5)], 150));
        idle.settle(advance(&[(0, 7)], 300));
        assert_eq!(idle.settled(), &[advance(&[(0, 5)], 150), advance(&[(0, 7)], 300)]);
    }

    #[test]
    fn a_record_read_after_an_advance_gets_its_stream_time_first() {
        let idle = IdleClose::new(Duration::ZERO, vec![advance(&[(0, 5), (1, 2)], 100), advance(&[(0, 7), (1, 2)], 300)]);
        assert_eq!(idle.floor(0, 4), i64::MIN);
        assert_eq!(idle.floor(0, 5), 100);
        assert_eq!(idle.floor(1, 2), 300);
        assert_eq!(idle.floor(0, 9), 300);
        assert_eq!(idle.floor(2, 0), 300, "a partition added later was read after every advance");
    }

    #[test]
    fn a_replay_repeats_the_advances_made_before_what_it_has_read() {
        let idle = IdleClose::new(Duration::ZERO, vec![advance(&[(0, 5), (1, 2)], 100), advance(&[(0, 7), (1, 2)], 300)]);
        assert_eq!(idle.reached(&BTreeMap::from([(0, 5), (1, 1)])), None);
        assert_eq!(idle.reached(&BTreeMap::from([(0, 6), (1, 2)])), Some(100));
        assert_eq!(idle.reached(&BTreeMap::from([(0, 7), (1, 2)])), Some(300));
    }
}
