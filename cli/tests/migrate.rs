//! `sluice migrate` with the PowerGrid scripts of `queries/powergrid`, against a server on a
//! real broker writing to a real HDFS: the whole pipeline from a fresh server, once.

mod common;

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use common::{
    hdfs::HdfsCluster,
    postgres::{PASSWORD, PostgresServer, SEED, USER},
    start_server,
};
use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};

fn sluice(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the client as [`sluice`] does, stopping it after `seconds` (a push query that has not
/// reached its LIMIT by then exits with 124).
fn sluice_within(seconds: u32, args: &[&str]) -> (i32, String, String) {
    let output = Command::new("timeout")
        .arg(seconds.to_string())
        .arg(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A copy of `queries/powergrid`, so the test can edit a file without touching the repository.
fn copy_scripts(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries/powergrid");
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

async fn wait_for(hdfs: &HdfsCluster, dir: &str, wanted: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let files = hdfs.list_files(dir);
        if wanted(&files) {
            return files;
        }
        assert!(Instant::now() < deadline, "{dir} never got the expected files: {files:?}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_powergrid_migrations_build_the_pipeline_once_and_validate_catches_an_edit() {
    let hdfs = HdfsCluster::start().await;
    let data = tempfile::tempdir().unwrap();
    let (url, broker, _shutdown) = start_server(data.path()).await;
    let scripts = tempfile::tempdir().unwrap();
    copy_scripts(scripts.path());
    let dir = scripts.path().to_str().unwrap();
    let postgres = PostgresServer::start("telemetry");
    postgres.psql("telemetry", SEED);
    let defines = [
        format!("hdfs_url={}", hdfs.url),
        format!("postgres_url={}", postgres.jdbc_url("telemetry")),
        format!("postgres_user={USER}"),
        format!("postgres_password={PASSWORD}"),
    ];
    let mut apply = vec!["--server", url.as_str()];
    for define in &defines {
        apply.extend(["--define", define.as_str()]);
    }
    apply.extend(["migrate", "apply", dir]);

    let (code, out, err) = sluice(&apply);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("Applied 8 migration(s); the current version is V000008."), "{out}");
    let steps: Vec<&str> = out.lines().filter(|l| l.starts_with("Applying V")).collect();
    assert_eq!(steps.len(), 8, "{out}");
    assert!(steps[0].ends_with("(1 of 8)") && steps[7].ends_with("(8 of 8)"), "each step tells how far it is: {steps:?}");
    let (code, out, err) = sluice(&apply);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Nothing to apply"), "a second run does nothing: {out}");

    let (code, out, _) = sluice(&["--server", &url, "-e", "SHOW QUERIES; SHOW CONNECTORS;"]);
    assert_eq!(code, 0);
    for id in 1..=6 {
        assert!(out.contains(&format!("CSAS_SENSOR_ID_{id}_")), "{out}");
        assert!(out.contains(&format!("hdfs-sink-sensor-{id}")), "{out}");
    }
    assert!(out.contains("hdfs-sink-unorganized"), "{out}");
    assert!(out.contains("jdbc-source-telemetry") && out.contains("hdfs-sink-telemetry"), "{out}");

    // The database's nodes are in NODES before any reading: a reading is joined with its node as
    // the database described it at the reading's time.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, out, err) = sluice(&["--server", &url, "-e", "SELECT ID, NODE FROM NODES;"]);
        assert_eq!(code, 0, "{err}");
        if out.contains("Node4") {
            break;
        }
        if Instant::now() > deadline {
            let (_, state, _) = sluice(&["--server", &url, "-e", "DESCRIBE NODES EXTENDED; DESCRIBE TELEMETRY_ROWS EXTENDED; PRINT TELEMETRY FROM BEGINNING LIMIT 2;"]);
            panic!("NODES never held the database's rows: {out}\n{state}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Records as the seed's producer writes them (keyed by sensor), and a line of text.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .unwrap();
    for n in 0..3 {
        for sensor in 1..=6 {
            let payload = format!("{{\"sensor_id\": {sensor}, \"modality\": {n}, \"unit\": \"MW\"}}");
            let value = serde_json::json!({"payload": payload, "correlation_id": format!("{sensor}-{n}"), "created_at": 1.5, "schema_version": 1}).to_string();
            let key = sensor.to_string();
            producer
                .send(FutureRecord::to("INGESTION").key(&key).payload(&value), Duration::from_secs(30))
                .await
                .unwrap();
        }
    }
    producer
        .send(FutureRecord::to("UNORGANIZED").key("log").payload("breaker 12 tripped"), Duration::from_secs(30))
        .await
        .unwrap();

    let files = wait_for(&hdfs, "/grid-wattage", |f| f.len() == 6).await;
    for sensor in 1..=6 {
        let prefix = format!("/grid-wattage/sensor{sensor}/SENSOR_ID_{sensor}/partition=");
        let file = files.iter().find(|f| f.starts_with(&prefix)).unwrap_or_else(|| panic!("{files:?}"));
        assert!(file.ends_with("+0000000000+0000000002.json"), "{file}");
        assert_eq!(hdfs.shell(&["-cat", file]).lines().count(), 3);
    }
    // The latest reading of sensor 3 by key, and its readings per minute, from the tables
    // V000005 and V000006 create.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, out, err) = sluice(&["--server", &url, "-e", "SELECT SENSOR, READINGS, PAYLOAD FROM LATEST_READING WHERE SENSOR = '3';"]);
        assert_eq!(code, 0, "{err}");
        if let Some(row) = out.lines().find(|l| l.contains("\"modality\": 2")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            assert_eq!(cells[1..3], ["3", "3"], "sensor 3, its three readings: {out}");
            break;
        }
        assert!(Instant::now() < deadline, "LATEST_READING never held sensor 3's last reading: {out}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (code, out, err) = sluice(&["--server", &url, "-e", "SELECT SENSOR, WINDOWSTART, READINGS, MAX_WATTAGE FROM WATTAGE_PER_MINUTE WHERE SENSOR = '3';"]);
    assert_eq!(code, 0, "{err}");
    let readings: u64 = out
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.get(1) == Some(&"3")).then(|| cells[3].parse::<u64>().unwrap())
        })
        .sum();
    assert_eq!(readings, 3, "sensor 3's readings, over the minutes they fell in: {out}");
    let text = wait_for(&hdfs, "/unorganized", |f| f.len() == 1).await;
    assert_eq!(text, vec!["/unorganized/UNORGANIZED/partition=0/UNORGANIZED+0+0000000000+0000000000.txt"]);
    assert_eq!(hdfs.shell(&["-cat", &text[0]]), "breaker 12 tripped\n");

    // The database's rows, one file each, through the JDBC source and the TELEMETRY sink.
    let rows = wait_for(&hdfs, "/telemetry", |f| f.len() == 4).await;
    let landed: Vec<String> = rows.iter().map(|file| hdfs.shell(&["-cat", file])).collect();
    assert_eq!(landed[0], "{\"id\":1,\"name\":\"Node1\",\"wattage\":75000}\n", "{landed:?}");

    // Readings enriched with their node from the database's rows (V000008): sensors 1 to 4 have
    // one, 5 and 6 none.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, out, err) = sluice_within(
            20,
            &[
                "--server",
                &url,
                "-e",
                "SET 'auto.offset.reset' = 'earliest'; SELECT NODE_ID, NODE, RATED_WATTAGE, CORRELATION_ID FROM READINGS_BY_NODE EMIT CHANGES LIMIT 18;",
            ],
        );
        assert!(code == 0 || code == 124, "{err}");
        let rows: Vec<Vec<String>> = out
            .lines()
            .map(|l| l.split('|').map(|c| c.trim().to_string()).collect::<Vec<_>>())
            .filter(|cells| cells.len() > 4 && cells[4].contains('-'))
            .collect();
        let node3: Vec<&Vec<String>> = rows.iter().filter(|r| r[4].starts_with("3-")).collect();
        let node6: Vec<&Vec<String>> = rows.iter().filter(|r| r[4].starts_with("6-")).collect();
        if node3.len() == 3 && node6.len() == 3 {
            assert!(node3.iter().all(|r| r[1..4] == ["3", "Node3", "60000"]), "{out}");
            assert!(node6.iter().all(|r| r[2] == "null" || r[2].is_empty()), "{out}");
            break;
        }
        assert!(Instant::now() < deadline, "READINGS_BY_NODE never held every reading: {out}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let (code, out, _) = sluice(&["--server", &url, "migrate", "info", dir]);
    assert_eq!(code, 0);
    assert!(out.contains("V000008") && out.contains("MIGRATED"), "{out}");
    let (code, out, err) = sluice(&["--server", &url, "migrate", "validate", dir]);
    assert_eq!(code, 0, "{out}{err}");

    let edited = scripts.path().join("V000002__route_sensors.sql");
    let mut text = std::fs::read_to_string(&edited).unwrap();
    text.push_str("-- an afterthought\n");
    std::fs::write(&edited, text).unwrap();
    let (code, _, err) = sluice(&["--server", &url, "migrate", "validate", dir]);
    assert_eq!(code, 1);
    assert!(err.contains("V000002__route_sensors.sql was edited after it was applied"), "{err}");
    let (code, _, err) = sluice(&apply);
    assert_ne!(code, 0, "apply refuses to go on over an edited file");
    assert!(err.contains("V000002"), "{err}");

    let (code, out, _) = sluice(&["migrate", "new", "add alerts", dir]);
    assert_eq!(code, 0);
    assert!(out.contains("V000009__add_alerts.sql"), "{out}");
    assert!(scripts.path().join("V000009__add_alerts.sql").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_migration_is_recorded_and_stops_the_versions_after_it() {
    let data = tempfile::tempdir().unwrap();
    let (url, _broker, _shutdown) = start_server(data.path()).await;
    let scripts = tempfile::tempdir().unwrap();
    std::fs::write(
        scripts.path().join("V000001__meters.sql"),
        "CREATE STREAM METERS (ID BIGINT) WITH (KAFKA_TOPIC='METERS', VALUE_FORMAT='JSON', PARTITIONS=1);\n",
    )
    .unwrap();
    std::fs::write(scripts.path().join("V000002__broken.sql"), "CREATE STREAM BROKEN AS SELEKT * FROM METERS;\n").unwrap();
    std::fs::write(
        scripts.path().join("V000003__later.sql"),
        "CREATE STREAM LATER (ID BIGINT) WITH (KAFKA_TOPIC='LATER', VALUE_FORMAT='JSON', PARTITIONS=1);\n",
    )
    .unwrap();
    let dir = scripts.path().to_str().unwrap();
    let (code, _, err) = sluice(&["--server", &url, "migrate", "apply", dir]);
    assert_eq!(code, 1);
    assert!(err.contains("V000002__broken.sql:1:"), "the failing statement is located: {err}");
    let (_, out, _) = sluice(&["--server", &url, "migrate", "info", dir]);
    let line = |v: &str| out.lines().find(|l| l.contains(v)).unwrap_or_default().to_string();
    assert!(line("V000001").contains("MIGRATED"), "{out}");
    assert!(line("V000002").contains("ERROR"), "{out}");
    assert!(line("V000003").contains("PENDING"), "{out}");
    let (code, _, _) = sluice(&["--server", &url, "migrate", "apply", "--until", "1", dir]);
    assert_eq!(code, 0, "up to an applied version there is nothing to do");
}
