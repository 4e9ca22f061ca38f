//! The command log: every accepted statement that changes state, in a single-partition topic.
//!
//! A statement is appended before it takes effect; its offset is its command sequence number and
//! names the query it starts. On start the server replays the log to rebuild the catalog, and
//! from then on follows it: statements other servers of the service append are applied here too.

use std::{collections::BTreeMap, sync::Arc};

use rdkafka::Message;
use serde::{Deserialize, Serialize};

use crate::{
    connectors::kafka::{KafkaCluster, PartitionRange, offsets::Checkpoint},
    error::{Result, SluiceError},
};

/// An entry of the log with its sequence number: the command, or why it is not one.
pub type LoggedCommand = (i64, Result<Command, UnreadableCommand>);

/// One entry of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Command {
    pub statement: String,
    /// Request properties in force for the statement (`auto.offset.reset`, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Where the query the statement creates starts, as the server that accepted it set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Checkpoint>,
}

/// A command-log entry that is not a command.
#[derive(Debug, Clone)]
pub struct UnreadableCommand {
    pub text: String,
    pub error: String,
}

pub struct CommandLog {
    topic: String,
    cluster: Arc<KafkaCluster>,
}

impl CommandLog {
    pub async fn open(cluster: Arc<KafkaCluster>, service_id: &str) -> Result<Self> {
        let topic = format!("_sluice-{service_id}_command_topic");
        cluster
            .ensure_topic(&topic, 1, 1, &[("retention.ms", "-1")])
            .await?;
        Ok(Self { topic, cluster })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Appends a command and returns its sequence number once it is durable.
    pub async fn append(&self, command: &Command) -> Result<i64> {
        let value = serde_json::to_vec(command)?;
        let (_, offset) = self.cluster.producer().send(&self.topic, Some(0), None, Some(&value), None).await?;
        Ok(offset)
    }

    /// The sequence number the next command appended gets: every command before it is in the log.
    pub async fn end(&self) -> Result<i64> {
        let cluster = self.cluster.clone();
        let topic = self.topic.clone();
        let (_, high) = tokio::task::spawn_blocking(move || cluster.watermark(&topic, 0))
            .await
            .map_err(|e| SluiceError::Internal(e.to_string()))??;
        Ok(high)
    }

    /// Every entry so far, in order, and the sequence number after the last.
    pub async fn replay(&self) -> Result<(Vec<LoggedCommand>, i64)> {
        let cluster = self.cluster.clone();
        let topic = self.topic.clone();
        let (low, high) = tokio::task::spawn_blocking(move || cluster.watermark(&topic, 0))
            .await
            .map_err(|e| SluiceError::Internal(e.to_string()))??;
        Ok((self.read(low, high).await?, high))
    }

    /// The entries from sequence number `from` up to `until` (exclusive), in order, each with
    /// its sequence number: the command, or why the entry cannot be read as one (with its text).
    pub async fn read(&self, from: i64, until: i64) -> Result<Vec<LoggedCommand>> {
        let cluster = self.cluster.clone();
        let range = PartitionRange {
            topic: self.topic.clone(),
            partition: 0,
            from,
            until,
        };
        let values = tokio::task::spawn_blocking(move || {
            let mut values = Vec::new();
            cluster.read_ranges(&[range], |message| {
                if let Some(value) = message.payload() {
                    values.push((message.offset(), value.to_vec()));
                }
            })?;
            Ok::<_, SluiceError>(values)
        })
        .await
        .map_err(|e| SluiceError::Internal(e.to_string()))??;
        Ok(values
            .into_iter()
            .map(|(offset, value)| {
                let command = serde_json::from_slice(&value).map_err(|e| UnreadableCommand {
                    text: String::from_utf8_lossy(&value).into_owned(),
                    error: format!("the command log entry is not a command: {e}"),
                });
                (offset, command)
            })
            .collect())
    }
}
