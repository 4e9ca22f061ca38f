//! What the end-to-end benchmarks share: the broker in a process of its own, a `sluice-server`
//! process, another process's CPU time and peak memory from `/proc/<pid>`, and waiting for a
//! topic to hold a count of records.

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig,
    producer::{BaseProducer, BaseRecord},
};
use serde_json::{Value, json};
use sluice::connectors::kafka::KafkaCluster;

/// Linux's clock tick, the unit of `/proc/<pid>/stat` CPU times.
const TICKS_PER_SECOND: f64 = 100.0;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// User + system CPU seconds of a process (`self` or a pid).
pub fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}

/// Peak resident memory (`VmHWM`) of a process (`self` or a pid), in MB.
pub fn peak_rss_mb(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A producer for loading records fast: batched, with a deep queue.
pub fn producer(bootstrap: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap()
}

/// Queues a record, waiting while the producer's queue is full.
pub fn send(producer: &BaseProducer, topic: &str, key: Option<&[u8]>, value: &[u8]) {
    let mut record = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
    if let Some(key) = key {
        record = record.key(key);
    }
    while let Err((_, rejected)) = producer.send(record) {
        producer.poll(Duration::from_millis(1));
        record = rejected;
    }
    producer.poll(Duration::ZERO);
}

/// The broker process's body: embedded Tansu at `address`, storing in `dir`, until killed.
pub fn run_broker(address: &str, dir: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let _broker = sluice::broker::EmbeddedBroker::start(address.parse().unwrap(), Path::new(dir))
            .await
            .unwrap();
        std::future::pending::<()>().await
    });
}

/// Starts this benchmark binary again as the broker (its `main` calls [`run_broker`] when its
/// first argument is `broker`), on a free port; returns the process and its bootstrap address.
pub async fn start_broker(dir: &Path) -> (Child, String) {
    let bootstrap = format!("127.0.0.1:{}", free_port());
    let broker = Command::new(std::env::current_exe().unwrap())
        .args(["broker", &bootstrap, dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    (broker, bootstrap)
}

/// The sum of the log ends of `topics` (all partitions).
pub fn records_in(cluster: &KafkaCluster, topics: &[String]) -> u64 {
    topics
        .iter()
        .map(|t| match cluster.topic(t) {
            Ok(Some(info)) => cluster
                .watermarks(t, info.partitions)
                .map_or(0, |marks| marks.iter().map(|(_, high)| *high as u64).sum()),
            _ => 0,
        })
        .sum()
}

/// Waits until `topics` hold `expected` records, and fails if they hold more.
pub fn wait_for_records(cluster: &KafkaCluster, topics: &[String], expected: u64, timeout: Duration) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        let count = records_in(cluster, topics);
        if count >= expected {
            assert_eq!(count, expected, "{topics:?} hold more records than were written to them");
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "{topics:?} reached {count} of {expected} records");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `sluice-server` process (the release build's), killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start(bootstrap: &str, service_id: &str, dir: &Path) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice-server"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--bootstrap-servers", bootstrap, "--service-id", service_id])
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("sluice-server starts");
        let server = Server { child, url: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() };
        for _ in 0..600 {
            if server.client.get(format!("{}/info", server.url)).send().await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("sluice-server did not start");
    }

    pub async fn ksql(&self, sql: &str, offset_reset: &str) -> Value {
        self.ksql_with(sql, json!({"auto.offset.reset": offset_reset})).await
    }

    pub async fn ksql_with(&self, sql: &str, properties: Value) -> Value {
        let response = self
            .client
            .post(format!("{}/ksql", self.url))
            .json(&json!({"ksql": sql, "streamsProperties": properties}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{sql}: {body}");
        body
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Kills the process at once (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
