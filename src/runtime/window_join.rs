//! Stream-stream joins at run time (`JOIN … WITHIN`), as Kafka Streams joins them for ksqlDB:
//! each record of either stream is joined with the other stream's records of the same key whose
//! time is within the window, the result stamped with the later of the two times. A record of
//! an outer side that found no match is emitted with NULLs: at once without `GRACE PERIOD`
//! (and again joined if a match comes later), else once its window has closed, or at once if it
//! arrives after that. Records are kept for the window and grace, then dropped.

use std::collections::{BTreeMap, HashMap};

use arrow::array::{BooleanArray, RecordBatch};

use super::pair_join::{KeyReader, Origin, PairJoined, Pick, RowKeys, unmatched};
use crate::{
    error::{Result, SluiceError},
    planner::{JoinKind, PairJoin},
};

/// Kafka Streams' grace for a join window declared without one.
const DEFAULT_GRACE_MS: i64 = 24 * 60 * 60 * 1000;

const NULL_KEY: &str = "the join expression is NULL: the record joins no row";

/// A record kept for joining.
#[derive(Debug, Clone, Copy)]
struct Kept {
    seq: u64,
    timestamp: i64,
    /// Which batch of [`WindowJoiner::batches`] holds its row, and where.
    batch: u64,
    row: usize,
    /// Its source partition and offset.
    position: (i32, i64),
    /// Unmatched on an outer side: waiting in [`WindowJoiner::waiting`] for its window to close.
    waiting: bool,
}

/// The state of one stream-stream join: both streams' recent records by key, and the
/// unmatched ones waiting for their window to close.
pub struct WindowJoiner {
    kind: JoinKind,
    before_ms: i64,
    after_ms: i64,
    grace_ms: i64,
    /// No `GRACE PERIOD`: unmatched rows are emitted at once.
    eager: bool,
    left_width: usize,
    keys: KeyReader,
    /// The largest record time seen, of either stream: when a window has closed.
    stream_time: i64,
    /// Per side, the largest record time of that stream: which of its records are kept, as
    /// each stream's window store in Kafka Streams keeps them.
    side_time: [i64; 2],
    /// Per side (left, right), the kept records by key, oldest first.
    kept: [HashMap<Vec<u8>, Vec<Kept>>; 2],
    /// Per side, kept records by time, to drop them once out of the window and grace.
    expiry: [BTreeMap<(i64, u64), Vec<u8>>; 2],
    /// Unmatched records of an outer side by time, with their side and key.
    waiting: BTreeMap<(i64, u64), (usize, Vec<u8>)>,
    /// The batches kept records are rows of, with how many of them each holds (none, for a
    /// moment, while a batch being joined may still show its expired rows).
    batches: HashMap<u64, (RecordBatch, usize)>,
    /// Per source partition, the offsets of kept records (with how many at each).
    retained: BTreeMap<i32, BTreeMap<i64, usize>>,
    next_seq: u64,
    next_batch: u64,
}

impl WindowJoiner {
    pub fn new(plan: &PairJoin) -> Result<Self> {
        let within = plan
            .within
            .ok_or_else(|| SluiceError::Internal("a window join without a window".into()))?;
        Ok(Self {
            kind: plan.kind,
            before_ms: within.before_ms,
            after_ms: within.after_ms,
            grace_ms: within.grace_ms.unwrap_or(DEFAULT_GRACE_MS),
            eager: within.grace_ms.is_none(),
            left_width: plan.left_width,
            keys: KeyReader::new(plan)?,
            stream_time: i64::MIN,
            side_time: [i64::MIN; 2],
            kept: [HashMap::new(), HashMap::new()],
            expiry: [BTreeMap::new(), BTreeMap::new()],
            waiting: BTreeMap::new(),
            batches: HashMap::new(),
            retained: BTreeMap::new(),
            next_seq: 0,
            next_batch: 0,
        })
    }

    /// Where the input the state was built from starts: per source partition, the first offset
    /// of a record still kept.
    pub fn earliest_kept(&self) -> BTreeMap<i32, i64> {
        self.retained
            .iter()
            .filter_map(|(partition, offsets)| offsets.keys().next().map(|o| (*partition, *o)))
            .collect()
    }

    /// Joins the rows of `batch` that `active` marks, in order; `right[row]` tells a right
    /// stream's row from a left one's, `positions[row]` is its record's source partition and
    /// offset.
    pub fn process(
        &mut self,
        plan: &PairJoin,
        batch: &RecordBatch,
        active: Option<&BooleanArray>,
        right: &[bool],
        positions: &[(i32, i64)],
    ) -> Result<PairJoined> {
        let RowKeys { keys, times, mut errors } = self.keys.read(plan, batch, right)?;
        let failed: std::collections::HashSet<usize> = errors.iter().map(|(row, _)| *row).collect();
        let batch_id = self.next_batch;
        self.next_batch += 1;
        let mut picks = Vec::new();
        let mut stored = 0;
        for row in 0..batch.num_rows() {
            if failed.contains(&row) || active.is_some_and(|a| !a.value(row)) {
                continue;
            }
            let side = usize::from(right[row]);
            let outer = self.is_outer(side);
            let timestamp = times[row];
            let Some(key) = keys[row].clone() else {
                // As Kafka Streams since KIP-962: an outer side's record goes on unmatched.
                if outer {
                    picks.push(unmatched(Origin::Input(row), row, timestamp, (positions[row], None)));
                } else {
                    errors.push((row, NULL_KEY.to_string()));
                }
                continue;
            };
            self.stream_time = self.stream_time.max(timestamp);
            self.side_time[side] = self.side_time[side].max(timestamp);
            if !self.eager && timestamp == self.stream_time {
                self.emit_closed(row, &mut picks);
            }
            self.expire(side);
            let matched = self.join(side, &key, timestamp, row, positions[row], &mut picks);
            let closes_at = timestamp.saturating_add(self.lookback(side));
            let late = timestamp < self.side_time[side].saturating_sub(self.retention());
            let emit_now = !matched && outer && (self.eager || closes_at < self.stream_time);
            if emit_now {
                picks.push(unmatched(Origin::Input(row), row, timestamp, (positions[row], None)));
            }
            if !late {
                let waiting = !matched && outer && !emit_now;
                self.keep(side, key, timestamp, batch_id, row, positions[row], waiting);
                stored += 1;
            }
        }
        if stored > 0 {
            self.batches.insert(batch_id, (batch.clone(), stored));
        }
        let joined = PairJoined::build(batch, &picks, &self.batches, self.left_width, errors)?;
        // A batch none of whose rows is kept goes once this one's rows, which may show them, are built.
        self.batches.retain(|_, (_, rows)| *rows > 0);
        Ok(joined)
    }

    fn is_outer(&self, side: usize) -> bool {
        if side == 0 { self.kind.keeps_unmatched_left() } else { self.kind.keeps_unmatched_right() }
    }

    /// How long after its time a record of `side` may still find a match: a left record joins
    /// right ones up to `after` later, a right record left ones up to `before` later.
    fn lookback(&self, side: usize) -> i64 {
        if side == 0 { self.after_ms } else { self.before_ms }
    }

    fn retention(&self) -> i64 {
        self.before_ms.saturating_add(self.after_ms).saturating_add(self.grace_ms)
    }

    /// Joins a record of `side` with the other side's kept records of `key` within the window,
    /// oldest first; whether it found any.
    fn join(&mut self, side: usize, key: &[u8], timestamp: i64, row: usize, position: (i32, i64), picks: &mut Vec<Pick>) -> bool {
        let other = 1 - side;
        // A left record at t joins right ones in [t - before, t + after]; a right one at t left
        // ones in [t - after, t + before].
        let (from, to) = if side == 0 {
            (timestamp.saturating_sub(self.before_ms), timestamp.saturating_add(self.after_ms))
        } else {
            (timestamp.saturating_sub(self.after_ms), timestamp.saturating_add(self.before_ms))
        };
        let Some(candidates) = self.kept[other].get_mut(key) else { return false };
        let mut matches: Vec<&mut Kept> = candidates.iter_mut().filter(|k| (from..=to).contains(&k.timestamp)).collect();
        matches.sort_by_key(|k| (k.timestamp, k.seq));
        let mut unwaited = Vec::new();
        for kept in &mut matches {
            let stored = Origin::Kept(kept.batch, kept.row);
            let (left, right) = if side == 0 { (Origin::Input(row), stored) } else { (stored, Origin::Input(row)) };
            picks.push(Pick {
                left,
                right,
                trigger: row,
                timestamp: timestamp.max(kept.timestamp),
                identity: (position, Some(kept.position)),
                tombstone: false,
            });
            if kept.waiting {
                kept.waiting = false;
                unwaited.push((kept.timestamp, kept.seq));
            }
        }
        let found = !matches.is_empty();
        for at in unwaited {
            self.waiting.remove(&at);
        }
        found
    }

    /// Emits, oldest first, the waiting records whose window and grace have passed, as Kafka
    /// Streams does when a record moves stream time: it stops at the first still open.
    fn emit_closed(&mut self, trigger: usize, picks: &mut Vec<Pick>) {
        while let Some((&(timestamp, seq), (side, _))) = self.waiting.first_key_value() {
            let closes = timestamp.saturating_add(self.lookback(*side)).saturating_add(self.grace_ms);
            if closes >= self.stream_time {
                break;
            }
            let (side, key) = self.waiting.pop_first().map(|(_, v)| v).expect("a waiting record");
            let Some(kept) = self.kept[side].get_mut(&key).and_then(|all| all.iter_mut().find(|k| k.seq == seq)) else {
                continue;
            };
            kept.waiting = false;
            let kept = *kept;
            picks.push(unmatched(Origin::Kept(kept.batch, kept.row), trigger, timestamp, (kept.position, None)));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn keep(&mut self, side: usize, key: Vec<u8>, timestamp: i64, batch: u64, row: usize, position: (i32, i64), waiting: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.kept[side]
            .entry(key.clone())
            .or_default()
            .push(Kept { seq, timestamp, batch, row, position, waiting });
        if waiting {
            self.waiting.insert((timestamp, seq), (side, key.clone()));
        }
        self.expiry[side].insert((timestamp, seq), key);
        *self.retained.entry(position.0).or_default().entry(position.1).or_default() += 1;
    }

    /// Drops the records of `side` older than the window and grace allow.
    fn expire(&mut self, side: usize) {
        let horizon = self.side_time[side].saturating_sub(self.retention());
        while let Some((&(timestamp, seq), _)) = self.expiry[side].first_key_value() {
            if timestamp >= horizon {
                break;
            }
            let key = self.expiry[side].pop_first().map(|(_, key)| key).expect("an expiring record");
            let Some(all) = self.kept[side].get_mut(&key) else { continue };
            let Some(at) = all.iter().position(|k| k.seq == seq) else { continue };
            let kept = all.remove(at);
            if all.is_empty() {
                self.kept[side].remove(&key);
            }
            self.waiting.remove(&(timestamp, seq));
            if let Some(offsets) = self.retained.get_mut(&kept.position.0) {
                if let Some(count) = offsets.get_mut(&kept.position.1) {
                    *count -= 1;
                    if *count == 0 {
                        offsets.remove(&kept.position.1);
                    }
                }
                if offsets.is_empty() {
                    self.retained.remove(&kept.position.0);
                }
            }
            if let Some((_, rows)) = self.batches.get_mut(&kept.batch) {
                *rows -= 1;
            }
        }
    }
}


#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;
    use crate::{
        catalog::{Catalog, SourceDef},
        connectors::source::source_partition,
        format::RawRecord,
        parser::{KsqlParser, Statement},
        planner::{ContinuousPlan, QueryPlanner},
        runtime::two_sources::TwoSources,
    };

    const LEFT: &str = "CREATE STREAM L (ID STRING KEY, L1 STRING) WITH (KAFKA_TOPIC = 'l', VALUE_FORMAT = 'JSON');";
    const RIGHT: &str = "CREATE STREAM R (ID STRING KEY, L2 STRING) WITH (KAFKA_TOPIC = 'r', VALUE_FORMAT = 'JSON');";


    async fn plan(join: &str) -> ContinuousPlan {
        let catalog = Catalog::default();
        catalog.put_stream(SourceDef::from_create(LEFT).unwrap());
        catalog.put_stream(SourceDef::from_create(RIGHT).unwrap());
        let sql = format!("SELECT T.ID, L1, L2 FROM L T {join} ON T.ID = TT.ID EMIT CHANGES;");
        let Statement::Select(select) = KsqlParser::parse_one(&sql).unwrap().statement else { panic!("not a SELECT") };
        QueryPlanner::plan(&catalog, &select).await.unwrap()
    }

    /// A joined row's `L1`, `L2` and time.
    type Row = (Option<String>, Option<String>, i64);

    /// Runs `records` (left or right, key, value, time) through a join one at a time, as
    /// ksqlDB's tests feed them; the rows it emits.
    fn run(plan: &ContinuousPlan, records: &[(bool, &str, &str, i64)]) -> (Vec<Row>, WindowJoiner) {
        let window = plan.pair_join().unwrap();
        let decoder = TwoSources::new(&plan.source, &window.right, window.schema.clone()).unwrap();
        let mut joiner = WindowJoiner::new(window).unwrap();
        let mut emitted = Vec::new();
        for (offset, (right, key, value, timestamp)) in records.iter().enumerate() {
            let field = if *right { "L2" } else { "L1" };
            let value = format!("{{\"{field}\": \"{value}\"}}");
            let record = RawRecord {
                partition: source_partition(usize::from(*right), 0),
                offset: offset as i64,
                timestamp: *timestamp,
                key: Some(key.as_bytes()),
                value: Some(value.as_bytes()),
                headers: None,
            };
            let decoded = decoder.decode(&[record]).unwrap();
            let joined = joiner.process(window, &decoded.batch, None, &[*right], &[(record.partition, record.offset)]).unwrap();
            let text = |name: &str| {
                let column = joined.batch.column_by_name(name).unwrap().as_string::<i32>().clone();
                (0..column.len()).map(move |i| column.is_valid(i).then(|| column.value(i).to_string()))
            };
            emitted.extend(text("L1").zip(text("L2")).zip(&joined.timestamps).map(|((l, r), t)| (l, r, *t)));
        }
        (emitted, joiner)
    }

    fn row(left: Option<&str>, right: Option<&str>, timestamp: i64) -> Row {
        (left.map(str::to_string), right.map(str::to_string), timestamp)
    }

    #[tokio::test]
    async fn with_grace_an_unmatched_row_waits_and_a_late_one_is_emitted_at_once() {
        // ksqlDB's "stream stream left join with out of order and custom grace period".
        let plan = plan("LEFT JOIN R TT WITHIN 1 MINUTE GRACE PERIOD 1 MINUTE").await;
        let records = [
            (false, "0", "A", 0),
            (true, "0", "a", 60_000),
            (false, "1", "B", 330_000),
            (false, "2", "C", 90_000),
            (true, "2", "c", 90_000),
            (false, "3", "D", 60_000),
            (true, "3", "d", 60_000),
        ];
        let (emitted, joiner) = run(&plan, &records);
        assert_eq!(emitted, vec![row(Some("A"), Some("a"), 60_000), row(Some("C"), None, 90_000), row(Some("D"), None, 60_000)]);
        // The left stream keeps only B, the rest being out of its window; the right one, whose
        // own time is 90 000, keeps all of its records.
        assert_eq!(joiner.earliest_kept(), BTreeMap::from([(0, 2), (source_partition(1, 0), 1)]));
    }

    #[tokio::test]
    async fn without_grace_an_unmatched_row_is_emitted_at_once_and_again_when_matched() {
        // ksqlDB's "stream stream left join".
        let plan = plan("LEFT JOIN R TT WITHIN 11 SECONDS").await;
        let records = [
            (false, "0", "zero", 0),
            (true, "0", "blah", 10_000),
            (false, "10", "100", 11_000),
            (false, "0", "foo", 13_000),
            (true, "0", "a", 15_000),
            (true, "100", "newblah", 16_000),
            (false, "90", "ninety", 17_000),
            (false, "0", "bar", 30_000),
        ];
        let (emitted, _) = run(&plan, &records);
        assert_eq!(
            emitted,
            vec![
                row(Some("zero"), None, 0),
                row(Some("zero"), Some("blah"), 10_000),
                row(Some("100"), None, 11_000),
                row(Some("foo"), Some("blah"), 13_000),
                row(Some("foo"), Some("a"), 15_000),
                row(Some("ninety"), None, 17_000),
                row(Some("bar"), None, 30_000),
            ]
        );
    }

    #[tokio::test]
    async fn a_full_outer_join_emits_either_side_unmatched_when_its_window_closes() {
        let plan = plan("FULL OUTER JOIN R TT WITHIN (1 SECOND, 2 SECONDS) GRACE PERIOD 0 SECONDS").await;
        let records = [
            (false, "k", "left", 10_000),
            // Within 2 s after the left record: joined.
            (true, "k", "right", 12_000),
            (true, "j", "alone", 13_000),
            // After 12 500, when a left record at 10 500 could last be joined: emitted at once.
            (false, "j", "late", 10_500),
            // Moves time past every window: the lone right record is emitted with NULLs.
            (false, "x", "far", 20_000),
        ];
        let (emitted, _) = run(&plan, &records);
        assert_eq!(
            emitted,
            vec![
                row(Some("left"), Some("right"), 12_000),
                row(Some("late"), None, 10_500),
                row(None, Some("alone"), 13_000),
            ]
        );
    }
}
