//! The one error type of the Sluice library, with a category per kind of failure.

use std::fmt;

/// A position in a SQL text, 1-based like the editor a user reads it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A statement that could not be parsed: where, what was found, what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub location: Location,
    pub found: String,
    pub expected: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: Syntax Error: expected {}, but found {}",
            self.location, self.expected, self.found
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SluiceError {
    /// The SQL text is not valid in the dialect: `line L:C: Syntax Error`, as ksqlDB words it
    /// and its clients look for, then what was expected.
    #[error("{0}")]
    Parse(ParseError),
    /// The statement is valid SQL but cannot be applied to the catalog as it stands.
    #[error("{0}")]
    Plan(String),
    /// A named object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A feature of ksqlDB's dialect Sluice does not have yet.
    #[error("Not supported yet: {0}")]
    NotImplemented(String),
    /// Configuration is missing or invalid.
    #[error("Invalid configuration: {0}")]
    Config(String),
    /// Running a query or a connector failed.
    #[error("Execution error: {0}")]
    Execution(String),
    /// A record that cannot be processed, where the configuration says not to skip it.
    #[error("Bad record: {0}")]
    BadRecord(String),
    #[error("Kafka error: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("DataFusion error: {0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("Arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("JSON error: {0}")]
    Json(#[from] serde_json::Error),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("HDFS error: {0}")]
    Hdfs(#[from] hdfs_native::HdfsError),
    #[error("Parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// A broken invariant inside Sluice: a bug, never the user's fault.
    #[error("Internal error: {0}")]
    Internal(String),
}

impl SluiceError {
    /// True when the user can fix the cause by changing the statement or request.
    pub fn is_user_error(&self) -> bool {
        use datafusion::error::DataFusionError;
        match self {
            SluiceError::Parse(_)
            | SluiceError::Plan(_)
            | SluiceError::NotFound(_)
            | SluiceError::NotImplemented(_)
            | SluiceError::Config(_) => true,
            // DataFusion refusing to plan a statement: the statement's fault, not Sluice's.
            SluiceError::DataFusion(e) => matches!(
                e.find_root(),
                DataFusionError::Plan(_) | DataFusionError::SchemaError(..) | DataFusionError::NotImplemented(_)
            ),
            _ => false,
        }
    }
}

pub type Result<T, E = SluiceError> = std::result::Result<T, E>;

/// `plan_err!("...", args)` builds an `Err(SluiceError::Plan(..))`.
#[macro_export]
macro_rules! plan_err {
    ($($arg:tt)*) => { Err($crate::error::SluiceError::Plan(format!($($arg)*))) };
}

/// `not_impl_err!("...", args)` builds an `Err(SluiceError::NotImplemented(..))`.
#[macro_export]
macro_rules! not_impl_err {
    ($($arg:tt)*) => { Err($crate::error::SluiceError::NotImplemented(format!($($arg)*))) };
}

/// The message a panic carried, for a task that reports it instead of dying silently.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}
