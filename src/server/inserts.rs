//! `POST /inserts-stream`: ksqlDB's streamed inserts. The body's first line names the target
//! (`{"target":"S"}`), each later line is a JSON row; every row is acknowledged as it is
//! written (`{"status":"ok","seq":n}`), and the first row that cannot be written is answered
//! with an error that ends the stream.

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, header},
    response::Response,
};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{AppError, AppState, error::too_large};
use crate::handler::insert::insert_json_row;

/// The first line of the body.
#[derive(Debug, Deserialize)]
struct InsertsStreamArgs {
    target: String,
}

/// Lines of a request body, each at most `limit` bytes.
struct Lines<S> {
    chunks: S,
    pending: Vec<u8>,
    limit: usize,
    ended: bool,
}

impl<S: Stream<Item = Result<Bytes, axum::Error>> + Unpin> Lines<S> {
    /// The next non-empty line, `Ok(None)` at the end of the body.
    async fn next(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(at) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=at).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return Ok(Some(line.to_vec()));
            }
            if self.pending.len() > self.limit {
                return Err(too_large(self.limit));
            }
            if self.ended {
                let rest = std::mem::take(&mut self.pending);
                let rest = rest.trim_ascii();
                return Ok((!rest.is_empty()).then(|| rest.to_vec()));
            }
            match self.chunks.next().await {
                Some(Ok(chunk)) => self.pending.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(format!("Cannot read the request body: {e}")),
                None => self.ended = true,
            }
        }
    }
}

pub async fn inserts_stream(State(state): State<AppState>, headers: HeaderMap, request: Request) -> Result<Response, AppError> {
    let as_array = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    let mut lines = Lines {
        chunks: request.into_body().into_data_stream(),
        pending: Vec::new(),
        limit: state.engine.config.max_request_bytes,
        ended: false,
    };
    let first = lines
        .next()
        .await
        .map_err(AppError::BadRequest)?
        .ok_or_else(|| AppError::BadRequest("The request holds no arguments line ({\"target\": …}).".into()))?;
    let args: InsertsStreamArgs =
        serde_json::from_slice(&first).map_err(|e| AppError::BadRequest(format!("Invalid arguments line: {e}")))?;
    let stream = state
        .engine
        .catalog
        .stream(&args.target)
        .or_else(|_| state.engine.catalog.stream(&args.target.to_ascii_uppercase()))
        .map_err(|_| AppError::BadRequest(format!("Cannot insert values into an unknown stream/table: {}", args.target)))?;

    let (sender, receiver) = mpsc::channel::<Value>(64);
    let engine = state.engine.clone();
    tokio::spawn(async move {
        let mut seq = 0u64;
        loop {
            let outcome = match lines.next().await {
                Ok(None) => return,
                Ok(Some(line)) => match serde_json::from_slice::<serde_json::Map<String, Value>>(&line) {
                    Ok(row) => insert_json_row(&engine, &stream, &row).await.map_err(|e| {
                        let code = if e.is_user_error() { 40000 } else { 50000 };
                        (code, e.to_string())
                    }),
                    Err(_) => Err((40000, "Invalid JSON in inserts stream".to_string())),
                },
                Err(message) => Err((40000, message)),
            };
            let answer = match outcome {
                Ok(()) => json!({"status": "ok", "seq": seq}),
                Err((code, message)) => {
                    let _ = sender
                        .send(json!({"@type": "generic_error", "error_code": code, "message": message, "status": "error", "seq": seq}))
                        .await;
                    return;
                }
            };
            if sender.send(answer).await.is_err() {
                return;
            }
            seq += 1;
        }
    });

    let answers = futures::stream::unfold((receiver, true), move |(mut receiver, first)| async move {
        let answer = receiver.recv().await?;
        let mut chunk = Vec::new();
        if as_array && !first {
            chunk.push(b',');
        }
        serde_json::to_writer(&mut chunk, &answer).ok()?;
        if !as_array {
            chunk.push(b'\n');
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), (receiver, false)))
    });
    let body: Body = if as_array {
        Body::from_stream(
            futures::stream::once(async { Ok(Bytes::from_static(b"[")) })
                .chain(answers)
                .chain(futures::stream::once(async { Ok(Bytes::from_static(b"]")) })),
        )
    } else {
        Body::from_stream(answers)
    };
    Response::builder()
        .header(header::CONTENT_TYPE, if as_array { "application/json" } else { "application/vnd.ksqlapi.delimited.v1" })
        .body(body)
        .map_err(|e| AppError::Server(e.to_string()))
}
