//! Several servers of one service over a real broker: a statement accepted by one is applied by
//! every other, in command-log order, and statements two servers accept at once resolve the
//! same way on both; the servers share the persistent queries and connectors, and a killed
//! server's share moves to the others with every record routed, counted and landed in HDFS
//! exactly once; a pull query is answered by the server running its table's query, or by the
//! server asked when that one is gone.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use common::{
    CREATE_INGESTION, SluiceServer, TestBroker, check_routed_exactly_once, create_ingestion_topic, feed_sensors, hdfs::HdfsCluster,
    latest_per_key, produce, producer, read_topic,
};
use serde_json::{Value, json};

const SENSORS: u32 = 6;
const PER_SENSOR: u32 = 400;

/// The column names and types `DESCRIBE name` shows on `server`.
async fn columns(server: &SluiceServer, name: &str) -> Vec<(String, String)> {
    let body = server.ksql_ok(&format!("DESCRIBE {name};")).await;
    body[0]["sourceDescription"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("DESCRIBE {name}: {body}"))
        .iter()
        .map(|f| (f["name"].as_str().unwrap().to_string(), f["schema"]["type"].as_str().unwrap().to_string()))
        .collect()
}

/// POSTs `/ksql` with a `commandSequenceNumber`.
async fn ksql_after(server: &SluiceServer, sql: &str, seq: i64) -> (u16, Value) {
    let response = server
        .client()
        .post(format!("{}/ksql", server.url))
        .json(&json!({"ksql": sql, "commandSequenceNumber": seq}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_sent_to_one_server_is_applied_on_every_server_of_the_service() {
    let broker = TestBroker::start().await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = SluiceServer::start(&broker.bootstrap, a_dir.path().to_path_buf()).await;
    let mut b = SluiceServer::start(&broker.bootstrap, b_dir.path().to_path_buf()).await;

    a.ksql_ok("CREATE STREAM READINGS (ID STRING KEY, WATTS INTEGER) WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='JSON', PARTITIONS=2);").await;
    assert_eq!(columns(&b, "READINGS").await, [("ID".to_string(), "STRING".to_string()), ("WATTS".to_string(), "INTEGER".to_string())]);

    // A statement on B over A's stream, and its query seen from A.
    let created = b.ksql_ok("CREATE STREAM HIGH AS SELECT ID, WATTS FROM READINGS WHERE WATTS > 100;").await;
    let query_id = created[0]["commandStatus"]["queryId"].as_str().unwrap().to_string();
    let seq = created[0]["commandSequenceNumber"].as_i64().unwrap();
    let queries = a.ksql_ok("SHOW QUERIES;").await;
    let ids: Vec<&str> = queries[0]["queries"].as_array().unwrap().iter().map(|q| q["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&query_id.as_str()), "{queries}");

    // ksqlDB's read-your-writes: a request naming a sequence number runs once it is applied.
    let (status, body) = ksql_after(&a, "DESCRIBE HIGH;", seq).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = ksql_after(&a, "SHOW STREAMS;", seq + 1000).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error_code"], 50301, "{body}");
    assert_eq!(
        body["message"],
        format!("Timed out while waiting for a previous command to execute. command sequence number: {}", seq + 1000)
    );

    // PAUSE and RESUME in one request, to each server in turn: on the server that only
    // follows them, the query runs again too, and routes what arrives after.
    for server in [&a, &b] {
        server.ksql_ok(&format!("PAUSE {query_id}; RESUME {query_id};")).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let producer = producer(&broker.bootstrap);
    produce(&producer, "readings", "r1", r#"{"WATTS": 500}"#).await;
    let high = read_topic(&broker.bootstrap, "HIGH", 1, Duration::from_secs(60));
    assert_eq!(high.len(), 1, "the resumed query routes the reading once: {high:?}");

    // `/clusterStatus` on either server shows how far the query has read on its server, per
    // partition of its source: the reading's partition read to its end.
    for server in [&a, &b] {
        let started = Instant::now();
        loop {
            let status: Value = server.client().get(format!("{}/clusterStatus", server.url)).send().await.unwrap().json().await.unwrap();
            let lags: Vec<Value> = status["clusterStatus"]
                .as_object()
                .unwrap()
                .values()
                .filter_map(|host| host["hostStoreLags"]["stateStoreLags"].get(format!("{query_id}#readings")).cloned())
                .collect();
            let caught_up = lags.len() == 1 && {
                let partitions = lags[0]["lagByPartition"].as_object().unwrap();
                let ends: i64 = partitions.values().map(|p| p["endOffsetPosition"].as_i64().unwrap()).sum();
                partitions.len() == 2 && ends == 1 && partitions.values().all(|p| p["offsetLag"] == 0)
            };
            if caught_up {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(15), "{status}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        // EXPLAIN shows the same as ksqlDB's tasks: one per source partition.
        let explained = server.ksql_ok(&format!("EXPLAIN {query_id};")).await;
        let tasks = explained[0]["queryDescription"]["tasksMetadata"].as_array().unwrap().clone();
        let ids: Vec<&str> = tasks.iter().map(|t| t["taskId"].as_str().unwrap()).collect();
        assert_eq!(ids, ["0_0", "0_1"], "{explained}");
        let offsets: Vec<&Value> = tasks.iter().flat_map(|t| t["topicOffsets"].as_array().unwrap()).collect();
        let committed: i64 = offsets.iter().map(|o| o["committedOffset"].as_i64().unwrap()).sum();
        let ends: i64 = offsets.iter().map(|o| o["endOffset"].as_i64().unwrap()).sum();
        assert_eq!((committed, ends), (1, 1), "{explained}");
    }

    // Two servers accepting the same name at once: the statement logged first wins on both,
    // the other is refused to its sender, and both servers describe the winner.
    for round in 0..6 {
        let name = format!("CLASH{round}");
        let on_a = format!("CREATE STREAM {name} (FROM_A INTEGER) WITH (KAFKA_TOPIC='clash_a{round}', VALUE_FORMAT='JSON', PARTITIONS=1);");
        let on_b = format!("CREATE STREAM {name} (FROM_B STRING, N BIGINT) WITH (KAFKA_TOPIC='clash_b{round}', VALUE_FORMAT='JSON', PARTITIONS=1);");
        let ((a_status, a_body), (b_status, b_body)) = tokio::join!(a.ksql(&on_a), b.ksql(&on_b));
        assert_eq!(
            [a_status, b_status].iter().filter(|s| **s == 200).count(),
            1,
            "one of two CREATEs of {name} succeeds: {a_body} {b_body}"
        );
        let loser = if a_status == 200 { &b_body } else { &a_body };
        assert_eq!(loser["message"], format!("Cannot add stream '{name}': A stream with the same name already exists"), "{loser}");
        let winner = if a_status == 200 { vec![("FROM_A", "INTEGER")] } else { vec![("FROM_B", "STRING"), ("N", "BIGINT")] };
        let winner: Vec<(String, String)> = winner.into_iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        assert_eq!(columns(&a, &name).await, winner, "{name} on A");
        assert_eq!(columns(&b, &name).await, winner, "{name} on B");
    }

    // A terminates the query and drops the stream; B, restarted, replays the refused
    // statements without counting them as failures, and has what A has.
    a.ksql_ok(&format!("TERMINATE {query_id};")).await;
    a.ksql_ok("DROP STREAM HIGH;").await;
    b.restart().await;
    let health: Value = b.client().get(format!("{}/healthcheck", b.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["isHealthy"], true, "{health}");
    let streams = b.ksql_ok("SHOW STREAMS;").await;
    let names: Vec<&str> = streams[0]["streams"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"READINGS") && !names.contains(&"HIGH"), "{streams}");

    // A pull query sent to either server is answered by the one running the table's query,
    // once that query has counted what was written before it; with that server gone, the
    // other answers from its own copy of the table.
    let created = b.ksql_ok("CREATE TABLE WATTS_PER_ID AS SELECT ID, SUM(WATTS) AS TOTAL FROM READINGS GROUP BY ID;").await;
    let table_query = created[0]["commandStatus"]["queryId"].as_str().unwrap().to_string();
    let started = Instant::now();
    let holder = loop {
        let holders: Vec<String> = shares(&a).await.into_iter().filter(|(_, q)| q.contains(&table_query)).map(|(h, _)| h).collect();
        if let [holder] = holders.as_slice() {
            break holder.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no server runs {table_query}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    loop {
        let shown = a.ksql_ok("SHOW QUERIES;").await;
        let queries = shown[0]["queries"].as_array().unwrap();
        if queries.iter().any(|q| q["id"] == table_query.as_str() && q["statusCount"] == json!({"RUNNING": 1})) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{table_query} never ran: {shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (n, watts) in [(1, 40), (2, 2)] {
        produce(&producer, "readings", "r2", &format!(r#"{{"WATTS": {watts}}}"#)).await;
        for server in [&a, &b] {
            let rows = pull_with_source(server, "SELECT * FROM WATTS_PER_ID WHERE ID = 'r2';").await;
            assert_eq!(rows, [(json!(["r2", if n == 1 { 40 } else { 42 }]), holder.clone())], "through {}", server.url);
        }
    }
    let (victim, survivor) = if a.url.ends_with(&holder) { (&mut a, &b) } else { (&mut b, &a) };
    victim.kill();
    let rows = pull_with_source(survivor, "SELECT * FROM WATTS_PER_ID WHERE ID = 'r2';").await;
    assert_eq!(rows, [(json!(["r2", 42]), survivor.url.trim_start_matches("http://").to_string())]);
}

/// The rows of a pull query through `/query` with ksqlDB's debug flag, each with the
/// `host:port` of the server that read it.
async fn pull_with_source(server: &SluiceServer, sql: &str) -> Vec<(Value, String)> {
    let response = server
        .client()
        .post(format!("{}/query", server.url))
        .header("Accept", "application/vnd.ksql.v1+json")
        .json(&json!({"ksql": sql, "requestProperties": {"request.ksql.debug.request": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{sql}");
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    body.as_array()
        .unwrap()
        .iter()
        .filter(|row| row.get("row").is_some())
        .map(|row| (row["row"]["columns"].clone(), format!("{}:{}", row["sourceHost"]["host"].as_str().unwrap(), row["sourceHost"]["port"])))
        .collect()
}

/// `/clusterStatus` on `server`: the queries each live server runs, by `host:port`.
async fn shares(server: &SluiceServer) -> BTreeMap<String, BTreeSet<String>> {
    let status: Value = server.client().get(format!("{}/clusterStatus", server.url)).send().await.unwrap().json().await.unwrap();
    status["clusterStatus"]
        .as_object()
        .unwrap_or_else(|| panic!("{status}"))
        .iter()
        .filter(|(_, host)| host["hostAlive"] == true)
        .map(|(name, host)| (name.clone(), host["activeStandbyPerQuery"].as_object().unwrap().keys().cloned().collect()))
        .collect()
}

/// Waits until `server` sees exactly `hosts` run the `total` queries, in shares that differ by
/// one at most; gives how long that took.
async fn until_shared(server: &SluiceServer, hosts: &[&SluiceServer], total: usize) -> Duration {
    let started = Instant::now();
    let wanted: BTreeSet<String> = hosts.iter().map(|h| h.url.trim_start_matches("http://").to_string()).collect();
    loop {
        let shares = shares(server).await;
        let running: BTreeMap<&String, usize> = shares.iter().filter(|(_, q)| !q.is_empty()).map(|(h, q)| (h, q.len())).collect();
        let sizes = running.values().copied();
        let even = sizes.clone().max().unwrap_or(0) - sizes.clone().min().unwrap_or(0) <= 1;
        if running.keys().map(|h| h.to_string()).collect::<BTreeSet<_>>() == wanted && sizes.sum::<usize>() == total && even {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{total} queries never shared evenly by {wanted:?}: {shares:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_servers_share_the_routing_queries_and_take_over_a_killed_ones_share_exactly_once() {
    let (broker, hdfs) = tokio::join!(TestBroker::start(), HdfsCluster::start());
    create_ingestion_topic(&broker.bootstrap).await;
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "sluice.cluster.session.timeout.ms=4000\n").unwrap();
    let env = [("SLUICE_CONFIG", config.path().to_str().unwrap())];
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut servers = Vec::new();
    for dir in &dirs {
        servers.push(SluiceServer::start_with_env(&broker.bootstrap, dir.path().to_path_buf(), &env).await);
    }
    servers[0].ksql_ok(CREATE_INGESTION).await;
    for sensor in 1..=SENSORS {
        let server = &servers[sensor as usize % 3];
        server
            .ksql_ok(&format!(
                "CREATE STREAM SENSOR_ID_{sensor} AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '{sensor}';"
            ))
            .await;
    }
    servers[1]
        .ksql_ok(
            "CREATE TABLE READINGS_PER_SENSOR AS SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR, COUNT(*) AS READINGS \
             FROM STREAM_INGESTION GROUP BY EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id');",
        )
        .await;
    servers[2]
        .ksql_ok(&format!(
            "CREATE SINK CONNECTOR GRID_SINK WITH ('connector.class'='io.confluent.connect.hdfs.HdfsSinkConnector', \
             'topics.regex'='SENSOR_ID_.*', 'hdfs.url'='{}', 'topics.dir'='/grid', 'flush.size'='50', 'rotate.schedule.interval.ms'='2000', 'timezone'='UTC', \
             'format.class'='io.confluent.connect.hdfs.json.JsonFormat', 'value.converter'='org.apache.kafka.connect.json.JsonConverter', \
             'value.converter.schemas.enable'='false');",
            hdfs.url
        ))
        .await;
    let queries = SENSORS as usize + 1;
    until_shared(&servers[0], &servers.iter().collect::<Vec<_>>(), queries).await;

    // Every server shows every query running, wherever it runs, and which server runs it.
    let holders: BTreeMap<String, String> = shares(&servers[0])
        .await
        .into_iter()
        .flat_map(|(host, queries)| queries.into_iter().map(move |q| (q, host.clone())))
        .collect();
    let started = Instant::now();
    loop {
        let shown = servers[0].ksql_ok("SHOW QUERIES;").await;
        let counts: Vec<&Value> = shown[0]["queries"].as_array().unwrap().iter().map(|q| &q["statusCount"]).collect();
        if counts.len() == queries && counts.iter().all(|c| **c == json!({"RUNNING": 1})) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (query, host) in &holders {
        let started = Instant::now();
        loop {
            let explained = servers[1].ksql_ok(&format!("EXPLAIN {query};")).await;
            if explained[0]["queryDescription"]["ksqlHostQueryStatus"] == json!({host: "RUNNING"}) {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{explained}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let feeding = feed_sensors(&broker.bootstrap, SENSORS, PER_SENSOR);
    for victim in [1, 2, 0] {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        servers[victim].kill();
        let witness = (victim + 1) % 3;
        let survivors: Vec<&SluiceServer> = servers.iter().enumerate().filter(|(i, _)| *i != victim).map(|(_, s)| s).collect();
        let took = until_shared(&servers[witness], &survivors, queries).await;
        println!("the share of a server killed with SIGKILL ran on the others {took:?} after the kill");
        servers[victim].start_again().await;
        until_shared(&servers[witness], &servers.iter().collect::<Vec<_>>(), queries).await;
    }
    feeding.await.unwrap();
    for sensor in 1..=SENSORS {
        check_routed_exactly_once(&broker.bootstrap, sensor, PER_SENSOR);
    }
    let counts = latest_per_key(&broker.bootstrap, "READINGS_PER_SENSOR", Duration::from_secs(120));
    for sensor in 1..=SENSORS {
        let value = &counts[sensor.to_string().as_bytes()];
        assert_eq!(value["READINGS"], json!(PER_SENSOR), "sensor {sensor}: every reading counted once: {value}");
    }

    // The HDFS sink moved with its servers too: every routed record in HDFS once.
    let deadline = Instant::now() + Duration::from_secs(180);
    for sensor in 1..=SENSORS {
        loop {
            let lines = hdfs.read_back(&format!("/grid/SENSOR_ID_{sensor}"));
            if lines.len() >= PER_SENSOR as usize || Instant::now() > deadline {
                let mut ids: Vec<String> = lines
                    .iter()
                    .map(|l| {
                        let value: Value = serde_json::from_str(l).unwrap();
                        value["correlation_id"].as_str().or(value["CORRELATION_ID"].as_str()).unwrap().to_string()
                    })
                    .collect();
                ids.sort();
                let wanted: Vec<String> = (0..PER_SENSOR).map(|n| format!("{sensor:02}-{n:06}")).collect();
                assert_eq!(ids, wanted, "SENSOR_ID_{sensor} in HDFS, each record once");
                break;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }
    assert_eq!(hdfs.open_files(), "", "no file may stay open for write after the sink moved");
}
