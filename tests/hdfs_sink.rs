//! The HDFS sink against a real Apache Hadoop NameNode and DataNode: the seed's connectors by
//! SQL and by Connect's REST API, exactly-once across SIGKILLs, and catching up after HDFS
//! was down. What landed is read back with Hadoop's own `hdfs dfs`.

mod common;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use common::{CREATE_INGESTION, SluiceServer, TestBroker, hdfs::HdfsCluster, powergrid_record, produce, producer, routed_record};
use serde_json::{Value, json};

/// The seed's `curl -X POST …/connectors` body for one sensor, as written but for the NameNode.
fn seed_sensor_request(id: u32, hdfs_url: &str) -> String {
    r#"{
    "name": "hdfs-sink-sensor-<ID NUMBER>",
    "config": {
        "connector.class": "io.confluent.connect.hdfs.HdfsSinkConnector",
        "tasks.max": "1",
        "topics": "SENSOR_ID_<ID NUMBER>",
        "hdfs.url": "hdfs://namenode:9000",
        "flush.size": "3",
        "format.class": "io.confluent.connect.hdfs.json.JsonFormat",
        "topics.dir": "/grid-wattage/sensor<ID NUMBER>",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false"
    }
}"#
    .replace("<ID NUMBER>", &id.to_string())
    .replace("hdfs://namenode:9000", hdfs_url)
}

/// The seed's `UNORGANIZED` connector body, as written but for the NameNode.
fn seed_unorganized_request(hdfs_url: &str) -> String {
    r#"{
    "name": "hdfs-sink-unorganized",
    "config": {
        "connector.class": "io.confluent.connect.hdfs.HdfsSinkConnector",
        "tasks.max": "1",
        "topics": "UNORGANIZED",
        "hdfs.url": "hdfs://namenode:9000",
        "topics.dir": "/unorganized",
        "flush.size": "1",
        "rotate.interval.ms": "10000",
        "format.class": "io.confluent.connect.hdfs.string.StringFormat",
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "key.converter.schemas.enable": "false",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter.schemas.enable": "false"
    }
}"#
    .replace("hdfs://namenode:9000", hdfs_url)
}

/// The same sensor connector as a `CREATE SINK CONNECTOR` statement.
fn sensor_statement(id: u32, hdfs_url: &str) -> String {
    format!(
        "CREATE SINK CONNECTOR `hdfs-sink-sensor-{id}` WITH (
    'connector.class' = 'io.confluent.connect.hdfs.HdfsSinkConnector',
    'tasks.max' = '1',
    'topics' = 'SENSOR_ID_{id}',
    'hdfs.url' = '{hdfs_url}',
    'flush.size' = '3',
    'format.class' = 'io.confluent.connect.hdfs.json.JsonFormat',
    'topics.dir' = '/grid-wattage/sensor{id}',
    'key.converter' = 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter' = 'org.apache.kafka.connect.json.JsonConverter',
    'key.converter.schemas.enable' = 'false',
    'value.converter.schemas.enable' = 'false'
);"
    )
}

async fn post_connector(server: &SluiceServer, body: &str) -> (u16, Value) {
    let response = server
        .client()
        .post(format!("{}/connectors", server.url))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn connector_status(server: &SluiceServer, name: &str) -> Value {
    let response = server
        .client()
        .get(format!("{}/connectors/{name}/status", server.url))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

/// Waits until the connector has committed `expected` records in all and lags behind by none.
async fn wait_committed(server: &SluiceServer, name: &str, expected: u64, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let status = connector_status(server, name).await;
        let progress = status["progress"].as_array().cloned().unwrap_or_default();
        let committed: u64 = progress
            .iter()
            .map(|p| p["committedOffset"].as_i64().map_or(0, |c| c as u64 + 1))
            .sum();
        let lag: i64 = progress.iter().map(|p| p["lag"].as_i64().unwrap_or(1)).sum();
        if committed >= expected && lag == 0 && !progress.is_empty() {
            return status;
        }
        assert!(Instant::now() < deadline, "{name} did not commit {expected} records in time: {status}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seed_connectors_by_sql_and_by_curl_land_the_seed_folder_tree_exactly_once() {
    let hdfs = HdfsCluster::start().await;
    let broker = TestBroker::start().await;
    let cluster = sluice::connectors::kafka::KafkaCluster::connect(&broker.bootstrap).unwrap();
    cluster.ensure_topic("INGESTION", 3, 1, &[]).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok(CREATE_INGESTION).await;
    server
        .ksql_ok("CREATE STREAM UNORGANIZED_TEXT (LINE STRING) WITH (KAFKA_TOPIC='UNORGANIZED', VALUE_FORMAT='KAFKA', PARTITIONS=1);")
        .await;
    for id in 1..=6 {
        server
            .ksql_ok(&format!(
                "CREATE STREAM SENSOR_ID_{id} AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '{id}';"
            ))
            .await;
    }

    // Sensors 1–3 by SQL; sensors 4–6 and UNORGANIZED by the seed's curl bodies.
    for id in 1..=3 {
        let body = server.ksql_ok(&sensor_statement(id, &hdfs.url)).await;
        assert_eq!(body[0]["@type"], "connector_info", "{body}");
        assert_eq!(body[0]["info"]["name"], format!("hdfs-sink-sensor-{id}"));
    }
    for id in 4..=6 {
        let (status, body) = post_connector(&server, &seed_sensor_request(id, &hdfs.url)).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["name"], format!("hdfs-sink-sensor-{id}"));
        assert_eq!(body["config"]["flush.size"], "3");
        assert_eq!(body["type"], "sink");
    }
    let (status, body) = post_connector(&server, &seed_unorganized_request(&hdfs.url)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post_connector(&server, &seed_sensor_request(4, &hdfs.url)).await;
    assert_eq!(status, 409, "a second POST of the same name conflicts: {body}");

    let producer = producer(&broker.bootstrap);
    let per_sensor = 9u32;
    let mut expected: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for n in 0..per_sensor {
        for sensor in 1..=6 {
            let record = powergrid_record(sensor, n);
            produce(&producer, "INGESTION", &sensor.to_string(), &record).await;
            expected.entry(sensor).or_default().push(record);
        }
    }
    let lines = ["grid frequency nominal", "transformer 7 humming", "line 3 \"overload\" cleared"];
    for line in lines {
        produce(&producer, "UNORGANIZED", "log", line).await;
    }

    for id in 1..=6 {
        let status = wait_committed(&server, &format!("hdfs-sink-sensor-{id}"), per_sensor as u64, Duration::from_secs(90)).await;
        assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    }
    wait_committed(&server, "hdfs-sink-unorganized", lines.len() as u64, Duration::from_secs(60)).await;

    let listed = server.ksql_ok("SHOW CONNECTORS;").await;
    let names: Vec<&str> = listed[0]["connectors"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 7, "{listed}");
    assert!(listed[0]["connectors"][0]["state"].as_str().unwrap().starts_with("RUNNING"), "{listed}");
    let described = server.ksql_ok("DESCRIBE CONNECTOR `hdfs-sink-sensor-2`;").await;
    assert_eq!(described[0]["@type"], "connector_description");
    assert_eq!(described[0]["connectorClass"], "io.confluent.connect.hdfs.HdfsSinkConnector");
    assert_eq!(described[0]["topics"], json!(["SENSOR_ID_2"]));

    // Hadoop's own client sees the seed's tree: one partition per sensor (its key), files of
    // three records with inclusive, zero-padded offsets, and nothing left in progress.
    let files = hdfs.list_files("/grid-wattage");
    for sensor in 1..=6u32 {
        let sensor_files: Vec<&String> = files.iter().filter(|f| f.contains(&format!("/SENSOR_ID_{sensor}/"))).collect();
        assert_eq!(sensor_files.len(), 3, "{files:?}");
        let partition_dir = sensor_files[0].rsplit_once('/').unwrap().0.to_string();
        let partition = partition_dir.rsplit_once("partition=").unwrap().1;
        assert!(partition_dir.starts_with(&format!("/grid-wattage/sensor{sensor}/SENSOR_ID_{sensor}/partition=")));
        let names: Vec<String> = sensor_files.iter().map(|f| f.rsplit_once('/').unwrap().1.to_string()).collect();
        assert_eq!(
            names,
            vec![
                format!("SENSOR_ID_{sensor}+{partition}+0000000000+0000000002.json"),
                format!("SENSOR_ID_{sensor}+{partition}+0000000003+0000000005.json"),
                format!("SENSOR_ID_{sensor}+{partition}+0000000006+0000000008.json"),
            ]
        );
        let content = hdfs.shell(&["-cat", &format!("{partition_dir}/*")]);
        let mut got: Vec<String> = content.lines().map(|l| serde_json::from_str::<Value>(l).unwrap().to_string()).collect();
        let mut want: Vec<String> = expected[&sensor].iter().map(|r| routed_record(r).to_string()).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "sensor {sensor}: every record exactly once");
    }
    assert!(files.iter().all(|f| !f.contains("+tmp")), "{files:?}");

    let unorganized = hdfs.list_files("/unorganized");
    assert_eq!(
        unorganized,
        vec![
            "/unorganized/UNORGANIZED/partition=0/UNORGANIZED+0+0000000000+0000000000.txt",
            "/unorganized/UNORGANIZED/partition=0/UNORGANIZED+0+0000000001+0000000001.txt",
            "/unorganized/UNORGANIZED/partition=0/UNORGANIZED+0+0000000002+0000000002.txt",
        ]
    );
    let text = hdfs.shell(&["-cat", "/unorganized/UNORGANIZED/partition=0/UNORGANIZED+0+0000000002+0000000002.txt"]);
    assert_eq!(text, "line 3 \"overload\" cleared\n");

    // The REST views and DELETE.
    let config: Value = server
        .client()
        .get(format!("{}/connectors/hdfs-sink-unorganized/config", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["format.class"], "io.confluent.connect.hdfs.string.StringFormat");
    assert_eq!(config["name"], "hdfs-sink-unorganized");
    let names: Value = server.client().get(format!("{}/connectors", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(names.as_array().unwrap().len(), 7, "{names}");
    let deleted = server
        .client()
        .delete(format!("{}/connectors/hdfs-sink-sensor-6", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let missing = server
        .client()
        .get(format!("{}/connectors/hdfs-sink-sensor-6/status", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body, json!({"error_code": 404, "message": "Connector hdfs-sink-sensor-6 not found"}));
}

async fn create_flow_sink(server: &SluiceServer, hdfs_url: &str, extra: &str) {
    server
        .ksql_ok("CREATE STREAM FLOW (ID BIGINT, WATTS DOUBLE) WITH (KAFKA_TOPIC='FLOW', VALUE_FORMAT='JSON', PARTITIONS=2);")
        .await;
    server
        .ksql_ok(&format!(
            "CREATE SINK CONNECTOR FLOW_SINK WITH ('connector.class'='HdfsSinkConnector', 'topics'='FLOW', 'hdfs.url'='{hdfs_url}', 'topics.dir'='/flow', 'flush.size'='7', 'rotate.interval.ms'='1000', 'format.class'='io.confluent.connect.hdfs.json.JsonFormat', 'value.converter'='org.apache.kafka.connect.json.JsonConverter', 'value.converter.schemas.enable'='false'{extra});"
        ))
        .await;
}

fn flow_record(id: u64) -> String {
    json!({"ID": id, "WATTS": id as f64 / 4.0}).to_string()
}

fn assert_each_once(lines: &[String], count: u64) {
    let mut ids: Vec<u64> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["ID"].as_u64().unwrap())
        .collect();
    ids.sort();
    let want: Vec<u64> = (0..count).collect();
    assert_eq!(ids, want, "every record exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_records_flow_leaves_every_record_in_hdfs_exactly_once() {
    let hdfs = HdfsCluster::start().await;
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    create_flow_sink(&server, &hdfs.url, "").await;

    let total = 1200u64;
    let bootstrap = broker.bootstrap.clone();
    let flow = tokio::spawn(async move {
        let producer = producer(&bootstrap);
        for id in 0..total {
            produce(&producer, "FLOW", &(id % 5).to_string(), &flow_record(id)).await;
            if id % 40 == 39 {
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        }
    });
    for round in 0..4u64 {
        tokio::time::sleep(Duration::from_millis(900 + 350 * round)).await;
        server.kill();
        server.start_again().await;
    }
    flow.await.unwrap();
    let status = wait_committed(&server, "FLOW_SINK", total, Duration::from_secs(120)).await;
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");

    assert_each_once(&hdfs.read_back("/flow/FLOW"), total);
    assert_eq!(hdfs.open_files(), "", "no file may stay open for write (a lease) after recovery");
    let leftovers: Vec<String> = hdfs.list_files("/flow").into_iter().filter(|f| f.contains("+tmp")).collect();
    assert!(leftovers.is_empty(), "in-progress files left behind: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sink_with_hdfs_down_loses_nothing_and_catches_up() {
    let mut hdfs = HdfsCluster::start().await;
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    create_flow_sink(&server, &hdfs.url, ", 'retry.backoff.ms'='500'").await;
    let producer = producer(&broker.bootstrap);
    for id in 0..70 {
        produce(&producer, "FLOW", &(id % 5).to_string(), &flow_record(id)).await;
    }
    wait_committed(&server, "FLOW_SINK", 70, Duration::from_secs(60)).await;

    hdfs.stop_namenode();
    for id in 70..140 {
        produce(&producer, "FLOW", &(id % 5).to_string(), &flow_record(id)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let status = connector_status(&server, "FLOW_SINK").await;
        if status["tasks"][0]["state"] == "FAILED" {
            break status;
        }
        assert!(Instant::now() < deadline, "the sink never reported HDFS down: {status}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(failed["tasks"][0]["trace"].as_str().unwrap().contains("retrying"), "{failed}");

    hdfs.start_namenode();
    hdfs.wait_writable().await;
    let status = wait_committed(&server, "FLOW_SINK", 140, Duration::from_secs(120)).await;
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");
    assert_each_once(&hdfs.read_back("/flow/FLOW"), 140);
}

/// Names of the files under `dir` on the local file system, recursively, relative to `dir`.
fn local_files(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                found.push(entry.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

async fn wait_for_files(dir: &std::path::Path, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let files: Vec<String> = local_files(dir).into_iter().filter(|f| !f.contains("+tmp")).collect();
        if files.len() >= count {
            return files;
        }
        assert!(Instant::now() < deadline, "expected {count} files under {}, found {files:?}", dir.display());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_store_gets_the_same_layout_skips_bad_records_and_writes_parquet_columns() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let landing = tempfile::tempdir().unwrap();
    let url = format!("file://{}", landing.path().display());
    let mut server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server
        .ksql_ok("CREATE STREAM METER (ID BIGINT, WATTS DOUBLE) WITH (KAFKA_TOPIC='METER', VALUE_FORMAT='JSON', PARTITIONS=1);")
        .await;
    let sink = |name: &str, dir: &str, format: &str, flush: u32, tolerance: &str| {
        format!(
            "CREATE SINK CONNECTOR {name} WITH ('connector.class'='HdfsSinkConnector', 'topics'='METER', 'store.url'='{url}', 'topics.dir'='{dir}', 'flush.size'='{flush}', 'format.class'='io.confluent.connect.hdfs.{format}', 'value.converter'='org.apache.kafka.connect.json.JsonConverter', 'value.converter.schemas.enable'='false', 'errors.tolerance'='{tolerance}');"
        )
    };
    server.ksql_ok(&sink("METER_JSON", "json", "json.JsonFormat", 4, "all")).await;
    server.ksql_ok(&sink("METER_PARQUET", "parquet", "parquet.ParquetFormat", 9, "all")).await;
    server.ksql_ok(&sink("METER_STRICT", "strict", "json.JsonFormat", 2, "none")).await;

    let producer = producer(&broker.bootstrap);
    for (n, value) in [0, 1, -1, 2, 3, 4, 5, 6, 7].into_iter().enumerate() {
        let record = if value < 0 { "{not json".to_string() } else { flow_record(value as u64).replace("ID", "id") };
        produce(&producer, "METER", &n.to_string(), &record).await;
    }
    let json_dir = landing.path().join("json");
    assert_eq!(
        wait_for_files(&json_dir, 2).await,
        vec![
            "METER/partition=0/METER+0+0000000000+0000000004.json",
            "METER/partition=0/METER+0+0000000005+0000000008.json"
        ]
    );
    let first = std::fs::read_to_string(json_dir.join("METER/partition=0/METER+0+0000000000+0000000004.json")).unwrap();
    assert_eq!(first.lines().count(), 4, "the malformed record is skipped: {first}");
    let status = connector_status(&server, "METER_JSON").await;
    assert_eq!(status["skippedRecords"], 1, "{status}");
    assert!(status["lastSkipped"].as_str().unwrap().contains("offset 2"), "{status}");

    // Without tolerance, as in Connect, the task stops at the bad record and stays FAILED:
    // the file before it is committed, nothing after it is written.
    let strict = wait_for_files(&landing.path().join("strict"), 1).await;
    assert_eq!(strict, vec!["METER/partition=0/METER+0+0000000000+0000000001.json"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = connector_status(&server, "METER_STRICT").await;
        if status["tasks"][0]["state"] == "FAILED" || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["tasks"][0]["state"], "FAILED", "{status}");
    assert!(status["tasks"][0]["trace"].as_str().unwrap_or_default().contains("offset 2"), "{status}");
    server.ksql_ok("DROP CONNECTOR METER_STRICT;").await;

    let parquet_files = wait_for_files(&landing.path().join("parquet"), 1).await;
    assert_eq!(parquet_files, vec!["METER/partition=0/METER+0+0000000000+0000000008.parquet"]);
    let file = std::fs::File::open(landing.path().join("parquet").join(&parquet_files[0])).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        assert_eq!(batch.schema().field(0).name(), "ID");
        assert_eq!(batch.schema().field(1).name(), "WATTS");
        let column = batch.column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap();
        ids.extend(column.iter().map(Option::unwrap));
    }
    assert_eq!(ids, (0..8).collect::<Vec<i64>>());

    // Connectors come back after a restart and continue where their files end.
    server.restart().await;
    let listed = server.ksql_ok("SHOW CONNECTORS;").await;
    assert_eq!(listed[0]["connectors"].as_array().unwrap().len(), 2, "{listed}");
    for n in 8..12 {
        produce(&producer, "METER", &n.to_string(), &flow_record(n)).await;
    }
    let files = wait_for_files(&json_dir, 3).await;
    assert_eq!(files[2], "METER/partition=0/METER+0+0000000009+0000000012.json");

    server.ksql_ok("DROP CONNECTOR METER_PARQUET;").await;
    let listed = server.ksql_ok("SHOW CONNECTORS;").await;
    assert_eq!(listed[0]["connectors"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_connector_configs_are_refused_with_the_key_named() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let base = "'connector.class'='io.confluent.connect.hdfs.HdfsSinkConnector', 'topics'='T', 'hdfs.url'='hdfs://127.0.0.1:1', 'format.class'='io.confluent.connect.hdfs.json.JsonFormat'";
    for (extra, message) in [
        ("", "flush.size is required"),
        (", 'flush.size'='three'", "flush.size must be a whole number, not 'three'"),
        (", 'flush.size'='3', 'flush.szie'='3'", "unknown options for the HDFS sink: flush.szie"),
        (", 'flush.size'='3', 'partitioner.class'='io.confluent.connect.storage.partitioner.FieldPartitioner'", "partitioner.class"),
    ] {
        let (status, body) = server
            .ksql(&format!("CREATE SINK CONNECTOR C WITH ({base}{extra});"))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().unwrap().contains(message), "{message}: {body}");
    }
    let (status, body) = server
        .ksql("CREATE SINK CONNECTOR C WITH ('connector.class'='io.example.FtpSink', 'topics'='T');")
        .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("connector.class 'io.example.FtpSink'"), "{body}");
    let (status, body) = post_connector(&server, r#"{"name": "c", "config": {"connector.class": "HdfsSinkConnector", "topics": "T"}}"#).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], 400);
    assert!(body["message"].as_str().unwrap().contains("store.url (or hdfs.url) is required"), "{body}");
    let (status, body) = server.ksql("DROP CONNECTOR NOPE;").await;
    assert_eq!(status, 400, "{body}");
    server.ksql_ok("DROP CONNECTOR IF EXISTS NOPE;").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_config_creates_then_replaces_and_restart_recovers_from_the_store() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let landing = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server
        .ksql_ok("CREATE STREAM PUT_ME (LINE STRING) WITH (KAFKA_TOPIC='PUT_ME', VALUE_FORMAT='KAFKA', PARTITIONS=1);")
        .await;
    let config = |flush: &str| {
        json!({
            "connector.class": "io.confluent.connect.hdfs.HdfsSinkConnector",
            "topics": "PUT_ME",
            "store.url": format!("file://{}", landing.path().display()),
            "flush.size": flush,
            "format.class": "io.confluent.connect.hdfs.string.StringFormat",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter"
        })
    };
    let url = format!("{}/connectors/put-me/config", server.url);
    let created = server.client().put(&url).json(&config("2")).send().await.unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let replaced = server.client().put(&url).json(&config("3")).send().await.unwrap();
    assert_eq!(replaced.status().as_u16(), 200);
    let body: Value = replaced.json().await.unwrap();
    assert_eq!(body["config"]["flush.size"], "3");
    let shown: Value = server.client().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(shown["flush.size"], "3");

    let producer = producer(&broker.bootstrap);
    for n in 0..3 {
        produce(&producer, "PUT_ME", "k", &format!("line {n}")).await;
    }
    let dir = landing.path().join("topics");
    assert_eq!(wait_for_files(&dir, 1).await, vec!["PUT_ME/partition=0/PUT_ME+0+0000000000+0000000002.txt"]);
    let restarted = server
        .client()
        .post(format!("{}/connectors/put-me/restart", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(restarted.status().as_u16(), 204);
    for n in 3..6 {
        produce(&producer, "PUT_ME", "k", &format!("line {n}")).await;
    }
    let files = wait_for_files(&dir, 2).await;
    assert_eq!(files[1], "PUT_ME/partition=0/PUT_ME+0+0000000003+0000000005.txt", "{files:?}");
    let status = wait_committed(&server, "put-me", 6, Duration::from_secs(30)).await;
    assert_eq!(status["tasks"][0]["state"], "RUNNING", "{status}");

    let get = |path: &str| server.client().get(format!("{}{path}", server.url)).send();
    let expanded: Value = get("/connectors?expand=status").await.unwrap().json().await.unwrap();
    assert_eq!(expanded["put-me"]["status"]["tasks"][0]["state"], "RUNNING", "{expanded}");
    let tasks: Value = get("/connectors/put-me/tasks").await.unwrap().json().await.unwrap();
    assert_eq!(tasks[0]["id"], json!({"connector": "put-me", "task": 0}), "{tasks}");
    assert_eq!(tasks[0]["config"]["flush.size"], "3", "{tasks}");
    let topics: Value = get("/connectors/put-me/topics").await.unwrap().json().await.unwrap();
    assert_eq!(topics, json!({"put-me": {"topics": ["PUT_ME"]}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topics_regex_picks_up_matching_topics_and_scheduled_rotation_commits_partial_files() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let landing = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server
        .ksql_ok(&format!(
            "CREATE SINK CONNECTOR GRID WITH ('connector.class'='HdfsSinkConnector', 'topics.regex'='GRID_[0-9]+', 'store.url'='file://{}', 'flush.size'='1000', 'rotate.schedule.interval.ms'='10000', 'timezone'='UTC', 'format.class'='io.confluent.connect.hdfs.string.StringFormat', 'value.converter'='org.apache.kafka.connect.storage.StringConverter');",
            landing.path().display()
        ))
        .await;
    for topic in ["GRID_1", "GRID_2", "GRIDX"] {
        server
            .ksql_ok(&format!("CREATE STREAM {topic} (LINE STRING) WITH (KAFKA_TOPIC='{topic}', VALUE_FORMAT='KAFKA', PARTITIONS=1);"))
            .await;
    }
    let producer = producer(&broker.bootstrap);
    for topic in ["GRID_1", "GRID_2", "GRIDX"] {
        for n in 0..2 {
            produce(&producer, topic, "k", &format!("{topic} {n}")).await;
        }
    }
    let files = wait_for_files(&landing.path().join("topics"), 2).await;
    assert_eq!(
        files,
        vec!["GRID_1/partition=0/GRID_1+0+0000000000+0000000001.txt", "GRID_2/partition=0/GRID_2+0+0000000000+0000000001.txt"],
        "two records each, committed by the schedule long before flush.size; GRIDX does not match"
    );
}
