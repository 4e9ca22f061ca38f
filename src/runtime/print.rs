//! `PRINT topic`: a topic's records as ksqlDB prints them, one line each, as they arrive.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use tokio::sync::mpsc;

use crate::{
    connectors::kafka::KafkaCluster,
    error::{Result, SluiceError},
    parser::Print,
};

/// Resolves the topic as ksqlDB does: exactly, or ignoring case when the name was not quoted.
pub fn resolve_topic(cluster: &KafkaCluster, print: &Print) -> Result<String> {
    let topics = cluster.topics()?;
    if let Some(t) = topics.iter().find(|t| t.name == print.topic) {
        return Ok(t.name.clone());
    }
    if !print.quoted {
        let matches: Vec<_> = topics.iter().filter(|t| t.name.eq_ignore_ascii_case(&print.topic)).collect();
        if let [only] = matches.as_slice() {
            return Ok(only.name.clone());
        }
    }
    Err(SluiceError::NotFound(format!(
        "Could not find topic '{}', or the KSQL user does not have permissions to list the topic. Topic names are case-sensitive.",
        print.topic
    )))
}

/// Starts printing on a thread of its own; lines go to `lines` until `stop` is set, the
/// receiver goes away or the limit is reached.
pub fn start(
    cluster: Arc<KafkaCluster>,
    topic: String,
    print: Print,
    lines: mpsc::Sender<String>,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let partitions = cluster
        .topic(&topic)?
        .ok_or_else(|| SluiceError::NotFound(format!("topic {topic} does not exist")))?
        .partitions;
    let marks = cluster.watermarks(&topic, partitions)?;
    let consumer: BaseConsumer = cluster.consumer_config().create()?;
    let mut assignment = TopicPartitionList::new();
    for (p, (low, high)) in marks.into_iter().enumerate() {
        let start = if print.from_beginning { low } else { high };
        assignment.add_partition_offset(&topic, p as i32, Offset::Offset(start))?;
    }
    consumer.assign(&assignment)?;
    std::thread::Builder::new()
        .name(format!("print-{topic}"))
        .spawn(move || {
            let mut seen = 0u64;
            let mut printed = 0u64;
            while !stop.load(Ordering::SeqCst) && !lines.is_closed() {
                let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
                seen += 1;
                if (seen - 1) % print.interval != 0 {
                    continue;
                }
                if printed == 0 {
                    let key = format_of(message.key());
                    let value = format_of(message.payload());
                    if lines.blocking_send(format!("Key format: {key}")).is_err()
                        || lines.blocking_send(format!("Value format: {value}")).is_err()
                    {
                        break;
                    }
                }
                let line = format!(
                    "rowtime: {}, key: {}, value: {}, partition: {}",
                    rowtime(message.timestamp().to_millis()),
                    text(message.key()),
                    text(message.payload()),
                    message.partition()
                );
                if lines.blocking_send(line).is_err() {
                    break;
                }
                printed += 1;
                if print.limit.is_some_and(|l| printed >= l) {
                    break;
                }
            }
        })?;
    Ok(())
}

fn format_of(bytes: Option<&[u8]>) -> &'static str {
    match bytes {
        None => "¯\\_(ツ)_/¯ - no data processed",
        Some(b) if serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok() && b.first() == Some(&b'{') => "JSON or KAFKA_STRING",
        Some(b) if std::str::from_utf8(b).is_ok() => "KAFKA_STRING",
        Some(_) => "KAFKA_BYTES",
    }
}

fn text(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "<null>".into(),
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn rowtime(ms: Option<i64>) -> String {
    match ms.and_then(chrono::DateTime::from_timestamp_millis) {
        Some(t) => t.format("%Y/%m/%d %H:%M:%S%.3f Z").to_string(),
        None => "N/A".into(),
    }
}
