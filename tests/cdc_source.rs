//! Change capture from a real PostgreSQL 15 into a real broker, as Debezium's PostgreSQL
//! connector does it: the snapshot's rows, then inserts, updates and deletes in commit order
//! in Debezium's envelope, a tombstone after each delete, and every change landing once
//! across `kill -9` of the server and a crash between a write and the slot's advance.

mod common;

use std::time::Duration;

use common::{
    SluiceServer, TestBroker,
    postgres::{PASSWORD, PostgresServer, SEED, USER},
    read_topic,
};
use serde_json::{Value, json};

fn connector(name: &str, postgres: &PostgresServer, extra: &[(&str, &str)]) -> String {
    let port = postgres.jdbc_url("telemetry").rsplit_once(':').unwrap().1.split('/').next().unwrap().to_string();
    let mut properties = vec![
        ("connector.class", "io.debezium.connector.postgresql.PostgresConnector"),
        ("database.hostname", "127.0.0.1"),
        ("database.port", port.as_str()),
        ("database.user", USER),
        ("database.password", PASSWORD),
        ("database.dbname", "telemetry"),
        ("plugin.name", "pgoutput"),
        ("poll.interval.ms", "200"),
    ];
    properties.extend_from_slice(extra);
    let with: Vec<String> = properties.iter().map(|(k, v)| format!("'{k}' = '{}'", v.replace('\'', "''"))).collect();
    format!("CREATE SOURCE CONNECTOR `{name}` WITH ({});", with.join(", "))
}

/// The records of `topic`, key and value as JSON (`Null` for a tombstone).
async fn changes(bootstrap: &str, topic: &str, expected: usize) -> Vec<(Value, Value)> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic(&bootstrap, &topic, expected, Duration::from_secs(60)))
        .await
        .unwrap()
        .into_iter()
        .map(|(key, value)| {
            let key = key.map_or(Value::Null, |k| serde_json::from_str(&k).unwrap());
            let value = if value.is_empty() { Value::Null } else { serde_json::from_str(&value).unwrap() };
            (key, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_snapshot_then_every_change_arrives_in_debeziums_envelope() {
    let broker = TestBroker::start().await;
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", SEED);
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server
        .ksql_ok(&connector("grid-cdc", &postgres, &[
            ("topic.prefix", "grid"),
            ("table.include.list", "public.telemetry"),
            ("key.converter.schemas.enable", "false"),
            ("value.converter.schemas.enable", "false"),
        ]))
        .await;
    let snapshot = changes(&broker.bootstrap, "grid.public.telemetry", 4).await;
    let reads: Vec<(Value, Value, &str)> =
        snapshot.iter().map(|(k, v)| (k.clone(), v["after"].clone(), v["op"].as_str().unwrap())).collect();
    assert_eq!(
        reads,
        [
            (json!({"id": 1}), json!({"id": 1, "name": "Node1", "wattage": 75000}), "r"),
            (json!({"id": 2}), json!({"id": 2, "name": "Node2", "wattage": 65000}), "r"),
            (json!({"id": 3}), json!({"id": 3, "name": "Node3", "wattage": 60000}), "r"),
            (json!({"id": 4}), json!({"id": 4, "name": "Node4", "wattage": 80000}), "r"),
        ]
    );
    let marks: Vec<&str> = snapshot.iter().map(|(_, v)| v["source"]["snapshot"].as_str().unwrap()).collect();
    assert_eq!(marks, ["true", "true", "true", "last"]);
    assert_eq!(snapshot[0].1["source"]["connector"], "postgresql");
    assert_eq!(snapshot[0].1["source"]["db"], "telemetry");

    postgres.psql(
        "telemetry",
        "INSERT INTO telemetry (name, wattage) VALUES ('Node5', 70000);
         BEGIN; UPDATE telemetry SET wattage = 1 WHERE id = 1; DELETE FROM telemetry WHERE id = 2; COMMIT;",
    );
    let all = changes(&broker.bootstrap, "grid.public.telemetry", 8).await;
    assert_eq!(all.len(), 8, "four reads, an insert, an update, a delete and its tombstone: {all:?}");
    let (key, insert) = &all[4];
    assert_eq!((key, insert["op"].as_str(), &insert["before"], &insert["after"]), (&json!({"id": 5}), Some("c"), &Value::Null, &json!({"id": 5, "name": "Node5", "wattage": 70000})));
    assert_eq!(insert["source"]["snapshot"], "false");
    let (key, update) = &all[5];
    assert_eq!((key, update["op"].as_str(), &update["after"]), (&json!({"id": 1}), Some("u"), &json!({"id": 1, "name": "Node1", "wattage": 1})));
    let (key, delete) = &all[6];
    assert_eq!((key, delete["op"].as_str(), &delete["before"], &delete["after"]), (&json!({"id": 2}), Some("d"), &json!({"id": 2, "name": null, "wattage": null}), &Value::Null));
    assert_eq!(update["source"]["txId"], delete["source"]["txId"], "one transaction");
    assert_eq!(all[7], (json!({"id": 2}), Value::Null), "a tombstone follows the delete");

    // A table declared over the topic mirrors the database's table: the latest row per key,
    // the deleted one gone.
    server
        .ksql_ok(
            "CREATE SOURCE TABLE TELEMETRY_MIRROR (ID STRUCT<`id` INT> PRIMARY KEY, `after` STRUCT<`name` STRING, `wattage` INT>) \
             WITH (KAFKA_TOPIC='grid.public.telemetry', KEY_FORMAT='JSON', VALUE_FORMAT='JSON');",
        )
        .await;
    let mut mirrored = server.pull_rows("SELECT ID->`id`, `after`->`name`, `after`->`wattage` FROM TELEMETRY_MIRROR;").await;
    mirrored.sort_by_key(|row| row[0].as_i64());
    assert_eq!(mirrored, [json!([1, "Node1", 1]), json!([3, "Node3", 60000]), json!([4, "Node4", 80000]), json!([5, "Node5", 70000])]);

    // The slot is moved past what is in Kafka, so PostgreSQL can let it go.
    let pending = postgres.psql(
        "telemetry",
        "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('debezium', NULL, NULL, 'proto_version', '1', 'publication_names', 'dbz_publication')",
    );
    assert_eq!(pending.trim(), "0", "no change left unacknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_9_while_changes_flow_neither_repeats_nor_skips_one() {
    const TRANSACTIONS: u32 = 40;
    const PER_TRANSACTION: u32 = 25;
    let broker = TestBroker::start().await;
    let postgres = std::sync::Arc::new(PostgresServer::start("telemetry"));
    postgres.psql("telemetry", SEED);
    let data = tempfile::tempdir().unwrap();
    // Each server process also panics once, after writing the batch holding Node777 to Kafka
    // and before moving the slot past it: the batch is decoded again and must not repeat.
    let mut server =
        SluiceServer::start_with_env(&broker.bootstrap, data.path().to_path_buf(), &[("SLUICE_INJECT_PANIC", "Node777")]).await;
    server
        .ksql_ok(&connector("grid-cdc", &postgres, &[
            ("topic.prefix", "grid"),
            ("key.converter.schemas.enable", "false"),
            ("value.converter.schemas.enable", "false"),
            ("max.batch.size", "60"),
            ("retriable.restart.connector.wait.ms", "300"),
        ]))
        .await;
    assert_eq!(changes(&broker.bootstrap, "grid.public.telemetry", 4).await.len(), 4, "the snapshot");

    let writer = postgres.clone();
    let feeding = tokio::task::spawn_blocking(move || {
        for t in 0..TRANSACTIONS {
            let first = 100 + t * PER_TRANSACTION;
            writer.psql(
                "telemetry",
                &format!(
                    "INSERT INTO telemetry (id, name, wattage) SELECT n, 'Node' || n, n FROM generate_series({first}, {}) AS n",
                    first + PER_TRANSACTION - 1
                ),
            );
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill();
        server.start_again().await;
    }
    feeding.await.unwrap();
    let expected = 4 + (TRANSACTIONS * PER_TRANSACTION) as usize;
    let all = changes(&broker.bootstrap, "grid.public.telemetry", expected).await;
    let ids: Vec<i64> = all.iter().map(|(_, v)| v["after"]["id"].as_i64().unwrap()).collect();
    let wanted: Vec<i64> = (1..=4).chain((0..TRANSACTIONS * PER_TRANSACTION).map(|n| 100 + n as i64)).collect();
    assert_eq!(ids, wanted, "every row once, in commit order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn initial_only_reads_the_tables_once_and_no_data_only_what_changes() {
    let broker = TestBroker::start().await;
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", SEED);
    postgres.psql(
        "telemetry",
        "CREATE TABLE tagged (id INT PRIMARY KEY, tags TEXT[], readings INT[], every INTERVAL);
         INSERT INTO tagged VALUES (1, '{north,\"rack 7\",NULL}', '{1,2}', '1 day 00:00:01.5');",
    );
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let plain = [("key.converter.schemas.enable", "false"), ("value.converter.schemas.enable", "false")];
    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> { plain.iter().chain(extra).copied().collect() };
    server
        .ksql_ok(&connector("once", &postgres, &with(&[("topic.prefix", "once"), ("snapshot.mode", "initial_only"), ("slot.name", "once_slot")])))
        .await;
    server
        .ksql_ok(&connector("changes", &postgres, &with(&[("topic.prefix", "changes"), ("snapshot.mode", "no_data"), ("slot.name", "changes_slot")])))
        .await;
    let snapshot = changes(&broker.bootstrap, "once.public.telemetry", 4).await;
    assert_eq!(snapshot.len(), 4, "initial_only reads the table: {snapshot:?}");
    // Arrays as arrays of their elements, intervals as Debezium's MicroDuration.
    let tagged = changes(&broker.bootstrap, "once.public.tagged", 1).await;
    assert_eq!(
        tagged[0].1["after"],
        json!({"id": 1, "tags": ["north", "rack 7", null], "readings": [1, 2], "every": 86_401_500_000i64})
    );
    // The change-only connector's slot exists once it runs; rows written after it are its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while postgres.psql("telemetry", "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'changes_slot'").trim() != "1" {
        assert!(std::time::Instant::now() < deadline, "the no_data connector made no slot");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    postgres.psql("telemetry", "INSERT INTO telemetry (name, wattage) VALUES ('Node5', 70000)");
    let changed = changes(&broker.bootstrap, "changes.public.telemetry", 1).await;
    let ids: Vec<(Value, &str)> = changed.iter().map(|(_, v)| (v["after"]["id"].clone(), v["op"].as_str().unwrap())).collect();
    assert_eq!(ids, [(json!(5), "c")], "no_data: no snapshot, then the insert");

    // A restart reads nothing again: the snapshot is done, and initial_only never decodes.
    server.kill();
    server.start_again().await;
    postgres.psql("telemetry", "INSERT INTO telemetry (name, wattage) VALUES ('Node6', 71000)");
    let changed = changes(&broker.bootstrap, "changes.public.telemetry", 2).await;
    assert_eq!(changed.len(), 2);
    assert_eq!(changed[1].1["after"]["id"], 6);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let snapshot = changes(&broker.bootstrap, "once.public.telemetry", 4).await;
    assert_eq!(snapshot.len(), 4, "initial_only wrote the table once and no change after it: {snapshot:?}");
    let slots = postgres.psql("telemetry", "SELECT slot_name FROM pg_replication_slots ORDER BY slot_name");
    assert_eq!(slots.trim(), "changes_slot", "initial_only holds no slot");
}
