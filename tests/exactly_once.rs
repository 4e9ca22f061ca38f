//! Exactly-once routing without broker transactions: the server is killed (SIGKILL) five times
//! while records flow, and every input record is in its routed topic once, in key order.

mod common;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use common::{SluiceServer, TestBroker, powergrid_record, produce, producer, server_over_ingestion};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use serde_json::Value;

const SENSORS: u32 = 6;
const PER_SENSOR: u32 = 400;
const KILLS: usize = 5;

/// Every record of every partition of `topic`, as (partition, key, correlation id), read until
/// `expected` records arrived and the topic stayed quiet for a while after.
fn routed(bootstrap: &str, topic: &str, expected: usize, within: Duration) -> Vec<(i32, String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-exactly-once-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + within;
    let mut records = Vec::new();
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let value: Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
                records.push((
                    m.partition(),
                    String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    value["CORRELATION_ID"].as_str().or(value["correlation_id"].as_str()).unwrap().to_string(),
                ));
                quiet_since = Instant::now();
            }
            _ if records.len() >= expected && quiet_since.elapsed() > Duration::from_secs(3) => break,
            _ => {}
        }
    }
    records
}

/// Creates the ingestion stream and `queries`, feeds every sensor's records while killing the
/// server [`KILLS`] times, then checks each sensor's routed topic holds each record once, in
/// key order.
async fn route_across_kills(queries: &[String]) {
    let (broker, _data, mut server) = server_over_ingestion().await;
    for query in queries {
        server.ksql_ok(query).await;
    }

    let bootstrap = broker.bootstrap.clone();
    let feeding = tokio::spawn(async move {
        let producer = producer(&bootstrap);
        for n in 0..PER_SENSOR {
            for sensor in 1..=SENSORS {
                produce(&producer, "INGESTION", &sensor.to_string(), &powergrid_record(sensor, n)).await;
            }
            if n % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill();
        server.start_again().await;
    }
    feeding.await.unwrap();

    for sensor in 1..=SENSORS {
        let topic = format!("SENSOR_ID_{sensor}");
        let records = routed(&broker.bootstrap, &topic, PER_SENSOR as usize, Duration::from_secs(120));
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, _, id) in &records {
            *counts.entry(id.as_str()).or_default() += 1;
        }
        let duplicated: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
        assert!(duplicated.is_empty(), "{topic}: {} records duplicated, e.g. {:?}", duplicated.len(), duplicated.first());
        let missing: Vec<String> = (0..PER_SENSOR)
            .map(|n| format!("{sensor:02}-{n:06}"))
            .filter(|id| !counts.contains_key(id.as_str()))
            .collect();
        assert!(missing.is_empty(), "{topic}: {} records lost, e.g. {:?}", missing.len(), missing.first());
        let mut last: BTreeMap<(i32, &str), &str> = BTreeMap::new();
        for (partition, key, id) in &records {
            if let Some(previous) = last.insert((*partition, key.as_str()), id.as_str()) {
                assert!(previous < id.as_str(), "{topic}: {id} after {previous} for key {key}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_routing_queries_write_every_record_exactly_once_across_five_kills() {
    let queries: Vec<String> = (1..=SENSORS)
        .map(|id| {
            format!("CREATE STREAM SENSOR_ID_{id} AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '{id}';")
        })
        .collect();
    route_across_kills(&queries).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_statement_routes_every_sensor_exactly_once_across_five_kills() {
    let route = "CREATE STREAM SENSORS WITH (KAFKA_TOPIC = 'SENSOR_ID_{SENSOR}') AS SELECT *, EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR FROM STREAM_INGESTION;";
    route_across_kills(&[route.to_string()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkpoint_from_before_output_positions_still_resumes_exactly_once() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM S (A STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    let created = server.ksql_ok("CREATE STREAM COPY AS SELECT A FROM S;").await;
    let query = created[0]["commandStatus"]["queryId"].as_str().unwrap().to_string();
    let producer = producer(&broker.bootstrap);
    for n in 0..3 {
        produce(&producer, "s", "k", &format!(r#"{{"A": "r{n}"}}"#)).await;
    }
    assert_eq!(common::read_topic(&broker.bootstrap, "COPY", 3, Duration::from_secs(60)).len(), 3);
    server.kill();

    // What an earlier version committed: one record per query, offsets only, here from before
    // the three records were routed.
    let offsets = "_sluice-default__offsets";
    produce(&producer, offsets, &format!("{query}/0"), r#"{"offset": 0}"#).await;
    produce(&producer, offsets, &query, r#"{"0": 0}"#).await;
    server.start_again().await;
    produce(&producer, "s", "k", r#"{"A": "r3"}"#).await;
    let copied = common::read_topic(&broker.bootstrap, "COPY", 4, Duration::from_secs(60));
    let values: Vec<&str> = copied.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec![r#"{"A":"r0"}"#, r#"{"A":"r1"}"#, r#"{"A":"r2"}"#, r#"{"A":"r3"}"#]);
}
