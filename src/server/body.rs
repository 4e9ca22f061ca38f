//! A request body read whole, up to the server's limit: past it, 413 in the error shape of the
//! endpoint's API (ksqlDB's for `/ksql` and the queries, Kafka Connect's for `/connectors`).

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{StatusCode, header},
};
use bytes::BytesMut;
use futures::StreamExt;

use super::{AppError, AppState, connect::ConnectError, error::too_large};

/// The body of a ksqlDB API request.
pub struct KsqlBody(pub Bytes);

/// The body of a Kafka Connect API request.
pub struct ConnectBody(pub Bytes);

/// A body over the limit is still read, and thrown away, up to this much more: a client that
/// sends all of it before reading the answer then sees the 413 rather than a broken pipe.
const DISCARDED_AT_MOST: usize = 64 << 20;

/// The body, or the status and message it was refused with. Only `limit` bytes are kept.
async fn read(request: Request, state: &AppState) -> Result<Bytes, (StatusCode, String)> {
    let limit = state.engine.config.max_request_bytes;
    let too_big = || (StatusCode::PAYLOAD_TOO_LARGE, too_large(limit));
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit.saturating_add(DISCARDED_AT_MOST)) {
        return Err(too_big());
    }
    let mut chunks = request.into_body().into_data_stream();
    let mut kept = BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| (StatusCode::BAD_REQUEST, format!("Cannot read the request body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        } else if seen > limit.saturating_add(DISCARDED_AT_MOST) {
            break;
        }
    }
    if seen > limit {
        return Err(too_big());
    }
    Ok(kept.freeze())
}

impl FromRequest<AppState> for KsqlBody {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, AppError> {
        match read(request, state).await {
            Ok(bytes) => Ok(KsqlBody(bytes)),
            Err((StatusCode::PAYLOAD_TOO_LARGE, _)) => Err(AppError::TooLarge(state.engine.config.max_request_bytes)),
            Err((_, message)) => Err(AppError::BadRequest(message)),
        }
    }
}

impl FromRequest<AppState> for ConnectBody {
    type Rejection = ConnectError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ConnectError> {
        read(request, state)
            .await
            .map(ConnectBody)
            .map_err(|(status, message)| ConnectError(status, message))
    }
}
