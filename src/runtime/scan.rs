//! A shared scan: one source read once, one decode per record, every query attached to it
//! evaluated on the decoded batch.
//!
//! Each query keeps its own next offset per partition; the source reads from the smallest, and
//! a query sees a record only at or past its own offset. So a query can join or leave a running
//! scan, start earlier or later than the others, and none of them sees a record twice.
//! Partitions added to the source are found within [`DISCOVERY_INTERVAL`] and read from their
//! start.
//!
//! Output is pipelined: a few batches may wait for their delivery reports while the next one is
//! read and evaluated. A query's committed position moves only when a batch is wholly in Kafka,
//! in batch order. After any failure, a panic included, every query shows ERROR, goes back to its
//! committed position and, when exactly once, reads back what it wrote past it (see
//! [`super::origin`]) before it processes again. No wait on Kafka is unbounded: control messages
//! (a query leaving, the scan stopping) are served throughout.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    panic::{self, AssertUnwindSafe},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use arrow::{
    array::BooleanArray,
    util::display::array_value_to_string,
    compute::kernels::boolean::{and, not},
};
use tokio::runtime::Handle;
use tracing::{info, warn};

use datafusion::physical_expr::PhysicalExpr;

use super::{
    QueryState, QueryStatus, aggregate::Aggregator, idle::IdleClose, join::{self, TableLookup}, operator,
    origin::{self, Guarantee, Written},
    shared::SharedExprs,
    sink::QuerySink,
    status::{ErrorKind, ProcessingError},
    two_sources::{self, TwoSources},
    pair_join::{PairJoined, PairJoiner},
};
use crate::{
    connectors::{source::Source, kafka::{
        KafkaCluster,
        delivery::BatchDeliveries,
        offsets::{Checkpoint, IdleAdvance, OffsetStore, OutputPositions, PartitionOffsets},
    }},
    error::{Result, SluiceError, panic_message},
    format::{DecodedBatch, RawRecord, RecordDecoder},
    planner::ContinuousPlan,
};

const MAX_BATCH: usize = 8192;
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How often a scan looks for partitions added to its source.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);
/// Batches whose output may be waiting for delivery reports at once. One: librdkafka's
/// idempotent producer sends one request per partition at a time, and while records of a next
/// batch wait behind it past `linger.ms` its broker thread polls without sleeping — on a slow
/// broker, most of the server's CPU. The next batch is read and evaluated once this one landed.
const MAX_IN_FLIGHT: usize = 1;
const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// A failing scan (Kafka unreachable, say) retries after this, doubling up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a query leaving, or the scan stopping, waits for output still on its way to Kafka.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// How long a commit of positions may wait for Kafka before it is retried later.
const COMMIT_LIMIT: Duration = Duration::from_secs(10);

/// A query running inside a scan.
pub struct ScanQuery {
    id: String,
    plan: ContinuousPlan,
    sink: QuerySink,
    status: Arc<QueryStatus>,
    /// Past the last record whose output is in Kafka: what is committed.
    next: PartitionOffsets,
    /// Past the last record evaluated, whose output may still be in flight.
    sent: PartitionOffsets,
    /// For a pull query over a stream: the log ends when it started; it completes there.
    until: Option<PartitionOffsets>,
    persistent: bool,
    /// Persistent queries only: what the query promises about its output.
    guarantee: Option<Guarantee>,
    /// Where output of input past `next` may start (exactly once), `None` when unknown.
    output: Option<OutputPositions>,
    /// Input past `next` whose output a read-back found already written: skipped.
    written: Written,
    /// A table-table join's keys with a row written on the replay of input whose output was
    /// partly written: their rows are written from then on, whatever was.
    diverged: HashSet<String>,
    /// False until the query's output is read back after a (re)start; it processes nothing
    /// before.
    restored: bool,
    emitted: u64,
    dirty: bool,
    /// With `GROUP BY`: the groups and their accumulators.
    aggregator: Option<Aggregator>,
    /// A stateful query's: where the input its state is rebuilt from starts (committed with
    /// each checkpoint).
    replay_from: Option<PartitionOffsets>,
    /// A stateful query's: input before these offsets only rebuilds state; its output is in
    /// Kafka already.
    replay_until: PartitionOffsets,
    /// With `JOIN`: the tables each batch is joined with, in the plan's order.
    lookups: Vec<TableLookup>,
    /// With a stream-stream or table-table join: both sources' rows it keeps.
    pair_joiner: Option<PairJoiner>,
    /// A table-table join's: the output keys holding a row. A row its filter drops deletes its
    /// key only if the key is there, as Kafka Streams' table filter does.
    present: Option<HashSet<String>>,
    /// An `EMIT FINAL` windowed aggregation's wall-clock advances of stream time.
    idle: Option<IdleClose>,
}

/// How a scan decodes what it reads: one source's records, or two sources' side by side.
pub enum ScanDecoder {
    One(RecordDecoder),
    Two(TwoSources),
}

impl ScanDecoder {
    /// The decoder of what `plan` reads.
    pub fn for_plan(plan: &ContinuousPlan) -> Result<Self> {
        Ok(match plan.pair_join() {
            Some(pair) => ScanDecoder::Two(TwoSources::new(&plan.source, &pair.right, pair.schema.clone())?),
            None => ScanDecoder::One(RecordDecoder::new(&plan.source)?),
        })
    }

    fn decode(&self, records: &[RawRecord<'_>]) -> Result<DecodedBatch> {
        match self {
            ScanDecoder::One(decoder) => decoder.decode(records),
            ScanDecoder::Two(decoder) => decoder.decode(records),
        }
    }

    /// The topic a record was read from, and the record with its partition there.
    fn locate<'a, 'r>(&'a self, topic: &'a str, record: &RawRecord<'r>) -> (&'a str, RawRecord<'r>) {
        match self {
            ScanDecoder::One(_) => (topic, *record),
            ScanDecoder::Two(decoder) => decoder.locate(record),
        }
    }

    fn width(&self) -> usize {
        match self {
            ScanDecoder::One(decoder) => decoder.schema().fields().len(),
            ScanDecoder::Two(decoder) => decoder.schema().fields().len(),
        }
    }
}

/// The rows to join: those eligible that have a value (all when `None`).
fn active_rows(eligible: Option<&BooleanArray>, no_value: Option<&BooleanArray>) -> Result<Option<BooleanArray>> {
    Ok(match (eligible, no_value) {
        (Some(eligible), Some(no_value)) => Some(and(eligible, &not(no_value)?)?),
        (Some(eligible), None) => Some(eligible.clone()),
        (None, Some(no_value)) => Some(not(no_value)?),
        (None, None) => None,
    })
}

fn pair_joiner(plan: &ContinuousPlan) -> Result<Option<PairJoiner>> {
    plan.pair_join().map(PairJoiner::new).transpose()
}

fn present_keys(plan: &ContinuousPlan) -> Option<HashSet<String>> {
    plan.pair_join().filter(|p| p.within.is_none()).map(|_| HashSet::new())
}

/// How a persistent query's progress survives a restart.
pub struct Durability {
    pub guarantee: Guarantee,
    /// From its checkpoint: where its output past the checkpoint may start.
    pub output: Option<OutputPositions>,
    /// A stateful query's: where the input its state is rebuilt from starts. The query reads
    /// from there and updates its state with what it reads, but emits nothing for input before
    /// its checkpoint: that output is already in Kafka.
    pub replay_from: Option<PartitionOffsets>,
    /// From its checkpoint: the wall-clock advances of its stream time a replay repeats.
    pub idle: Vec<IdleAdvance>,
}

impl ScanQuery {
    /// Makes the query complete once it has read every partition up to `until` (exclusive).
    pub fn until(mut self, until: PartitionOffsets) -> Self {
        self.until = Some(until);
        self
    }

    /// Joins every batch with `lookups`' tables before the query evaluates it.
    pub fn with_lookups(mut self, lookups: Vec<TableLookup>) -> Self {
        self.lookups = lookups;
        self
    }

    /// Whether a bounded query has read everything it was to read.
    fn is_complete(&self) -> bool {
        self.until.as_ref().is_some_and(|until| {
            until
                .iter()
                .all(|(partition, end)| self.next.get(partition).copied().unwrap_or(0) >= *end)
        })
    }

    /// Whether the query wants every record of a batch spanning `span` (per partition, its
    /// first and last offset): the common case, decided without looking at each record.
    fn wants_all(&self, span: &BTreeMap<i32, (i64, i64)>) -> bool {
        self.until.is_none()
            && (self.stateful() || self.written.is_empty())
            && span
                .iter()
                .all(|(partition, (first, _))| self.sent.get(partition).copied().unwrap_or(0) <= *first)
    }

    fn wants(&self, record: &RawRecord<'_>) -> bool {
        record.offset >= self.sent.get(&record.partition).copied().unwrap_or(0)
            && (self.stateful() || !self.written.contains(record.partition, record.offset))
            && self
                .until
                .as_ref()
                .is_none_or(|until| record.offset < until.get(&record.partition).copied().unwrap_or(0))
    }

    pub fn new(
        id: &str,
        plan: ContinuousPlan,
        sink: QuerySink,
        status: Arc<QueryStatus>,
        start: PartitionOffsets,
        durability: Option<Durability>,
    ) -> Result<Self> {
        let guarantee = durability.as_ref().map(|d| d.guarantee);
        let aggregator = Aggregator::for_plan(&plan)?;
        let pair_joiner = pair_joiner(&plan)?;
        let present = present_keys(&plan);
        // What is before the start is already done: output in Kafka, or deliberately skipped.
        status.progress.advance(&start);
        sink.progress(&start);
        let replay_from = durability.as_ref().and_then(|d| d.replay_from.clone());
        let closes_windows = plan.aggregation.as_ref().is_some_and(|a| a.emit_final && a.window.is_some());
        let idle = plan
            .idle_close
            .filter(|_| closes_windows)
            .map(|after| IdleClose::new(after, durability.as_ref().map(|d| d.idle.clone()).unwrap_or_default()));
        let sent = replay_from.clone().unwrap_or_else(|| start.clone());
        let replay_until = if replay_from.is_some() { start.clone() } else { PartitionOffsets::new() };
        Ok(Self {
            id: id.to_string(),
            plan,
            sink,
            status,
            sent,
            next: start,
            until: None,
            persistent: durability.is_some(),
            restored: guarantee != Some(Guarantee::ExactlyOnce),
            guarantee,
            output: durability.and_then(|d| d.output),
            written: Written::default(),
            diverged: HashSet::new(),
            emitted: 0,
            dirty: false,
            aggregator,
            replay_from,
            replay_until,
            lookups: Vec::new(),
            present,
            pair_joiner,
            idle,
        })
    }

    /// Whether the query keeps state it rebuilds from its input.
    fn stateful(&self) -> bool {
        self.replay_from.is_some()
    }

    /// Whether `record` is before the checkpoint of a stateful query being rebuilt: everything
    /// its state showed up to there is in Kafka already.
    fn replayed(&self, record: &RawRecord<'_>) -> bool {
        record.offset < self.replay_until.get(&record.partition).copied().unwrap_or(0)
    }

    fn exactly_once(&self) -> bool {
        self.guarantee == Some(Guarantee::ExactlyOnce)
    }

    /// Whether a stateful query is still rebuilding its state from input already processed.
    fn replaying(&self) -> bool {
        self.replay_until.iter().any(|(p, until)| self.sent.get(p).copied().unwrap_or(0) < *until)
    }

    /// Each row's floor of stream time from the idle advances a replay repeats (none once
    /// stream time has passed them all): `rows` maps rows to `records`.
    fn floors(&self, records: &[RawRecord<'_>], rows: &[usize]) -> Vec<i64> {
        match (&self.idle, &self.aggregator) {
            (Some(idle), Some(aggregator))
                if idle.settled().last().is_some_and(|a| aggregator.stream_time().is_none_or(|t| t < a.stream_time)) =>
            {
                rows.iter().map(|r| idle.floor(records[*r].partition, records[*r].offset)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Repeats the idle advances made when the input stood where the query has now read to;
    /// their output is in Kafka, so what they emit is dropped.
    fn repeat_idle_advances(&mut self) -> Result<()> {
        let (Some(idle), Some(aggregator)) = (&self.idle, self.aggregator.as_mut()) else { return Ok(()) };
        if let Some(stream_time) = idle.reached(&self.sent).filter(|t| aggregator.stream_time().is_none_or(|s| s < *t)) {
            aggregator.advance(stream_time)?;
        }
        Ok(())
    }

    /// Records where a settled batch's output landed, for the next checkpoint.
    fn note_written(&mut self, written: &HashMap<String, BTreeMap<i32, i64>>) {
        let Some(output) = self.output.as_mut() else { return };
        for (topic, partitions) in written {
            if !self.sink.writes_to(topic) {
                continue;
            }
            let known = output.entry(topic.clone()).or_default();
            for (partition, end) in partitions {
                let position = known.entry(*partition).or_insert(*end);
                *position = (*position).max(*end);
            }
        }
    }
}

/// A batch whose output is on its way to Kafka, and where each query stands once it is there.
struct InFlight {
    deliveries: Arc<BatchDeliveries>,
    positions: Vec<(String, PartitionOffsets)>,
    /// The idle advances of stream time whose output the batch is.
    advances: Vec<(String, IdleAdvance)>,
    /// When the batch was fetched: its output settling gives each query's latency.
    fetched_at: Instant,
}

enum Control {
    Add(Box<ScanQuery>),
    /// The query leaves; the sender hears once its positions are committed.
    Remove(String, mpsc::Sender<()>),
    Stop,
}

/// The handle of a scan's thread.
pub struct ScanHandle {
    control: mpsc::Sender<Control>,
    alive: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScanHandle {
    /// Starts a scan of `topic` reading `source`; queries join it with [`ScanHandle::add`].
    /// `offsets` keeps persistent queries' checkpoints (push queries have none).
    pub fn spawn(
        topic: &str,
        decoder: ScanDecoder,
        source: Box<dyn Source>,
        cluster: Arc<KafkaCluster>,
        offsets: Option<Arc<OffsetStore>>,
        runtime: Handle,
    ) -> Result<ScanHandle> {
        let (control, receiver) = mpsc::channel();
        let alive = Arc::new(AtomicBool::new(true));
        let scan = Scan {
            topic: topic.to_string(),
            decoder,
            source,
            offsets,
            runtime,
            cluster,
            queries: Vec::new(),
            in_flight: VecDeque::new(),
            draining: Vec::new(),
            shared: SharedExprs::default(),
            filters: Vec::new(),
            control: receiver,
            last_commit: Instant::now(),
            last_discovery: None,
            reassign: false,
            backoff: MIN_BACKOFF,
        };
        let flag = alive.clone();
        let thread = std::thread::Builder::new()
            .name(format!("scan-{topic}"))
            .spawn(move || {
                scan.run();
                flag.store(false, Ordering::SeqCst);
            })?;
        Ok(ScanHandle {
            control,
            alive,
            thread: Some(thread),
        })
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    pub fn add(&self, query: ScanQuery) {
        let _ = self.control.send(Control::Add(Box::new(query)));
    }

    /// Takes query `id` out of the scan; the receiver hears once it is out, its positions
    /// committed (or the scan has stopped).
    pub fn remove(&self, id: &str) -> mpsc::Receiver<()> {
        let (done, left) = mpsc::channel();
        let _ = self.control.send(Control::Remove(id.to_string(), done));
        left
    }

    /// Asks the scan to stop after its current batch, committing what it processed.
    pub fn request_stop(&self) {
        let _ = self.control.send(Control::Stop);
    }

    /// Stops the scan and waits until it has.
    pub fn stop(mut self) {
        self.request_stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ScanHandle {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Stop);
    }
}

struct Scan {
    topic: String,
    decoder: ScanDecoder,
    source: Box<dyn Source>,
    offsets: Option<Arc<OffsetStore>>,
    runtime: Handle,
    cluster: Arc<KafkaCluster>,
    queries: Vec<ScanQuery>,
    in_flight: VecDeque<InFlight>,
    /// Deliveries of batches given up after a failure; exactly-once queries read their output
    /// back only once these have all settled.
    draining: Vec<Arc<BatchDeliveries>>,
    /// Function calls the queries' filters share, and each query's filter rewritten to read them.
    shared: SharedExprs,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    control: mpsc::Receiver<Control>,
    last_commit: Instant,
    /// When the source's partitions were last counted; `None` when due now.
    last_discovery: Option<Instant>,
    /// The source must be pointed at the queries' positions again before the next fetch.
    reassign: bool,
    /// How long the next failure waits before the scan starts over.
    backoff: Duration,
}

impl Scan {
    /// Serves the scan until it is stopped. A panic anywhere in it is caught: its queries show
    /// ERROR with the cause, and after a backoff the scan starts over from their committed
    /// positions, as after any other failure.
    fn run(mut self) {
        loop {
            match panic::catch_unwind(AssertUnwindSafe(|| self.serve())) {
                Ok(()) => return,
                Err(panic) => {
                    let error = SluiceError::Internal(format!("the query task panicked: {}", panic_message(&*panic)));
                    if self.recover(&error) {
                        return;
                    }
                }
            }
        }
    }

    /// Reads, evaluates and writes until a `Stop` arrives.
    fn serve(&mut self) {
        loop {
            let message = if self.queries.is_empty() {
                self.control.recv_timeout(POLL_WAIT).ok()
            } else {
                self.control.try_recv().ok()
            };
            if let Some(message) = message {
                if self.apply(message) {
                    return;
                }
                continue;
            }
            if self.queries.is_empty() {
                continue;
            }
            self.discover();
            let outcome = self
                .restore()
                .and_then(|()| if self.reassign { self.assign() } else { Ok(()) })
                .and_then(|()| {
                    self.reassign = false;
                    if self.in_flight.len() < MAX_IN_FLIGHT {
                        self.process_batch()?;
                        self.advance_idle()?;
                    }
                    self.settle(MAX_IN_FLIGHT - 1, POLL_WAIT)
                });
            match outcome {
                Ok(()) => self.backoff = MIN_BACKOFF,
                Err(e) => {
                    if self.recover(&e) {
                        return;
                    }
                }
            }
            self.commit(false);
            for query in &self.queries {
                if query.is_complete() {
                    query.status.set_state(QueryState::Terminated);
                }
            }
            if self.queries.iter().any(|q| q.status.state() == QueryState::Terminated) {
                if let Err(e) = self.settle(0, SETTLE_LIMIT) {
                    self.rewind(&e);
                }
                self.commit(true);
                self.queries.retain(|q| q.status.state() != QueryState::Terminated);
                self.share_expressions();
            }
        }
    }

    /// Applies a control message; true when the scan is to stop. What is still in flight when
    /// a query leaves or the scan stops gets [`SETTLE_LIMIT`] to reach Kafka; what does not is
    /// left uncommitted, to be redone when the query next starts.
    fn apply(&mut self, message: Control) -> bool {
        if let Err(e) = self.settle(0, SETTLE_LIMIT) {
            self.rewind(&e);
        }
        match message {
            Control::Add(query) => {
                self.queries.push(*query);
                self.last_discovery = None;
            }
            Control::Remove(id, done) => {
                self.commit(true);
                self.queries.retain(|q| q.id != id);
                let _ = done.send(());
            }
            Control::Stop => {
                self.commit(true);
                return true;
            }
        }
        self.reassign = true;
        self.share_expressions();
        false
    }

    /// After a failure: every query back to its committed position and shown in ERROR, then a
    /// backoff during which control messages are still served. True when told to stop.
    fn recover(&mut self, error: &SluiceError) -> bool {
        self.rewind(error);
        warn!(topic = %self.topic, error = %error, retry_in = ?self.backoff, "scan failed; retrying");
        let until = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.reassign = true;
        while let Some(wait) = until.checked_duration_since(Instant::now()) {
            match self.control.recv_timeout(wait) {
                Ok(message) => {
                    if self.apply(message) {
                        return true;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return true,
            }
        }
        false
    }

    /// Moves positions for the batches whose output is all in Kafka, in batch order, first
    /// waiting up to `limit` for the oldest ones until at most `keep` remain in flight.
    fn settle(&mut self, keep: usize, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while let Some(front) = self.in_flight.front() {
            if self.in_flight.len() <= keep && !front.deliveries.is_settled() {
                break;
            }
            if !front.deliveries.wait_until(deadline)? {
                break;
            }
            let settled = self.in_flight.pop_front().expect("the front batch");
            let written = settled.deliveries.written();
            for (id, advance) in settled.advances {
                if let Some(idle) = self.queries.iter_mut().find(|q| q.id == id).and_then(|q| q.idle.as_mut()) {
                    idle.settle(advance);
                }
            }
            for (id, position) in settled.positions {
                if let Some(query) = self.queries.iter_mut().find(|q| q.id == id) {
                    query.status.latency.observe(settled.fetched_at.elapsed());
                    query.status.progress.advance(&position);
                    for (partition, offset) in position {
                        let next = query.next.entry(partition).or_insert(offset);
                        *next = (*next).max(offset);
                    }
                    query.note_written(&written);
                    query.dirty = true;
                }
            }
        }
        Ok(())
    }

    /// After a failure: forgets the batches in flight and puts every query back at its committed
    /// position, so what was not confirmed is read and written again rather than lost.
    fn rewind(&mut self, error: &SluiceError) {
        self.draining.extend(self.in_flight.drain(..).map(|b| b.deliveries));
        for query in &mut self.queries {
            query.sent = query.next.clone();
            if let Some(replay_from) = &query.replay_from {
                // The state holds input past the checkpoint: rebuild it from the start.
                query.sent = replay_from.clone();
                query.replay_until = query.next.clone();
                match Aggregator::for_plan(&query.plan) {
                    Ok(fresh) => query.aggregator = fresh,
                    Err(e) => warn!(query = %query.id, error = %e, "could not reset the aggregation"),
                }
                query.present = present_keys(&query.plan);
                match pair_joiner(&query.plan) {
                    Ok(fresh) => query.pair_joiner = fresh,
                    Err(e) => warn!(query = %query.id, error = %e, "could not reset the join"),
                }
            }
            query.written = Written::default();
            if let Some(idle) = query.idle.as_mut() {
                idle.took_input();
            }
            query.restored = !query.exactly_once();
            query.status.set_state(QueryState::Error(error.to_string()));
        }
    }

    /// Reads back the output of every exactly-once query that has not been since it (re)started,
    /// once nothing it sent before is still on its way to Kafka.
    fn restore(&mut self) -> Result<()> {
        if self.queries.iter().all(|q| q.restored) {
            return Ok(());
        }
        self.draining.retain(|d| !d.is_settled());
        if !self.draining.is_empty() {
            return Err(SluiceError::Execution(
                "waiting for output sent before the failure to reach Kafka".into(),
            ));
        }
        for query in self.queries.iter_mut().filter(|q| !q.restored) {
            let topics = query.sink.output_topics(&self.cluster)?;
            let found = origin::read_back(&self.cluster, &query.id, &query.next, query.output.as_ref(), &topics)?;
            // A checkpoint without output positions (from before they were kept) gets them as
            // soon as nothing past its input is in the output: read-backs then start there.
            if query.output.is_none() && found.written.is_empty() {
                query.output = Some(found.ends);
            }
            query.written = found.written;
            query.restored = true;
            self.reassign = true;
        }
        Ok(())
    }

    fn share_expressions(&mut self) {
        let plans: Vec<&ContinuousPlan> = self.queries.iter().map(|q| &q.plan).collect();
        let (shared, filters) = SharedExprs::plan(&plans, self.decoder.width());
        self.shared = shared;
        self.filters = filters;
    }

    /// Points the source at the smallest next offset of any query, per partition.
    fn assign(&mut self) -> Result<()> {
        let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
        for query in &self.queries {
            for (partition, offset) in &query.sent {
                positions
                    .entry(*partition)
                    .and_modify(|o| *o = (*o).min(*offset))
                    .or_insert(*offset);
            }
        }
        self.source.assign(&positions)
    }

    /// Looks for partitions added to the source, at most every [`DISCOVERY_INTERVAL`] and at
    /// once after a query joined; every unbounded query reads a partition it has no position in
    /// from the partition's earliest offset. A look that fails (a broker too busy to answer in
    /// time, say) is only logged and tried again at the next interval: it stops no query.
    fn discover(&mut self) {
        if self.last_discovery.is_some_and(|at| at.elapsed() < DISCOVERY_INTERVAL) {
            return;
        }
        self.last_discovery = Some(Instant::now());
        if let Err(e) = self.add_new_partitions() {
            warn!(topic = %self.topic, error = %e, "could not look for new partitions; will look again");
        }
    }

    fn add_new_partitions(&mut self) -> Result<()> {
        for partition in self.source.partitions()? {
            let missing = self
                .queries
                .iter()
                .any(|q| q.until.is_none() && !q.sent.contains_key(&partition));
            if !missing {
                continue;
            }
            let earliest = self.source.earliest(partition)?;
            for query in self.queries.iter_mut().filter(|q| q.until.is_none()) {
                if !query.sent.contains_key(&partition) {
                    info!(topic = %self.topic, query = %query.id, partition, "reading a new partition from its start");
                    query.sent.insert(partition, earliest);
                    query.next.insert(partition, earliest);
                    if let Some(replay_from) = query.replay_from.as_mut() {
                        replay_from.insert(partition, earliest);
                    }
                    query.dirty = true;
                }
            }
            self.reassign = true;
        }
        Ok(())
    }

    fn process_batch(&mut self) -> Result<()> {
        let fetched = self.source.fetch(MAX_BATCH, POLL_WAIT)?;
        let fetched_at = Instant::now();
        let records: Vec<RawRecord> = fetched.records();
        if records.is_empty() {
            drop(records);
            drop(fetched);
            let cause = self.source.take_problem();
            let failing = self.queries.iter().any(|q| matches!(q.status.state(), QueryState::Error(_)));
            if cause.is_some() || failing {
                match self.source.probe() {
                    Err(e) => {
                        return Err(match cause {
                            Some(cause) => SluiceError::Execution(format!("cannot reach Kafka: {cause}")),
                            None => e,
                        });
                    }
                    Ok(()) => self.mark_running(),
                }
            }
            return Ok(());
        }
        crate::fault::panic_if_injected(&records);
        let mut span: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for record in &records {
            span.entry(record.partition)
                .and_modify(|(first, last)| {
                    *first = (*first).min(record.offset);
                    *last = (*last).max(record.offset);
                })
                .or_insert((record.offset, record.offset));
        }
        let decoded = self.decoder.decode(&records)?;
        let no_value = (!decoded.no_value.is_empty()).then(|| BooleanArray::from(decoded.no_value.clone()));
        let shared = (!self.shared.is_empty())
            .then(|| self.shared.evaluate(&decoded.batch))
            .transpose()?;
        let batch = shared.as_ref().map_or(&decoded.batch, |s| &s.batch);
        let deliveries = Arc::new(BatchDeliveries::default());
        let mut positions = Vec::with_capacity(self.queries.len());
        let topic = self.topic.clone();
        for (index, query) in self.queries.iter_mut().enumerate() {
            if !query.restored || query.status.state() == QueryState::Terminated {
                continue;
            }
            let eligible_records: Option<Vec<bool>> =
                (!query.wants_all(&span)).then(|| records.iter().map(|r| query.wants(r)).collect());
            let eligible = |record: usize| eligible_records.as_ref().is_none_or(|e| e[record]);
            let count = eligible_records
                .as_ref()
                .map_or(records.len(), |e| e.iter().filter(|e| **e).count());
            if count == 0 {
                continue;
            }
            if let Some(idle) = query.idle.as_mut() {
                idle.took_input();
            }
            let mut eligible_rows = (count < records.len())
                .then(|| BooleanArray::from_iter(decoded.rows.iter().map(|r| Some(eligible(*r)))));
            // A stream-stream or table-table join first pairs the records of both sources; its
            // rows go on. A stream record without value joins nothing; a table's is a tombstone.
            let paired: Option<PairJoined> = match (query.plan.pair_join(), query.pair_joiner.as_mut()) {
                (Some(pair), Some(joiner)) => {
                    let tables = pair.within.is_none();
                    let active = active_rows(eligible_rows.as_ref(), if tables { None } else { no_value.as_ref() })?;
                    let right: Vec<bool> = decoded.rows.iter().map(|r| two_sources::is_right(records[*r].partition)).collect();
                    let positions: Vec<(i32, i64)> = decoded.rows.iter().map(|r| (records[*r].partition, records[*r].offset)).collect();
                    let joined = joiner.process(pair, &decoded.batch, active.as_ref(), &right, &positions, no_value.as_ref())?;
                    eligible_rows = None;
                    Some(joined)
                }
                _ => None,
            };
            let tombstones = paired.as_ref().filter(|w| !w.tombstones.is_empty()).map(|w| BooleanArray::from(w.tombstones.clone()));
            // The record each row of what the query evaluates came from.
            let row_records: Vec<usize> = match &paired {
                Some(w) => w.rows.iter().map(|r| decoded.rows[*r]).collect(),
                None => decoded.rows.clone(),
            };
            let stream = paired.as_ref().map_or(&decoded.batch, |w| &w.batch);
            let joined = match &query.plan.join {
                Some(plan) if !plan.steps.is_empty() => {
                    // A stream record without value joins nothing (ksqlDB drops it).
                    let no_value = if paired.is_some() { None } else { no_value.as_ref() };
                    let active = active_rows(eligible_rows.as_ref(), no_value)?;
                    let joined = join::join_all(plan, &query.lookups, stream, active)?;
                    eligible_rows = Some(joined.joins.clone());
                    Some(joined)
                }
                _ => None,
            };
            let input = joined.as_ref().map(|j| &j.batch).or(paired.as_ref().map(|w| &w.batch)).unwrap_or(batch);
            let filter = self.filters.get(index).and_then(Option::as_ref);
            let no_value = if paired.is_some() { tombstones.as_ref() } else { no_value.as_ref() };
            let floors = query.floors(&records, &row_records);
            let aggregator = query.aggregator.as_mut().map(|a| (a, floors.as_slice()));
            let evaluated = operator::evaluate(&query.plan, filter, input, eligible_rows.as_ref(), no_value, aggregator, decoded.canonical)?;
            let shared_errors = shared.iter().flat_map(|s| {
                s.errors
                    .iter()
                    .zip(&self.shared.users)
                    .filter(|(_, users)| users.contains(&index))
                    .flat_map(|(errors, _)| errors.iter())
            });
            let failed = decoded
                .errors
                .iter()
                .map(|(i, m)| (ErrorKind::Deserialization, *i, m))
                .chain(
                    paired
                        .iter()
                        .flat_map(|w| w.errors.iter())
                        .map(|(row, m)| (ErrorKind::RecordProcessing, decoded.rows[*row], m)),
                )
                .chain(
                    evaluated
                        .errors
                        .iter()
                        .chain(shared_errors)
                        .chain(joined.iter().flat_map(|j| j.errors.iter()))
                        .map(|(row, m)| (ErrorKind::RecordProcessing, row_records[*row], m)),
                )
                .filter(|(_, i, _)| eligible(*i));
            for (kind, index, message) in failed {
                let (topic, record) = self.decoder.locate(&topic, &records[index]);
                record_error(&query.status, kind, message, topic, &record);
            }
            let mut rows = evaluated.output_rows(&records, &row_records);
            if let Some(stamp) = &query.plan.output_timestamp {
                for (record, message) in operator::stamp_rows(stamp, &evaluated.columns, &mut rows) {
                    let (topic, record) = self.decoder.locate(&topic, record);
                    record_error(&query.status, ErrorKind::RecordProcessing, &message, topic, &record);
                }
            }
            if let Some(paired) = &paired {
                for row in &mut rows {
                    let joined_row = evaluated.rows[row.row];
                    row.timestamp = row.timestamp.or(Some(paired.timestamps[joined_row]));
                    row.identity = Some(paired.identities[joined_row]);
                }
            }
            if let (Some(present), Some(keys), Some(paired)) = (query.present.as_mut(), evaluated.keys.first(), &paired) {
                // The join's own tombstones are written; a row only the filter drops deletes its
                // key if the key holds a row.
                rows.retain(|row| {
                    let key = array_value_to_string(keys, row.row).unwrap_or_default();
                    let joined_row = evaluated.rows[row.row];
                    if !row.tombstone {
                        present.insert(key);
                        true
                    } else {
                        present.remove(&key) || paired.tombstones.get(joined_row).copied().unwrap_or(false)
                    }
                });
            }
            if query.stateful() {
                // A row is skipped only when every record its state took in is before the
                // checkpoint: partitions interleave differently on a replay, so a row's last
                // record may be replayed while others it shows were never in any output. After
                // the checkpoint an update may be written twice, never lost; a joined row of two
                // streams, never, when exactly once: the rows already written are known by the
                // records they show.
                let replayed = |row: &usize| query.replayed(&records[row_records[*row]]);
                rows.retain(|row| !evaluated.contributors.get(row.row).is_some_and(|c| c.iter().all(replayed)));
                let before = |(partition, offset): (i32, i64)| offset < query.replay_until.get(&partition).copied().unwrap_or(0);
                // A replay may read a table-table join's topics in another order than the run
                // that wrote, and so make a row that run did not: its key's rows are written
                // from then on, so the key ends as its input says, though it may repeat a row.
                let tables_join = query.plan.pair_join().is_some_and(|p| p.within.is_none() && !p.foreign);
                let (written, diverged) = (&query.written, &mut query.diverged);
                rows.retain(|row| match row.identity {
                    Some((first, second)) if evaluated.contributors.is_empty() => {
                        if before(first) && second.is_none_or(before) {
                            return false;
                        }
                        if tables_join && !written.is_empty() {
                            let key = evaluated.keys.first().and_then(|k| array_value_to_string(k, row.row).ok()).unwrap_or_default();
                            if diverged.contains(&key) {
                                return true;
                            }
                            if !written.contains_row((first, second)) {
                                diverged.insert(key);
                                return true;
                            }
                            return false;
                        }
                        !written.contains_row((first, second))
                    }
                    _ => true,
                });
            }
            rows.retain(|row| query.sink.shows(row));
            if let Some(limit) = query.plan.limit {
                rows.truncate(limit.saturating_sub(query.emitted) as usize);
            }
            let origin = query.exactly_once().then_some(query.id.as_str());
            let unwritten = match query.sink.write(&rows, &evaluated.columns, (&evaluated.keys, &evaluated.key_names, evaluated.keys_read_again), evaluated.forwarded, origin, &deliveries) {
                Ok(unwritten) => unwritten,
                Err(SluiceError::Execution(_)) if !query.persistent => {
                    query.status.set_state(QueryState::Terminated);
                    continue;
                }
                Err(e) => return Err(e),
            };
            for (row, kind, message) in &unwritten {
                let (topic, record) = self.decoder.locate(&topic, rows[*row].record);
                record_error(&query.status, *kind, message, topic, &record);
            }
            let written = rows.len() - unwritten.len();
            query.emitted += written as u64;
            query.status.records_in.fetch_add(count as u64, Ordering::Relaxed);
            query.status.records_out.fetch_add(written as u64, Ordering::Relaxed);
            match &eligible_records {
                None => {
                    for (partition, (_, last)) in &span {
                        query.sent.insert(*partition, last + 1);
                    }
                }
                Some(eligible_records) => {
                    for (record, eligible) in records.iter().zip(eligible_records) {
                        if *eligible {
                            query.sent.insert(record.partition, record.offset + 1);
                        }
                    }
                }
            }
            if !query.written.is_empty() {
                query.written.forget_before(&query.sent);
                if query.written.is_empty() {
                    query.diverged.clear();
                }
            }
            query.repeat_idle_advances()?;
            query.sink.progress(&query.sent);
            if let (Some(kept), Some(replay_from)) = (query.pair_joiner.as_ref().and_then(PairJoiner::earliest_kept), query.replay_from.as_mut()) {
                // A window join's state is rebuilt from its oldest record still kept.
                for (partition, next) in &query.next {
                    replay_from.insert(*partition, kept.get(partition).map_or(*next, |k| (*k).min(*next)));
                }
            }
            positions.push((query.id.clone(), query.sent.clone()));
            if query.plan.limit.is_some_and(|l| query.emitted >= l) {
                query.status.set_state(QueryState::Terminated);
            }
        }
        drop(records);
        drop(fetched);
        self.in_flight.push_back(InFlight { deliveries, positions, advances: Vec::new(), fetched_at });
        self.mark_running();
        Ok(())
    }

    /// Moves on, by the wall clock, the stream time of every query whose input has been idle
    /// long enough when that closes a window, and writes the windows' rows (see
    /// [`super::idle`]). A query still rebuilding its state only repeats recorded advances.
    fn advance_idle(&mut self) -> Result<()> {
        let deliveries = Arc::new(BatchDeliveries::default());
        let mut positions = Vec::new();
        let mut advances = Vec::new();
        for query in &mut self.queries {
            query.repeat_idle_advances()?;
            if !query.restored || query.replaying() || query.status.state() == QueryState::Terminated {
                continue;
            }
            let origin = query.exactly_once().then(|| query.id.clone());
            let (Some(idle), Some(aggregator)) = (query.idle.as_mut(), query.aggregator.as_mut()) else { continue };
            let Some(stream_time) = aggregator.stream_time() else { continue };
            let Some(target) = idle.due(stream_time).filter(|t| aggregator.closes_by(*t)) else { continue };
            let evaluated = operator::advance(&query.plan, aggregator, target)?;
            // The rows show no record: they are written as from the last one read.
            let (partition, offset) = query.sent.iter().next_back().map_or((0, -1), |(p, next)| (*p, next - 1));
            let records = [RawRecord { partition, offset, timestamp: target, key: None, value: None, headers: None }];
            let rows = evaluated.output_rows(&records, &[0]);
            let keys = (evaluated.keys.as_slice(), evaluated.key_names.as_slice(), evaluated.keys_read_again);
            let unwritten = query.sink.write(&rows, &evaluated.columns, keys, evaluated.forwarded, origin.as_deref(), &deliveries)?;
            for (_, kind, message) in &unwritten {
                record_error(&query.status, *kind, message, &self.topic, &records[0]);
            }
            let written = rows.len() - unwritten.len();
            query.emitted += written as u64;
            query.status.records_out.fetch_add(written as u64, Ordering::Relaxed);
            positions.push((query.id.clone(), query.sent.clone()));
            advances.push((query.id.clone(), IdleAdvance { at: query.sent.clone(), stream_time: target }));
        }
        if !advances.is_empty() {
            self.in_flight.push_back(InFlight { deliveries, positions, advances, fetched_at: Instant::now() });
        }
        Ok(())
    }

    fn mark_running(&self) {
        for query in &self.queries {
            if query.status.state() != QueryState::Terminated {
                query.status.set_state(QueryState::Running);
            }
        }
    }

    /// Records the persistent queries' positions, at most every [`COMMIT_INTERVAL`] unless forced.
    fn commit(&mut self, force: bool) {
        if !force && self.last_commit.elapsed() < COMMIT_INTERVAL {
            return;
        }
        self.last_commit = Instant::now();
        let Some(offsets) = &self.offsets else { return };
        let dirty: Vec<&mut ScanQuery> = self.queries.iter_mut().filter(|q| q.persistent && q.dirty).collect();
        if dirty.is_empty() {
            return;
        }
        let commits = dirty.into_iter().map(|query| async move {
            let checkpoint = Checkpoint {
                input: query.next.clone(),
                output: query.output.clone(),
                start: query.replay_from.clone(),
                idle: query.idle.as_ref().map(|i| i.settled().to_vec()).unwrap_or_default(),
            };
            match tokio::time::timeout(COMMIT_LIMIT, offsets.commit(&query.id, &checkpoint)).await {
                Ok(Ok(())) => query.dirty = false,
                Ok(Err(e)) => warn!(query = %query.id, error = %e, "could not commit offsets; will retry"),
                Err(_) => warn!(query = %query.id, "committing offsets timed out; will retry"),
            }
        });
        self.runtime.block_on(futures::future::join_all(commits));
    }
}

/// Counts a record a query skipped and writes it to the processing log.
fn record_error(status: &QueryStatus, kind: ErrorKind, message: &str, topic: &str, record: &RawRecord<'_>) {
    let error = ProcessingError {
        kind,
        message: message.to_string(),
        topic: topic.to_string(),
        partition: record.partition,
        offset: record.offset,
    };
    status.record_error(error, record.value);
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use tokio::sync::mpsc as tokio_mpsc;

    use super::*;
    use crate::catalog::SourceDef;
    use crate::{
        catalog::Catalog,
        connectors::source::SourceBatch,
        parser::{KsqlParser, Statement},
        planner::QueryPlanner,
        runtime::{
            processing_log::ProcessingLog,
            sink::{PushRow, RowsSink},
        },
    };

    /// A log in memory: partitions of record values, which the test appends to.
    type Log = Arc<StdMutex<Vec<Vec<String>>>>;

    /// A [`Source`] over a [`Log`], standing in for a Kafka topic that gains a partition (which
    /// the embedded broker cannot do).
    struct MemorySource {
        log: Log,
        positions: BTreeMap<i32, i64>,
    }

    struct MemoryBatch(Vec<(i32, i64, String)>);

    impl SourceBatch for MemoryBatch {
        fn records(&self) -> Vec<RawRecord<'_>> {
            self.0
                .iter()
                .map(|(partition, offset, value)| RawRecord {
                    partition: *partition,
                    offset: *offset,
                    timestamp: 0,
                    key: None,
                    value: Some(value.as_bytes()),
                    headers: None,
                })
                .collect()
        }
    }

    impl Source for MemorySource {
        fn partitions(&mut self) -> Result<Vec<i32>> {
            Ok((0..self.log.lock().unwrap().len() as i32).collect())
        }

        fn earliest(&mut self, _partition: i32) -> Result<i64> {
            Ok(0)
        }

        fn assign(&mut self, positions: &BTreeMap<i32, i64>) -> Result<()> {
            self.positions = positions.clone();
            Ok(())
        }

        fn fetch(&mut self, max: usize, wait: Duration) -> Result<Box<dyn SourceBatch + '_>> {
            let mut taken = Vec::new();
            let log = self.log.lock().unwrap();
            for (partition, next) in self.positions.iter_mut() {
                let Some(records) = log.get(*partition as usize) else { continue };
                while (*next as usize) < records.len() && taken.len() < max {
                    taken.push((*partition, *next, records[*next as usize].clone()));
                    *next += 1;
                }
            }
            drop(log);
            if taken.is_empty() {
                std::thread::sleep(wait.min(Duration::from_millis(20)));
            }
            Ok(Box::new(MemoryBatch(taken)))
        }

        fn take_problem(&mut self) -> Option<String> {
            None
        }

        fn probe(&mut self) -> Result<()> {
            Ok(())
        }
    }

    async fn next(received: &mut tokio_mpsc::Receiver<PushRow>) -> String {
        let row = tokio::time::timeout(Duration::from_secs(15), received.recv()).await.unwrap().unwrap();
        String::from_utf8(row.columns).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partition_added_to_the_source_is_read_from_its_start() {
        let sql = "CREATE STREAM S (A STRING) WITH (KAFKA_TOPIC = 's', VALUE_FORMAT = 'JSON');";
        let parsed = KsqlParser::parse_one(sql).unwrap();
        let Statement::CreateSource(create) = &parsed.statement else { panic!("not a CREATE STREAM") };
        let stream = SourceDef::from_declaration(&create.name, create.columns.clone(), &create.properties, None, sql).unwrap();
        let catalog = Catalog::default();
        catalog.put_stream(stream.clone());
        let Statement::Select(select) = KsqlParser::parse_one("SELECT A FROM S EMIT CHANGES;").unwrap().statement else {
            panic!("not a SELECT")
        };
        let mut plan = QueryPlanner::plan(&catalog, &select).await.unwrap();
        plan.forwards_value = false;

        let log: Log = Arc::new(StdMutex::new(vec![vec![r#"{"A": "first"}"#.to_string()]]));
        let source = MemorySource {
            log: log.clone(),
            positions: BTreeMap::new(),
        };
        let cluster = Arc::new(KafkaCluster::connect("127.0.0.1:9").unwrap());
        let runtime = Handle::current();
        let processing_log = Arc::new(ProcessingLog::new(cluster.clone(), "test_", runtime.clone()));
        let decoder = ScanDecoder::One(RecordDecoder::new(&stream).unwrap());
        let scan = ScanHandle::spawn(&stream.topic, decoder, Box::new(source), cluster, None, runtime).unwrap();
        let (rows, mut received) = tokio_mpsc::channel(16);
        let status = Arc::new(QueryStatus::new("push", processing_log));
        let sink = QuerySink::Rows(RowsSink { sender: rows, key_outputs: Vec::new(), tombstones: false });
        let query = ScanQuery::new("push", plan, sink, status, BTreeMap::from([(0, 0)]), None).unwrap();
        scan.add(query);

        assert_eq!(next(&mut received).await, r#"["first"]"#);
        log.lock().unwrap().push(vec![r#"{"A": "in a new partition"}"#.to_string()]);
        assert_eq!(next(&mut received).await, r#"["in a new partition"]"#);
        tokio::task::spawn_blocking(move || scan.stop()).await.unwrap();
    }
}
