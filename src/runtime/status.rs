//! What a running query reports: its state, record counts and last processing error.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryState {
    Running,
    Error(String),
    Terminated,
}

impl QueryState {
    pub fn name(&self) -> &'static str {
        match self {
            QueryState::Running => "RUNNING",
            QueryState::Error(_) => "ERROR",
            QueryState::Terminated => "TERMINATED",
        }
    }
}

/// A record a query could not process, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessingError {
    pub message: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug)]
pub struct QueryStatus {
    state: Mutex<QueryState>,
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub processing_errors: AtomicU64,
    last_error: Mutex<Option<ProcessingError>>,
}

impl Default for QueryStatus {
    fn default() -> Self {
        Self::new()
    }
}

impl QueryStatus {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(QueryState::Running),
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            processing_errors: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub fn state(&self) -> QueryState {
        self.state.lock().clone()
    }

    pub fn set_state(&self, state: QueryState) {
        *self.state.lock() = state;
    }

    pub fn record_error(&self, error: ProcessingError) {
        self.processing_errors.fetch_add(1, Ordering::Relaxed);
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
