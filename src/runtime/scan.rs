//! A shared scan: one consumer over a source topic, one decode per record, every query attached
//! to it evaluated on the decoded batch.
//!
//! Each query keeps its own next offset per partition; the consumer reads from the smallest, and
//! a query sees a record only at or past its own offset. So a query can join or leave a running
//! scan, start earlier or later than the others, and none of them sees a record twice.
//!
//! Output is pipelined: a few batches may wait for their delivery reports while the next one is
//! read and evaluated. A query's committed position moves only when a batch is wholly in Kafka,
//! in batch order; after a failure every query goes back to its committed position.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use arrow::array::BooleanArray;
use rdkafka::{Offset, TopicPartitionList, consumer::Consumer};
use tokio::runtime::Handle;
use tracing::{debug, warn};

use datafusion::physical_expr::PhysicalExpr;

use super::{
    QueryState, QueryStatus, operator,
    shared::SharedExprs,
    sink::{OutputRow, QuerySink},
    status::ProcessingError,
};
use crate::{
    connectors::kafka::{
        KafkaCluster,
        delivery::BatchDeliveries,
        fetch::BatchConsumer,
        offsets::{OffsetStore, PartitionOffsets},
    },
    error::{Result, SluiceError},
    catalog::StreamDef,
    format::{RawRecord, RecordDecoder},
    planner::ContinuousPlan,
};

const MAX_BATCH: usize = 8192;
const POLL_WAIT: Duration = Duration::from_millis(100);
/// How long a batch keeps filling after its first record: big batches keep the cost per record
/// down, a short wait keeps latency down.
const FILL_WAIT: Duration = Duration::from_millis(5);
/// Batches whose output may be waiting for delivery reports at once.
const MAX_IN_FLIGHT: usize = 4;
const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// A failing scan (Kafka unreachable, say) retries after this, doubling up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

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
    emitted: u64,
    dirty: bool,
}

impl ScanQuery {
    /// Makes the query complete once it has read every partition up to `until` (exclusive).
    pub fn until(mut self, until: PartitionOffsets) -> Self {
        self.until = Some(until);
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
            && span
                .iter()
                .all(|(partition, (first, _))| self.sent.get(partition).copied().unwrap_or(0) <= *first)
    }

    fn wants(&self, record: &RawRecord<'_>) -> bool {
        record.offset >= self.sent.get(&record.partition).copied().unwrap_or(0)
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
        persistent: bool,
    ) -> Self {
        Self {
            id: id.to_string(),
            plan,
            sink,
            status,
            sent: start.clone(),
            next: start,
            until: None,
            persistent,
            emitted: 0,
            dirty: false,
        }
    }
}

/// A batch whose output is on its way to Kafka, and where each query stands once it is there.
struct InFlight {
    deliveries: Arc<BatchDeliveries>,
    positions: Vec<(String, PartitionOffsets)>,
}

enum Control {
    Add(Box<ScanQuery>),
    Remove(String),
    Stop,
}

/// The handle of a scan's thread.
pub struct ScanHandle {
    control: mpsc::Sender<Control>,
    alive: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ScanHandle {
    /// Starts a scan of `stream`'s topic; queries join it with [`ScanHandle::add`].
    pub fn spawn(
        stream: &StreamDef,
        cluster: Arc<KafkaCluster>,
        offsets: Arc<OffsetStore>,
        runtime: Handle,
    ) -> Result<ScanHandle> {
        let topic = stream.topic.as_str();
        let decoder = RecordDecoder::new(stream)?;
        let consumer = BatchConsumer::new(cluster.consumer_config().create()?)?;
        let (control, receiver) = mpsc::channel();
        let alive = Arc::new(AtomicBool::new(true));
        let scan = Scan {
            topic: topic.to_string(),
            decoder,
            consumer,
            offsets,
            runtime,
            queries: Vec::new(),
            in_flight: VecDeque::new(),
            shared: SharedExprs::default(),
            filters: Vec::new(),
            control: receiver,
            last_commit: Instant::now(),
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

    pub fn remove(&self, id: &str) {
        let _ = self.control.send(Control::Remove(id.to_string()));
    }

    /// Stops the scan after its current batch, committing what it processed.
    pub fn stop(mut self) {
        let _ = self.control.send(Control::Stop);
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
    decoder: RecordDecoder,
    consumer: BatchConsumer,
    offsets: Arc<OffsetStore>,
    runtime: Handle,
    queries: Vec<ScanQuery>,
    in_flight: VecDeque<InFlight>,
    /// Function calls the queries' filters share, and each query's filter rewritten to read them.
    shared: SharedExprs,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    control: mpsc::Receiver<Control>,
    last_commit: Instant,
}

impl Scan {
    fn run(mut self) {
        let mut reassign = false;
        let mut backoff = MIN_BACKOFF;
        loop {
            let wait = if self.queries.is_empty() { Some(POLL_WAIT) } else { None };
            let message = match wait {
                Some(wait) => self.control.recv_timeout(wait).ok(),
                None => self.control.try_recv().ok(),
            };
            if let Some(message) = message {
                if let Err(e) = self.settle(0) {
                    self.rewind(&e);
                }
                match message {
                    Control::Add(query) => self.queries.push(*query),
                    Control::Remove(id) => {
                        self.commit(true);
                        self.queries.retain(|q| q.id != id);
                    }
                    Control::Stop => {
                        self.commit(true);
                        return;
                    }
                }
                reassign = true;
                self.share_expressions();
                continue;
            }
            if self.queries.is_empty() {
                continue;
            }
            let outcome = if reassign { self.assign() } else { Ok(()) }.and_then(|()| {
                reassign = false;
                self.process_batch()?;
                self.settle(MAX_IN_FLIGHT)
            });
            match outcome {
                Ok(()) => backoff = MIN_BACKOFF,
                Err(e) => {
                    self.rewind(&e);
                    warn!(topic = %self.topic, error = %e, retry_in = ?backoff, "scan failed; retrying");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    reassign = true;
                }
            }
            self.commit(false);
            for query in &self.queries {
                if query.is_complete() {
                    query.status.set_state(QueryState::Terminated);
                }
            }
            if self.queries.iter().any(|q| q.status.state() == QueryState::Terminated) {
                if let Err(e) = self.settle(0) {
                    self.rewind(&e);
                    reassign = true;
                }
                self.commit(true);
                self.queries.retain(|q| q.status.state() != QueryState::Terminated);
                self.share_expressions();
            }
        }
    }

    /// Moves positions for the batches whose output is all in Kafka, in batch order, first
    /// waiting for the oldest ones until at most `keep` remain in flight.
    fn settle(&mut self, keep: usize) -> Result<()> {
        while let Some(front) = self.in_flight.front() {
            if self.in_flight.len() <= keep && !front.deliveries.is_settled() {
                break;
            }
            front.deliveries.wait()?;
            let settled = self.in_flight.pop_front().expect("the front batch");
            for (id, position) in settled.positions {
                if let Some(query) = self.queries.iter_mut().find(|q| q.id == id) {
                    query.next = position;
                    query.dirty = true;
                }
            }
        }
        Ok(())
    }

    /// After a failure: forgets the batches in flight and puts every query back at its committed
    /// position, so what was not confirmed is read and written again rather than lost.
    fn rewind(&mut self, error: &SluiceError) {
        self.in_flight.clear();
        for query in &mut self.queries {
            query.sent = query.next.clone();
            query.status.set_state(QueryState::Error(error.to_string()));
        }
    }

    fn share_expressions(&mut self) {
        let plans: Vec<&ContinuousPlan> = self.queries.iter().map(|q| &q.plan).collect();
        let (shared, filters) = SharedExprs::plan(&plans, self.decoder.schema().fields().len());
        self.shared = shared;
        self.filters = filters;
    }

    /// Points the consumer at the smallest next offset of any query, per partition.
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
        let mut assignment = TopicPartitionList::new();
        for (partition, offset) in positions {
            assignment.add_partition_offset(&self.topic, partition, Offset::Offset(offset))?;
        }
        self.consumer.assign(&assignment)?;
        debug!(topic = %self.topic, ?assignment, "scan assigned");
        Ok(())
    }

    fn process_batch(&mut self) -> Result<()> {
        let fetched = self.consumer.fetch(MAX_BATCH, POLL_WAIT, FILL_WAIT)?;
        if fetched.is_empty() {
            let cause = self.consumer.take_client_error();
            let failing = self.queries.iter().any(|q| matches!(q.status.state(), QueryState::Error(_)));
            if cause.is_some() || failing {
                match self.consumer.fetch_metadata(Some(&self.topic), Duration::from_secs(2)) {
                    Err(e) => {
                        let cause = cause.unwrap_or_else(|| e.to_string());
                        return Err(SluiceError::Execution(format!("cannot reach Kafka: {cause}")));
                    }
                    Ok(_) => self.mark_running(),
                }
            }
            return Ok(());
        }
        self.consumer.take_client_error();
        let records: Vec<RawRecord> = fetched.records().collect();
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
        let shared = (!self.shared.is_empty())
            .then(|| self.shared.evaluate(&decoded.batch))
            .transpose()?;
        let batch = shared.as_ref().map_or(&decoded.batch, |s| &s.batch);
        let deliveries = Arc::new(BatchDeliveries::default());
        let mut positions = Vec::with_capacity(self.queries.len());
        let topic = self.topic.clone();
        for (index, query) in self.queries.iter_mut().enumerate() {
            if query.status.state() == QueryState::Terminated {
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
            let eligible_rows = (count < records.len())
                .then(|| BooleanArray::from_iter(decoded.rows.iter().map(|r| Some(eligible(*r)))));
            let filter = self.filters.get(index).and_then(Option::as_ref);
            let evaluated = operator::evaluate(&query.plan, filter, batch, eligible_rows.as_ref())?;
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
                .map(|(i, m)| (*i, m.clone()))
                .chain(
                    evaluated
                        .errors
                        .iter()
                        .chain(shared_errors)
                        .map(|(row, m)| (decoded.rows[*row], m.clone())),
                )
                .filter(|(i, _)| eligible(*i));
            for (index, message) in failed {
                let r = &records[index];
                query.status.record_error(ProcessingError {
                    message,
                    topic: topic.clone(),
                    partition: r.partition,
                    offset: r.offset,
                });
            }
            let mut rows: Vec<OutputRow> = evaluated
                .rows
                .iter()
                .enumerate()
                .map(|(row, decoded_row)| OutputRow {
                    record: &records[decoded.rows[*decoded_row]],
                    row,
                })
                .collect();
            if let Some(limit) = query.plan.limit {
                rows.truncate(limit.saturating_sub(query.emitted) as usize);
            }
            match query.sink.write(&rows, &evaluated.columns, evaluated.keys.as_ref(), query.plan.forwards_value, &deliveries) {
                Ok(()) => {}
                Err(SluiceError::Execution(_)) if !query.persistent => {
                    query.status.set_state(QueryState::Terminated);
                    continue;
                }
                Err(e) => return Err(e),
            }
            query.emitted += rows.len() as u64;
            query.status.records_in.fetch_add(count as u64, Ordering::Relaxed);
            query.status.records_out.fetch_add(rows.len() as u64, Ordering::Relaxed);
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
            positions.push((query.id.clone(), query.sent.clone()));
            if query.plan.limit.is_some_and(|l| query.emitted >= l) {
                query.status.set_state(QueryState::Terminated);
            }
        }
        self.in_flight.push_back(InFlight { deliveries, positions });
        self.mark_running();
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
        for query in self.queries.iter_mut().filter(|q| q.persistent && q.dirty) {
            match self.runtime.block_on(self.offsets.commit(&query.id, &query.next)) {
                Ok(()) => query.dirty = false,
                Err(e) => warn!(query = %query.id, error = %e, "could not commit offsets; will retry"),
            }
        }
    }
}
