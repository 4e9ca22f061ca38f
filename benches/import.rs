//! `sluice import` against `psql`'s `\copy` of the same table in the same run: a real
//! PostgreSQL 15 and a real HDFS, `SLUICE_BENCH_ROWS` rows (default 1,000,000) of the seed's
//! `telemetry` shape. `cargo bench --bench import`. Each figure is the median of three runs;
//! every run checks the rows it wrote, so a fast wrong run cannot pass.

#[path = "../tests/common/hdfs.rs"]
#[allow(dead_code)]
mod hdfs;
#[path = "../tests/common/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::{
    net::TcpListener,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use postgres::{PASSWORD, PostgresServer, USER};
use sluice::{
    connectors::postgres::JdbcUrl,
    import::{ImportJob, ImportProgress, ImportSource},
};

const RUNS: usize = 3;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn main() {
    let rows: u64 = std::env::var("SLUICE_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    tokio::runtime::Runtime::new().unwrap().block_on(run(rows));
}

async fn run(rows: u64) {
    let hdfs = hdfs::HdfsCluster::start().await;
    let postgres = PostgresServer::start("telemetry");
    postgres.psql(
        "telemetry",
        &format!(
            "CREATE TABLE telemetry (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, wattage INT NOT NULL);
             INSERT INTO telemetry (name, wattage) SELECT 'Node' || n, 50000 + n % 40000 FROM generate_series(1, {rows}) AS n;"
        ),
    );
    postgres.psql("telemetry", "VACUUM ANALYZE telemetry");
    let scratch = tempfile::tempdir().unwrap();

    let baseline = median(|run| {
        let file = scratch.path().join(format!("psql-{run}.csv"));
        let started = Instant::now();
        let status = Command::new("psql")
            .env("PGPASSWORD", PASSWORD)
            .args(["-h", "127.0.0.1", "-p", &postgres.port.to_string(), "-U", USER, "-d", "telemetry", "-X", "-q"])
            .args(["-c", &format!("\\copy (SELECT * FROM telemetry) to '{}' with (format csv)", file.display())])
            .status()
            .unwrap();
        assert!(status.success());
        let elapsed = started.elapsed();
        let lines = std::fs::read(&file).unwrap().iter().filter(|b| **b == b'\n').count() as u64;
        assert_eq!(lines, rows);
        std::fs::remove_file(&file).unwrap();
        elapsed
    });
    println!("rows: {rows}; median of {RUNS} runs each");
    report("psql \\copy to a local file (baseline)", rows, baseline, baseline);

    let cases: [(&str, bool, u32, bool); 5] = [
        ("sluice import --direct -m 1 to HDFS", true, 1, true),
        ("sluice import -m 1 (Sqoop text) to HDFS", false, 1, true),
        ("sluice import --direct -m 1 to a local file", true, 1, false),
        ("sluice import -m 1 (Sqoop text) to a local file", false, 1, false),
        ("sluice import --direct -m 2 to HDFS", true, 2, true),
    ];
    for (case, (name, direct, mappers, to_hdfs)) in cases.into_iter().enumerate() {
        let mut elapsed = Vec::new();
        for run in 0..RUNS {
            let target = if to_hdfs {
                format!("{}/bench/{case}-{run}", hdfs.url)
            } else {
                format!("file://{}/{case}-{run}", scratch.path().display())
            };
            let mut url = JdbcUrl::parse(&postgres.jdbc_url("telemetry")).unwrap();
            url.set_user(USER);
            url.set_password(PASSWORD);
            let source = ImportSource::Table { name: "telemetry".to_string(), columns: None, filter: None };
            let mut job = ImportJob::new(url, source, target);
            job.direct = direct;
            job.mappers = mappers;
            let started = Instant::now();
            let summary = job.run(Arc::new(ImportProgress::default())).await.unwrap();
            elapsed.push(started.elapsed());
            assert_eq!(summary.rows, rows, "{name} wrote every row");
        }
        elapsed.sort();
        report(name, rows, elapsed[RUNS / 2], baseline);
    }
}

fn median(mut once: impl FnMut(usize) -> Duration) -> Duration {
    let mut runs: Vec<Duration> = (0..RUNS).map(&mut once).collect();
    runs.sort();
    runs[RUNS / 2]
}

fn report(name: &str, rows: u64, elapsed: Duration, baseline: Duration) {
    let seconds = elapsed.as_secs_f64();
    println!(
        "{name:<50} {seconds:>7.3} s  {:>10.0} rows/s  {:>5.2}x psql",
        rows as f64 / seconds,
        baseline.as_secs_f64() / seconds
    );
}
