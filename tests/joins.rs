//! Joins through the server against a real broker: the lecture's `rated_movies` (ratings joined
//! with movies, then averaged per title) answering pull queries, a push query over a join, and
//! the seed's readings enriched with their node exactly once while the server is SIGKILLed.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{SluiceServer, TestBroker, feed_readings_while_killing, produce, producer, read_topic, server_over_ingestion};
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};

const SENSORS: u32 = 6;
const PER_SENSOR: u32 = 300;
const KILLS: usize = 5;

/// Each sensor's node and each sensor's site, as tables.
const NODES_AND_SITES: &str = "CREATE TABLE NODES (SENSOR_ID STRING PRIMARY KEY, NODE STRING) \
     WITH (KAFKA_TOPIC = 'NODES', VALUE_FORMAT = 'JSON', PARTITIONS = 1);\
     CREATE TABLE SITES (SENSOR_ID STRING PRIMARY KEY, SITE STRING) \
     WITH (KAFKA_TOPIC = 'SITES', VALUE_FORMAT = 'JSON', PARTITIONS = 1);";

/// A movie row as its table's topic holds it: an INTEGER key, big-endian.
async fn produce_movie(bootstrap: &str, id: i32, title: &str) {
    let value = json!({"TITLE": title, "RELEASE_YEAR": 1986}).to_string();
    producer(bootstrap)
        .send(FutureRecord::to("movies").key(&id.to_be_bytes()[..]).payload(&value), Duration::from_secs(30))
        .await
        .expect("record is produced");
}

async fn lecture_sources(server: &SluiceServer) {
    server
        .ksql_ok(
            "CREATE TABLE movies (movie_id INT PRIMARY KEY, title STRING, release_year INT) \
             WITH (KAFKA_TOPIC = 'movies', VALUE_FORMAT = 'JSON', PARTITIONS = 1);\
             CREATE STREAM ratings (movie_id INT KEY, rating INT) \
             WITH (KAFKA_TOPIC = 'ratings', VALUE_FORMAT = 'JSON', PARTITIONS = 1);",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lectures_rated_movies_averages_each_titles_ratings() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    lecture_sources(&server).await;
    produce_movie(&broker.bootstrap, 1, "Aliens").await;
    produce_movie(&broker.bootstrap, 2, "Heat").await;
    // The lecture's statement as written.
    server
        .ksql_ok(
            "CREATE TABLE rated_movies AS
  SELECT title,
         SUM(rating)/COUNT(rating) AS avg_rating
    FROM ratings
   INNER JOIN movies
      ON ratings.movie_id=movies.movie_id
   GROUP BY title EMIT CHANGES;",
        )
        .await;
    for (movie, rating) in [(1, 8), (1, 6), (2, 9), (3, 1), (2, 7)] {
        server.ksql_ok(&format!("INSERT INTO ratings (movie_id, rating) VALUES ({movie}, {rating});")).await;
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let rows = server.pull_rows("SELECT TITLE, AVG_RATING FROM RATED_MOVIES;").await;
        let averages: BTreeMap<String, Value> = rows.iter().map(|r| (r[0].as_str().unwrap().to_string(), r[1].clone())).collect();
        let wanted = BTreeMap::from([("Aliens".to_string(), json!(7)), ("Heat".to_string(), json!(8))]);
        if averages == wanted {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "RATED_MOVIES never averaged both titles (movie 3 is unknown): {rows:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_query_over_a_join_streams_each_rating_with_its_movie() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    lecture_sources(&server).await;
    produce_movie(&broker.bootstrap, 1, "Aliens").await;
    for (movie, rating) in [(1, 8), (2, 9)] {
        server.ksql_ok(&format!("INSERT INTO ratings (movie_id, rating) VALUES ({movie}, {rating});")).await;
    }
    let rows = server
        .push_rows(
            "SELECT r.movie_id, m.title, r.rating FROM ratings r LEFT JOIN movies m ON r.movie_id = m.movie_id \
             EMIT CHANGES LIMIT 2;",
        )
        .await;
    assert_eq!(rows, vec![json!([1, "Aliens", 8]), json!([2, null, 9])]);

    let response = server
        .client()
        .post(format!("{}/query-stream", server.url))
        .json(&json!({"sql": "SELECT * FROM ratings r JOIN movies m ON r.movie_id = m.movie_id;"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = response.text().await.unwrap();
    assert!(body.contains("Pull queries don't support JOIN clauses."), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readings_are_enriched_with_their_node_exactly_once_across_kill_9() {
    let (broker, _data, mut server) = server_over_ingestion().await;
    server
        .ksql_ok(
            "CREATE TABLE NODES (SENSOR_ID STRING PRIMARY KEY, NODE STRING) \
             WITH (KAFKA_TOPIC = 'NODES', VALUE_FORMAT = 'JSON', PARTITIONS = 1);",
        )
        .await;
    let nodes = producer(&broker.bootstrap);
    // Sensor 6 has no node.
    for sensor in 1..SENSORS {
        produce(&nodes, "NODES", &sensor.to_string(), &json!({"NODE": format!("node-{sensor}")}).to_string()).await;
    }
    server
        .ksql_ok(
            "CREATE STREAM ENRICHED AS SELECT N.SENSOR_ID, N.NODE, S.CORRELATION_ID \
             FROM STREAM_INGESTION S LEFT JOIN NODES N ON EXTRACTJSONFIELD(S.PAYLOAD, '$.sensor_id') = N.SENSOR_ID;",
        )
        .await;

    feed_readings_while_killing(&broker, &mut server, SENSORS, PER_SENSOR, KILLS, None).await;

    let expected = (SENSORS * PER_SENSOR) as usize;
    let bootstrap = broker.bootstrap.clone();
    let (records, again) = tokio::task::spawn_blocking(move || {
        let records = read_topic(&bootstrap, "ENRICHED", expected, Duration::from_secs(120));
        // Then past the expected count: a duplicate would show as one record too many.
        let again = read_topic(&bootstrap, "ENRICHED", expected + 1, Duration::from_secs(5));
        (records, again)
    })
    .await
    .unwrap();
    assert_eq!(records.len(), expected, "every reading joined: none lost");
    assert_eq!(again.len(), expected, "every reading joined once: none duplicated");
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in &records {
        let value: Value = serde_json::from_str(value).unwrap();
        let correlation = value["CORRELATION_ID"].as_str().unwrap().to_string();
        let sensor: u32 = correlation[..2].parse().unwrap();
        assert_eq!(key.as_deref(), Some(sensor.to_string().as_str()), "keyed by the join key: {value}");
        let node = if sensor < SENSORS { json!(format!("node-{sensor}")) } else { Value::Null };
        assert_eq!(value["NODE"], node, "{value}");
        assert!(seen.insert(correlation), "{value} written twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sources_are_joined_within_a_window_exactly_once_across_kill_9() {
    let (broker, _data, mut server) = server_over_ingestion().await;
    // Each reading, copied to a second topic, finds itself there: one joined row per reading,
    // made by whichever of the two copies is read second.
    server.ksql_ok("CREATE STREAM MIRROR AS SELECT * FROM STREAM_INGESTION;").await;
    server
        .ksql_ok(
            "CREATE STREAM PAIRED AS SELECT I.CORRELATION_ID AS CORRELATION_ID, I.PAYLOAD AS PAYLOAD, M.CREATED_AT AS MIRRORED_AT \
             FROM STREAM_INGESTION I JOIN MIRROR M WITHIN 1 HOUR ON I.CORRELATION_ID = M.CORRELATION_ID;",
        )
        .await;

    feed_readings_while_killing(&broker, &mut server, SENSORS, PER_SENSOR, KILLS, None).await;

    let expected = (SENSORS * PER_SENSOR) as usize;
    let bootstrap = broker.bootstrap.clone();
    let (records, again) = tokio::task::spawn_blocking(move || {
        let records = read_topic(&bootstrap, "PAIRED", expected, Duration::from_secs(120));
        let again = read_topic(&bootstrap, "PAIRED", expected + 1, Duration::from_secs(5));
        (records, again)
    })
    .await
    .unwrap();
    assert_eq!(records.len(), expected, "every reading paired with its copy: none lost");
    assert_eq!(again.len(), expected, "every reading paired once: none duplicated");
    let mut seen = std::collections::BTreeSet::new();
    for (key, value) in &records {
        let value: Value = serde_json::from_str(value).unwrap();
        let correlation = key.clone().expect("keyed by the join key");
        assert!(value["PAYLOAD"].as_str().is_some_and(|p| p.contains("sensor_id")), "{value}");
        assert!(value["MIRRORED_AT"].is_number(), "{value}");
        assert!(seen.insert(correlation), "{value} written twice");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_tables_joined_keep_their_rows_across_kill_9() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server
        .ksql_ok(&format!(
            "{NODES_AND_SITES}CREATE TABLE NODE_SITES AS SELECT N.SENSOR_ID, N.NODE, S.SITE \
             FROM NODES N LEFT JOIN SITES S ON N.SENSOR_ID = S.SENSOR_ID;"
        ))
        .await;
    let updates = producer(&broker.bootstrap);
    let read = |count: usize, wait: u64| {
        let bootstrap = broker.bootstrap.clone();
        tokio::task::spawn_blocking(move || read_topic(&bootstrap, "NODE_SITES", count, Duration::from_secs(wait)))
    };
    produce(&updates, "NODES", "3", &json!({"NODE": "north"}).to_string()).await;
    produce(&updates, "SITES", "3", &json!({"SITE": "dam"}).to_string()).await;
    assert_eq!(read(2, 60).await.unwrap().len(), 2, "the node, then the node with its site");

    server.kill();
    server.start_again().await;
    // The node's row, from before the kill, is joined with the new site.
    produce(&updates, "SITES", "3", &json!({"SITE": "weir"}).to_string()).await;
    let records = read(3, 60).await.unwrap();
    let again = read(4, 5).await.unwrap();
    assert_eq!(again.len(), 3, "nothing written twice across the kill: {again:?}");
    let values: Vec<Value> = records.iter().map(|(_, v)| serde_json::from_str(v).unwrap()).collect();
    assert_eq!(
        values,
        vec![
            json!({"NODE": "north", "SITE": null}),
            json!({"NODE": "north", "SITE": "dam"}),
            json!({"NODE": "north", "SITE": "weir"}),
        ]
    );
    assert!(records.iter().all(|(key, _)| key.as_deref() == Some("3")), "keyed by the join key: {records:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_queries_stream_joins_of_two_sources_and_of_two_tables() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server
        .ksql_ok(
            "CREATE STREAM READINGS (SENSOR STRING KEY, WATTS INT) WITH (KAFKA_TOPIC = 'readings', VALUE_FORMAT = 'JSON', PARTITIONS = 1);\
             CREATE STREAM ALARMS (SENSOR STRING KEY, LEVEL STRING) WITH (KAFKA_TOPIC = 'alarms', VALUE_FORMAT = 'JSON', PARTITIONS = 1);\
             CREATE TABLE NODES (SENSOR STRING PRIMARY KEY, NODE STRING) WITH (KAFKA_TOPIC = 'nodes', VALUE_FORMAT = 'JSON', PARTITIONS = 1);\
             CREATE TABLE SITES (SENSOR STRING PRIMARY KEY, SITE STRING) WITH (KAFKA_TOPIC = 'sites', VALUE_FORMAT = 'JSON', PARTITIONS = 1);",
        )
        .await;
    for statement in [
        "INSERT INTO READINGS (SENSOR, WATTS) VALUES ('3', 410);",
        "INSERT INTO ALARMS (SENSOR, LEVEL) VALUES ('3', 'high');",
        "INSERT INTO ALARMS (SENSOR, LEVEL) VALUES ('4', 'low');",
        "INSERT INTO NODES (SENSOR, NODE) VALUES ('3', 'north');",
        "INSERT INTO SITES (SENSOR, SITE) VALUES ('3', 'dam');",
    ] {
        server.ksql_ok(statement).await;
    }
    let paired = server
        .push_rows(
            "SELECT R.SENSOR, R.WATTS, A.LEVEL FROM READINGS R JOIN ALARMS A WITHIN 1 HOUR ON R.SENSOR = A.SENSOR \
             EMIT CHANGES LIMIT 1;",
        )
        .await;
    assert_eq!(paired, vec![json!(["3", 410, "high"])]);
    let sited = server
        .push_rows("SELECT N.SENSOR, N.NODE, S.SITE FROM NODES N JOIN SITES S ON N.SENSOR = S.SENSOR EMIT CHANGES LIMIT 1;")
        .await;
    assert_eq!(sited, vec![json!(["3", "north", "dam"])]);
}

/// Three tables joined: the first two as a stage of their own (`NODE_INFO_STAGE1`), which the
/// command log brings back after kill -9 and `DROP TABLE` takes away with its table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_tables_joined_through_a_stage_survive_kill_9_and_drop_together() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let statement = "CREATE TABLE NODE_INFO AS SELECT N.SENSOR_ID, N.NODE, S.SITE, O.OWNER FROM NODES N \
                     JOIN SITES S ON N.SENSOR_ID = S.SENSOR_ID JOIN OWNERS O ON N.SENSOR_ID = O.SENSOR_ID;";
    server
        .ksql_ok(&format!(
            "{NODES_AND_SITES}CREATE TABLE OWNERS (SENSOR_ID STRING PRIMARY KEY, OWNER STRING) \
             WITH (KAFKA_TOPIC = 'OWNERS', VALUE_FORMAT = 'JSON', PARTITIONS = 1);"
        ))
        .await;
    let created = server.ksql_ok(statement).await;
    assert_eq!(created[0]["statementText"], statement, "answered with the statement as sent: {created}");
    let (_, queries) = server.ksql("SHOW QUERIES;").await;
    let mut sinks: Vec<&str> = queries[0]["queries"].as_array().unwrap().iter().map(|q| q["sinks"][0].as_str().unwrap()).collect();
    sinks.sort();
    assert_eq!(sinks, ["NODE_INFO", "NODE_INFO_STAGE1"], "{queries}");

    let updates = producer(&broker.bootstrap);
    produce(&updates, "NODES", "3", &json!({"NODE": "north"}).to_string()).await;
    produce(&updates, "SITES", "3", &json!({"SITE": "dam"}).to_string()).await;
    produce(&updates, "OWNERS", "3", &json!({"OWNER": "grid"}).to_string()).await;
    let pulled = server.pull_rows("SELECT * FROM NODE_INFO;").await;
    assert_eq!(pulled, vec![json!(["3", "north", "dam", "grid"])]);

    server.kill();
    server.start_again().await;
    produce(&updates, "SITES", "3", &json!({"SITE": "weir"}).to_string()).await;
    let pulled = server.pull_rows("SELECT N_SENSOR_ID, SITE FROM NODE_INFO;").await;
    assert_eq!(pulled, vec![json!(["3", "weir"])], "the stage and the join read again after the kill");
    let records = read_topic(&broker.bootstrap, "NODE_INFO", 3, Duration::from_secs(5));
    assert_eq!(records.len(), 2, "each row written once across the kill: {records:?}");

    let (status, refused) = server.ksql("DROP TABLE SITES;").await;
    assert_eq!(status, 400, "the stage reads SITES: {refused}");
    server.ksql_ok("DROP TABLE NODE_INFO;").await;
    let (_, tables) = server.ksql("SHOW TABLES;").await;
    let names: Vec<&str> = tables[0]["tables"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(!names.iter().any(|n| n.starts_with("NODE_INFO")), "the table and its stage are gone: {names:?}");
    let (_, queries) = server.ksql("SHOW QUERIES;").await;
    assert_eq!(queries[0]["queries"], json!([]), "both queries ended");
    server.ksql_ok("DROP TABLE SITES;").await;
}
