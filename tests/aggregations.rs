//! Aggregations through the server against a real broker: counts and sums per sensor over the
//! seed's stream, and counts per sensor per window, exact after the server is SIGKILLed while
//! records flow; the aggregates answering pull queries; a late record counted on its query; a
//! table's rows counted per sensor as they are updated and deleted; `EMIT FINAL` windows
//! closed by the wall clock when the input is idle, once across a SIGKILL.

mod common;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use common::{feed_readings_while_killing, latest_per_key, powergrid_record, producer, records, server_over_ingestion};
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};

const SENSORS: u32 = 6;
const PER_SENSOR: u32 = 300;
const KILLS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_per_sensor_are_exact_across_kill_9_and_answer_pull_queries() {
    let (broker, _data, mut server) = server_over_ingestion().await;
    server
        .ksql_ok(
            "CREATE TABLE READINGS_PER_SENSOR AS SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR, \
             COUNT(*) AS READINGS, SUM(SCHEMA_VERSION) AS VERSIONS, MAX(CREATED_AT) AS LAST_AT \
             FROM STREAM_INGESTION GROUP BY EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id');",
        )
        .await;

    feed_readings_while_killing(&broker, &mut server, SENSORS, PER_SENSOR, KILLS, None).await;

    let last_at = |sensor: u32| powergrid_record(sensor, PER_SENSOR - 1).parse::<Value>().unwrap()["created_at"].clone();
    let latest = tokio::task::spawn_blocking({
        let bootstrap = broker.bootstrap.clone();
        move || latest_per_key(&bootstrap, "READINGS_PER_SENSOR", Duration::from_secs(120))
    })
    .await
    .unwrap();
    for sensor in 1..=SENSORS {
        let value = &latest[sensor.to_string().as_bytes()];
        assert_eq!(value["READINGS"], json!(PER_SENSOR), "sensor {sensor}: every record counted once: {value}");
        assert_eq!(value["VERSIONS"], json!(PER_SENSOR), "sensor {sensor}: {value}");
        assert_eq!(value["LAST_AT"], last_at(sensor), "sensor {sensor}: {value}");
    }

    let rows = server.pull_rows("SELECT SENSOR, READINGS FROM READINGS_PER_SENSOR WHERE SENSOR = '3';").await;
    assert_eq!(rows, vec![json!(["3", PER_SENSOR])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_aggregation_retracts_updated_and_deleted_rows_exactly_across_kill_9() {
    let (broker, _data, mut server) = server_over_ingestion().await;
    server
        .ksql_ok(
            "CREATE TABLE READING_ROWS (K STRING PRIMARY KEY, PAYLOAD STRING, SCHEMA_VERSION INTEGER) \
             WITH (KAFKA_TOPIC = 'INGESTION', VALUE_FORMAT = 'JSON');",
        )
        .await;
    server
        .ksql_ok(
            "CREATE TABLE ROWS_PER_SENSOR AS SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR, \
             COUNT(*) AS ROWS, SUM(SCHEMA_VERSION) AS VERSIONS FROM READING_ROWS GROUP BY EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id');",
        )
        .await;

    feed_readings_while_killing(&broker, &mut server, SENSORS, PER_SENSOR, KILLS, None).await;
    // Ten of sensor 3's rows deleted; five of sensor 4's rows updated to name sensor 5.
    let records = producer(&broker.bootstrap);
    for n in 0..10 {
        let key = format!("3-{n}");
        records.send(FutureRecord::<String, [u8]>::to("INGESTION").key(&key), Duration::from_secs(30)).await.unwrap();
    }
    for n in 0..5 {
        let (key, moved) = (format!("4-{n}"), powergrid_record(5, n));
        records.send(FutureRecord::to("INGESTION").key(&key).payload(&moved), Duration::from_secs(30)).await.unwrap();
    }

    let latest = tokio::task::spawn_blocking({
        let bootstrap = broker.bootstrap.clone();
        move || latest_per_key(&bootstrap, "ROWS_PER_SENSOR", Duration::from_secs(120))
    })
    .await
    .unwrap();
    for sensor in 1..=SENSORS {
        let expected = match sensor {
            3 => PER_SENSOR - 10,
            4 => PER_SENSOR - 5,
            5 => PER_SENSOR + 5,
            _ => PER_SENSOR,
        };
        let value = &latest[sensor.to_string().as_bytes()];
        assert_eq!(value["ROWS"], json!(expected), "sensor {sensor}: each row counted once, as it is now: {value}");
        assert_eq!(value["VERSIONS"], json!(expected), "sensor {sensor}: {value}");
    }
}

/// The first reading's timestamp: the windows below are 10 s long, and each sensor sends a
/// reading every 100 ms of event time, so each window holds 100 readings per sensor.
const EPOCH: i64 = 1_796_167_380_000;
const WINDOW_MS: i64 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn windowed_counts_are_exact_across_kill_9_and_a_late_record_is_counted() {
    let (broker, _data, mut server) = server_over_ingestion().await;
    server
        .ksql_ok(
            "CREATE TABLE READINGS_PER_WINDOW AS SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR, \
             COUNT(*) AS READINGS FROM STREAM_INGESTION WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 1 HOUR) \
             GROUP BY EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id');",
        )
        .await;

    feed_readings_while_killing(&broker, &mut server, SENSORS, PER_SENSOR, KILLS + 1, Some(EPOCH)).await;

    // The recount: readings per sensor per window start.
    let mut recount: BTreeMap<(String, i64), u64> = BTreeMap::new();
    for n in 0..PER_SENSOR {
        let start = (EPOCH + n as i64 * 100) / WINDOW_MS * WINDOW_MS;
        for sensor in 1..=SENSORS {
            *recount.entry((sensor.to_string(), start)).or_default() += 1;
        }
    }
    // Read until the restarted server has caught up (a quiet topic may only mean it is still
    // rebuilding): a count too high or too low never turns right later.
    let deadline = Instant::now() + Duration::from_secs(90);
    let written = loop {
        let latest = tokio::task::spawn_blocking({
            let bootstrap = broker.bootstrap.clone();
            move || latest_per_key(&bootstrap, "READINGS_PER_WINDOW", Duration::from_secs(120))
        })
        .await
        .unwrap();
        let written: BTreeMap<(String, i64), u64> = latest
            .iter()
            .map(|(key, value)| {
                let (sensor, start) = key.split_at(key.len() - 8);
                let start = i64::from_be_bytes(start.try_into().unwrap());
                ((String::from_utf8_lossy(sensor).into_owned(), start), value["READINGS"].as_u64().unwrap())
            })
            .collect();
        if written == recount || Instant::now() > deadline {
            break written;
        }
    };
    assert_eq!(written, recount, "the last record of every window holds its recount: none lost, none counted twice");

    let rows = server.pull_rows("SELECT SENSOR, WINDOWSTART, WINDOWEND, READINGS FROM READINGS_PER_WINDOW WHERE SENSOR = '3';").await;
    let pulled: BTreeMap<i64, u64> = rows
        .iter()
        .map(|r| {
            assert_eq!(r[2].as_i64().unwrap() - r[1].as_i64().unwrap(), WINDOW_MS, "{r}");
            (r[1].as_i64().unwrap(), r[3].as_u64().unwrap())
        })
        .collect();
    let wanted: BTreeMap<i64, u64> = recount.iter().filter(|((s, _), _)| s == "3").map(|((_, start), n)| (*start, *n)).collect();
    assert_eq!(pulled, wanted, "pull query by key over the windowed table");

    // A reading two hours older than the newest: its window closed an hour ago.
    let producer = producer(&broker.bootstrap);
    let late = powergrid_record(3, 0);
    let record = FutureRecord::to("INGESTION").key("late").payload(&late).timestamp(EPOCH - 7_200_000);
    producer.send(record, Duration::from_secs(30)).await.expect("record is produced");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let described = server.ksql_ok("DESCRIBE READINGS_PER_WINDOW EXTENDED;").await;
        let errors = described[0]["sourceDescription"]["errorStats"].as_str().unwrap_or_default().to_string();
        if errors.contains("processing-errors: 1,") {
            break;
        }
        assert!(Instant::now() < deadline, "the late record was never counted: {errors}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Readings of sensor 3 stamped `at`, one each.
async fn send_readings_at(bootstrap: &str, at: &[i64]) {
    let producer = producer(bootstrap);
    for (n, timestamp) in at.iter().enumerate() {
        let key = format!("3-{timestamp}");
        let value = powergrid_record(3, n as u32);
        let record = FutureRecord::to("INGESTION").key(&key).payload(&value).timestamp(*timestamp);
        producer.send(record, Duration::from_secs(30)).await.expect("record is produced");
    }
}

/// The window start and `READINGS` of every record of `topic` once `expected` are there (or
/// 30 s passed) and no more came for 3 s, in order.
fn final_rows(bootstrap: &str, topic: &str, expected: usize) -> Vec<(i64, u64)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut rows: Vec<(i64, u64)> = records(bootstrap, topic, Duration::from_secs(30))
            .into_iter()
            .map(|(key, value)| (i64::from_be_bytes(key[key.len() - 8..].try_into().unwrap()), value["READINGS"].as_u64().unwrap()))
            .collect();
        if rows.len() >= expected || Instant::now() > deadline {
            rows.sort();
            return rows;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_emit_final_window_closes_by_the_wall_clock_once_across_kill_9() {
    let (broker, _data, mut server) = server_over_ingestion().await;
    server
        .ksql_ok(
            "SET 'sluice.window.idle.close.ms' = '1000'; SET 'auto.offset.reset' = 'earliest'; \
             CREATE TABLE FINAL_COUNTS AS SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR, \
             COUNT(*) AS READINGS FROM STREAM_INGESTION WINDOW TUMBLING (SIZE 2 SECONDS, GRACE PERIOD 0 SECONDS) \
             GROUP BY EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') EMIT FINAL;",
        )
        .await;
    // Five readings in [EPOCH, EPOCH + 2 s), then nothing: no record ever closes the window.
    send_readings_at(&broker.bootstrap, &[EPOCH, EPOCH + 100, EPOCH + 200, EPOCH + 300, EPOCH + 400]).await;
    let bootstrap = broker.bootstrap.clone();
    let rows = tokio::task::spawn_blocking(move || final_rows(&bootstrap, "FINAL_COUNTS", 1)).await.unwrap();
    assert_eq!(rows, vec![(EPOCH, 5)], "the idle window's final row, once");

    // Once the checkpoint has the advance, SIGKILL: the restarted server rebuilds the window
    // from the input and must not close it again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.kill();
    server.start_again().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // A reading for the closed window is late; one in a later window opens it, and the idle
    // input closes that one too.
    send_readings_at(&broker.bootstrap, &[EPOCH + 100]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let described = server.ksql_ok("DESCRIBE FINAL_COUNTS EXTENDED;").await;
        let errors = described[0]["sourceDescription"]["errorStats"].as_str().unwrap_or_default().to_string();
        if errors.contains("processing-errors: 1,") {
            break;
        }
        assert!(Instant::now() < deadline, "the late reading was never counted: {errors}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    send_readings_at(&broker.bootstrap, &[EPOCH + 5_000, EPOCH + 5_500]).await;
    let bootstrap = broker.bootstrap.clone();
    let rows = tokio::task::spawn_blocking(move || final_rows(&bootstrap, "FINAL_COUNTS", 2)).await.unwrap();
    assert_eq!(rows, vec![(EPOCH, 5), (EPOCH + 4_000, 2)], "each window's final row once: none again after the restart");
}
