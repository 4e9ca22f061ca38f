//! `/metrics` read as Prometheus reads it: parsed by a Prometheus text parser, its figures
//! moving as records flow through a query (or wait while it is paused) and requests reach the
//! API.

mod common;

use std::time::Duration;

use common::{SluiceServer, produce, producer, powergrid_record, server_over_ingestion};
use prometheus_parse::{Sample, Scrape, Value};

async fn scrape(server: &SluiceServer) -> Scrape {
    let response = server.client().get(format!("{}/metrics", server.url)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let body = response.text().await.unwrap();
    Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn value(sample: &Sample) -> f64 {
    match sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
        ref other => panic!("{} is not a number: {other:?}", sample.metric),
    }
}

/// How many INGESTION partitions `query`'s lag is shown for, and their total lag.
fn lag(scrape: &Scrape, query: &str) -> (usize, f64) {
    let partitions: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "sluice_query_lag_records" && s.labels.get("query") == Some(query) && s.labels.get("topic") == Some("INGESTION"))
        .map(value)
        .collect();
    (partitions.len(), partitions.iter().sum())
}

/// The value of `metric` whose labels include `labels`.
fn find(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_a_querys_records_the_apis_requests_and_the_process() {
    let (broker, _data, server) = server_over_ingestion().await;
    server
        .ksql_ok("CREATE STREAM SENSOR_ID_3 AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '3';")
        .await;
    let query = server.ksql_ok("SHOW QUERIES;").await[0]["queries"][0]["id"].as_str().unwrap().to_string();
    let readings = producer(&broker.bootstrap);
    for (n, sensor) in [3, 4, 3].into_iter().enumerate() {
        produce(&readings, "INGESTION", &format!("{sensor}-{n}"), &powergrid_record(sensor, n as u32)).await;
    }

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // A record counts as read when the query takes it in, and leaves the lag once its output
    // has landed (query output lingers before it leaves): wait for both.
    let scraped = loop {
        let scraped = scrape(&server).await;
        if find(&scraped, "sluice_query_records_in_total", &[("query", &query)]) == Some(3.0) && lag(&scraped, &query) == (3, 0.0) {
            break scraped;
        }
        assert!(std::time::Instant::now() < deadline, "the query's three records never showed read, every partition's lag 0: {:?}", scraped.samples);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(find(&scraped, "sluice_query_records_out_total", &[("query", &query)]), Some(2.0), "sensor 3's two readings");
    assert_eq!(find(&scraped, "sluice_query_processing_errors_total", &[("query", &query)]), Some(0.0));
    assert_eq!(find(&scraped, "sluice_query_state", &[("query", &query), ("state", "RUNNING")]), Some(1.0));
    assert_eq!(find(&scraped, "sluice_topic_records_produced_total", &[("topic", "SENSOR_ID_3")]), Some(2.0));
    assert!(find(&scraped, "sluice_topic_records_fetched_total", &[("topic", "INGESTION")]).is_some_and(|n| n >= 3.0));
    let latency = scraped
        .samples
        .iter()
        .find(|s| s.metric == "sluice_query_processing_latency_seconds" && s.labels.get("query") == Some(query.as_str()))
        .map(|s| s.value.clone());
    match latency {
        Some(Value::Histogram(buckets)) => {
            let all = buckets.iter().find(|b| b.less_than == f64::INFINITY).map(|b| b.count);
            assert!(all.is_some_and(|n| n >= 1.0), "every settled batch is observed: {buckets:?}");
        }
        other => panic!("no latency histogram for {query}: {other:?}"),
    }
    assert!(find(&scraped, "process_cpu_seconds_total", &[]).is_some_and(|cpu| cpu > 0.0));
    assert!(find(&scraped, "process_resident_memory_bytes", &[]).is_some_and(|bytes| bytes > 1e6));
    let ksql_posts = |scrape: &Scrape| find(scrape, "sluice_http_requests_total", &[("method", "POST"), ("route", "/ksql"), ("status", "200")]);
    let before = ksql_posts(&scraped).expect("the statements above were counted");

    server.ksql_ok("SHOW STREAMS;").await;
    produce(&readings, "INGESTION", "3-9", &powergrid_record(3, 9)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let scraped = scrape(&server).await;
        if find(&scraped, "sluice_query_records_out_total", &[("query", &query)]) == Some(3.0) {
            assert_eq!(ksql_posts(&scraped), Some(before + 1.0), "one more statement");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the next reading never showed: {:?}", scraped.samples);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    server.ksql_ok(&format!("PAUSE {query};")).await;
    for n in 10..12 {
        produce(&readings, "INGESTION", &format!("3-{n}"), &powergrid_record(3, n)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let scraped = scrape(&server).await;
        if lag(&scraped, &query) == (3, 2.0) {
            assert_eq!(find(&scraped, "sluice_query_state", &[("query", &query), ("state", "PAUSED")]), Some(1.0));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a paused query's lag never grew: {:?}", scraped.samples);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
