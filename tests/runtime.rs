//! The query runtime against a real broker, through the server's API: one bad row never stalls
//! a source, a stream's definition (not its name) decides what a query reads, ksqlDB's property
//! names, supervision of panicking tasks, bounded stops while Kafka is away, and a command log
//! entry that can no longer be applied.

mod common;

use std::time::{Duration, Instant};

use common::{SluiceServer, TestBroker, produce, producer, read_topic};
use serde_json::{Value, json};

/// The state and error statistics of the query writing `sink`, from `SHOW QUERIES` and
/// `DESCRIBE EXTENDED`.
async fn query_of(server: &SluiceServer, sink: &str) -> (String, String) {
    let queries = server.ksql_ok("SHOW QUERIES;").await;
    let query = queries[0]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["sinks"][0] == sink)
        .unwrap_or_else(|| panic!("no query writes {sink}: {queries}"))
        .clone();
    let described = server.ksql_ok(&format!("DESCRIBE EXTENDED {sink};")).await;
    let errors = described[0]["sourceDescription"]["errorStats"].as_str().unwrap_or_default().to_string();
    (query["state"].as_str().unwrap().to_string(), errors)
}

async fn wait_for_state(server: &SluiceServer, sink: &str, wanted: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let (state, errors) = query_of(server, sink).await;
        if state == wanted {
            return errors;
        }
        assert!(Instant::now() < deadline, "{sink} stayed {state}, not {wanted}: {errors}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}


#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_row_is_skipped_counted_and_logged_and_its_source_keeps_flowing() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server
        .ksql_ok("CREATE STREAM READINGS (ID STRING KEY, V STRING, D INTEGER) WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='JSON', PARTITIONS=1);")
        .await;
    server.ksql_ok("CREATE STREAM CASTS AS SELECT ID, CAST(V AS INTEGER) AS N FROM READINGS;").await;
    server.ksql_ok("CREATE STREAM RATIOS AS SELECT ID, 100 / D AS R FROM READINGS WHERE 100 / D > 0;").await;
    server
        .ksql_ok("CREATE STREAM FLAGS WITH (KAFKA_TOPIC='FLAG_{F}') AS SELECT ID, CASE WHEN D = 2 THEN 'no/such' ELSE 'up' END AS F FROM READINGS;")
        .await;
    let producer = producer(&broker.bootstrap);
    for (id, v, d) in [("1", "1", 5), ("2", "abc", 0), ("3", "3", 2), ("4", "4", 4)] {
        produce(&producer, "readings", id, &json!({"V": v, "D": d}).to_string()).await;
    }

    let casts = read_topic(&broker.bootstrap, "CASTS", 4, Duration::from_secs(60));
    let values: Vec<&str> = casts.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec![r#"{"N":1}"#, r#"{"N":null}"#, r#"{"N":3}"#, r#"{"N":4}"#], "the key column is the key, not in the value");
    let keys: Vec<&str> = casts.iter().map(|(k, _)| k.as_deref().unwrap()).collect();
    assert_eq!(keys, vec!["1", "2", "3", "4"]);
    let ratios = read_topic(&broker.bootstrap, "RATIOS", 3, Duration::from_secs(60));
    let values: Vec<&str> = ratios.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        values,
        vec![r#"{"R":20}"#, r#"{"R":50}"#, r#"{"R":25}"#],
        "the row whose WHERE fails is dropped"
    );
    let flags = read_topic(&broker.bootstrap, "FLAG_up", 3, Duration::from_secs(60));
    let keys: Vec<&str> = flags.iter().map(|(k, _)| k.as_deref().unwrap()).collect();
    assert_eq!(keys, vec!["1", "2", "4"], "the row whose topic cannot be named is skipped");

    for (sink, offset, words) in [("CASTS", 1, "abc"), ("RATIOS", 1, "divide by zero"), ("FLAGS", 2, "cannot be named")] {
        let errors = wait_for_state(&server, sink, "RUNNING", Duration::from_secs(5)).await;
        assert!(errors.contains("processing-errors: 1,"), "{sink}: {errors}");
        assert!(errors.contains(&format!("(topic readings, partition 0, offset {offset})")), "{sink}: {errors}");
        assert!(errors.to_lowercase().contains(&words.to_lowercase()), "{sink}: {errors}");
    }

    let logged = server
        .push_rows("SELECT LOGGER, EXTRACTJSONFIELD(MESSAGE, '$.type') AS T, EXTRACTJSONFIELD(MESSAGE, '$.offset') AS O FROM SLUICE_PROCESSING_LOG EMIT CHANGES LIMIT 3;")
        .await;
    let mut logged: Vec<(String, String, String)> = logged
        .iter()
        .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_str().unwrap().to_string(), r[2].as_str().unwrap().to_string()))
        .collect();
    logged.sort();
    let expected = |query: &str, kind: &str, offset: &str| (format!("processing.{query}"), kind.to_string(), offset.to_string());
    let ids: Vec<String> = server.ksql_ok("SHOW QUERIES;").await[0]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_string())
        .collect();
    let id = |prefix: &str| ids.iter().find(|i| i.starts_with(prefix)).unwrap().clone();
    let mut wanted = vec![
        expected(&id("CSAS_CASTS_"), "1", "1"),
        expected(&id("CSAS_RATIOS_"), "1", "1"),
        expected(&id("CSAS_FLAGS_"), "2", "2"),
    ];
    wanted.sort();
    assert_eq!(logged, wanted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_dropped_and_declared_again_is_read_from_its_new_topic_and_schema() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let producer = producer(&broker.bootstrap);
    server.ksql_ok("CREATE STREAM S (A STRING) WITH (KAFKA_TOPIC='old', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM FIRST AS SELECT A FROM S;").await;
    produce(&producer, "old", "k", r#"{"A": "old-1"}"#).await;
    assert_eq!(read_topic(&broker.bootstrap, "FIRST", 1, Duration::from_secs(60)).len(), 1);

    let first = server.ksql_ok("SHOW QUERIES;").await[0]["queries"][0]["id"].as_str().unwrap().to_string();
    server.ksql_ok(&format!("TERMINATE {first};")).await;
    server.ksql_ok("DROP STREAM FIRST;").await;
    server.ksql_ok("DROP STREAM S;").await;
    server.ksql_ok("CREATE STREAM S (B INTEGER) WITH (KAFKA_TOPIC='new', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM SECOND AS SELECT B FROM S;").await;
    produce(&producer, "old", "k", r#"{"A": "old-2"}"#).await;
    produce(&producer, "new", "k", r#"{"B": 7}"#).await;
    let second = read_topic(&broker.bootstrap, "SECOND", 2, Duration::from_secs(10));
    assert_eq!(second, vec![(Some("k".into()), r#"{"B":7}"#.to_string())]);

    server.ksql_ok("CREATE OR REPLACE STREAM T (C STRING) WITH (KAFKA_TOPIC='t1', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE OR REPLACE STREAM T (D DOUBLE) WITH (KAFKA_TOPIC='t2', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM THIRD AS SELECT D FROM T;").await;
    produce(&producer, "t1", "k", r#"{"C": "x", "D": 1.0}"#).await;
    produce(&producer, "t2", "k", r#"{"D": 2.5}"#).await;
    let third = read_topic(&broker.bootstrap, "THIRD", 2, Duration::from_secs(10));
    assert_eq!(third, vec![(Some("k".into()), r#"{"D":2.5}"#.to_string())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ksqldb_property_names_are_honoured_with_their_prefix_and_unknown_ones_refused() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let producer = producer(&broker.bootstrap);
    server.ksql_ok("CREATE STREAM S (A STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    produce(&producer, "s", "k", r#"{"A": "before the query"}"#).await;

    let request = |sql: &str, properties: Value| {
        server
            .client()
            .post(format!("{}/ksql", server.url))
            .json(&json!({"ksql": sql, "streamsProperties": properties}))
            .send()
    };
    let created = request("CREATE STREAM COPY AS SELECT A FROM S;", json!({"ksql.streams.auto.offset.reset": "earliest"}))
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let copied = read_topic(&broker.bootstrap, "COPY", 1, Duration::from_secs(60));
    assert_eq!(copied.len(), 1, "the prefixed auto.offset.reset starts the query at earliest");

    let refused = request("CREATE STREAM NEVER AS SELECT A FROM S;", json!({"auto.offset.rest": "earliest"})).await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("Not recognizable as ksql, streams, consumer, or producer property: 'auto.offset.rest'"),
        "{body}"
    );
    let (status, body) = server.ksql("DESCRIBE NEVER;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Could not find"), "a refused statement never reaches the command log: {body}");

    let (status, body) = server.ksql("SET 'no.such.property'='1';").await;
    assert_eq!(status, 400, "{body}");
    let shown = server.ksql_ok("SET 'ksql.streams.auto.offset.reset'='earliest'; SHOW PROPERTIES;").await;
    let properties = shown[0]["properties"].as_array().unwrap();
    let reset = properties.iter().find(|p| p["name"] == "ksql.streams.auto.offset.reset").unwrap();
    assert_eq!((reset["value"].as_str(), reset["scope"].as_str()), (Some("earliest"), Some("SESSION")));
    assert!(properties.iter().any(|p| p["name"] == "ksql.streams.processing.guarantee"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panicking_task_shows_error_then_runs_again_without_losing_a_record() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start_with_env(&broker.bootstrap, data.path().to_path_buf(), &[("SLUICE_INJECT_PANIC", "boom")]).await;
    server.ksql_ok("CREATE STREAM S (A STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM COPY AS SELECT A FROM S;").await;
    let producer = producer(&broker.bootstrap);
    produce(&producer, "s", "1", r#"{"A": "fine"}"#).await;
    assert_eq!(read_topic(&broker.bootstrap, "COPY", 1, Duration::from_secs(60)).len(), 1);

    produce(&producer, "s", "2", r#"{"A": "boom"}"#).await;
    let errors = wait_for_state(&server, "COPY", "ERROR", Duration::from_secs(30)).await;
    assert!(errors.contains("panicked") && errors.contains("boom"), "{errors}");
    wait_for_state(&server, "COPY", "RUNNING", Duration::from_secs(30)).await;
    produce(&producer, "s", "3", r#"{"A": "after"}"#).await;
    let copied = read_topic(&broker.bootstrap, "COPY", 3, Duration::from_secs(60));
    let values: Vec<&str> = copied.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec![r#"{"A":"fine"}"#, r#"{"A":"boom"}"#, r#"{"A":"after"}"#]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminate_and_sigterm_return_within_30_seconds_while_kafka_is_away_and_lose_nothing() {
    let mut broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM S (A STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM KEPT AS SELECT A FROM S;").await;
    server.ksql_ok("CREATE STREAM ENDED AS SELECT A FROM S;").await;
    let producer = producer(&broker.bootstrap);
    for n in 0..5 {
        produce(&producer, "s", "k", &json!({"A": format!("r{n}")}).to_string()).await;
    }
    assert_eq!(read_topic(&broker.bootstrap, "KEPT", 5, Duration::from_secs(60)).len(), 5);
    let ended = server.ksql_ok("SHOW QUERIES;").await[0]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["sinks"][0] == "ENDED")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    broker.stop();
    let started = Instant::now();
    let (status, body) = tokio::time::timeout(Duration::from_secs(30), server.ksql(&format!("TERMINATE {ended};")))
        .await
        .expect("TERMINATE returns within 30 s with Kafka away");
    assert_ne!(status, 200, "a TERMINATE that cannot be logged is not reported as done: {body}");
    let started_stop = Instant::now();
    assert!(server.terminate(), "SIGTERM exits cleanly with Kafka away");
    assert!(started_stop.elapsed() < Duration::from_secs(30), "SIGTERM took {:?}", started_stop.elapsed());
    assert!(started.elapsed() < Duration::from_secs(60));

    broker.start_again().await;
    server.start_again().await;
    let producer = common::producer(&broker.bootstrap);
    for n in 5..8 {
        produce(&producer, "s", "k", &json!({"A": format!("r{n}")}).to_string()).await;
    }
    let kept = read_topic(&broker.bootstrap, "KEPT", 8, Duration::from_secs(60));
    let values: Vec<String> = kept.into_iter().map(|(_, v)| v).collect();
    let wanted: Vec<String> = (0..8).map(|n| format!(r#"{{"A":"r{n}"}}"#)).collect();
    assert_eq!(values, wanted, "every record once, in order, after the broker and the server return");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_that_can_no_longer_be_applied_leaves_the_server_serving_and_degraded() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM S (A STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    let health = server.client().get(format!("{}/healthcheck", server.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);

    let producer = producer(&broker.bootstrap);
    let log = "_sluice-default__command_topic";
    produce(&producer, log, "", r#"{"statement": "CREATE STREAM GHOST AS SELECT * FROM NOWHERE;", "properties": {}}"#).await;
    produce(&producer, log, "", "not a command at all").await;
    server.restart().await;

    server.ksql_ok("CREATE STREAM COPY AS SELECT A FROM S;").await;
    produce(&producer, "s", "k", r#"{"A": "still served"}"#).await;
    assert_eq!(read_topic(&broker.bootstrap, "COPY", 1, Duration::from_secs(60)).len(), 1);

    let health = server.client().get(format!("{}/healthcheck", server.url)).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let body: Value = health.json().await.unwrap();
    assert_eq!(body["isHealthy"], false);
    let failed = body["details"]["commandRunner"]["failedCommands"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{body}");
    assert!(failed[0]["statement"].as_str().unwrap().contains("GHOST"), "{body}");
    assert!(failed[0]["error"].as_str().unwrap().contains("NOWHERE"), "{body}");
    assert!(failed[1]["error"].as_str().unwrap().contains("not a command"), "{body}");
    let info: Value = server.client().get(format!("{}/info", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["KsqlServerInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["KsqlServerInfo"]["serverStatus"], "DEGRADED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_statement_routes_each_sensor_to_its_own_topic_even_sensors_that_appear_later() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM READINGS (PAYLOAD STRING) WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='JSON', PARTITIONS=3);").await;
    let (status, body) = server
        .ksql("CREATE STREAM BAD WITH (KAFKA_TOPIC = 'SENSOR_ID_{NOPE}') AS SELECT PAYLOAD FROM READINGS;")
        .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("NOPE"), "{body}");
    server
        .ksql_ok("CREATE STREAM SENSORS WITH (KAFKA_TOPIC = 'SENSOR_ID_{SENSOR}') AS SELECT PAYLOAD, EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR FROM READINGS;")
        .await;
    let (status, body) = server.ksql("CREATE STREAM COPY AS SELECT * FROM SENSORS;").await;
    assert_eq!(status, 400, "{body}");

    let producer = producer(&broker.bootstrap);
    let reading = |sensor: &str| json!({"PAYLOAD": format!(r#"{{"sensor_id": {sensor}}}"#)}).to_string();
    produce(&producer, "readings", "a", &reading("1")).await;
    produce(&producer, "readings", "b", &reading("\"no/good\"")).await;
    produce(&producer, "readings", "c", &json!({"PAYLOAD": "{}"}).to_string()).await;
    produce(&producer, "readings", "d", &reading("2")).await;
    assert_eq!(read_topic(&broker.bootstrap, "SENSOR_ID_1", 1, Duration::from_secs(60)).len(), 1);
    assert_eq!(read_topic(&broker.bootstrap, "SENSOR_ID_2", 1, Duration::from_secs(60)).len(), 1);

    produce(&producer, "readings", "e", &reading("77")).await;
    let late = read_topic(&broker.bootstrap, "SENSOR_ID_77", 1, Duration::from_secs(60));
    assert_eq!(late, vec![(Some("e".into()), r#"{"PAYLOAD":"{\"sensor_id\": 77}","SENSOR":"77"}"#.to_string())]);
    let cluster = sluice::connectors::kafka::KafkaCluster::connect(&broker.bootstrap).unwrap();
    assert_eq!(cluster.topic("SENSOR_ID_77").unwrap().unwrap().partitions, 3, "created with the source's partitions");

    let errors = wait_for_state(&server, "SENSORS", "RUNNING", Duration::from_secs(5)).await;
    assert!(errors.contains("processing-errors: 2,"), "{errors}");
    assert!(errors.contains("cannot be named"), "{errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_query_holds_its_place_across_a_kill_9_and_resume_carries_on_exactly_once() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM NOTES (TEXT STRING) WITH (KAFKA_TOPIC='notes', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM SHOUTS AS SELECT UCASE(TEXT) AS TEXT FROM NOTES;").await;
    server.ksql_ok("CREATE STREAM WHISPERS AS SELECT LCASE(TEXT) AS TEXT FROM NOTES;").await;
    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('One');").await;
    assert_eq!(read_topic(&broker.bootstrap, "SHOUTS", 1, Duration::from_secs(60)).len(), 1);
    let id = server.ksql_ok("SHOW QUERIES;").await[0]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["sinks"][0] == "SHOUTS")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let paused = server.ksql_ok(&format!("PAUSE {id};")).await;
    assert_eq!(paused[0]["commandStatus"]["message"], "Query paused.", "{paused}");
    assert_eq!(paused[0]["commandId"], format!("pause/{id}/execute"), "{paused}");
    assert_eq!(query_of(&server, "SHOUTS").await.0, "PAUSED");
    assert_eq!(query_of(&server, "WHISPERS").await.0, "RUNNING", "only the query named pauses");
    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('Two');").await;
    assert_eq!(read_topic(&broker.bootstrap, "WHISPERS", 2, Duration::from_secs(60)).len(), 2, "the shared source flows on");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = read_topic(&broker.bootstrap, "SHOUTS", 1, Duration::from_secs(10));
    assert_eq!(held.len(), 1, "a paused query writes nothing: {held:?}");

    server.kill();
    server.start_again().await;
    assert_eq!(query_of(&server, "SHOUTS").await.0, "PAUSED", "a pause outlives the process");
    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('Three');").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(read_topic(&broker.bootstrap, "SHOUTS", 1, Duration::from_secs(10)).len(), 1);

    let resumed = server.ksql_ok(&format!("RESUME {id};")).await;
    assert_eq!(resumed[0]["commandStatus"]["message"], "Query resumed.", "{resumed}");
    wait_for_state(&server, "SHOUTS", "RUNNING", Duration::from_secs(10)).await;
    let shouts = read_topic(&broker.bootstrap, "SHOUTS", 3, Duration::from_secs(60));
    let values: Vec<&str> = shouts.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec![r#"{"TEXT":"ONE"}"#, r#"{"TEXT":"TWO"}"#, r#"{"TEXT":"THREE"}"#], "each record once, in order");

    server.ksql_ok("PAUSE ALL;").await;
    assert_eq!(query_of(&server, "SHOUTS").await.0, "PAUSED");
    assert_eq!(query_of(&server, "WHISPERS").await.0, "PAUSED");
    server.ksql_ok("RESUME ALL;").await;
    wait_for_state(&server, "WHISPERS", "RUNNING", Duration::from_secs(10)).await;
    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('Four');").await;
    assert_eq!(read_topic(&broker.bootstrap, "WHISPERS", 4, Duration::from_secs(60)).len(), 4);

    let (status, body) = server.ksql("PAUSE CSAS_NOTHING_99;").await;
    assert_eq!((status, body["message"].as_str()), (400, Some("Unknown queryId: CSAS_NOTHING_99")), "{body}");
}
