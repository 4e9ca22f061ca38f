//! The end-to-end benchmark: the PowerGrid routing over a real broker, Sluice against a
//! hand-written rdkafka loop in the same run, and the HDFS sink against raw hdfs-native writes.
//!
//! `cargo bench --bench pipeline` (records: `SLUICE_BENCH_RECORDS`, default 1,000,000;
//! `SLUICE_BENCH_ONLY=cluster` runs only one server against two sharing the queries, and the
//! takeover after a `kill -9`). The broker runs in a process of its own (this binary re-run with `broker`), so each routing
//! process's CPU time (from `/proc/<pid>/stat`) and peak RSS (`VmHWM`) are its own. Every run
//! checks its output counts, so a fast wrong run cannot pass.

#[path = "../tests/common/hdfs.rs"]
#[allow(dead_code)]
mod hdfs;
#[path = "common/server.rs"]
mod server;

use std::{
    borrow::Cow,
    collections::BTreeMap,
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    producer::{BaseRecord, Producer},
};
use serde::Deserialize;
use serde_json::{Value, json};
use server::{Server, cpu_seconds, free_port, peak_rss_mb, producer, run_broker, send, start_broker, wait_for_records};
use sluice::connectors::kafka::KafkaCluster;

const SENSORS: u32 = 6;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("broker") => run_broker(&args[1], &args[2]),
        Some("baseline") => {
            let only = args.get(5).map(|sensor| sensor.parse().unwrap());
            run_baseline(&args[1], args[2].parse().unwrap(), &args[3], &args[4], only)
        }
        Some("read") => run_read(&args[1], args[2].parse().unwrap(), &args[3]),
        _ => tokio::runtime::Runtime::new().unwrap().block_on(orchestrate()),
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Payload {
    sensor_id: u32,
}

/// The baseline: consume `input` (3 partitions) from the beginning, parse `payload` out of each
/// value and `sensor_id` out of it, produce the record unchanged (timestamp included) to
/// `<output_prefix><id>` (only sensor `only`'s records, when given) — the least the routing costs
/// with librdkafka. Stops after `records` records and prints its own wall time, CPU time and
/// peak RSS as JSON.
fn run_baseline(bootstrap: &str, records: u64, input: &str, output_prefix: &str, only: Option<u32>) {
    let consumer = reader_from_start(bootstrap, "baseline", input);
    let producer = producer(bootstrap);
    let topics: Vec<String> = (1..=SENSORS).map(|s| format!("{output_prefix}{s}")).collect();
    let (start, cpu_start) = (Instant::now(), cpu_seconds("self"));
    let mut seen = 0;
    while seen < records {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else { continue };
        seen += 1;
        let Some(value) = message.payload() else { continue };
        let Ok(envelope) = serde_json::from_slice::<Envelope>(value) else { continue };
        let Ok(payload) = serde_json::from_str::<Payload>(&envelope.payload) else { continue };
        if only.is_some_and(|sensor| sensor != payload.sensor_id) {
            continue;
        }
        let Some(topic) = topics.get(payload.sensor_id as usize - 1) else { continue };
        let mut record = BaseRecord::to(topic).payload(value).partition(message.partition());
        if let Some(timestamp) = message.timestamp().to_millis() {
            record = record.timestamp(timestamp);
        }
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        while let Err((_, rejected)) = producer.send(record) {
            producer.poll(Duration::from_millis(1));
            record = rejected;
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    println!(
        "{}",
        json!({"wall": start.elapsed().as_secs_f64(), "cpu": cpu_seconds("self") - cpu_start, "rss_mb": peak_rss_mb("self")})
    );
}

/// Only reading: consume `topic` (3 partitions) from the beginning until `records` records have
/// arrived — how fast the broker feeds a reader, the ceiling for the HDFS sink. Prints its
/// figures as JSON like the baseline.
fn run_read(bootstrap: &str, records: u64, topic: &str) {
    let consumer = reader_from_start(bootstrap, "read", topic);
    let (start, cpu_start) = (Instant::now(), cpu_seconds("self"));
    let (mut seen, mut bytes) = (0, 0);
    while seen < records {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            seen += 1;
            bytes += message.payload_len();
        }
    }
    println!(
        "{}",
        json!({"wall": start.elapsed().as_secs_f64(), "cpu": cpu_seconds("self") - cpu_start, "rss_mb": peak_rss_mb("self"), "bytes": bytes})
    );
}

/// A consumer of `topic`'s three partitions from the beginning, with the scans' fetch wait.
fn reader_from_start(bootstrap: &str, group: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "50")
        .create()
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..3 {
        assignment.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
    }
    consumer.assign(&assignment).unwrap();
    consumer
}

/// One measured run.
struct Run {
    name: &'static str,
    records: u64,
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    /// The broker's CPU seconds over the run: what a server on the embedded broker would also
    /// spend in its own process.
    broker_cpu: f64,
}

/// Runs `run`, adding the CPU the broker (process `broker`) spent meanwhile to its figures.
async fn with_broker_cpu(broker: &str, run: impl std::future::Future<Output = Run>) -> Run {
    let before = cpu_seconds(broker);
    let mut measured = run.await;
    measured.broker_cpu = cpu_seconds(broker) - before;
    measured
}

impl Run {
    /// A run whose figures a child process printed as JSON (`wall`, `cpu`, `rss_mb`).
    fn reported(name: &'static str, records: u64, measured: &Value) -> Run {
        Run {
            name,
            records,
            wall: measured["wall"].as_f64().unwrap(),
            cpu: measured["cpu"].as_f64().unwrap(),
            rss_mb: measured["rss_mb"].as_f64().unwrap(),
            broker_cpu: 0.0,
        }
    }

    fn per_cpu_second(&self) -> f64 {
        self.records as f64 / self.cpu.max(0.01)
    }
}

/// A PowerGrid record as the seed's producer writes it.
fn powergrid_record(sensor: u32, n: u64) -> String {
    let payload = format!(
        "{{\"sensor_id\": {sensor}, \"modality\": {}, \"unit\": \"MW\", \"temporal_aspect\": \"real_time\"}}",
        400 + n % 97
    );
    json!({"payload": payload, "correlation_id": format!("{sensor:02}-{n:06}"), "created_at": 1694902173.12 + n as f64, "schema_version": 1})
        .to_string()
}

const CREATE_INGESTION: &str = "CREATE STREAM STREAM_INGESTION (payload STRING, correlation_id STRING, created_at DOUBLE, schema_version INTEGER) WITH (KAFKA_TOPIC = '{topic}', VALUE_FORMAT = 'JSON');";

fn route(name: &str, sensor: u32) -> String {
    format!("CREATE STREAM {name} AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '{sensor}';")
}

/// The baseline loop over the preloaded `INGESTION`, in a process of its own, routing every
/// sensor or only `only`.
async fn baseline_run(name: &'static str, bootstrap: &str, cluster: &KafkaCluster, records: u64, only: Option<u32>, prefix: &str) -> Run {
    let topics: Vec<String> = (1..=SENSORS).map(|s| format!("{prefix}{s}")).collect();
    for topic in &topics {
        cluster.ensure_topic(topic, 3, 1, &[]).await.unwrap();
    }
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args(["baseline", bootstrap, &records.to_string(), "INGESTION", prefix]);
    if let Some(sensor) = only {
        command.arg(sensor.to_string());
    }
    let output = command.output().unwrap();
    let measured: Value = serde_json::from_slice(&output.stdout).expect("the baseline reports its figures");
    let routed = if only.is_some() { records / SENSORS as u64 } else { records };
    wait_for_records(cluster, &topics, routed, Duration::from_secs(60));
    Run::reported(name, records, &measured)
}

/// How a Sluice run routes the preloaded `INGESTION`.
enum Routing<'a> {
    /// One CSAS per sensor in the list, sent one after another.
    PerSensor(&'a [u32]),
    /// The six CSAS sent as a user at a prompt sends them: a pause before each next one.
    Typed(Duration),
    /// One CSAS whose `KAFKA_TOPIC` names a topic per sensor.
    OneStatement,
}

/// Sluice routing the preloaded `INGESTION` from earliest, the queries created one after
/// another as a user creates them, with `processing.guarantee` `guarantee`.
async fn sluice_run(name: &'static str, bootstrap: &str, cluster: &KafkaCluster, records: u64, routing: Routing<'_>, guarantee: &str, prefix: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(bootstrap, &format!("bench_{prefix}"), dir.path()).await;
    server.ksql(&CREATE_INGESTION.replace("{topic}", "INGESTION"), "earliest").await;
    let sensors: Vec<u32> = match routing {
        Routing::PerSensor(sensors) => sensors.to_vec(),
        Routing::Typed(_) | Routing::OneStatement => (1..=SENSORS).collect(),
    };
    for sensor in &sensors {
        cluster.ensure_topic(&format!("{prefix}_{sensor}"), 3, 1, &[]).await.unwrap();
    }
    let properties = json!({"auto.offset.reset": "earliest", "processing.guarantee": guarantee});
    let (start, cpu_start) = (Instant::now(), cpu_seconds(&server.pid()));
    match routing {
        Routing::PerSensor(_) => {
            for sensor in &sensors {
                server.ksql_with(&route(&format!("{prefix}_{sensor}"), *sensor), properties.clone()).await;
            }
        }
        Routing::Typed(pause) => {
            for sensor in &sensors {
                if *sensor > 1 {
                    tokio::time::sleep(pause).await;
                }
                server.ksql_with(&route(&format!("{prefix}_{sensor}"), *sensor), properties.clone()).await;
            }
        }
        Routing::OneStatement => {
            let sql = format!(
                "CREATE STREAM {prefix} WITH (KAFKA_TOPIC = '{prefix}_{{SENSOR}}') AS SELECT *, EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR FROM STREAM_INGESTION;"
            );
            server.ksql_with(&sql, properties).await;
        }
    }
    let topics: Vec<String> = sensors.iter().map(|s| format!("{prefix}_{s}")).collect();
    let expected = records / SENSORS as u64 * sensors.len() as u64;
    let end = wait_for_records(cluster, &topics, expected, Duration::from_secs(1800));
    Run {
        name,
        records,
        wall: (end - start).as_secs_f64(),
        cpu: cpu_seconds(&server.pid()) - cpu_start,
        rss_mb: peak_rss_mb(&server.pid()),
        broker_cpu: 0.0,
    }
}

/// Two servers of one service sharing the six CSAS (sent alternately to each, from earliest
/// over the preloaded `INGESTION`): their CPU together, and each one's. Then one of them is
/// killed with SIGKILL and one more record per sensor produced: how long until every routed
/// topic has it, that is until the other server runs the killed one's share.
async fn two_servers_run(bootstrap: &str, cluster: &KafkaCluster, records: u64) -> (Run, [f64; 2], f64) {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut servers = Vec::new();
    for dir in &dirs {
        servers.push(Server::start(bootstrap, "bench_two", dir.path()).await);
    }
    servers[0].ksql(&CREATE_INGESTION.replace("{topic}", "INGESTION"), "earliest").await;
    let topics: Vec<String> = (1..=SENSORS).map(|s| format!("TWO_{s}")).collect();
    for topic in &topics {
        cluster.ensure_topic(topic, 3, 1, &[]).await.unwrap();
    }
    let cpu_start = [cpu_seconds(&servers[0].pid()), cpu_seconds(&servers[1].pid())];
    let start = Instant::now();
    for (sensor, topic) in (1..=SENSORS).zip(&topics) {
        servers[sensor as usize % 2].ksql(&route(topic, sensor), "earliest").await;
    }
    let end = wait_for_records(cluster, &topics, records, Duration::from_secs(1800));
    let each = [cpu_seconds(&servers[0].pid()) - cpu_start[0], cpu_seconds(&servers[1].pid()) - cpu_start[1]];
    let run = Run {
        name: "(f) Sluice, six CSAS on two servers",
        records,
        wall: (end - start).as_secs_f64(),
        cpu: each[0] + each[1],
        rss_mb: peak_rss_mb(&servers[0].pid()).max(peak_rss_mb(&servers[1].pid())),
        broker_cpu: 0.0,
    };
    let mut killed = servers.pop().unwrap();
    killed.kill();
    let killed_at = Instant::now();
    let producer = producer(bootstrap);
    for sensor in 1..=SENSORS {
        send(&producer, "INGESTION", Some(sensor.to_string().as_bytes()), powergrid_record(sensor, records + sensor as u64).as_bytes());
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let flowing = wait_for_records(cluster, &topics, records + SENSORS as u64, Duration::from_secs(120));
    (run, each, (flowing - killed_at).as_secs_f64())
}

/// What a latency run measures between the producer and the reader.
#[derive(Clone, Copy)]
enum Hop {
    /// Nothing: the reader consumes the topic produced to, the broker's own floor.
    Broker,
    /// The baseline loop routing to six topics: the floor of a consume-and-produce hop.
    Baseline,
    /// The six CSAS queries in `sluice-server`.
    Sluice,
}

/// Produce-to-output latency at a fixed rate, each record timed from its producer timestamp
/// (which the routing keeps) to when the reader sees it.
async fn latency(bootstrap: &str, rate: u64, seconds: u64, hop: Hop) -> (f64, f64, usize) {
    let cluster = KafkaCluster::connect(bootstrap).unwrap();
    let expected = (rate * seconds) as usize;
    let (input, output_prefix) = match hop {
        Hop::Broker => (format!("FLOOR_{rate}"), String::new()),
        Hop::Baseline => (format!("LIVE_BASE_{rate}"), format!("BASE_LIVE_{rate}_")),
        Hop::Sluice => (format!("LIVE_{rate}"), format!("LIVE_{rate}_")),
    };
    let input = input.as_str();
    cluster.ensure_topic(input, 3, 1, &[]).await.unwrap();
    let outputs: Vec<String> = (1..=SENSORS).map(|s| format!("{output_prefix}{s}")).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut server = None;
    let mut baseline = None;
    let topics = match hop {
        Hop::Broker => vec![input.to_string()],
        Hop::Baseline => {
            for topic in &outputs {
                cluster.ensure_topic(topic, 3, 1, &[]).await.unwrap();
            }
            let child = Command::new(std::env::current_exe().unwrap())
                .args(["baseline", bootstrap, &expected.to_string(), input, &output_prefix])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            baseline = Some(child);
            outputs
        }
        Hop::Sluice => {
            let routing = Server::start(bootstrap, &format!("bench_latency_{rate}"), dir.path()).await;
            routing.ksql(&CREATE_INGESTION.replace("{topic}", input), "latest").await;
            for (sensor, topic) in (1..=SENSORS).zip(&outputs) {
                routing.ksql(&route(topic, sensor), "latest").await;
            }
            server = Some(routing);
            outputs
        }
    };
    let reader_bootstrap = bootstrap.to_string();
    let reader = std::thread::spawn(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &reader_bootstrap)
            .set("group.id", "latency")
            .set("fetch.wait.max.ms", "5")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for topic in &topics {
            for partition in 0..3 {
                assignment.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
            }
        }
        consumer.assign(&assignment).unwrap();
        let mut latencies = Vec::with_capacity(expected);
        let deadline = Instant::now() + Duration::from_secs(seconds + 60);
        while latencies.len() < expected && Instant::now() < deadline {
            if let Some(Ok(message)) = consumer.poll(Duration::from_millis(50)) {
                let sent = message.timestamp().to_millis().unwrap_or_default();
                latencies.push(now_millis() - sent);
            }
        }
        latencies
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let producer = producer(bootstrap);
    let start = Instant::now();
    for n in 0..rate * seconds {
        let due = start + Duration::from_micros(n * 1_000_000 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sensor = (n % SENSORS as u64) as u32 + 1;
        send(&producer, input, Some(sensor.to_string().as_bytes()), powergrid_record(sensor, n).as_bytes());
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let mut latencies = reader.join().unwrap();
    drop(server);
    if let Some(mut child) = baseline {
        assert!(child.wait().unwrap().success(), "the baseline loop routed every record");
    }
    assert_eq!(latencies.len(), expected, "every record routed during the latency run");
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)] as f64;
    (at(0.50), at(0.99), latencies.len())
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The HDFS sink writing the preloaded `INGESTION` against raw hdfs-native writes of the same
/// bytes in files of the same size, both to the same real HDFS.
async fn sink_run(bootstrap: &str, records: u64, bytes: u64) -> (Run, Run) {
    let hdfs = hdfs::HdfsCluster::start().await;
    let flush = 50_000u64.min(records / 3).max(1);

    let client = hdfs_native::ClientBuilder::new().with_url(&hdfs.url).build().unwrap();
    let chunk = vec![b'x'; (bytes / records * flush) as usize];
    let files = records.div_ceil(flush);
    let (start, cpu_start) = (Instant::now(), cpu_seconds("self"));
    for file in 0..files {
        let mut writer = client
            .create(&format!("/raw/file-{file}"), hdfs_native::WriteOptions::default().create_parent(true))
            .await
            .unwrap();
        writer.write_bytes(bytes::Bytes::from(chunk.clone())).await.unwrap();
        writer.close().await.unwrap();
    }
    let raw = Run { name: "raw hdfs-native writes", records, wall: start.elapsed().as_secs_f64(), cpu: cpu_seconds("self") - cpu_start, rss_mb: 0.0, broker_cpu: 0.0 };

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(bootstrap, "bench_sink", dir.path()).await;
    let (start, cpu_start) = (Instant::now(), cpu_seconds(&server.pid()));
    server
        .ksql(
            &format!(
                "CREATE SINK CONNECTOR BENCH_SINK WITH ('connector.class'='HdfsSinkConnector', 'topics'='INGESTION', 'hdfs.url'='{}', 'flush.size'='{flush}', 'format.class'='io.confluent.connect.hdfs.string.StringFormat', 'value.converter'='org.apache.kafka.connect.storage.StringConverter');",
                hdfs.url
            ),
            "earliest",
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let committed_at = loop {
        let status: Value = server
            .client
            .get(format!("{}/connectors/BENCH_SINK/status", server.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let written: u64 = status["progress"].as_array().into_iter().flatten().map(|p| p["records"].as_u64().unwrap_or(0)).sum();
        if written + 3 * flush > records && status["progress"].as_array().is_some_and(|p| p.iter().all(|p| p["lag"].as_i64() < Some(flush as i64))) {
            break (Instant::now(), written);
        }
        assert!(Instant::now() < deadline, "the sink did not keep up: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (end, written) = committed_at;
    let sink = Run { name: "Sluice HDFS sink", records: written, wall: (end - start).as_secs_f64(), cpu: cpu_seconds(&server.pid()) - cpu_start, rss_mb: peak_rss_mb(&server.pid()), broker_cpu: 0.0 };
    (raw, sink)
}

async fn orchestrate() {
    let records: u64 = std::env::var("SLUICE_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let records = records / SENSORS as u64 * SENSORS as u64;
    let broker_dir = tempfile::tempdir().unwrap();
    let (mut broker, bootstrap) = start_broker(broker_dir.path()).await;
    let broker_pid = broker.id().to_string();
    let cluster = KafkaCluster::connect(&bootstrap).unwrap();
    cluster.ensure_topic("INGESTION", 3, 1, &[]).await.unwrap();

    eprintln!("preloading {records} PowerGrid records into INGESTION (3 partitions)…");
    let start = Instant::now();
    let preload = producer(&bootstrap);
    let mut bytes = 0;
    for n in 0..records {
        let sensor = (n % SENSORS as u64) as u32 + 1;
        let value = powergrid_record(sensor, n);
        bytes += value.len() as u64 + 1;
        send(&preload, "INGESTION", Some(sensor.to_string().as_bytes()), value.as_bytes());
    }
    preload.flush(Duration::from_secs(300)).unwrap();
    wait_for_records(&cluster, &["INGESTION".to_string()], records, Duration::from_secs(600));
    eprintln!("preloaded in {:.1} s", start.elapsed().as_secs_f64());

    let all: Vec<u32> = (1..=SENSORS).collect();
    if std::env::var("SLUICE_BENCH_ONLY").is_ok_and(|only| only == "cluster") {
        eprintln!("(b) Sluice, six CSAS, one server…");
        let six = with_broker_cpu(&broker_pid, sluice_run("(b) Sluice, six CSAS (exactly once)", &bootstrap, &cluster, records, Routing::PerSensor(&all), "exactly_once", "SIX")).await;
        eprintln!("(f) Sluice, six CSAS, two servers…");
        let (two, each, takeover) = two_servers_run(&bootstrap, &cluster, records).await;
        let _ = broker.kill();
        let _ = broker.wait();
        println!("\n{records} PowerGrid records, 3 partitions\n");
        println!("| run | records/s wall | records per CPU-second | CPU s | peak RSS MB |");
        println!("|---|---|---|---|---|");
        for run in [&six, &two] {
            println!("| {} | {:.0} | {:.0} | {:.2} | {:.0} |", run.name, run.records as f64 / run.wall, run.per_cpu_second(), run.cpu, run.rss_mb);
        }
        println!("\nCPU s of each of the two servers: {:.2} and {:.2}", each[0], each[1]);
        println!("two servers / one server, records per CPU-second: {:.2}", two.per_cpu_second() / six.per_cpu_second());
        println!("kill -9 of one server to its queries routing on the other: {takeover:.1} s (session timeout 10 s)");
        return;
    }
    eprintln!("(a) baseline rdkafka loop, six sensors, then one…");
    let baseline = with_broker_cpu(&broker_pid, baseline_run("(a) baseline rdkafka loop", &bootstrap, &cluster, records, None, "BASE_SENSOR_")).await;
    let baseline_one = with_broker_cpu(&broker_pid, baseline_run("(a1) baseline, sensor 3 only", &bootstrap, &cluster, records, Some(3), "BASE_ONE_")).await;
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["read", &bootstrap, &records.to_string(), "INGESTION"])
        .output()
        .unwrap();
    let measured: Value = serde_json::from_slice(&output.stdout).expect("the reader reports its figures");
    let read = Run::reported("rdkafka consume only (the broker's read rate)", records, &measured);
    eprintln!("(b) Sluice, six CSAS, exactly once…");
    let six = with_broker_cpu(&broker_pid, sluice_run("(b) Sluice, six CSAS (exactly once)", &bootstrap, &cluster, records, Routing::PerSensor(&all), "exactly_once", "SIX")).await;
    eprintln!("(b2) Sluice, six CSAS, at least once…");
    let six_alo = with_broker_cpu(&broker_pid, sluice_run("(b2) Sluice, six CSAS (at least once)", &bootstrap, &cluster, records, Routing::PerSensor(&all), "at_least_once", "ALO")).await;
    eprintln!("(c) Sluice, one CSAS…");
    let one = with_broker_cpu(&broker_pid, sluice_run("(c) Sluice, one CSAS", &bootstrap, &cluster, records, Routing::PerSensor(&[3]), "exactly_once", "ONE")).await;
    eprintln!("(d) Sluice, one statement routing every sensor…");
    let routed = with_broker_cpu(&broker_pid, sluice_run("(d) Sluice, one statement, every sensor", &bootstrap, &cluster, records, Routing::OneStatement, "exactly_once", "ROUTED")).await;
    eprintln!("(e) Sluice, six CSAS typed two seconds apart…");
    let typed = with_broker_cpu(&broker_pid, sluice_run("(e) Sluice, six CSAS typed 2 s apart", &bootstrap, &cluster, records, Routing::Typed(Duration::from_secs(2)), "exactly_once", "TYPED")).await;
    let mut latencies = Vec::new();
    for rate in [10_000, 1_000] {
        eprintln!("latency at {rate} records/s: the broker alone, the baseline loop, the six CSAS…");
        for (name, hop) in [("broker alone (one hop)", Hop::Broker), ("baseline loop", Hop::Baseline), ("Sluice, six CSAS", Hop::Sluice)] {
            let (p50, p99, measured) = latency(&bootstrap, rate, 10, hop).await;
            latencies.push((rate, name, p50, p99, measured));
        }
    }
    eprintln!("HDFS sink against raw hdfs-native writes…");
    let (raw, sink) = sink_run(&bootstrap, records, bytes).await;
    let _ = broker.kill();
    let _ = broker.wait();

    println!("\n{records} PowerGrid records, 3 partitions, {:.1} MB of values\n", bytes as f64 / 1e6);
    println!("| run | records/s wall | records per CPU-second | CPU s | peak RSS MB | broker CPU s |");
    println!("|---|---|---|---|---|---|");
    for run in [&baseline, &baseline_one, &six, &six_alo, &one, &routed, &typed, &read, &raw, &sink] {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.2} |",
            run.name,
            run.records as f64 / run.wall,
            run.per_cpu_second(),
            run.cpu,
            run.rss_mb,
            run.broker_cpu
        );
    }
    let mut ratios = BTreeMap::new();
    ratios.insert("six CSAS / baseline, records per CPU-second", six.per_cpu_second() / baseline.per_cpu_second());
    ratios.insert("six CSAS / one CSAS, CPU per input record", six.cpu / one.cpu.max(0.01));
    ratios.insert("six CSAS, exactly once / at least once, CPU", six.cpu / six_alo.cpu.max(0.01));
    ratios.insert("one statement / six CSAS, CPU per input record", routed.cpu / six.cpu.max(0.01));
    ratios.insert("baseline six sensors / one sensor, CPU per input record", baseline.cpu / baseline_one.cpu.max(0.01));
    ratios.insert("HDFS sink / consume only, records per second wall", (sink.records as f64 / sink.wall.max(0.001)) / (read.records as f64 / read.wall.max(0.001)));
    ratios.insert(
        "HDFS sink / raw hdfs-native, records (bytes) per second wall",
        (sink.records as f64 / sink.wall.max(0.001)) / (raw.records as f64 / raw.wall.max(0.001)),
    );
    println!();
    for (name, ratio) in ratios {
        println!("{name}: {ratio:.2}");
    }
    println!("\n| produce-to-output latency | records/s | records | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    for (rate, name, p50, p99, measured) in latencies {
        println!("| {name} | {rate} | {measured} | {p50:.0} | {p99:.0} |");
    }
}
