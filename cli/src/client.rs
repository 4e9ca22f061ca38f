//! The HTTP side: sluice-server's ksqlDB REST API, and nothing else.

use std::path::Path;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::{Value, json};

/// Where the server is, who the user is there, and the HTTP client that reaches it.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    /// `-u/--user` and `-p/--password`: sent as HTTP Basic credentials.
    pub credentials: Option<(String, String)>,
    pub http: reqwest::Client,
}

/// An HTTP client trusting the system's authorities and the PEM ones in `ca`, presenting the
/// PEM certificate chain and key in `identity` to a server that asks for a client certificate.
pub fn http_client(ca: Option<&Path>, identity: Option<&Path>) -> Result<reqwest::Client> {
    let read = |path: &Path, what: &str| std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()));
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(ca) = ca {
        let certificates = reqwest::Certificate::from_pem_bundle(&read(ca, "the --ca file")?)
            .with_context(|| format!("{} holds no PEM certificate Sluice can read", ca.display()))?;
        if certificates.is_empty() {
            bail!("{} holds no PEM certificate", ca.display());
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let Some(identity) = identity {
        let pem = read(identity, "the --client-cert file")?;
        builder = builder.identity(
            reqwest::Identity::from_pem(&pem)
                .with_context(|| format!("{} must hold a PEM certificate chain and its private key", identity.display()))?,
        );
    }
    Ok(builder.build()?)
}

pub struct Client {
    base: String,
    credentials: Option<(String, String)>,
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
    pub fn new(endpoint: &Endpoint) -> Client {
        Client {
            base: endpoint.url.trim_end_matches('/').to_string(),
            credentials: endpoint.credentials.clone(),
            http: endpoint.http.clone(),
        }
    }

    /// A request to `path`, with the user's credentials.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.credentials {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        }
    }

    /// Sends `request`; a refused user is an error, in ksqlDB's CLI's words.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request.send().await.with_context(|| format!("cannot reach the server at {}", self.base))?;
        match response.status() {
            reqwest::StatusCode::UNAUTHORIZED => bail!("Could not authenticate successfully with the supplied credentials."),
            reqwest::StatusCode::FORBIDDEN => bail!("You are forbidden from using this cluster."),
            _ => Ok(response),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn info(&self) -> Result<Value> {
        let response = self.send(self.request(reqwest::Method::GET, "/info")).await?;
        Ok(response.json().await?)
    }

    /// Runs statements through `/ksql`, with the session's properties and variables.
    pub async fn ksql(&self, sql: &str, properties: &Value, variables: &Value) -> Result<Answer> {
        let request = self
            .request(reqwest::Method::POST, "/ksql")
            .json(&json!({"ksql": sql, "streamsProperties": properties, "sessionVariables": variables}));
        let response = self.send(request).await?;
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
        let request = self
            .request(reqwest::Method::POST, "/query-stream")
            .header("Accept", "application/vnd.ksqlapi.delimited.v1")
            .json(&json!({"sql": sql, "properties": properties}));
        let response = self.send(request).await?;
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
        self.send(self.request(reqwest::Method::POST, "/close-query").json(&json!({"queryId": query_id}))).await?;
        Ok(())
    }
}
