//! Clients written for ksqlDB work against sluice-server unchanged, over HTTP/1.1 and h2c.

mod common;

use std::{path::PathBuf, process::Command};

use common::{SluiceServer, TestBroker, python};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ksql_python_ng_creates_streams_and_runs_a_push_query_over_http2() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ksql_python_ng.py");
    let url = server.url.clone();
    let bootstrap = broker.bootstrap.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python()).arg(script).arg(url).arg(bootstrap).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "ksql-python-ng failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_answers_cleartext_http2_with_prior_knowledge() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = client
        .post(format!("{}/ksql", server.url))
        .json(&serde_json::json!({"ksql": "SHOW STREAMS;"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body[0]["@type"], "streams");
    let health: Value = client.get(format!("{}/healthcheck", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["isHealthy"], true);
}
