//! Errors as ksqlDB's clients expect them: `{"@type","error_code","message",…}` with its codes.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tracing::error;

use crate::{error::SluiceError, handler::StatementFailure};

pub enum AppError {
    /// 40001: a statement that cannot run (bad SQL, unknown stream, …).
    Statement {
        message: String,
        statement_text: String,
        entities: Vec<Value>,
    },
    /// 40002: a SELECT or PRINT sent to `/ksql`.
    QueryEndpoint { message: String, statement_text: String },
    /// 40000: a malformed request or an unknown id.
    BadRequest(String),
    /// 40400: no such topic, connector or file.
    NotFound(String),
    /// 50300: a service Sluice reads for the request (Kafka, HDFS) failed; the cause is shown.
    Unavailable(String),
    /// 50301: the command a request names was not applied here in time.
    CommandTimeout(i64),
    /// 40003: as many push queries run as the server allows.
    TooManyPushQueries,
    /// 41300: the request body is larger than the server reads.
    TooLarge(usize),
    /// 50000: Sluice failed; the cause is logged, not shown.
    Server(String),
}

impl From<StatementFailure> for AppError {
    fn from(failure: StatementFailure) -> Self {
        if failure.is_query {
            return AppError::QueryEndpoint {
                message: failure.error.to_string(),
                statement_text: failure.statement_text,
            };
        }
        if failure.error.is_user_error() {
            AppError::Statement {
                message: failure.error.to_string(),
                statement_text: failure.statement_text,
                entities: failure.entities,
            }
        } else {
            AppError::Server(failure.error.to_string())
        }
    }
}

impl From<SluiceError> for AppError {
    fn from(error: SluiceError) -> Self {
        if error.is_user_error() {
            AppError::Statement {
                message: error.to_string(),
                statement_text: String::new(),
                entities: Vec::new(),
            }
        } else {
            AppError::Server(error.to_string())
        }
    }
}

impl AppError {
    pub fn with_statement(self, text: &str) -> Self {
        match self {
            AppError::Statement { message, entities, .. } => AppError::Statement {
                message,
                statement_text: text.to_string(),
                entities,
            },
            other => other,
        }
    }

    pub fn body(&self) -> (StatusCode, Value) {
        match self {
            AppError::Statement {
                message,
                statement_text,
                entities,
            } => (
                StatusCode::BAD_REQUEST,
                json!({"@type": "statement_error", "error_code": 40001, "message": message, "statementText": statement_text, "entities": entities}),
            ),
            AppError::QueryEndpoint { message, statement_text } => (
                StatusCode::BAD_REQUEST,
                json!({"@type": "statement_error", "error_code": 40002, "message": message, "statementText": statement_text, "entities": []}),
            ),
            AppError::BadRequest(message) => (
                StatusCode::BAD_REQUEST,
                json!({"@type": "generic_error", "error_code": 40000, "message": message}),
            ),
            AppError::NotFound(message) => (
                StatusCode::NOT_FOUND,
                json!({"@type": "generic_error", "error_code": 40400, "message": message}),
            ),
            AppError::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"@type": "generic_error", "error_code": 50300, "message": message}),
            ),
            AppError::CommandTimeout(seq) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"@type": "generic_error", "error_code": 50301, "message": format!("Timed out while waiting for a previous command to execute. command sequence number: {seq}")}),
            ),
            AppError::TooManyPushQueries => (
                StatusCode::BAD_REQUEST,
                json!({"@type": "generic_error", "error_code": 40003, "message": "Maximum number of push queries exceeded"}),
            ),
            AppError::TooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"@type": "generic_error", "error_code": 41300, "message": too_large(*limit)}),
            ),
            AppError::Server(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"@type": "generic_error", "error_code": 50000, "message": "The server failed to run the statement; see its log for the cause."}),
            ),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Server(cause) = &self {
            error!(%cause, "request failed");
        }
        let (status, body) = self.body();
        (status, Json(body)).into_response()
    }
}

/// Why a request body was refused for its size.
pub fn too_large(limit: usize) -> String {
    format!("The request body is larger than the server's limit of {limit} bytes (sluice.http.max.request.bytes)")
}
