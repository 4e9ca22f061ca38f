//! Tables through the server's API against a real broker: a SOURCE table and a CTAS table
//! materialized, answered by pull queries, rebuilt after `kill -9`; tombstones; a record without
//! key counted; SHOW, DESCRIBE and DROP.

mod common;

use std::time::Duration;

use common::{SluiceServer, TestBroker, producer, read_topic};
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};

async fn send(bootstrap: &str, key: Option<&str>, value: Option<&str>) {
    let producer = producer(bootstrap);
    let mut record: FutureRecord<'_, str, str> = FutureRecord::to("readings");
    if let Some(key) = key {
        record = record.key(key);
    }
    if let Some(value) = value {
        record = record.payload(value);
    }
    producer.send(record, Duration::from_secs(30)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tables_are_materialized_queried_by_pull_queries_and_rebuilt_after_kill_9() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;

    server
        .ksql_ok("CREATE SOURCE TABLE LATEST_READING (SENSOR STRING PRIMARY KEY, WATTS INTEGER) WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='JSON', PARTITIONS=1);")
        .await;
    server.ksql_ok("CREATE TABLE HIGH AS SELECT SENSOR, WATTS * 2 AS DOUBLED FROM LATEST_READING WHERE WATTS > 100;").await;

    send(&broker.bootstrap, Some("1"), Some(r#"{"WATTS": 150}"#)).await;
    send(&broker.bootstrap, Some("2"), Some(r#"{"WATTS": 50}"#)).await;
    send(&broker.bootstrap, Some("3"), Some(r#"{"WATTS": 300}"#)).await;
    send(&broker.bootstrap, None, Some(r#"{"WATTS": 999}"#)).await;
    send(&broker.bootstrap, Some("1"), Some(r#"{"WATTS": 90}"#)).await;
    send(&broker.bootstrap, Some("3"), None).await;

    let latest = server.pull_rows("SELECT * FROM LATEST_READING;").await;
    assert_eq!(latest, vec![json!(["1", 90]), json!(["2", 50])], "a tombstone deletes its key");
    assert_eq!(server.pull_rows("SELECT WATTS FROM LATEST_READING WHERE SENSOR = '2';").await, vec![json!([50])]);
    assert!(server.pull_rows("SELECT * FROM LATEST_READING WHERE SENSOR = '3';").await.is_empty());
    assert!(server.pull_rows("SELECT * FROM HIGH;").await.is_empty(), "1 dropped below the filter, 3 was deleted");

    // The CTAS's topic is the table's changelog: upserts, and a tombstone for a row the filter
    // drops and for a deleted key. A record without a key is no row.
    let changes = read_topic(&broker.bootstrap, "HIGH", 5, Duration::from_secs(30));
    let expected: Vec<(Option<String>, String)> = vec![
        (Some("1".into()), r#"{"DOUBLED":300}"#.into()),
        (Some("2".into()), String::new()),
        (Some("3".into()), r#"{"DOUBLED":600}"#.into()),
        (Some("1".into()), String::new()),
        (Some("3".into()), String::new()),
    ];
    assert_eq!(changes, expected);

    let description = server.ksql_ok("DESCRIBE LATEST_READING EXTENDED;").await;
    let source = &description[0]["sourceDescription"];
    assert_eq!(source["type"], "TABLE");
    let statistics = source["statistics"].as_str().unwrap();
    assert!(statistics.contains("materialized: 2 keys"), "{statistics}");
    let errors = source["errorStats"].as_str().unwrap();
    assert!(errors.contains("processing-errors: 1"), "the record without key is counted: {errors}");

    let tables = server.ksql_ok("SHOW TABLES;").await;
    let names: Vec<&str> = tables[0]["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["HIGH", "LATEST_READING"]);
    let streams = server.ksql_ok("SHOW STREAMS;").await;
    assert!(streams[0]["streams"].as_array().unwrap().is_empty(), "{streams}");

    server.kill();
    server.start_again().await;
    send(&broker.bootstrap, Some("4"), Some(r#"{"WATTS": 120}"#)).await;
    assert_eq!(
        server.pull_rows("SELECT * FROM LATEST_READING;").await,
        vec![json!(["1", 90]), json!(["2", 50]), json!(["4", 120])],
        "rebuilt from the topic after kill -9"
    );
    assert_eq!(server.pull_rows("SELECT * FROM HIGH;").await, vec![json!(["4", 240])]);

    let (status, body) = server.ksql("SELECT * FROM NOPE;").await;
    assert_eq!(status, 400, "{body}");
    server.ksql_ok("CREATE TABLE PLAIN (SENSOR STRING PRIMARY KEY, WATTS INTEGER) WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='JSON');").await;
    let response = server
        .client()
        .post(format!("{}/query-stream", server.url))
        .json(&json!({"sql": "SELECT * FROM PLAIN;"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let refusal: Value = response.json().await.unwrap();
    assert!(refusal["message"].as_str().unwrap().contains("The `PLAIN` table isn't queryable."), "{refusal}");

    let (status, body) = server.ksql("DROP STREAM HIGH;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("Incompatible data source type is TABLE"), "{body}");
    server.ksql_ok("DROP TABLE HIGH;").await;
    let (status, body) = server.ksql("CREATE STREAM HIGH_S AS SELECT * FROM LATEST_READING;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("Your SELECT query produces a TABLE"), "{body}");
    let (status, body) = server.ksql("CREATE TABLE NO_KEY AS SELECT WATTS FROM LATEST_READING;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("Key missing from projection"), "{body}");
}
