//! Test harness: a real Kafka-protocol broker (embedded Tansu on SQLite) and the real
//! `sluice-server` binary, each on a free 127.0.0.1 port, and an independent Kafka client.

#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    producer::{FutureProducer, FutureRecord},
};
use serde_json::{Value, json};
use sluice::broker::EmbeddedBroker;
use tempfile::TempDir;

pub mod browser;
pub mod certificates;
pub mod hdfs;
pub mod postgres;

/// A port nothing listens on now and that this process has not handed out before, below the
/// kernel's ephemeral range (32768–60999 on Linux): no outgoing connection can be given it while
/// a killed server is down, so the server starts again on it. Two servers started at once never
/// get the same one.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const END: u32 = 32_768;
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let start = std::process::id().wrapping_mul(7919).wrapping_add(nanos);
    for step in 0..END - FIRST {
        let port = (FIRST + start.wrapping_add(step) % (END - FIRST)) as u16;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free port between {FIRST} and {END}");
}

pub struct TestBroker {
    pub bootstrap: String,
    broker: Option<EmbeddedBroker>,
    dir: TempDir,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let broker = EmbeddedBroker::start(address, dir.path()).await.expect("broker starts");
        TestBroker {
            bootstrap: broker.bootstrap_servers(),
            broker: Some(broker),
            dir,
        }
    }

    /// Stops the broker; its log stays for [`TestBroker::start_again`].
    pub fn stop(&mut self) {
        if let Some(b) = self.broker.take() {
            b.stop();
        }
    }

    /// Starts the broker again on the same address with the same log.
    pub async fn start_again(&mut self) {
        let address: SocketAddr = self.bootstrap.parse().unwrap();
        self.broker = Some(EmbeddedBroker::start(address, self.dir.path()).await.expect("broker restarts"));
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(b) = self.broker.take() {
            b.stop();
        }
    }
}

/// A `sluice-server` process against the test broker; killed when dropped.
pub struct SluiceServer {
    pub url: String,
    pub port: u16,
    /// `--bootstrap-servers`, or the embedded broker's listen address when it runs one.
    pub bootstrap: String,
    embedded: bool,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    client: reqwest::Client,
}

impl SluiceServer {
    pub async fn start(bootstrap: &str, data_dir: PathBuf) -> SluiceServer {
        Self::launch(bootstrap.to_string(), false, data_dir).await
    }

    /// A server running its own embedded broker on a free port, as `sluice-server` does by default.
    pub async fn start_embedded(data_dir: PathBuf) -> SluiceServer {
        Self::launch(format!("127.0.0.1:{}", free_port()), true, data_dir).await
    }

    /// A server against `bootstrap` with extra environment (a test hook such as
    /// `SLUICE_INJECT_PANIC`).
    pub async fn start_with_env(bootstrap: &str, data_dir: PathBuf, env: &[(&str, &str)]) -> SluiceServer {
        let mut server = Self::unstarted(bootstrap.to_string(), false, data_dir);
        server.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        server.spawn().await;
        server
    }

    /// A server listening on `https://127.0.0.1:<port>` as the properties file `config` sets
    /// TLS up; its client trusts the authority `ca` (PEM) and presents `identity` (a PEM
    /// certificate chain and key) when given.
    pub async fn start_tls(bootstrap: &str, data_dir: PathBuf, config: &std::path::Path, ca: &str, identity: Option<&str>) -> SluiceServer {
        let mut server = Self::unstarted(bootstrap.to_string(), false, data_dir);
        server.url = format!("https://127.0.0.1:{}", server.port);
        server.env = vec![("SLUICE_CONFIG".to_string(), config.display().to_string())];
        let mut client = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap());
        if let Some(identity) = identity {
            client = client.identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap());
        }
        server.client = client.build().unwrap();
        server.spawn().await;
        server
    }

    fn unstarted(bootstrap: String, embedded: bool, data_dir: PathBuf) -> SluiceServer {
        let port = free_port();
        SluiceServer {
            url: format!("http://127.0.0.1:{port}"),
            port,
            bootstrap,
            embedded,
            data_dir,
            env: Vec::new(),
            child: None,
            client: reqwest::Client::new(),
        }
    }

    async fn launch(bootstrap: String, embedded: bool, data_dir: PathBuf) -> SluiceServer {
        let mut server = Self::unstarted(bootstrap, embedded, data_dir);
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let broker_flag = if self.embedded { "--broker-listen" } else { "--bootstrap-servers" };
        let child = Command::new(env!("CARGO_BIN_EXE_sluice-server"))
            .args(["--listen", self.url.trim_start_matches("http://")])
            .args([broker_flag, &self.bootstrap])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("RUST_LOG", std::env::var("SLUICE_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sluice-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("sluice-server exited with {status} before answering /info; its log is above");
            }
            if let Ok(r) = self.client.get(format!("{}/info", self.url)).send().await {
                // A server behind authentication answers 401 once it serves.
                if r.status().is_success() || r.status() == reqwest::StatusCode::UNAUTHORIZED {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("sluice-server did not answer /info within 60 s");
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit; returns whether it exited cleanly.
    pub fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return false };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// Starts the process again after [`SluiceServer::kill`] or [`SluiceServer::terminate`].
    pub async fn start_again(&mut self) {
        self.spawn().await;
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    /// POSTs `/ksql`; returns the status and the JSON body.
    pub async fn ksql(&self, sql: &str) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/ksql", self.url))
            .json(&json!({"ksql": sql, "streamsProperties": {"auto.offset.reset": "earliest"}}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn ksql_ok(&self, sql: &str) -> Value {
        let (status, body) = self.ksql(sql).await;
        assert_eq!(status, 200, "{sql} failed: {body}");
        body
    }

    /// Runs a push query that ends at its LIMIT through `/query-stream` (from earliest) and
    /// returns the whole response: the header line, then a line per row.
    pub async fn push_query_to_limit(&self, sql: &str) -> String {
        use futures::StreamExt;
        let response = self
            .client
            .post(format!("{}/query-stream", self.url))
            .json(&json!({"sql": sql, "properties": {"auto.offset.reset": "earliest"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut body = String::new();
        let mut stream = response.bytes_stream();
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(chunk) = stream.next().await {
                body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{sql} did not reach its LIMIT within 60 s: {body}"));
        body
    }

    /// The rows of a push query that ends at its LIMIT (from earliest), as JSON arrays.
    pub async fn push_rows(&self, sql: &str) -> Vec<Value> {
        let body = self.push_query_to_limit(sql).await;
        body.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// The rows of a pull query through `/query-stream`, as JSON arrays.
    pub async fn pull_rows(&self, sql: &str) -> Vec<Value> {
        let response = self
            .client
            .post(format!("{}/query-stream", self.url))
            .json(&json!({"sql": sql}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{sql}");
        let body = tokio::time::timeout(Duration::from_secs(30), response.text()).await.unwrap().unwrap();
        body.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// POSTs `/close-query` for a push query.
    pub async fn close_query(&self, query_id: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/close-query", self.url))
            .json(&json!({"queryId": query_id}))
            .send()
            .await
            .unwrap()
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Drop for SluiceServer {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap()
}

pub async fn produce(producer: &FutureProducer, topic: &str, key: &str, value: &str) {
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(value),
            Duration::from_secs(30),
        )
        .await
        .expect("record is produced");
}

/// The seed's statement declaring the stream over `INGESTION`, verbatim.
pub const CREATE_INGESTION: &str = "CREATE
STREAM STREAM_INGESTION (
  payload STRING,
  correlation_id STRING,
  created_at DOUBLE,
  schema_version INTEGER
) WITH (KAFKA_TOPIC = 'INGESTION', VALUE_FORMAT = 'JSON');";

/// The sensors' topic `INGESTION`, with 3 partitions, as the seed's pipeline has it.
pub async fn create_ingestion_topic(bootstrap: &str) {
    sluice::connectors::kafka::KafkaCluster::connect(bootstrap)
        .unwrap()
        .ensure_topic("INGESTION", 3, 1, &[])
        .await
        .unwrap();
}

/// A broker with a 3-partition `INGESTION`, and a server (its data in the directory returned)
/// with the seed's stream over it.
pub async fn server_over_ingestion() -> (TestBroker, tempfile::TempDir, SluiceServer) {
    let broker = TestBroker::start().await;
    create_ingestion_topic(&broker.bootstrap).await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok(CREATE_INGESTION).await;
    (broker, data, server)
}

/// Feeds `per_sensor` readings of each of `sensors` sensors into `INGESTION`, keyed
/// `<sensor>-<n>` (reading `n` stamped `epoch + n × 100 ms` when given, else by the broker),
/// while the server is SIGKILLed and started again `kills` times.
pub async fn feed_readings_while_killing(
    broker: &TestBroker,
    server: &mut SluiceServer,
    sensors: u32,
    per_sensor: u32,
    kills: usize,
    epoch: Option<i64>,
) {
    let bootstrap = broker.bootstrap.clone();
    let feeding = tokio::spawn(async move {
        let producer = producer(&bootstrap);
        for n in 0..per_sensor {
            for sensor in 1..=sensors {
                let key = format!("{sensor}-{n}");
                let value = powergrid_record(sensor, n);
                let mut record = FutureRecord::to("INGESTION").key(&key).payload(&value);
                if let Some(epoch) = epoch {
                    record = record.timestamp(epoch + n as i64 * 100);
                }
                producer.send(record, Duration::from_secs(30)).await.expect("record is produced");
            }
            if n % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        server.kill();
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.start_again().await;
    }
    feeding.await.unwrap();
}

/// Feeds `per_sensor` PowerGrid records of each of `sensors` sensors into `INGESTION`, keyed
/// by sensor, in the background.
pub fn feed_sensors(bootstrap: &str, sensors: u32, per_sensor: u32) -> tokio::task::JoinHandle<()> {
    let bootstrap = bootstrap.to_string();
    tokio::spawn(async move {
        let producer = producer(&bootstrap);
        for n in 0..per_sensor {
            for sensor in 1..=sensors {
                produce(&producer, "INGESTION", &sensor.to_string(), &powergrid_record(sensor, n)).await;
            }
            if n % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
}

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

/// Checks that `SENSOR_ID_<sensor>` holds each of the sensor's `per_sensor` records once, and
/// each key's records in the order they were fed.
pub fn check_routed_exactly_once(bootstrap: &str, sensor: u32, per_sensor: u32) {
    let topic = format!("SENSOR_ID_{sensor}");
    let records = routed(bootstrap, &topic, per_sensor as usize, Duration::from_secs(120));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, id) in &records {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    let duplicated: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(duplicated.is_empty(), "{topic}: {} records duplicated, e.g. {:?}", duplicated.len(), duplicated.first());
    let missing: Vec<String> = (0..per_sensor)
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

/// The last value of every key in `topic` (its bytes), read until the topic is quiet for 3 s.
pub fn latest_per_key(bootstrap: &str, topic: &str, within: Duration) -> BTreeMap<Vec<u8>, Value> {
    records(bootstrap, topic, within).into_iter().collect()
}

/// Every record of `topic` (key bytes and value), read until the topic is quiet for 3 s.
pub fn records(bootstrap: &str, topic: &str, within: Duration) -> Vec<(Vec<u8>, Value)> {
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
    let mut records = Vec::new();
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline && quiet_since.elapsed() < Duration::from_secs(3) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let key = m.key().unwrap_or_default().to_vec();
            let value = m.payload().map_or(Value::Null, |v| serde_json::from_slice(v).unwrap());
            records.push((key, value));
            quiet_since = Instant::now();
        }
    }
    records
}

/// A PowerGrid record as the seed's producer writes it.
pub fn powergrid_record(sensor: u32, n: u32) -> String {
    let payload = json!({"sensor_id": sensor, "modality": 400 + n, "unit": "MW", "temporal_aspect": "real_time"});
    json!({
        "payload": payload.to_string(),
        "correlation_id": format!("{sensor:02}-{n:06}"),
        "created_at": 1796167415.3241541 + n as f64 * 0.0137,
        "schema_version": 1
    })
    .to_string()
}

/// A PowerGrid record as a routing query (`SELECT *` over `STREAM_INGESTION`) writes it, as
/// ksqlDB does: the columns under their names as declared (upper case), each value as read.
pub fn routed_record(record: &str) -> Value {
    let read: Value = serde_json::from_str(record).unwrap();
    let columns = read.as_object().unwrap().iter().map(|(name, value)| (name.to_ascii_uppercase(), value.clone()));
    Value::Object(columns.collect())
}

/// Reads `topic` from the beginning until `expected` records arrived or `timeout` passed.
pub fn read_topic(bootstrap: &str, topic: &str, expected: usize, timeout: Duration) -> Vec<(Option<String>, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-test-reader")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let deadline = Instant::now() + timeout;
    let partitions = loop {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)).unwrap();
        let count = metadata.topics().first().map_or(0, |t| t.partitions().len());
        if count > 0 || Instant::now() > deadline {
            break count;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut records = Vec::new();
    while records.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            records.push((
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            ));
        }
    }
    let settle = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < settle {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            records.push((
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            ));
        }
    }
    records
}

/// The Python with ksql-python-ng and kafka-python that `.ci/install-deps` prepares.
pub fn python() -> PathBuf {
    let path = std::env::var_os("SLUICE_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/sluice/pyenv/bin/python")
    });
    assert!(path.exists(), "{} is missing: run `bash .ci/install-deps` first", path.display());
    path
}
