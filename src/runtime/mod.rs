//! The query runtime: shared scans that read each source once and run every query over it,
//! supervised, with exactly-once output.

pub mod aggregate;
pub mod connectors;
pub mod explode;
pub mod idle;
pub mod join;
pub mod operator;
pub mod origin;
pub mod pair_join;
pub mod print;
pub mod processing_log;
pub mod progress;
pub mod pull;
pub mod scan;
pub mod shared;
pub mod sink;
pub mod status;
pub mod table_state;
pub mod tables_join;
pub mod table_versions;
pub mod two_sources;
pub mod window;
pub mod window_join;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use parking_lot::Mutex;
use tokio::runtime::Handle;

pub use status::{QueryState, QueryStatus};

use crate::{
    catalog::topic_template::TopicTemplate,
    connectors::kafka::{
        KafkaCluster,
        offsets::{Checkpoint, OffsetStore, OutputPositions, PartitionOffsets},
        source::KafkaSource,
    },
    connectors::source::{source_partition, topic_partition},
    format::RecordDecoder,
    catalog::SourceDef,
    error::{Result, SluiceError},
    planner::ContinuousPlan,
};
use join::TableLookup;
use table_state::TableState;
use table_versions::TableVersions;
use processing_log::ProcessingLog;
use origin::Guarantee;
use scan::{Durability, ScanDecoder, ScanHandle, ScanQuery};
use sink::QuerySink;

/// How long pausing or stopping a query waits for its scan to commit its positions.
const LEAVE_LIMIT: Duration = Duration::from_secs(30);

/// Where a new query starts reading, as `auto.offset.reset` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
}

impl OffsetReset {
    pub fn from_properties(properties: &BTreeMap<String, String>) -> Result<OffsetReset> {
        match properties.get("auto.offset.reset").map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("latest") => Ok(OffsetReset::Latest),
            Some("earliest") => Ok(OffsetReset::Earliest),
            Some(other) => Err(SluiceError::Plan(format!(
                "Invalid value {other} for configuration auto.offset.reset: String must be one of: latest, earliest, none"
            ))),
        }
    }
}

/// Runs persistent and push queries; persistent ones over the same stream share one scan.
pub struct QueryManager {
    cluster: Arc<KafkaCluster>,
    offsets: Arc<OffsetStore>,
    runtime: Handle,
    log: Arc<ProcessingLog>,
    /// Running scans of persistent queries, by their source's identity.
    shared: Mutex<BTreeMap<String, ScanHandle>>,
    /// The identity of each persistent query's scan.
    placement: Mutex<BTreeMap<String, String>>,
    statuses: Mutex<BTreeMap<String, Arc<QueryStatus>>>,
    /// The topics each persistent query reads, its source's first.
    inputs: Mutex<BTreeMap<String, Vec<String>>>,
    /// Materialized tables, by name.
    tables: Mutex<BTreeMap<String, Materialized>>,
}

/// How many records of one topic-partition a persistent query has yet to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryLag {
    pub query: String,
    pub topic: String,
    pub partition: i32,
    pub records: i64,
}

/// A table kept in memory for pull queries, and the scan that keeps it.
struct Materialized {
    state: Arc<TableState>,
    status: Arc<QueryStatus>,
    topic: String,
    _scan: ScanHandle,
}

impl QueryManager {
    pub fn new(cluster: Arc<KafkaCluster>, offsets: Arc<OffsetStore>, log: Arc<ProcessingLog>) -> Self {
        Self {
            cluster,
            offsets,
            runtime: Handle::current(),
            log,
            shared: Mutex::new(BTreeMap::new()),
            placement: Mutex::new(BTreeMap::new()),
            statuses: Mutex::new(BTreeMap::new()),
            inputs: Mutex::new(BTreeMap::new()),
            tables: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn processing_log(&self) -> &Arc<ProcessingLog> {
        &self.log
    }

    pub fn offsets(&self) -> &Arc<OffsetStore> {
        &self.offsets
    }

    /// The positions a new query starts from, per partition of its source topic.
    pub fn start_offsets(&self, topic: &str, reset: OffsetReset) -> Result<PartitionOffsets> {
        let (earliest, latest) = self.log_bounds(topic)?;
        Ok(if reset == OffsetReset::Earliest { earliest } else { latest })
    }

    /// The positions a new query of `plan` starts from, per partition of the source it reads
    /// (both streams' topics, numbered as one source, for a stream-stream join).
    pub fn plan_start(&self, plan: &ContinuousPlan, reset: OffsetReset) -> Result<PartitionOffsets> {
        let (earliest, latest) = self.plan_bounds(plan)?;
        Ok(if reset == OffsetReset::Earliest { earliest } else { latest })
    }

    /// The first and next offsets of every partition `plan` reads, numbered as its source
    /// numbers them.
    fn plan_bounds(&self, plan: &ContinuousPlan) -> Result<(PartitionOffsets, PartitionOffsets)> {
        let mut bounds = (PartitionOffsets::new(), PartitionOffsets::new());
        for (index, topic) in plan.input_topics().iter().enumerate() {
            let (earliest, latest) = self.log_bounds(topic)?;
            let number = |(partition, offset): (i32, i64)| (source_partition(index, partition), offset);
            bounds.0.extend(earliest.into_iter().map(number));
            bounds.1.extend(latest.into_iter().map(number));
        }
        Ok(bounds)
    }

    /// A source reading what `plan` reads.
    fn plan_source(&self, plan: &ContinuousPlan) -> Result<Box<KafkaSource>> {
        Ok(Box::new(KafkaSource::over(self.cluster.clone(), plan.input_topics())?))
    }

    /// Where output written from now on starts in `topic` (or, for a template, in every
    /// existing topic it can name): each partition's end.
    pub fn output_ends(&self, topic: &str) -> Result<OutputPositions> {
        let topics = match TopicTemplate::parse(topic)? {
            None => vec![topic.to_string()],
            Some(template) => self.cluster.topics()?.into_iter().map(|t| t.name).filter(|n| template.matches(n)).collect(),
        };
        topics
            .into_iter()
            .map(|topic| {
                let (_, ends) = self.log_bounds(&topic)?;
                Ok((topic, ends))
            })
            .collect()
    }

    /// Each partition's first and next offsets, from one watermark fetch.
    fn log_bounds(&self, topic: &str) -> Result<(PartitionOffsets, PartitionOffsets)> {
        let partitions = self
            .cluster
            .topic(topic)?
            .ok_or_else(|| SluiceError::Plan(format!("Kafka topic does not exist: {topic}")))?
            .partitions;
        let marks = self.cluster.watermarks(topic, partitions)?;
        Ok(marks
            .into_iter()
            .enumerate()
            .map(|(p, (low, high))| ((p as i32, low), (p as i32, high)))
            .unzip())
    }

    /// Starts a persistent query from `start` in the scan of its source topic.
    pub fn start_persistent(
        &self,
        id: &str,
        plan: ContinuousPlan,
        sink: QuerySink,
        start: Checkpoint,
        guarantee: Guarantee,
    ) -> Result<Arc<QueryStatus>> {
        let status = match self.statuses.lock().get(id) {
            Some(paused) if paused.state() == QueryState::Paused => {
                paused.set_state(QueryState::Running);
                paused.clone()
            }
            _ => Arc::new(QueryStatus::new(id, self.log.clone())),
        };
        let stream = plan.source.clone();
        let durability = Durability {
            guarantee,
            output: start.output,
            replay_from: start.start,
            idle: start.idle,
        };
        let lookups = self.table_lookups(id, &plan)?;
        // A query reading two sources has a scan of its own.
        let identity = match plan.pair_join() {
            Some(_) => format!("join {id}"),
            None => stream.source_identity(),
        };
        let decoder = ScanDecoder::for_plan(&plan)?;
        let source = self.plan_source(&plan)?;
        self.inputs.lock().insert(id.to_string(), plan.input_topics());
        let query = ScanQuery::new(id, plan, sink, status.clone(), start.input, Some(durability))?.with_lookups(lookups);
        let mut shared = self.shared.lock();
        let scan = match shared.get(&identity) {
            Some(scan) if scan.is_alive() => scan,
            _ => {
                let scan = ScanHandle::spawn(
                    &stream.topic,
                    decoder,
                    source,
                    self.cluster.clone(),
                    Some(self.offsets.clone()),
                    self.runtime.clone(),
                )?;
                shared.insert(identity.clone(), scan);
                &shared[&identity]
            }
        };
        scan.add(query);
        self.placement.lock().insert(id.to_string(), identity);
        self.statuses.lock().insert(id.to_string(), status.clone());
        Ok(status)
    }

    /// Stops a persistent query; its committed offsets stay until [`OffsetStore::forget`]. A
    /// scan left with no query stops too.
    pub fn stop_persistent(&self, id: &str) {
        self.leave_scan(id);
        self.inputs.lock().remove(id);
        if let Some(status) = self.statuses.lock().remove(id) {
            status.set_state(QueryState::Terminated);
        }
    }

    /// Pauses a persistent query: it leaves its scan with its positions committed and shows
    /// PAUSED, keeping its counts, until [`QueryManager::start_persistent`] starts it again
    /// from its checkpoint.
    pub fn pause(&self, id: &str) {
        self.leave_scan(id);
        let status = self.statuses.lock().entry(id.to_string()).or_insert_with(|| Arc::new(QueryStatus::new(id, self.log.clone()))).clone();
        status.set_state(QueryState::Paused);
    }

    /// Takes a query out of its scan and waits (up to [`LEAVE_LIMIT`]) until its positions are
    /// committed, so that what starts it next starts where it stopped.
    fn leave_scan(&self, id: &str) {
        let left = {
            let mut shared = self.shared.lock();
            let mut placement = self.placement.lock();
            let Some(identity) = placement.remove(id) else { return };
            let left = shared.get(&identity).map(|scan| scan.remove(id));
            if !placement.values().any(|i| *i == identity) {
                shared.remove(&identity);
            }
            left
        };
        if let Some(left) = left {
            let _ = crate::connectors::kafka::blocking(|| left.recv_timeout(LEAVE_LIMIT));
        }
    }

    /// Whether persistent query `id` runs here (in a scan, failing or not).
    pub fn is_running(&self, id: &str) -> bool {
        self.placement.lock().contains_key(id)
    }

    /// Drops the PAUSED status of a query about to start here, which another server paused
    /// and resumed: it starts with counts of its own.
    pub fn forget_paused(&self, id: &str) {
        let mut statuses = self.statuses.lock();
        if statuses.get(id).is_some_and(|s| s.state() == QueryState::Paused) && !self.placement.lock().contains_key(id) {
            statuses.remove(id);
        }
    }

    pub fn status(&self, id: &str) -> Option<Arc<QueryStatus>> {
        self.statuses.lock().get(id).cloned()
    }

    /// Every persistent query's status, by id.
    pub fn statuses(&self) -> Vec<(String, Arc<QueryStatus>)> {
        self.statuses.lock().iter().map(|(id, s)| (id.clone(), s.clone())).collect()
    }

    /// How far behind each persistent query is on each topic-partition it reads: the
    /// partition's end less the next offset the query reads (as far as it has settled, else as
    /// committed). Each partition's end is asked for once; once Kafka does not answer, no more
    /// are asked for and the partitions left are left out, so a scrape never waits long.
    pub fn lags(&self) -> Vec<QueryLag> {
        let inputs = self.inputs.lock().clone();
        let mut ends: BTreeMap<(String, i32), Option<i64>> = BTreeMap::new();
        let mut reachable = true;
        let mut lags = Vec::new();
        for (query, topics) in inputs {
            let Some(status) = self.status(&query) else { continue };
            let mut next = self.offsets.get(&query).map(|c| c.input).unwrap_or_default();
            for (partition, offset) in status.progress.read() {
                let known = next.entry(partition).or_insert(offset);
                *known = (*known).max(offset);
            }
            for (numbered, offset) in next {
                let (index, partition) = if topics.len() > 1 { topic_partition(numbered) } else { (0, numbered) };
                let Some(topic) = topics.get(index) else { continue };
                let end = *ends.entry((topic.clone(), partition)).or_insert_with(|| {
                    let end = reachable.then(|| self.cluster.watermark(topic, partition).ok()).flatten();
                    reachable &= end.is_some();
                    end.map(|(_, high)| high)
                });
                if let Some(end) = end {
                    lags.push(QueryLag { query: query.clone(), topic: topic.clone(), partition, records: (end - offset).max(0) });
                }
            }
        }
        lags
    }

    /// Starts a push query in a scan of its own; rows arrive on the returned sink's channel.
    /// A pull query (`bounded`) reads from the earliest offsets to the log ends as they are
    /// now, then completes.
    pub fn start_transient(
        &self,
        id: &str,
        mut plan: ContinuousPlan,
        sink: QuerySink,
        reset: OffsetReset,
        bounded: bool,
    ) -> Result<ScanHandle> {
        plan.forwards_value = false;
        // A push query shows a table's changes as they come: a row its filter drops is left
        // out, not written as a tombstone (no earlier output of the key needs taking back).
        plan.changelog = false;
        let (start, until) = if bounded {
            let (earliest, latest) = self.plan_bounds(&plan)?;
            (earliest, Some(latest))
        } else {
            (self.plan_start(&plan, reset)?, None)
        };
        let status = Arc::new(QueryStatus::new(id, self.log.clone()));
        let scan = ScanHandle::spawn(
            &plan.source.topic,
            ScanDecoder::for_plan(&plan)?,
            self.plan_source(&plan)?,
            self.cluster.clone(),
            None,
            self.runtime.clone(),
        )?;
        let lookups = self.table_lookups(id, &plan)?;
        let query = ScanQuery::new(id, plan, sink, status, start, None)?.with_lookups(lookups);
        scan.add(match until {
            Some(until) => query.until(until),
            None => query,
        });
        Ok(scan)
    }

    /// Keeps the latest record per key of `table`'s topic in memory, read from the topic's start
    /// (so a restarted server has it again), for pull queries.
    pub fn materialize(&self, table: &SourceDef) -> Result<()> {
        let state = Arc::new(TableState::default());
        let (scan, status) = self.read_table(&format!("materialize_{}", table.name), table, QuerySink::Table(state.clone()))?;
        self.tables.lock().insert(
            table.name.clone(),
            Materialized {
                state,
                status,
                topic: table.topic.clone(),
                _scan: scan,
            },
        );
        Ok(())
    }

    /// The table sides of `plan`'s joins: each table's versions, read from its topic's start by
    /// a scan of their own, which stops when the query does.
    fn table_lookups(&self, id: &str, plan: &ContinuousPlan) -> Result<Vec<TableLookup>> {
        let Some(join) = &plan.join else { return Ok(Vec::new()) };
        join.steps
            .iter()
            .map(|step| {
                let versions = Arc::new(TableVersions::default());
                let (reader, _) = self.read_table(&format!("{id}_{}", step.table.name), &step.table, QuerySink::Versions(versions.clone()))?;
                TableLookup::new(step, versions, reader, self.cluster.clone())
            })
            .collect()
    }

    /// Starts a scan that reads every record of `table`'s topic from its start into `sink`.
    fn read_table(&self, id: &str, table: &SourceDef, sink: QuerySink) -> Result<(ScanHandle, Arc<QueryStatus>)> {
        let status = Arc::new(QueryStatus::new(id, self.log.clone()));
        let plan = ContinuousPlan {
            source: table.clone(),
            filter: None,
            projection: Vec::new(),
            output_schema: Arc::new(arrow::datatypes::Schema::empty()),
            key_outputs: Vec::new(),
            changelog: true,
            forwards_value: true,
            partition_by: None,
            explode: Vec::new(),
            aggregation: None,
            join: None,
            per_record_updates: false,
            idle_close: None,
            limit: None,
            output_timestamp: None,
        };
        let start = self.start_offsets(&table.topic, OffsetReset::Earliest)?;
        let source = Box::new(KafkaSource::new(self.cluster.clone(), &table.topic)?);
        let decoder = ScanDecoder::One(RecordDecoder::new(table)?);
        let scan = ScanHandle::spawn(&table.topic, decoder, source, self.cluster.clone(), None, self.runtime.clone())?;
        scan.add(ScanQuery::new(id, plan, sink, status.clone(), start, None)?);
        Ok((scan, status))
    }

    /// Stops keeping `name` in memory.
    pub fn dematerialize(&self, name: &str) {
        self.tables.lock().remove(name);
    }

    /// The rows of a materialized table, once they reflect its topic as it is now (waiting up
    /// to `limit`); `None` when the table is not materialized.
    pub fn table_state(&self, name: &str, limit: Duration) -> Result<Option<Arc<TableState>>> {
        let Some((state, topic)) = self.tables.lock().get(name).map(|m| (m.state.clone(), m.topic.clone())) else {
            return Ok(None);
        };
        let (_, ends) = self.log_bounds(&topic)?;
        state.progress.wait_for(&ends, limit);
        Ok(Some(state))
    }

    /// Waits up to `limit` until persistent query `id` has its output in Kafka for everything
    /// in `topics`, the topics its scan reads in order, as they are now; whether it has.
    pub fn wait_for_query(&self, id: &str, topics: &[String], limit: Duration) -> Result<bool> {
        let Some(status) = self.status(id) else { return Ok(false) };
        let mut ends = PartitionOffsets::new();
        for (index, topic) in topics.iter().enumerate() {
            let (_, topic_ends) = self.log_bounds(topic)?;
            ends.extend(topic_ends.into_iter().map(|(partition, end)| (source_partition(index, partition), end)));
        }
        Ok(status.progress.wait_for(&ends, limit))
    }

    /// A materialized table's size (keys, bytes) and the status of the scan that keeps it.
    pub fn table_status(&self, name: &str) -> Option<((usize, usize), Arc<QueryStatus>)> {
        self.tables.lock().get(name).map(|m| (m.state.size(), m.status.clone()))
    }

    /// Stops every scan, flushing and committing what was processed; all stop at once, so the
    /// time it takes is one scan's bounded stop, not their sum.
    pub fn shutdown(&self) {
        self.tables.lock().clear();
        let scans: Vec<ScanHandle> = std::mem::take(&mut *self.shared.lock()).into_values().collect();
        for scan in &scans {
            scan.request_stop();
        }
        for scan in scans {
            scan.stop();
        }
    }
}
