//! The PowerGrid routing of the seed, verbatim, through the HTTP API against a real broker.

mod common;

use std::time::Duration;

use common::{CREATE_INGESTION, SluiceServer, TestBroker, powergrid_record, produce, producer, read_topic, routed_record};
use futures::StreamExt;
use serde_json::Value;

fn route_sensor(id: u32) -> String {
    format!(
        "CREATE
STREAM SENSOR_ID_{id} AS
SELECT *
FROM STREAM_INGESTION
WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '{id}';"
    )
}

async fn create_ingestion_topic(broker: &TestBroker) {
    let cluster = sluice::connectors::kafka::KafkaCluster::connect(&broker.bootstrap).unwrap();
    cluster.ensure_topic("INGESTION", 3, 1, &[]).await.unwrap();
}

/// A broker with a 3-partition `INGESTION` topic and a server where `STREAM_INGESTION` exists.
async fn start_with_ingestion() -> (TestBroker, tempfile::TempDir, SluiceServer) {
    let broker = TestBroker::start().await;
    create_ingestion_topic(&broker).await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok(CREATE_INGESTION).await;
    (broker, data, server)
}

async fn describe_extended(server: &SluiceServer, stream: &str) -> Value {
    let body = server.ksql_ok(&format!("DESCRIBE EXTENDED {stream};")).await;
    body[0]["sourceDescription"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_record_lands_in_exactly_its_sensors_topic_and_survives_a_restart() {
    let broker = TestBroker::start().await;
    create_ingestion_topic(&broker).await;
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;

    let created = server.ksql_ok(CREATE_INGESTION).await;
    assert_eq!(created[0]["commandStatus"]["message"], "Stream created");
    for id in 1..=6 {
        let body = server.ksql_ok(&route_sensor(id)).await;
        let query_id = body[0]["commandStatus"]["queryId"].as_str().unwrap().to_string();
        assert!(query_id.starts_with(&format!("CSAS_SENSOR_ID_{id}_")), "{query_id}");
    }

    let producer = producer(&broker.bootstrap);
    let per_sensor = 20;
    for n in 0..per_sensor {
        for sensor in 1..=6 {
            produce(&producer, "INGESTION", &sensor.to_string(), &powergrid_record(sensor, n)).await;
        }
    }
    produce(&producer, "INGESTION", "9", r#"{"payload": "{not json", "correlation_id": "x", "created_at": 1.0, "schema_version": 1}"#).await;
    produce(&producer, "INGESTION", "9", "this is not JSON at all").await;

    for sensor in 1..=6u32 {
        let records = read_topic(&broker.bootstrap, &format!("SENSOR_ID_{sensor}"), per_sensor as usize, Duration::from_secs(60));
        assert_eq!(records.len(), per_sensor as usize, "sensor {sensor} got {} records", records.len());
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in &records {
            assert_eq!(key.as_deref(), Some(sensor.to_string().as_str()));
            let parsed: Value = serde_json::from_str(value).unwrap();
            let payload: Value = serde_json::from_str(parsed["PAYLOAD"].as_str().unwrap()).unwrap();
            assert_eq!(payload["sensor_id"], sensor);
            seen.push(parsed["CORRELATION_ID"].as_str().unwrap().to_string());
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), per_sensor as usize, "sensor {sensor} has duplicates");
        let written = routed_record(&powergrid_record(sensor, 0));
        let values: Vec<Value> = records.iter().map(|(_, v)| serde_json::from_str(v).unwrap()).collect();
        assert!(values.contains(&written), "columns named as ksqlDB names them, each value as read: {values:?}");
    }

    let description = describe_extended(&server, "SENSOR_ID_3").await;
    let errors = description["errorStats"].as_str().unwrap();
    assert!(errors.contains("processing-errors: 2"), "{errors}");
    assert!(errors.contains("topic INGESTION"), "{errors}");

    // Records produced while the server is down are routed once it is back.
    server.kill();
    for sensor in 1..=6 {
        produce(&producer, "INGESTION", &sensor.to_string(), &powergrid_record(sensor, 1000)).await;
    }
    server.restart().await;
    let queries = server.ksql_ok("SHOW QUERIES;").await;
    assert_eq!(queries[0]["queries"].as_array().unwrap().len(), 6);
    for sensor in 1..=6u32 {
        let records = read_topic(&broker.bootstrap, &format!("SENSOR_ID_{sensor}"), per_sensor as usize + 1, Duration::from_secs(60));
        let wanted = routed_record(&powergrid_record(sensor, 1000));
        let found = records.iter().filter(|(_, v)| serde_json::from_str::<Value>(v).unwrap() == wanted).count();
        assert_eq!(found, 1, "sensor {sensor} after restart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_statements_get_a_40001_with_line_and_column() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;

    let (status, body) = server.ksql("CREATE STREAM S (A STRING)\nWITH KAFKA_TOPIC='t';").await;
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], 40001);
    assert_eq!(body["@type"], "statement_error");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("line 2:6"), "{message}");
    assert!(message.contains("expected '(' to open the WITH properties"), "{message}");

    let (status, body) = server.ksql("DESCRIBE NOPE;").await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Could not find STREAM/TABLE 'NOPE' in the Metastore");

    let (status, body) = server.ksql("SELECT * FROM NOPE EMIT CHANGES;").await;
    assert_eq!(status, 400);
    assert_eq!(body["error_code"], 40002);

    let info: Value = server.client().get(format!("{}/info", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["KsqlServerInfo"]["ksqlServiceId"], "default_");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_query_streams_rows_in_the_delimited_format() {
    let (broker, _data, server) = start_with_ingestion().await;
    server.ksql_ok(&route_sensor(3)).await;
    let producer = producer(&broker.bootstrap);
    for n in 0..3 {
        produce(&producer, "INGESTION", "3", &powergrid_record(3, n)).await;
        produce(&producer, "INGESTION", "4", &powergrid_record(4, n)).await;
    }
    let body = server.push_query_to_limit("SELECT * FROM SENSOR_ID_3 EMIT CHANGES LIMIT 3;").await;
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 4, "{body}");
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["columnNames"], serde_json::json!(["PAYLOAD", "CORRELATION_ID", "CREATED_AT", "SCHEMA_VERSION"]));
    assert!(header["queryId"].as_str().unwrap().starts_with("transient_SENSOR_ID_3_"));
    for line in &lines[1..] {
        let row: Value = serde_json::from_str(line).unwrap();
        assert!(row[0].as_str().unwrap().contains("\"sensor_id\":3"), "{line}");
    }

    let printed = server
        .client()
        .post(format!("{}/query-stream", server.url))
        .json(&serde_json::json!({"sql": "PRINT ingestion FROM BEGINNING LIMIT 2;"}))
        .send()
        .await
        .unwrap();
    assert_eq!(printed.status(), 200);
    let text = tokio::time::timeout(Duration::from_secs(60), printed.text()).await.unwrap().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "Key format: KAFKA_STRING");
    assert_eq!(lines[1], "Value format: JSON or KAFKA_STRING");
    assert!(lines[2].starts_with("rowtime: "), "{}", lines[2]);
    assert!(lines[2].contains(", value: {\"payload\""), "{}", lines[2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_query_endpoint_streams_rows_and_close_query_ends_a_push_query() {
    let (broker, _data, server) = start_with_ingestion().await;
    server
        .ksql_ok("CREATE STREAM BY_CORRELATION AS SELECT CORRELATION_ID, EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR FROM STREAM_INGESTION PARTITION BY CORRELATION_ID;")
        .await;
    let producer = producer(&broker.bootstrap);
    for n in 0..2 {
        produce(&producer, "INGESTION", "5", &powergrid_record(5, n)).await;
    }
    let rekeyed = read_topic(&broker.bootstrap, "BY_CORRELATION", 2, Duration::from_secs(60));
    let mut rekeyed: Vec<_> = rekeyed.into_iter().collect();
    rekeyed.sort();
    assert_eq!(
        rekeyed,
        vec![
            (Some("05-000000".to_string()), r#"{"SENSOR":"5"}"#.to_string()),
            (Some("05-000001".to_string()), r#"{"SENSOR":"5"}"#.to_string()),
        ]
    );

    // /query without an Accept header answers in ksqlDB's StreamedRow array.
    let response = server
        .client()
        .post(format!("{}/query", server.url))
        .header("Accept", "application/vnd.ksql.v1+json")
        .json(&serde_json::json!({
            "ksql": "SELECT SENSOR FROM BY_CORRELATION EMIT CHANGES LIMIT 2;",
            "streamsProperties": {"auto.offset.reset": "earliest"}
        }))
        .send()
        .await
        .unwrap();
    let text = tokio::time::timeout(Duration::from_secs(60), response.text()).await.unwrap().unwrap();
    let rows: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(rows[0]["header"]["schema"], "`SENSOR` STRING");
    assert_eq!(rows[1]["row"]["columns"], serde_json::json!(["5"]));
    assert_eq!(rows[2]["row"]["columns"], serde_json::json!(["5"]));
    assert_eq!(rows[3]["finalMessage"], "Limit Reached");

    // A push query without LIMIT runs until /close-query names it.
    let response = server
        .client()
        .post(format!("{}/query-stream", server.url))
        .header("Accept", "application/json")
        .json(&serde_json::json!({"sql": "SELECT * FROM BY_CORRELATION EMIT CHANGES;"}))
        .send()
        .await
        .unwrap();
    let mut stream = response.bytes_stream();
    let first = String::from_utf8(stream.next().await.unwrap().unwrap().to_vec()).unwrap();
    let header: Value = serde_json::from_str(first.trim_start_matches('[')).unwrap();
    let query_id = header["queryId"].as_str().unwrap().to_string();
    let closed = server.close_query(&query_id).await;
    assert_eq!(closed.status(), 200);
    let rest = tokio::time::timeout(Duration::from_secs(30), async {
        let mut rest = String::new();
        while let Some(chunk) = stream.next().await {
            rest.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        rest
    })
    .await
    .expect("the response ends once the query is closed");
    assert_eq!(rest, "]");
    let again = server.close_query(&query_id).await;
    assert_eq!(again.status(), 400);
}
