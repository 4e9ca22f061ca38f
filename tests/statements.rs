//! Statement semantics through `/ksql` against a real broker: SET, TERMINATE, DROP, formats,
//! INSERT VALUES, and the default embedded broker across a graceful restart.

mod common;

use std::time::Duration;

use common::{SluiceServer, TestBroker, read_topic};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_and_delimited_streams_with_keys_route_and_drop() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;

    server.ksql_ok("CREATE STREAM UNORGANIZED_TEXT (LINE STRING) WITH (KAFKA_TOPIC='UNORGANIZED', VALUE_FORMAT='KAFKA', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM READINGS (ID STRING KEY, NODE STRING, WATTS INTEGER) WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='DELIMITED', PARTITIONS=2);").await;
    let body = server
        .ksql_ok("SET 'auto.offset.reset'='earliest';\nCREATE STREAM LOUD WITH (VALUE_FORMAT='JSON') AS SELECT UCASE(LINE) AS LINE, LEN(LINE) AS N FROM UNORGANIZED_TEXT;\nCREATE STREAM BIG AS SELECT ID, NODE, WATTS * 2 AS DOUBLED FROM READINGS WHERE WATTS > 70000;")
        .await;
    assert_eq!(body.as_array().unwrap().len(), 2, "{body}");

    for line in ["grid hums", "rumours of data"] {
        let (status, body) = server.ksql(&format!("INSERT INTO UNORGANIZED_TEXT (LINE) VALUES ('{line}');")).await;
        assert_eq!((status, body.clone()), (200, Value::Array(vec![])), "{body}");
    }
    for (id, node, watts) in [("1", "Node1", 75000), ("2", "Node2", 65000), ("4", "Node4", 80000)] {
        server.ksql_ok(&format!("INSERT INTO READINGS (ID, NODE, WATTS) VALUES ('{id}', '{node}', {watts});")).await;
    }

    let loud = read_topic(&broker.bootstrap, "LOUD", 2, Duration::from_secs(60));
    let mut values: Vec<&str> = loud.iter().map(|(_, v)| v.as_str()).collect();
    values.sort();
    assert_eq!(values, vec![r#"{"LINE":"GRID HUMS","N":9}"#, r#"{"LINE":"RUMOURS OF DATA","N":15}"#]);

    let big = read_topic(&broker.bootstrap, "BIG", 2, Duration::from_secs(60));
    let mut rows: Vec<(Option<String>, String)> = big;
    rows.sort();
    assert_eq!(
        rows,
        vec![(Some("1".into()), "1,Node1,150000".into()), (Some("4".into()), "4,Node4,160000".into())]
    );

    let description = server.ksql_ok("DESCRIBE BIG;").await;
    let fields = &description[0]["sourceDescription"]["fields"];
    assert_eq!(fields[0]["name"], "ID");
    assert_eq!(fields[0]["type"], "KEY");
    assert_eq!(fields[1]["schema"]["type"], "STRING");
    assert_eq!(fields[2]["name"], "DOUBLED");

    let (status, body) = server.ksql("DROP STREAM READINGS;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("The following queries read from this source"), "{body}");

    let queries = server.ksql_ok("SHOW QUERIES;").await;
    let big_query = queries[0]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["sinks"][0] == "BIG")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.ksql_ok(&format!("TERMINATE {big_query};")).await;
    server.ksql_ok("DROP STREAM BIG;").await;
    server.ksql_ok("DROP STREAM READINGS;").await;
    let streams = server.ksql_ok("SHOW STREAMS;").await;
    let names: Vec<&str> = streams[0]["streams"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["LOUD", "UNORGANIZED_TEXT"]);
    let queries = server.ksql_ok("SHOW QUERIES;").await;
    assert_eq!(queries[0]["queries"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_embedded_broker_keeps_streams_and_records_across_a_graceful_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start_embedded(data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM NOTES (TEXT STRING) WITH (KAFKA_TOPIC='notes', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM SHOUTS AS SELECT UCASE(TEXT) AS TEXT FROM NOTES;").await;
    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('before');").await;
    assert_eq!(read_topic(&server.bootstrap, "SHOUTS", 1, Duration::from_secs(60)).len(), 1);

    assert!(server.terminate(), "sluice-server exits cleanly on SIGTERM");
    server.start_again().await;

    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('after');").await;
    let shouts = read_topic(&server.bootstrap, "SHOUTS", 2, Duration::from_secs(60));
    let values: Vec<&str> = shouts.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec![r#"{"TEXT":"BEFORE"}"#, r#"{"TEXT":"AFTER"}"#]);

    let (status, body) = server.ksql("DROP STREAM SHOUTS DELETE TOPIC;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("DELETE TOPIC on the embedded broker"), "{body}");
    let streams = server.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(streams[0]["streams"].as_array().unwrap().len(), 2, "nothing was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_broker_shows_on_queries_and_nothing_is_lost_when_it_returns() {
    let mut broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM NOTES (TEXT STRING) WITH (KAFKA_TOPIC='notes', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM SHOUTS AS SELECT UCASE(TEXT) AS TEXT FROM NOTES;").await;
    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('one');").await;
    assert_eq!(read_topic(&broker.bootstrap, "SHOUTS", 1, Duration::from_secs(60)).len(), 1);

    broker.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let state = loop {
        let queries = server.ksql_ok("SHOW QUERIES;").await;
        let state = queries[0]["queries"][0]["state"].as_str().unwrap().to_string();
        if state == "ERROR" || std::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(state, "ERROR", "a query whose broker is gone says so");

    broker.start_again().await;
    let producer = common::producer(&broker.bootstrap);
    common::produce(&producer, "notes", "k", r#"{"text": "two"}"#).await;
    let shouts = read_topic(&broker.bootstrap, "SHOUTS", 2, Duration::from_secs(90));
    let values: Vec<&str> = shouts.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec![r#"{"TEXT":"ONE"}"#, r#"{"TEXT":"TWO"}"#]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let queries = server.ksql_ok("SHOW QUERIES;").await;
        if queries[0]["queries"][0]["state"] == "RUNNING" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the query returns to RUNNING: {queries}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
