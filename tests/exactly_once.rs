//! Exactly-once routing without broker transactions: the server is killed (SIGKILL) five times
//! while records flow, and every input record is in its routed topic once, in key order.

mod common;

use std::time::Duration;

use common::{SluiceServer, TestBroker, check_routed_exactly_once, feed_sensors, produce, producer, server_over_ingestion};

const SENSORS: u32 = 6;
const PER_SENSOR: u32 = 400;
const KILLS: usize = 5;

/// Creates the ingestion stream and `queries`, feeds every sensor's records while killing the
/// server [`KILLS`] times, then checks each sensor's routed topic holds each record once, in
/// key order.
async fn route_across_kills(queries: &[String]) {
    let (broker, _data, mut server) = server_over_ingestion().await;
    for query in queries {
        server.ksql_ok(query).await;
    }

    let feeding = feed_sensors(&broker.bootstrap, SENSORS, PER_SENSOR);
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill();
        server.start_again().await;
    }
    feeding.await.unwrap();
    for sensor in 1..=SENSORS {
        check_routed_exactly_once(&broker.bootstrap, sensor, PER_SENSOR);
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
