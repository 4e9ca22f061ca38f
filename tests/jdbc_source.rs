//! The JDBC source connector against a real PostgreSQL 15 and a real broker: Confluent's keys
//! and record shapes in all four modes, a custom query, ksqlDB's `key`, Connect's REST API, and
//! every row landing once across a `kill -9` of the server.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{
    SluiceServer, TestBroker,
    postgres::{PASSWORD, PostgresServer, SEED, USER},
    read_topic,
};
use serde_json::{Value, json};

fn connector(name: &str, postgres: &PostgresServer, extra: &[(&str, &str)]) -> String {
    let url = postgres.jdbc_url("telemetry");
    let mut properties = vec![
        ("connector.class", "io.confluent.connect.jdbc.JdbcSourceConnector"),
        ("connection.url", url.as_str()),
        ("connection.user", USER),
        ("connection.password", PASSWORD),
        ("poll.interval.ms", "300"),
    ];
    properties.extend_from_slice(extra);
    let with: Vec<String> = properties.iter().map(|(k, v)| format!("'{k}' = '{}'", v.replace('\'', "''"))).collect();
    format!("CREATE SOURCE CONNECTOR `{name}` WITH ({});", with.join(", "))
}

fn values(records: &[(Option<String>, String)]) -> Vec<Value> {
    records.iter().map(|(_, v)| serde_json::from_str(v).unwrap()).collect()
}

async fn topic(bootstrap: &str, topic: &str, expected: usize) -> Vec<(Option<String>, String)> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic(&bootstrap, &topic, expected, Duration::from_secs(60))).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_mode_lands_the_tables_rows_as_the_confluent_connector_shapes_them() {
    let broker = TestBroker::start().await;
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", SEED);
    postgres.psql(
        "telemetry",
        "CREATE TABLE readings (id SERIAL PRIMARY KEY, modified TIMESTAMP NOT NULL, watts INT);
         INSERT INTO readings (modified, watts) VALUES ('2026-12-01 10:00:00', 1), ('2026-12-01 10:00:00', 2), ('2026-12-01 11:00:00', 3);",
    );
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;

    server.ksql_ok(&connector("jdbc-inc", &postgres, &[("mode", "incrementing"), ("incrementing.column.name", "id"), ("topic.prefix", "inc-"), ("table.whitelist", "telemetry")])).await;
    server.ksql_ok(&connector("jdbc-plain", &postgres, &[("mode", "incrementing"), ("incrementing.column.name", "id"), ("topic.prefix", "plain-"), ("table.whitelist", "telemetry"), ("value.converter.schemas.enable", "false"), ("key", "name")])).await;
    server.ksql_ok(&connector("jdbc-bulk", &postgres, &[("mode", "bulk"), ("topic.prefix", "bulk-"), ("table.whitelist", "telemetry"), ("value.converter.schemas.enable", "false"), ("poll.interval.ms", "60000")])).await;
    server.ksql_ok(&connector("jdbc-ts", &postgres, &[("mode", "timestamp"), ("timestamp.column.name", "modified"), ("topic.prefix", "ts-"), ("table.include.list", "public\\.read.*"), ("value.converter.schemas.enable", "false")])).await;
    server.ksql_ok(&connector("jdbc-tsinc", &postgres, &[("mode", "timestamp+incrementing"), ("timestamp.column.name", "modified"), ("incrementing.column.name", "id"), ("topic.prefix", "tsinc-"), ("table.whitelist", "readings"), ("value.converter.schemas.enable", "false")])).await;
    server.ksql_ok(&connector("jdbc-query", &postgres, &[("mode", "incrementing"), ("incrementing.column.name", "id"), ("topic.prefix", "heavy"), ("query", "SELECT id, name FROM telemetry WHERE wattage >= 70000"), ("value.converter.schemas.enable", "false")])).await;

    let enveloped = topic(&broker.bootstrap, "inc-telemetry", 4).await;
    assert_eq!(enveloped.len(), 4, "{enveloped:?}");
    assert_eq!(
        enveloped[0].1,
        r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":false,"field":"name"},{"type":"int32","optional":false,"field":"wattage"}],"optional":false,"name":"telemetry"},"payload":{"id":1,"name":"Node1","wattage":75000}}"#
    );
    assert_eq!(enveloped[0].0, None, "no key unless 'key' names a column");

    let plain = topic(&broker.bootstrap, "plain-telemetry", 4).await;
    assert_eq!(values(&plain)[3], json!({"id": 4, "name": "Node4", "wattage": 80000}));
    assert_eq!(plain.iter().map(|(k, _)| k.clone().unwrap()).collect::<Vec<_>>(), ["Node1", "Node2", "Node3", "Node4"]);

    let bulk = topic(&broker.bootstrap, "bulk-telemetry", 4).await;
    assert_eq!(bulk.len(), 4, "one poll of the whole table");
    assert_eq!(
        values(&topic(&broker.bootstrap, "heavy", 2).await),
        [json!({"id": 1, "name": "Node1"}), json!({"id": 4, "name": "Node4"})]
    );
    let timestamps = values(&topic(&broker.bootstrap, "ts-readings", 3).await);
    assert_eq!(timestamps.iter().map(|v| v["watts"].clone()).collect::<Vec<_>>(), [json!(1), json!(2), json!(3)]);
    assert_eq!(timestamps[0]["modified"], json!(1_796_119_200_000_i64), "a TIMESTAMP is Connect's epoch milliseconds");

    postgres.psql(
        "telemetry",
        "INSERT INTO telemetry (name, wattage) VALUES ('Node5', 90000);
         UPDATE readings SET modified = '2026-12-02 09:00:00', watts = 20 WHERE id = 2;",
    );
    let plain = values(&topic(&broker.bootstrap, "plain-telemetry", 5).await);
    assert_eq!(plain.len(), 5, "the new row once, the old ones not again: {plain:?}");
    assert_eq!(plain[4]["name"], json!("Node5"));
    let changed = values(&topic(&broker.bootstrap, "tsinc-readings", 4).await);
    assert_eq!(changed.iter().map(|v| v["watts"].clone()).collect::<Vec<_>>(), [json!(1), json!(2), json!(3), json!(20)]);
    let heavy = values(&topic(&broker.bootstrap, "heavy", 3).await);
    assert_eq!(heavy.last().unwrap()["name"], json!("Node5"));

    let described = server.ksql_ok("DESCRIBE CONNECTOR `jdbc-inc`;").await;
    assert_eq!(described[0]["connectorClass"], json!("io.confluent.connect.jdbc.JdbcSourceConnector"));
    assert_eq!(described[0]["status"]["tasks"][0]["state"], json!("RUNNING"), "{described}");
    assert_eq!(described[0]["status"]["type"], json!("source"));

    let wrong = connector("jdbc-wrong", &postgres, &[("mode", "incrementing"), ("topic.prefix", "x-")]);
    let (status, body) = server.ksql(&wrong).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("mode 'incrementing' requires incrementing.column.name"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connects_rest_api_creates_a_source_connector() {
    let broker = TestBroker::start().await;
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", SEED);
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let config: BTreeMap<&str, String> = [
        ("connector.class", "io.confluent.connect.jdbc.JdbcSourceConnector".to_string()),
        ("connection.url", postgres.jdbc_url("telemetry")),
        ("connection.user", USER.to_string()),
        ("connection.password", PASSWORD.to_string()),
        ("mode", "incrementing".to_string()),
        ("incrementing.column.name", "id".to_string()),
        ("topic.prefix", "rest-".to_string()),
        ("table.whitelist", "telemetry".to_string()),
        ("value.converter.schemas.enable", "false".to_string()),
    ]
    .into_iter()
    .collect();
    let response = server
        .client()
        .post(format!("{}/connectors", server.url))
        .json(&json!({"name": "jdbc-rest", "config": config}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["type"], json!("source"));
    assert_eq!(values(&topic(&broker.bootstrap, "rest-telemetry", 4).await).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_while_rows_are_written_neither_repeats_nor_skips_one() {
    // Few, large batches: the embedded broker (a debug build in tests) takes seconds per fetch
    // of a large topic, and the reader below must get through it in time.
    const ROWS: usize = 12_000;
    let broker = TestBroker::start().await;
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", SEED);
    postgres.psql(
        "telemetry",
        &format!("INSERT INTO telemetry (name, wattage) SELECT 'Node' || n, n FROM generate_series(5, {ROWS}) AS n"),
    );
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server
        .ksql_ok(&connector("jdbc-big", &postgres, &[
            ("mode", "incrementing"),
            ("incrementing.column.name", "id"),
            ("topic.prefix", "big-"),
            ("table.whitelist", "telemetry"),
            ("batch.max.rows", "1000"),
            ("value.converter.schemas.enable", "false"),
        ]))
        .await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        server.kill();
        server.start_again().await;
    }
    postgres.psql("telemetry", "INSERT INTO telemetry (name, wattage) VALUES ('late', 1)");
    let records = values(&topic(&broker.bootstrap, "big-telemetry", ROWS + 1).await);
    let ids: Vec<i64> = records.iter().map(|v| v["id"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=ROWS as i64 + 1).collect();
    assert_eq!(ids.len(), expected.len(), "every row exactly once (duplicates or gaps otherwise)");
    assert_eq!(ids, expected, "in the table's order");
}
