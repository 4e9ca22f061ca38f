//! The command log: every accepted statement that changes state, in a single-partition topic.
//!
//! A statement is appended before it takes effect; its offset is its command sequence number and
//! names the query it starts. On start the server replays the log to rebuild the catalog.

use std::{collections::BTreeMap, sync::Arc};

use serde::{Deserialize, Serialize};

use crate::{
    connectors::kafka::KafkaCluster,
    error::{Result, SluiceError},
};

/// One entry of the log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Command {
    pub statement: String,
    /// Request properties in force for the statement (`auto.offset.reset`, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
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

    /// Every entry so far, in order, with its sequence number: the command, or why the entry
    /// cannot be read as one (with its text).
    pub async fn replay(&self) -> Result<Vec<(i64, Result<Command, UnreadableCommand>)>> {
        let cluster = self.cluster.clone();
        let topic = self.topic.clone();
        let records = tokio::task::spawn_blocking(move || cluster.read_partition_to_end(&topic))
            .await
            .map_err(|e| SluiceError::Internal(e.to_string()))??;
        Ok(records
            .into_iter()
            .filter_map(|r| r.value.map(|v| (r.offset, v)))
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
