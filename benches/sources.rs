//! The source connectors' throughput, each beside a hand-written loop doing the same in the same
//! run: the JDBC source (incrementing) and change capture against a real PostgreSQL 15, and the
//! spooling directory. The broker runs in a process of its own (this binary re-run with
//! `broker`), Sluice in a `sluice-server` process and each loop in a process of its own, so each
//! CPU figure (`/proc/<pid>/stat`) is that process's alone; the broker's is shown beside.
//! `cargo bench --bench sources` (rows and lines: `SLUICE_BENCH_ROWS`, default 1,000,000).
//! Every run waits until its topic holds exactly the rows or lines written, so a fast wrong run
//! cannot pass.

#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "common/server.rs"]
mod server;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use futures::StreamExt;
use postgres::{PASSWORD, PostgresServer, USER};
use rdkafka::producer::Producer;
use serde::Serialize;
use serde_json::{Value, json};
use server::{Server, cpu_seconds, free_port, peak_rss_mb, producer, run_broker, send, start_broker, wait_for_records};
use sluice::connectors::kafka::KafkaCluster;

/// Files the spooled lines are split into.
const FILES: u64 = 10;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("broker") => run_broker(&args[1], &args[2]),
        Some("rows") => tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(copy_rows(&args[1], args[2].parse().unwrap(), &args[3], &args[4])),
        Some("lines") => copy_lines(&args[1], Path::new(&args[2]), &args[3]),
        _ => tokio::runtime::Runtime::new().unwrap().block_on(orchestrate()),
    }
}

/// A row of the seed's `telemetry` shape, as the JDBC source writes it without schemas.
#[derive(Serialize)]
struct Row<'a> {
    id: i64,
    name: &'a str,
    wattage: i64,
}

/// The baseline for the database sources: `COPY` every row of `table` out of PostgreSQL (at
/// `port`), write each as the JDBC source's JSON and produce it to `topic` — the least reading
/// a table into Kafka costs with tokio-postgres and librdkafka. Prints its wall time, CPU time
/// and peak RSS as JSON.
async fn copy_rows(bootstrap: &str, port: u16, table: &str, topic: &str) {
    let (start, cpu_start) = (Instant::now(), cpu_seconds("self"));
    let (client, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user={USER} password={PASSWORD} dbname=telemetry"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let producer = producer(bootstrap);
    let statement = format!("COPY (SELECT id, name, wattage FROM {table} ORDER BY id) TO STDOUT");
    let mut chunks = Box::pin(client.copy_out(statement.as_str()).await.unwrap());
    let mut partial: Vec<u8> = Vec::new();
    let mut value = Vec::with_capacity(128);
    while let Some(chunk) = chunks.next().await {
        partial.extend_from_slice(&chunk.unwrap());
        let complete = partial.iter().rposition(|b| *b == b'\n').map_or(0, |end| end + 1);
        for line in partial[..complete].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let text = std::str::from_utf8(line).unwrap();
            let mut fields = text.split('\t');
            let mut next = || fields.next().unwrap();
            let (id, name, wattage) = (next().parse().unwrap(), next(), next().parse().unwrap());
            value.clear();
            serde_json::to_writer(&mut value, &Row { id, name, wattage }).unwrap();
            send(&producer, topic, None, &value);
        }
        partial.drain(..complete);
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    println!(
        "{}",
        json!({"wall": start.elapsed().as_secs_f64(), "cpu": cpu_seconds("self") - cpu_start, "rss_mb": peak_rss_mb("self")})
    );
}

/// The baseline for the spooling directory: read every file of `dir` in name order, line by
/// line, and produce each line to `topic`. Prints its figures as JSON like [`copy_rows`].
fn copy_lines(bootstrap: &str, dir: &Path, topic: &str) {
    let (start, cpu_start) = (Instant::now(), cpu_seconds("self"));
    let producer = producer(bootstrap);
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut line = Vec::new();
    for file in files {
        let mut reader = BufReader::with_capacity(1 << 20, std::fs::File::open(file).unwrap());
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).unwrap() == 0 {
                break;
            }
            send(&producer, topic, None, line.strip_suffix(b"\n").unwrap_or(&line));
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    println!(
        "{}",
        json!({"wall": start.elapsed().as_secs_f64(), "cpu": cpu_seconds("self") - cpu_start, "rss_mb": peak_rss_mb("self")})
    );
}

/// One measured run.
struct Run {
    name: String,
    records: u64,
    wall: f64,
    cpu: f64,
    rss_mb: f64,
    /// The broker's CPU seconds over the run.
    broker_cpu: f64,
}

impl Run {
    fn row(&self) -> String {
        format!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.0} | {:.2} |",
            self.name,
            self.records as f64 / self.wall,
            self.records as f64 / self.cpu.max(0.01),
            self.cpu,
            self.cpu * 1e6 / self.records as f64,
            self.rss_mb,
            self.broker_cpu
        )
    }
}

/// Runs a baseline loop (this binary with `args`) in a process of its own until `topic` holds
/// `records` records.
fn baseline(name: &str, args: &[&str], cluster: &KafkaCluster, topic: &str, records: u64, broker: &str) -> Run {
    let broker_before = cpu_seconds(broker);
    let output = Command::new(std::env::current_exe().unwrap()).args(args).output().unwrap();
    assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
    let measured: Value = serde_json::from_slice(&output.stdout).expect("the loop reports its figures");
    wait_for_records(cluster, &[topic.to_string()], records, Duration::from_secs(60));
    Run {
        name: name.to_string(),
        records,
        wall: measured["wall"].as_f64().unwrap(),
        cpu: measured["cpu"].as_f64().unwrap(),
        rss_mb: measured["rss_mb"].as_f64().unwrap(),
        broker_cpu: cpu_seconds(broker) - broker_before,
    }
}

/// A connector's `WITH` list.
fn with(properties: &[(&str, String)]) -> String {
    let listed: Vec<String> = properties.iter().map(|(k, v)| format!("'{k}' = '{}'", v.replace('\'', "''"))).collect();
    listed.join(", ")
}

/// Creates connector `name` on a fresh server, then runs `during` (what feeds it, if anything),
/// and measures the server from the statement until `topic` holds `records` records.
async fn connector_run(
    name: &str,
    bootstrap: &str,
    cluster: &KafkaCluster,
    broker: &str,
    statement: String,
    ready: impl Fn() -> bool,
    during: impl FnOnce(),
    topic: &str,
    records: u64,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(bootstrap, &format!("bench_{}", topic.replace(['.', '-'], "_")), dir.path()).await;
    let (start, cpu_start, broker_before) = (Instant::now(), cpu_seconds(&server.pid()), cpu_seconds(broker));
    server.ksql(&statement, "earliest").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{name}: the connector did not get ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    during();
    let end = wait_for_records(cluster, &[topic.to_string()], records, Duration::from_secs(1800));
    Run {
        name: name.to_string(),
        records,
        wall: (end - start).as_secs_f64(),
        cpu: cpu_seconds(&server.pid()) - cpu_start,
        rss_mb: peak_rss_mb(&server.pid()),
        broker_cpu: cpu_seconds(broker) - broker_before,
    }
}

/// A line of unstructured text, as Flume would have carried it.
fn text_line(n: u64) -> String {
    format!(
        "2026-12-07T03:{:02}:{:02}.{:03}Z node-{} wattage={} status=OK seq={n} note=\"reading taken\"",
        n / 60_000 % 60,
        n / 1000 % 60,
        n % 1000,
        n % 97,
        50_000 + n % 40_000
    )
}

async fn orchestrate() {
    let rows: u64 = std::env::var("SLUICE_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let broker_dir = tempfile::tempdir().unwrap();
    let (mut broker_process, bootstrap) = start_broker(broker_dir.path()).await;
    let broker = broker_process.id().to_string();
    let cluster = KafkaCluster::connect(&bootstrap).unwrap();
    let postgres = PostgresServer::start("telemetry");
    let url = postgres.jdbc_url("telemetry");
    let port = postgres.port.to_string();
    eprintln!("filling telemetry with {rows} rows…");
    postgres.psql(
        "telemetry",
        &format!(
            "CREATE TABLE telemetry (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, wattage INT NOT NULL);
             INSERT INTO telemetry (name, wattage) SELECT 'Node' || n, 50000 + n % 40000 FROM generate_series(1, {rows}) AS n;
             CREATE TABLE readings (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, wattage INT NOT NULL);"
        ),
    );
    postgres.psql("telemetry", "VACUUM ANALYZE telemetry");
    // Change capture reads committed transactions: the rows arrive a thousand to a transaction.
    postgres.psql(
        "telemetry",
        "CREATE PROCEDURE fill(total INT) LANGUAGE plpgsql AS $$
         BEGIN
           FOR chunk IN 0 .. total / 1000 - 1 LOOP
             INSERT INTO readings (name, wattage)
               SELECT 'Node' || n, 50000 + n % 40000 FROM generate_series(chunk * 1000 + 1, chunk * 1000 + 1000) AS n;
             COMMIT;
           END LOOP;
         END $$;",
    );
    let mut runs = Vec::new();

    eprintln!("baseline: COPY → JSON → produce…");
    let table_topic = "BASE_ROWS";
    cluster.ensure_topic(table_topic, 1, 1, &[]).await.unwrap();
    runs.push(baseline(
        "hand-written loop: COPY out, JSON, produce (baseline)",
        &["rows", &bootstrap, &port, "telemetry", table_topic],
        &cluster,
        table_topic,
        rows,
        &broker,
    ));
    let pg = |k: &'static str, v: &str| (k, v.to_string());
    let jdbc = |batch: &str, prefix: &str| {
        format!(
            "CREATE SOURCE CONNECTOR jdbc_{prefix} WITH ({});",
            with(&[
                pg("connector.class", "io.confluent.connect.jdbc.JdbcSourceConnector"),
                pg("connection.url", &url),
                pg("connection.user", USER),
                pg("connection.password", PASSWORD),
                pg("mode", "incrementing"),
                pg("incrementing.column.name", "id"),
                pg("table.whitelist", "telemetry"),
                pg("topic.prefix", &format!("{prefix}-")),
                pg("batch.max.rows", batch),
                pg("value.converter.schemas.enable", "false"),
            ])
        )
    };
    for (batch, prefix) in [("100", "jdbc100"), ("10000", "jdbc10k")] {
        eprintln!("JDBC source, incrementing, batch.max.rows {batch}…");
        let topic = format!("{prefix}-telemetry");
        let name = format!("Sluice JDBC source, incrementing, `batch.max.rows` {batch}");
        runs.push(connector_run(&name, &bootstrap, &cluster, &broker, jdbc(batch, prefix), || true, || {}, &topic, rows).await);
    }

    eprintln!("change capture: {rows} rows inserted, a thousand per transaction…");
    let cdc = format!(
        "CREATE SOURCE CONNECTOR cdc WITH ({});",
        with(&[
            pg("connector.class", "io.debezium.connector.postgresql.PostgresConnector"),
            pg("plugin.name", "pgoutput"),
            pg("database.hostname", "127.0.0.1"),
            pg("database.port", &port),
            pg("database.user", USER),
            pg("database.password", PASSWORD),
            pg("database.dbname", "telemetry"),
            pg("topic.prefix", "bench"),
            pg("table.include.list", "public.readings"),
            pg("snapshot.mode", "no_data"),
            pg("poll.interval.ms", "100"),
            pg("key.converter.schemas.enable", "false"),
            pg("value.converter.schemas.enable", "false"),
        ])
    );
    // Rows count once the connector's slot and publication exist.
    let ready = || {
        postgres.psql("telemetry", "SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_publication)").trim() == "2"
    };
    let fill = || {
        postgres.psql("telemetry", &format!("CALL fill({rows})"));
    };
    let cdc_rows = rows / 1000 * 1000;
    runs.push(connector_run("Sluice change capture (Debezium envelope), inserts", &bootstrap, &cluster, &broker, cdc, ready, fill, "bench.public.readings", cdc_rows).await);

    eprintln!("spooling directory: {rows} lines in {FILES} files…");
    let spool = tempfile::tempdir().unwrap();
    let (input, finished, error, copy) = (spool.path().join("input"), spool.path().join("finished"), spool.path().join("error"), spool.path().join("copy"));
    for dir in [&input, &finished, &error, &copy] {
        std::fs::create_dir(dir).unwrap();
    }
    for file in 0..FILES {
        let lines: String = (file * rows / FILES..(file + 1) * rows / FILES).map(|n| text_line(n) + "\n").collect();
        std::fs::write(copy.join(format!("part-{file:02}.txt")), &lines).unwrap();
    }
    let bytes: u64 = (0..FILES).map(|f| std::fs::metadata(copy.join(format!("part-{f:02}.txt"))).unwrap().len()).sum();
    let lines_topic = "BASE_LINES";
    cluster.ensure_topic(lines_topic, 1, 1, &[]).await.unwrap();
    runs.push(baseline(
        "hand-written loop: read lines, produce (baseline)",
        &["lines", &bootstrap, copy.to_str().unwrap(), lines_topic],
        &cluster,
        lines_topic,
        rows,
        &broker,
    ));
    for file in 0..FILES {
        let name = format!("part-{file:02}.txt");
        std::fs::rename(copy.join(&name), input.join(&name)).unwrap();
    }
    let spooldir = format!(
        "CREATE SOURCE CONNECTOR spool WITH ({});",
        with(&[
            pg("connector.class", "com.github.jcustenborder.kafka.connect.spooldir.SpoolDirLineDelimitedSourceConnector"),
            pg("topic", "SPOOLED"),
            pg("input.path", input.to_str().unwrap()),
            pg("finished.path", finished.to_str().unwrap()),
            pg("error.path", error.to_str().unwrap()),
            pg("input.file.pattern", ".*\\.txt"),
        ])
    );
    runs.push(connector_run("Sluice spooling directory", &bootstrap, &cluster, &broker, spooldir, || true, || {}, "SPOOLED", rows).await);
    let _ = broker_process.kill();
    let _ = broker_process.wait();

    println!("\n{rows} rows of the seed's telemetry shape; {rows} text lines ({:.1} MB) in {FILES} files\n", bytes as f64 / 1e6);
    println!("| run | records/s wall | records per CPU-second | CPU s | CPU µs per record | peak RSS MB | broker CPU s |");
    println!("|---|---|---|---|---|---|---|");
    for run in &runs {
        println!("{}", run.row());
    }
    let per_cpu = |run: &Run| run.records as f64 / run.cpu.max(0.01);
    println!();
    for run in &runs[1..4] {
        println!("{} / the COPY loop, records per CPU-second: {:.2}", run.name, per_cpu(run) / per_cpu(&runs[0]));
    }
    println!("spooling directory / the lines loop, records per CPU-second: {:.2}", per_cpu(&runs[5]) / per_cpu(&runs[4]));
}
