//! The HTTP side: sluice-server's ksqlDB REST API, and nothing else.

use anyhow::{Context, Result};
use futures::StreamExt;
use serde_json::{Value, json};

pub struct Client {
    base: String,
    http: reqwest::Client,
}

/// A statement the server refused, as ksqlDB's error body says.
#[derive(Debug)]
pub struct Refusal {
    pub message: String,
}

pub enum Answer {
    Entities(Vec<Value>),
    Refused(Refusal),
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn info(&self) -> Result<Value> {
        let response = self.http.get(format!("{}/info", self.base)).send().await?;
        Ok(response.json().await?)
    }

    /// Runs statements through `/ksql`, with the session's properties and variables.
    pub async fn ksql(&self, sql: &str, properties: &Value, variables: &Value) -> Result<Answer> {
        let response = self
            .http
            .post(format!("{}/ksql", self.base))
            .json(&json!({"ksql": sql, "streamsProperties": properties, "sessionVariables": variables}))
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        let status = response.status();
        let body: Value = response.json().await.context("the server's answer is not JSON")?;
        if status.is_success() {
            Ok(Answer::Entities(body.as_array().cloned().unwrap_or_default()))
        } else {
            Ok(Answer::Refused(Refusal {
                message: body["message"].as_str().unwrap_or("the server refused the statement").to_string(),
            }))
        }
    }

    /// Starts a push query or PRINT on `/query-stream`; yields its lines as they arrive.
    pub async fn stream(
        &self,
        sql: &str,
        properties: &Value,
    ) -> Result<Result<impl futures::Stream<Item = Result<String>> + use<>, Refusal>> {
        let response = self
            .http
            .post(format!("{}/query-stream", self.base))
            .header("Accept", "application/vnd.ksqlapi.delimited.v1")
            .json(&json!({"sql": sql, "properties": properties}))
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base))?;
        if !response.status().is_success() {
            let body: Value = response.json().await.unwrap_or_default();
            return Ok(Err(Refusal {
                message: body["message"].as_str().unwrap_or("the server refused the query").to_string(),
            }));
        }
        let mut buffer = String::new();
        let lines = response.bytes_stream().flat_map(move |chunk| {
            let lines: Vec<Result<String>> = match chunk {
                Ok(bytes) => {
                    buffer.push_str(&String::from_utf8_lossy(&bytes));
                    let mut complete = Vec::new();
                    while let Some(end) = buffer.find('\n') {
                        complete.push(Ok(buffer[..end].to_string()));
                        buffer.drain(..=end);
                    }
                    complete
                }
                Err(e) => vec![Err(e.into())],
            };
            futures::stream::iter(lines)
        });
        Ok(Ok(lines))
    }

    pub async fn close_query(&self, query_id: &str) -> Result<()> {
        self.http
            .post(format!("{}/close-query", self.base))
            .json(&json!({"queryId": query_id}))
            .send()
            .await?;
        Ok(())
    }
}
