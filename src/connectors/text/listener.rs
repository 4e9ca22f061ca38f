//! Flume's network sources, answered only once what they carried is in Kafka: the HTTP source
//! (a JSONHandler array of `{"headers": {…}, "body": "…"}` events, or plain text, one record per
//! line; `200` once written, `400` for a body it cannot read, `503` when Kafka fails) and the
//! netcat source (a line per record over TCP, each acknowledged `OK`).

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    routing::post,
};
use serde::Deserialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Mutex,
};
use tracing::warn;

use super::{config::LineValue, line_value};
use crate::{
    connectors::{
        source_writer::{SourceContext, SourceRecord, SourceWriter},
        status::ConnectorState,
    },
    error::{Result, SluiceError},
};

/// One Flume event of a JSONHandler array.
#[derive(Deserialize)]
struct FlumeEvent {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,
}

struct Shared {
    writer: Mutex<SourceWriter>,
    value: LineValue,
}

impl Shared {
    /// Writes `records` (key, line); `Ok(false)` when the source stopped first.
    async fn write(&self, records: Vec<(Option<Vec<u8>>, Vec<u8>)>) -> Result<bool> {
        let records: Vec<SourceRecord> = records
            .into_iter()
            .map(|(key, line)| SourceRecord { key, value: Some(line_value(self.value, &line)), identity: String::new() })
            .collect();
        self.writer.lock().await.write(&records).await
    }
}

async fn open(context: &SourceContext, listen: SocketAddr, topic: &str, value: LineValue) -> Result<(TcpListener, Arc<Shared>)> {
    let partition = serde_json::json!({"listener": listen.to_string()});
    let (writer, _) = SourceWriter::open(context, partition, topic, false).await?;
    let listener = TcpListener::bind(listen).await?;
    context.status.set_state(ConnectorState::Running);
    Ok((listener, Arc::new(Shared { writer: Mutex::new(writer), value })))
}

/// Serves Flume's HTTP source on `listen` until the connector stops.
pub async fn http(context: &SourceContext, listen: SocketAddr, topic: &str, value: LineValue) -> Result<()> {
    let (listener, shared) = open(context, listen, topic, value).await?;
    let app = Router::new().route("/", post(receive)).with_state(shared);
    let cancel = context.cancel.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await?;
    Ok(())
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"))
        || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let records: Vec<(Option<Vec<u8>>, Vec<u8>)> = if json {
        match serde_json::from_slice::<Vec<FlumeEvent>>(&body) {
            Ok(events) => events
                .into_iter()
                .map(|e| (e.headers.get("key").map(|k| k.as_bytes().to_vec()), e.body.into_bytes()))
                .collect(),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("Bad Request: not a JSON array of Flume events: {e}")),
        }
    } else {
        body.split(|b| *b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.is_empty())
            .map(|line| (None, line.to_vec()))
            .collect()
    };
    let count = records.len();
    match shared.write(records).await {
        Ok(true) => (StatusCode::OK, format!("{count} events\n")),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, "the source is stopping\n".to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    }
}

/// Serves Flume's netcat source on `listen` until the connector stops.
pub async fn netcat(context: &SourceContext, listen: SocketAddr, topic: &str, value: LineValue, max_line_length: usize, ack: bool) -> Result<()> {
    let (listener, shared) = open(context, listen, topic, value).await?;
    loop {
        let (stream, peer) = tokio::select! {
            _ = context.cancel.cancelled() => return Ok(()),
            accepted = listener.accept() => accepted?,
        };
        let shared = shared.clone();
        let cancel = context.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                served = serve_lines(stream, shared, max_line_length, ack) => {
                    if let Err(e) = served {
                        warn!(%peer, error = %e, "netcat connection ended");
                    }
                }
            }
        });
    }
}

/// Reads lines from one client; every line read in one go is written as one batch and, with
/// `ack`, answered `OK` (one per line) once it is in Kafka. A line longer than
/// `max_line_length` is cut there, as Flume's source cuts it.
async fn serve_lines(mut stream: TcpStream, shared: Arc<Shared>, max_line_length: usize, ack: bool) -> Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&chunk[..read]);
        let mut lines = Vec::new();
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let line = &line[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            lines.push((None, line[..line.len().min(max_line_length)].to_vec()));
        }
        if pending.len() > max_line_length {
            lines.push((None, pending[..max_line_length].to_vec()));
            pending.clear();
        }
        if lines.is_empty() {
            continue;
        }
        let count = lines.len();
        if !shared.write(lines).await? {
            return Err(SluiceError::Execution("the source stopped before the lines were written".into()));
        }
        if ack {
            stream.write_all(&b"OK\n".repeat(count)).await?;
        }
    }
}
