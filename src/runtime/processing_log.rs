//! The processing log: every record a query could not read, evaluate or write, as a JSON record
//! in ksqlDB's processing-log shape on a topic of its own, declared as the stream
//! `SLUICE_PROCESSING_LOG` so users can query it like any other.

use std::{sync::Arc, time::{SystemTime, UNIX_EPOCH}};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::runtime::Handle;
use tracing::warn;

use super::status::{ErrorKind, ProcessingError};
use crate::connectors::kafka::KafkaCluster;

/// The name of the stream over the processing log.
pub const STREAM_NAME: &str = "SLUICE_PROCESSING_LOG";

/// Where processing errors are written.
pub struct ProcessingLog {
    topic: String,
    cluster: Arc<KafkaCluster>,
    runtime: Handle,
}

impl ProcessingLog {
    /// The log of service `service_id`, on an internal topic (ksqlDB's is
    /// `<id>ksql_processing_log`; like Sluice's other internal topics, this one starts with `_`
    /// and `SHOW TOPICS` leaves it out).
    pub fn new(cluster: Arc<KafkaCluster>, service_id: &str, runtime: Handle) -> Self {
        Self {
            topic: topic_name(service_id),
            cluster,
            runtime,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The statement declaring [`STREAM_NAME`] over the log's topic. `MESSAGE` holds the nested
    /// object as JSON text; `EXTRACTJSONFIELD(MESSAGE, '$.recordProcessingError.errorMessage')`
    /// reads a field of it.
    pub fn declaration(&self) -> String {
        format!(
            "CREATE STREAM {STREAM_NAME} (LOGGER STRING, LEVEL STRING, TIME BIGINT, MESSAGE STRING) WITH (KAFKA_TOPIC = '{}', VALUE_FORMAT = 'JSON');",
            self.topic
        )
    }

    /// Writes one error without waiting for Kafka; a failure to write it is logged, never
    /// allowed to hold up the query.
    pub fn write(&self, query: &str, error: &ProcessingError, record: Option<&[u8]>) {
        let value = entry(query, error, record, now_millis()).to_string();
        let cluster = self.cluster.clone();
        let topic = self.topic.clone();
        self.runtime.spawn(async move {
            if let Err(e) = cluster.producer().send(&topic, None, None, Some(value.as_bytes()), None).await {
                warn!(topic, error = %e, "could not write to the processing log");
            }
        });
    }
}

pub fn topic_name(service_id: &str) -> String {
    format!("_sluice-{service_id}_processing_log")
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// One log entry as ksqlDB writes it (`type` 0 deserialization, 1 record processing,
/// 2 production, 3 serialization), with the record's topic, partition and offset beside.
fn entry(query: &str, error: &ProcessingError, record: Option<&[u8]>, time: i64) -> Value {
    let text = record.map(|r| String::from_utf8_lossy(r).into_owned());
    let (kind, detail) = match error.kind {
        ErrorKind::Deserialization => (
            0,
            json!({
                "target": "value",
                "errorMessage": error.message,
                "recordB64": record.map(|r| base64::engine::general_purpose::STANDARD.encode(r)),
                "cause": [],
                "topic": error.topic,
            }),
        ),
        ErrorKind::RecordProcessing => (1, json!({"errorMessage": error.message, "record": text, "cause": []})),
        ErrorKind::Production => (2, json!({"errorMessage": error.message})),
        ErrorKind::Serialization => (
            3,
            json!({"target": "value", "errorMessage": error.message, "record": text, "cause": [], "topic": error.topic}),
        ),
    };
    let slot = |k: i32| if k == kind { detail.clone() } else { Value::Null };
    json!({
        "level": "ERROR",
        "logger": format!("processing.{query}"),
        "time": time,
        "message": {
            "type": kind,
            "deserializationError": slot(0),
            "recordProcessingError": slot(1),
            "productionError": slot(2),
            "serializationError": slot(3),
            "kafkaStreamsThreadError": null,
            "topic": error.topic,
            "partition": error.partition,
            "offset": error.offset,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: ErrorKind) -> ProcessingError {
        ProcessingError {
            kind,
            message: "Error computing expression: Divide by zero error".into(),
            topic: "INGESTION".into(),
            partition: 2,
            offset: 41,
        }
    }

    #[test]
    fn a_record_processing_error_is_written_in_ksqldbs_shape_with_its_place() {
        let value = entry("CSAS_X_1", &error(ErrorKind::RecordProcessing), Some(br#"{"D":0}"#), 7);
        assert_eq!(value["logger"], "processing.CSAS_X_1");
        assert_eq!(value["level"], "ERROR");
        assert_eq!(value["time"], 7);
        let message = &value["message"];
        assert_eq!(message["type"], 1);
        assert_eq!(message["recordProcessingError"]["errorMessage"], "Error computing expression: Divide by zero error");
        assert_eq!(message["recordProcessingError"]["record"], r#"{"D":0}"#);
        assert_eq!(message["deserializationError"], Value::Null);
        assert_eq!((message["topic"].as_str(), message["partition"].as_i64(), message["offset"].as_i64()), (Some("INGESTION"), Some(2), Some(41)));
    }

    #[test]
    fn a_deserialization_error_carries_the_raw_record_in_base64() {
        let value = entry("Q", &error(ErrorKind::Deserialization), Some(b"\xff{"), 0);
        assert_eq!(value["message"]["type"], 0);
        assert_eq!(value["message"]["deserializationError"]["recordB64"], "/3s=");
        assert_eq!(value["message"]["recordProcessingError"], Value::Null);
    }
}
