//! What a running query reports: its state, record counts and last processing error.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;

use super::processing_log::ProcessingLog;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryState {
    Running,
    Error(String),
    /// `PAUSE`d: stopped with its positions committed, to go on at `RESUME`.
    Paused,
    Terminated,
}

impl QueryState {
    pub fn name(&self) -> &'static str {
        match self {
            QueryState::Running => "RUNNING",
            QueryState::Error(_) => "ERROR",
            QueryState::Paused => "PAUSED",
            QueryState::Terminated => "TERMINATED",
        }
    }
}

/// Which step failed on a record, as ksqlDB's processing log tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The record's bytes could not be read in the stream's format.
    Deserialization,
    /// An expression could not be evaluated on the row.
    RecordProcessing,
    /// The output row could not be written in the sink's format.
    Serialization,
    /// The output record could not be produced (its topic cannot be named, say).
    Production,
}

/// A record a query could not process, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingError {
    pub kind: ErrorKind,
    pub message: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

pub struct QueryStatus {
    /// The query's id, naming it in the processing log.
    id: String,
    log: Arc<ProcessingLog>,
    state: Mutex<QueryState>,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub processing_errors: AtomicU64,
    last_error: Mutex<Option<ProcessingError>>,
    /// How far into its source the query's output is in Kafka.
    pub progress: super::progress::Progress,
    /// How long its batches took from their fetch to their output being in Kafka.
    pub latency: Latency,
}

/// Upper bounds, in seconds, of [`Latency`]'s buckets; one more bucket takes the rest.
pub const LATENCY_BOUNDS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A histogram of processing latencies, counted without locks.
#[derive(Debug, Default)]
pub struct Latency {
    /// Per bucket of [`LATENCY_BOUNDS`], then the unbounded one, how many observations fell there.
    counts: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    micros: AtomicU64,
}

impl Latency {
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BOUNDS.iter().position(|bound| seconds <= *bound).unwrap_or(LATENCY_BOUNDS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The sum of the observations in seconds, and each bucket's upper bound (`f64::MAX` for
    /// the last) with how many observations fell in it.
    pub fn buckets(&self) -> (f64, Vec<(f64, u64)>) {
        let bounds = LATENCY_BOUNDS.iter().copied().chain([f64::MAX]);
        let counts = bounds.zip(&self.counts).map(|(bound, count)| (bound, count.load(Ordering::Relaxed))).collect();
        (self.micros.load(Ordering::Relaxed) as f64 / 1e6, counts)
    }
}

impl QueryStatus {
    /// The status of query `id`, whose processing errors go to `log` as well.
    pub fn new(id: &str, log: Arc<ProcessingLog>) -> Self {
        Self {
            id: id.to_string(),
            log,
            state: Mutex::new(QueryState::Running),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            processing_errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
            progress: Default::default(),
            latency: Latency::default(),
        }
    }

    pub fn state(&self) -> QueryState {
        self.state.lock().clone()
    }

    pub fn set_state(&self, state: QueryState) {
        *self.state.lock() = state;
    }

    /// Counts a record the query skipped, keeps it as the last error and writes it to the
    /// processing log with the record's bytes.
    pub fn record_error(&self, error: ProcessingError, record: Option<&[u8]>) {
        self.processing_errors.fetch_add(1, Ordering::Relaxed);
        self.log.write(&self.id, &error, record);
        *self.last_error.lock() = Some(error);
    }

    pub fn last_error(&self) -> Option<ProcessingError> {
        self.last_error.lock().clone()
    }

    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.records_in.load(Ordering::Relaxed),
            self.records_out.load(Ordering::Relaxed),
            self.processing_errors.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_first_bucket_that_bounds_them() {
        let latency = Latency::default();
        for millis in [3, 5, 70, 20_000] {
            latency.observe(Duration::from_millis(millis));
        }
        let (sum, buckets) = latency.buckets();
        assert!((sum - 20.078).abs() < 1e-9, "{sum}");
        assert_eq!(buckets[0], (0.005, 2));
        assert_eq!(buckets[4], (0.1, 1));
        assert_eq!(buckets[11], (f64::MAX, 1));
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 4);
    }
}
