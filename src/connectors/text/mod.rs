//! Text sources that retire Flume: Kafka Connect's `FileStreamSource` (a tailed file), the
//! spooldir line connector (files dropped into a directory), and Flume's HTTP and netcat
//! sources — every line one record of the topic, exactly once for files (their positions are
//! committed with the records) and acknowledged only once in Kafka for the network sources.

pub mod config;
mod files;
mod listener;

use std::sync::Arc;

use serde_json::json;

pub use config::{TextSource, TextSourceConfig, kind_of_class};

use crate::connectors::{
    RunningConnector,
    kafka::{KafkaCluster, source_offsets::SourceOffsets},
    source_writer::SourceContext,
    supervise,
};
use config::LineValue;

/// How long a failed text source waits before it tries again (doubling up to a limit).
const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// Starts the source as a task of its own.
pub fn start(name: &str, config: TextSourceConfig, cluster: Arc<KafkaCluster>, offsets: Arc<SourceOffsets>) -> RunningConnector {
    SourceContext::start(name, cluster, offsets, |context| async move {
        supervise(&context.connector, &context.status, &context.cancel, RETRY_BACKOFF, || run(&context, &config)).await;
    })
}

async fn run(context: &SourceContext, config: &TextSourceConfig) -> crate::Result<()> {
    let (topic, value) = (config.topic.as_str(), config.value);
    match &config.source {
        source @ TextSource::FileStream { .. } => files::tail(context, source, topic, value).await,
        source @ TextSource::SpoolDir { .. } => files::spool(context, source, topic, value).await,
        TextSource::Http { listen } => listener::http(context, *listen, topic, value).await,
        TextSource::Netcat { listen, max_line_length, ack_every_event } => {
            listener::netcat(context, *listen, topic, value, *max_line_length, *ack_every_event).await
        }
    }
}

/// A line as a record's value: its bytes, or a JSON string (in Connect's envelope with schemas).
fn line_value(value: LineValue, line: &[u8]) -> Vec<u8> {
    match value {
        LineValue::Raw => line.to_vec(),
        LineValue::Json { schemas } => {
            let text = String::from_utf8_lossy(line);
            let value = if schemas {
                json!({"schema": {"type": "string", "optional": false}, "payload": text})
            } else {
                json!(text)
            };
            value.to_string().into_bytes()
        }
    }
}
