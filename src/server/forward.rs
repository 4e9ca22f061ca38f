//! Pull queries sent on to the server running the query that writes their table, which answers
//! once that query's output reflects its input as it is (ksqlDB's routing to the active host);
//! when that server cannot be reached, this server's own copy of the table answers.

use std::time::Duration;

use axum::{
    body::Body,
    http::{HeaderMap, header},
    response::Response,
};
use futures::TryStreamExt;
use serde_json::{Map, Value};
use tracing::warn;

use crate::{
    config::TlsSettings,
    error::{Result, SluiceError},
    handler::{Engine, placement::Task},
};

/// Set on a request one server sends another: the receiver answers it itself.
pub const SKIP_FORWARDING: &str = "request.ksql.query.pull.skip.forwarding";
/// Each row of a pull query names the server that read it (`sourceHost`).
pub const DEBUG_REQUEST: &str = "request.ksql.debug.request";
/// Set on a request one server sends another.
const INTERNAL_REQUEST: &str = "request.ksql.internal.request";

/// How long a server that holds a table's query may take to accept a forwarded connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How a pull query may be routed, read from its request's `requestProperties`.
pub struct Routing {
    /// The request as received, to send on; `None` when it came from another server.
    pub origin: Option<Origin>,
    /// Whether each row names the server that read it.
    pub debug: bool,
}

/// A request as it arrived: its path, the headers sent on, and its body.
pub struct Origin {
    path: &'static str,
    headers: HeaderMap,
    body: Map<String, Value>,
}

/// Whether a request property is set: `true`, or the text `true` in any case.
fn flag(properties: &Map<String, Value>, name: &str) -> bool {
    match properties.get(name) {
        Some(Value::Bool(set)) => *set,
        Some(Value::String(text)) => text.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl Routing {
    /// The routing of a request to `path` with `headers` and the JSON object `body`.
    pub fn of(path: &'static str, headers: &HeaderMap, body: &[u8]) -> Routing {
        let body = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(body)) => body,
            _ => Map::new(),
        };
        let properties = match body.get("requestProperties") {
            Some(Value::Object(properties)) => properties.clone(),
            _ => Map::new(),
        };
        let mut sent_on = HeaderMap::new();
        for name in [header::AUTHORIZATION, header::ACCEPT] {
            if let Some(value) = headers.get(&name) {
                sent_on.insert(name, value.clone());
            }
        }
        Routing {
            origin: (!flag(&properties, SKIP_FORWARDING)).then_some(Origin { path, headers: sent_on, body }),
            debug: flag(&properties, DEBUG_REQUEST),
        }
    }
}

/// The HTTP client one server reaches the others with: it trusts the listener's truststore as
/// well as the system's authorities, and shows the listener's own certificate when asked for one.
pub fn peer_client(tls: Option<&TlsSettings>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().no_proxy().connect_timeout(CONNECT_TIMEOUT);
    if let Some(tls) = tls {
        let read = |path: &std::path::Path| {
            std::fs::read(path).map_err(|e| SluiceError::Config(format!("reading {}: {e}", path.display())))
        };
        let unreadable = |e: reqwest::Error| SluiceError::Config(format!("TLS between servers: {e}"));
        if let Some(truststore) = &tls.truststore {
            for authority in reqwest::Certificate::from_pem_bundle(&read(truststore)?).map_err(unreadable)? {
                builder = builder.add_root_certificate(authority);
            }
        }
        builder = builder.identity(reqwest::Identity::from_pem(&read(&tls.keystore)?).map_err(unreadable)?);
    }
    builder.build().map_err(|e| SluiceError::Config(format!("HTTP client between servers: {e}")))
}

/// The other live server holding the query that writes `table`, if one does; `None` when this
/// server holds it, when no query writes the table (every server reads its topic alike), or
/// when its holder is not alive.
pub fn owner(engine: &Engine, table: &str) -> Option<String> {
    let (_, writers) = engine.catalog.queries_of(table);
    let holders = engine.placement.holders();
    let membership = &engine.placement.membership;
    writers
        .iter()
        .find_map(|writer| holders.get(&Task::Query(writer.id.clone())))
        .filter(|holder| holder.as_str() != membership.me() && membership.is_live(holder))
        .cloned()
}

/// Sends `origin` on to `owner` and streams its answer back; `None`, logged, when `owner`
/// cannot be reached or fails, for this server to answer itself.
pub async fn forward(client: &reqwest::Client, owner: &str, origin: &Origin) -> Option<Response> {
    let mut body = origin.body.clone();
    let properties = body.entry("requestProperties").or_insert_with(|| Value::Object(Map::new()));
    if !properties.is_object() {
        *properties = Value::Object(Map::new());
    }
    if let Value::Object(properties) = properties {
        properties.insert(SKIP_FORWARDING.into(), Value::Bool(true));
        properties.insert(INTERNAL_REQUEST.into(), Value::Bool(true));
    }
    let url = format!("{}{}", owner.trim_end_matches('/'), origin.path);
    let answer = client.post(&url).headers(origin.headers.clone()).json(&body).send().await;
    let response = match answer {
        Ok(response) if !response.status().is_server_error() => response,
        Ok(response) => {
            warn!(%owner, status = %response.status(), "the server holding a pull query's table failed it; answering from this server's copy");
            return None;
        }
        Err(e) => {
            warn!(%owner, error = %e, "the server holding a pull query's table cannot be reached; answering from this server's copy");
            return None;
        }
    };
    let mut answer = Response::builder().status(response.status());
    if let Some(content_type) = response.headers().get(header::CONTENT_TYPE) {
        answer = answer.header(header::CONTENT_TYPE, content_type.clone());
    }
    answer
        .body(Body::from_stream(response.bytes_stream().map_err(std::io::Error::other)))
        .map_err(|e| warn!(error = %e, "a forwarded pull query's answer could not be relayed"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routing(body: &str) -> Routing {
        Routing::of("/query", &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn a_request_is_forwarded_unless_it_says_it_was() {
        assert!(routing(r#"{"ksql": "SELECT * FROM T;"}"#).origin.is_some());
        assert!(routing(r#"{"ksql": "SELECT * FROM T;", "requestProperties": null}"#).origin.is_some());
        assert!(routing(r#"{"ksql": "x", "requestProperties": {"request.ksql.query.pull.skip.forwarding": true}}"#).origin.is_none());
        assert!(routing(r#"{"ksql": "x", "requestProperties": {"request.ksql.query.pull.skip.forwarding": "TRUE"}}"#).origin.is_none());
        assert!(routing(r#"{"ksql": "x", "requestProperties": {"request.ksql.query.pull.skip.forwarding": false}}"#).origin.is_some());
    }

    #[test]
    fn debug_requests_are_read_in_either_form() {
        assert!(routing(r#"{"requestProperties": {"request.ksql.debug.request": true}}"#).debug);
        assert!(routing(r#"{"requestProperties": {"request.ksql.debug.request": "true"}}"#).debug);
        assert!(!routing(r#"{"requestProperties": {}}"#).debug);
    }

    #[test]
    fn only_credentials_and_the_wanted_layout_are_sent_on() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Basic YTpi".parse().unwrap());
        headers.insert(header::ACCEPT, "application/vnd.ksql.v1+json".parse().unwrap());
        headers.insert(header::COOKIE, "c=1".parse().unwrap());
        let origin = Routing::of("/query", &headers, b"{}").origin.unwrap();
        assert_eq!(origin.headers.len(), 2);
        assert!(origin.headers.get(header::COOKIE).is_none());
    }
}
