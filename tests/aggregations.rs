//! Aggregations through the server against a real broker: counts and sums per sensor over the
//! seed's stream, exact after the server is SIGKILLed while records flow, and the aggregate
//! answering pull queries.

mod common;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use common::{CREATE_INGESTION, SluiceServer, TestBroker, powergrid_record, produce, producer};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use serde_json::{Value, json};

const SENSORS: u32 = 6;
const PER_SENSOR: u32 = 300;
const KILLS: usize = 4;

/// The last value of every key in `topic`, read until the topic is quiet for 3 s.
fn latest_per_key(bootstrap: &str, topic: &str, within: Duration) -> BTreeMap<String, Value> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-aggregation-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut assignment = TopicPartitionList::new();
    for p in 0..metadata.topics()[0].partitions().len() as i32 {
        assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + within;
    let mut latest = BTreeMap::new();
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            let value = m.payload().map_or(Value::Null, |v| serde_json::from_slice(v).unwrap());
            latest.insert(key, value);
            quiet_since = Instant::now();
        }
    }
    latest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counts_per_sensor_are_exact_across_kill_9_and_answer_pull_queries() {
    let broker = TestBroker::start().await;
    sluice::connectors::kafka::KafkaCluster::connect(&broker.bootstrap)
        .unwrap()
        .ensure_topic("INGESTION", 3, 1, &[])
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok(CREATE_INGESTION).await;
    server
        .ksql_ok(
            "CREATE TABLE READINGS_PER_SENSOR AS SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR, \
             COUNT(*) AS READINGS, SUM(SCHEMA_VERSION) AS VERSIONS, MAX(CREATED_AT) AS LAST_AT \
             FROM STREAM_INGESTION GROUP BY EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id');",
        )
        .await;

    let bootstrap = broker.bootstrap.clone();
    let feeding = tokio::spawn(async move {
        let producer = producer(&bootstrap);
        for n in 0..PER_SENSOR {
            for sensor in 1..=SENSORS {
                produce(&producer, "INGESTION", &format!("{sensor}-{n}"), &powergrid_record(sensor, n)).await;
            }
            if n % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.start_again().await;
    }
    feeding.await.unwrap();

    let last_at = |sensor: u32| powergrid_record(sensor, PER_SENSOR - 1).parse::<Value>().unwrap()["created_at"].clone();
    let latest = tokio::task::spawn_blocking({
        let bootstrap = broker.bootstrap.clone();
        move || latest_per_key(&bootstrap, "READINGS_PER_SENSOR", Duration::from_secs(120))
    })
    .await
    .unwrap();
    for sensor in 1..=SENSORS {
        let value = &latest[&sensor.to_string()];
        assert_eq!(value["READINGS"], json!(PER_SENSOR), "sensor {sensor}: every record counted once: {value}");
        assert_eq!(value["VERSIONS"], json!(PER_SENSOR), "sensor {sensor}: {value}");
        assert_eq!(value["LAST_AT"], last_at(sensor), "sensor {sensor}: {value}");
    }

    let rows = server.pull_rows("SELECT SENSOR, READINGS FROM READINGS_PER_SENSOR WHERE SENSOR = '3';").await;
    assert_eq!(rows, vec![json!(["3", PER_SENSOR])]);
}
