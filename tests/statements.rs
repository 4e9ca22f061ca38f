//! Statement semantics through `/ksql` against a real broker: SET, TERMINATE, DROP, formats,
//! INSERT VALUES, and the default embedded broker across a graceful restart.

mod common;

use std::time::Duration;

use common::{SluiceServer, TestBroker, read_topic};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kafka_and_delimited_streams_with_keys_route_and_drop() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;

    server.ksql_ok("CREATE STREAM UNORGANIZED_TEXT (LINE STRING) WITH (KAFKA_TOPIC='UNORGANIZED', VALUE_FORMAT='KAFKA', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM READINGS (ID STRING KEY, NODE STRING, WATTS INTEGER) WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='DELIMITED', PARTITIONS=2);").await;
    let body = server
        .ksql_ok("SET 'auto.offset.reset'='earliest';\nCREATE STREAM LOUD WITH (VALUE_FORMAT='JSON') AS SELECT UCASE(LINE) AS LINE, LEN(LINE) AS N FROM UNORGANIZED_TEXT;\nCREATE STREAM BIG AS SELECT ID, NODE, WATTS * 2 AS DOUBLED FROM READINGS WHERE WATTS > 70000;")
        .await;
    assert_eq!(body.as_array().unwrap().len(), 2, "{body}");

    for line in ["grid hums", "rumours of data"] {
        let (status, body) = server.ksql(&format!("INSERT INTO UNORGANIZED_TEXT (LINE) VALUES ('{line}');")).await;
        assert_eq!((status, body.clone()), (200, Value::Array(vec![])), "{body}");
    }
    for (id, node, watts) in [("1", "Node1", 75000), ("2", "Node2", 65000), ("4", "Node4", 80000)] {
        server.ksql_ok(&format!("INSERT INTO READINGS (ID, NODE, WATTS) VALUES ('{id}', '{node}', {watts});")).await;
    }

    let loud = read_topic(&broker.bootstrap, "LOUD", 2, Duration::from_secs(60));
    let mut values: Vec<&str> = loud.iter().map(|(_, v)| v.as_str()).collect();
    values.sort();
    assert_eq!(values, vec![r#"{"LINE":"GRID HUMS","N":9}"#, r#"{"LINE":"RUMOURS OF DATA","N":15}"#]);

    let big = read_topic(&broker.bootstrap, "BIG", 2, Duration::from_secs(60));
    let mut rows: Vec<(Option<String>, String)> = big;
    rows.sort();
    assert_eq!(
        rows,
        vec![(Some("1".into()), "Node1,150000".into()), (Some("4".into()), "Node4,160000".into())],
        "the key column is the record's key, not a field of its value"
    );

    let description = server.ksql_ok("DESCRIBE BIG;").await;
    let fields = &description[0]["sourceDescription"]["fields"];
    assert_eq!(fields[0]["name"], "ID");
    assert_eq!(fields[0]["type"], "KEY");
    assert_eq!(fields[1]["schema"]["type"], "STRING");
    assert_eq!(fields[2]["name"], "DOUBLED");

    let (status, body) = server.ksql("DROP STREAM READINGS;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("The following queries read from this source"), "{body}");

    let queries = server.ksql_ok("SHOW QUERIES;").await;
    let big_query = queries[0]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["sinks"][0] == "BIG")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.ksql_ok(&format!("TERMINATE {big_query};")).await;
    server.ksql_ok("DROP STREAM BIG;").await;
    server.ksql_ok("DROP STREAM READINGS;").await;
    let streams = server.ksql_ok("SHOW STREAMS;").await;
    let names: Vec<&str> = streams[0]["streams"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["LOUD", "UNORGANIZED_TEXT"]);
    let queries = server.ksql_ok("SHOW QUERIES;").await;
    assert_eq!(queries[0]["queries"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_embedded_broker_keeps_streams_and_records_across_a_graceful_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start_embedded(data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM NOTES (TEXT STRING) WITH (KAFKA_TOPIC='notes', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM SHOUTS AS SELECT UCASE(TEXT) AS TEXT FROM NOTES;").await;
    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('before');").await;
    assert_eq!(read_topic(&server.bootstrap, "SHOUTS", 1, Duration::from_secs(60)).len(), 1);

    assert!(server.terminate(), "sluice-server exits cleanly on SIGTERM");
    server.start_again().await;

    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('after');").await;
    let shouts = read_topic(&server.bootstrap, "SHOUTS", 2, Duration::from_secs(60));
    let values: Vec<&str> = shouts.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec![r#"{"TEXT":"BEFORE"}"#, r#"{"TEXT":"AFTER"}"#]);

    let (status, body) = server.ksql("DROP STREAM SHOUTS DELETE TOPIC;").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("DELETE TOPIC on the embedded broker"), "{body}");
    let streams = server.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(streams[0]["streams"].as_array().unwrap().len(), 2, "nothing was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_broker_shows_on_queries_and_nothing_is_lost_when_it_returns() {
    let mut broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM NOTES (TEXT STRING) WITH (KAFKA_TOPIC='notes', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM SHOUTS AS SELECT UCASE(TEXT) AS TEXT FROM NOTES;").await;
    server.ksql_ok("INSERT INTO NOTES (TEXT) VALUES ('one');").await;
    assert_eq!(read_topic(&broker.bootstrap, "SHOUTS", 1, Duration::from_secs(60)).len(), 1);

    broker.stop();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let state = loop {
        let queries = server.ksql_ok("SHOW QUERIES;").await;
        let state = queries[0]["queries"][0]["state"].as_str().unwrap().to_string();
        if state == "ERROR" || std::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(state, "ERROR", "a query whose broker is gone says so");

    broker.start_again().await;
    let producer = common::producer(&broker.bootstrap);
    common::produce(&producer, "notes", "k", r#"{"text": "two"}"#).await;
    let shouts = read_topic(&broker.bootstrap, "SHOUTS", 2, Duration::from_secs(90));
    let values: Vec<&str> = shouts.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, vec![r#"{"TEXT":"ONE"}"#, r#"{"TEXT":"TWO"}"#]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let queries = server.ksql_ok("SHOW QUERIES;").await;
        if queries[0]["queries"][0]["state"] == "RUNNING" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the query returns to RUNNING: {queries}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}


#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inserted_values_read_back_unchanged_through_queries_in_every_format() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM NOTES (K STRING KEY, TEXT STRING, N INTEGER) WITH (KAFKA_TOPIC='notes', VALUE_FORMAT='DELIMITED', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM NUMS (K INTEGER KEY, V DOUBLE) WITH (KAFKA_TOPIC='nums', FORMAT='KAFKA', PARTITIONS=1);").await;
    server.ksql_ok("CREATE STREAM BIGS (K BIGINT KEY, V BIGINT) WITH (KAFKA_TOPIC='bigs', FORMAT='KAFKA', PARTITIONS=1);").await;
    server
        .ksql_ok("SET 'auto.offset.reset'='earliest'; CREATE STREAM NOTES_COPY AS SELECT K, TEXT, N FROM NOTES; CREATE STREAM NUMS_COPY AS SELECT K, V FROM NUMS; CREATE STREAM BIGS_COPY AS SELECT K, V FROM BIGS;")
        .await;
    server.ksql_ok(r#"INSERT INTO NOTES (N, K, TEXT) VALUES (7, 'k1', 'a,b "quoted"');"#).await;
    server.ksql_ok("INSERT INTO NOTES (K, TEXT, N) VALUES ('k2', ' padded ', -2147483648);").await;
    server.ksql_ok("INSERT INTO NUMS VALUES (-3, 1796167415.3241541);").await;
    server.ksql_ok("INSERT INTO BIGS VALUES (9000000000, -9223372036854775807);").await;

    let notes = read_topic(&broker.bootstrap, "NOTES_COPY", 2, Duration::from_secs(60));
    assert_eq!(
        notes,
        vec![
            (Some("k1".into()), r#""a,b ""quoted""",7"#.into()),
            (Some("k2".into()), r#"" padded ",-2147483648"#.into()),
        ]
    );
    assert_eq!(
        server.push_rows("SELECT * FROM NOTES_COPY EMIT CHANGES LIMIT 2;").await,
        vec![json!(["k1", "a,b \"quoted\"", 7]), json!(["k2", " padded ", -2147483648i64])]
    );
    let nums = read_topic(&broker.bootstrap, "NUMS_COPY", 1, Duration::from_secs(60));
    let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    assert_eq!(nums, vec![(Some(lossy(&(-3i32).to_be_bytes())), lossy(&1796167415.3241541f64.to_be_bytes()))]);
    assert_eq!(server.push_rows("SELECT * FROM NUMS_COPY EMIT CHANGES LIMIT 1;").await, vec![json!([-3, 1796167415.3241541])]);
    assert_eq!(
        server.push_rows("SELECT K, V FROM BIGS_COPY EMIT CHANGES LIMIT 1;").await,
        vec![json!([9000000000i64, -9223372036854775807i64])]
    );

    let (status, body) = server.ksql("INSERT INTO NUMS (K, V) VALUES ('x', 1.0);").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], 40001);
    assert!(body["message"].as_str().unwrap().contains("Expected type INTEGER for field K but got STRING(x)"), "{body}");
    let (status, body) = server.ksql("CREATE STREAM FLAGS (F BOOLEAN) WITH (KAFKA_TOPIC='flags', VALUE_FORMAT='KAFKA', PARTITIONS=1);").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("The 'KAFKA' format does not support type 'BOOLEAN'"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_are_bounded_and_malformed_ones_get_ksqldb_errors() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start_with_env(&broker.bootstrap, data.path().to_path_buf(), &[("SLUICE_MAX_PUSH_QUERIES", "2")]).await;
    let post = |path: &str, body: Vec<u8>| {
        server
            .client()
            .post(format!("{}{path}", server.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let big = format!("{{\"ksql\": \"SHOW STREAMS; -- {}\"}}", "x".repeat(10 << 20)).into_bytes();
    for path in ["/ksql", "/query-stream", "/connectors"] {
        let response = post(path, big.clone()).await.unwrap();
        assert_eq!(response.status().as_u16(), 413, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().contains("larger than the server's limit"), "{path}: {body}");
    }
    let big: Value = post("/ksql", b"{\"ksql\": \"SHOW".to_vec()).await.unwrap().json().await.unwrap();
    assert_eq!(big["error_code"], 40000, "invalid JSON: {big}");
    for (path, body) in [("/ksql", r#"{"ksql": 5}"#), ("/ksql", r#"{}"#), ("/query-stream", r#"{"sql": ["SELECT"]}"#), ("/close-query", r#"[]"#)] {
        let response = post(path, body.as_bytes().to_vec()).await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{path} {body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error_code"], 40000, "{path} {body}: {answer}");
    }
    let response = post("/connectors", br#"{"name": 3}"#.to_vec()).await.unwrap();
    assert_eq!(response.status().as_u16(), 400);

    // Push queries beyond ksql.max.push.queries are refused with ksqlDB's error; the server
    // keeps serving, and a slot frees when a query's client goes away.
    server.ksql_ok("CREATE STREAM S (A STRING) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    let open = || post("/query-stream", br#"{"sql": "SELECT * FROM S EMIT CHANGES;"}"#.to_vec());
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open().await.unwrap();
    assert_eq!(third.status().as_u16(), 400);
    let refused: Value = third.json().await.unwrap();
    assert_eq!(refused, json!({"@type": "generic_error", "error_code": 40003, "message": "Maximum number of push queries exceeded"}));
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let again = open().await.unwrap();
        if again.status().as_u16() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the closed query's slot was never freed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    server.ksql_ok("SHOW STREAMS;").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn variables_from_the_request_and_define_are_substituted_and_shown() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let ksql = |sql: &str| {
        server
            .client()
            .post(format!("{}/ksql", server.url))
            .json(&json!({"ksql": sql, "sessionVariables": {"format": "JSON"}}))
            .send()
    };
    let answer: Value = ksql(
        "DEFINE topic = 'grid_readings'; CREATE STREAM READINGS (V STRING) WITH (KAFKA_TOPIC='${topic}', VALUE_FORMAT='${FORMAT}', PARTITIONS=1); SHOW VARIABLES; UNDEFINE TOPIC; SHOW VARIABLES; UNDEFINE nothing;",
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(answer[0]["commandStatus"]["status"], "SUCCESS", "{answer}");
    assert_eq!(answer[0]["statementText"], "CREATE STREAM READINGS (V STRING) WITH (KAFKA_TOPIC='grid_readings', VALUE_FORMAT='JSON', PARTITIONS=1);");
    assert_eq!(answer[1]["@type"], "variables");
    assert_eq!(answer[1]["variables"], json!([{"name": "format", "value": "JSON"}, {"name": "topic", "value": "grid_readings"}]));
    assert_eq!(answer[2]["variables"], json!([{"name": "format", "value": "JSON"}]));
    assert_eq!(answer[3]["@type"], "warning_entity");
    assert_eq!(answer[3]["message"], "Cannot undefine variable 'nothing' which was never defined");
    let described = server.ksql_ok("DESCRIBE READINGS EXTENDED;").await;
    assert_eq!(described[0]["sourceDescription"]["topic"], "grid_readings");
    assert_eq!(described[0]["sourceDescription"]["extended"], true);

    // A syntax error in a later statement stops the request before anything runs, and points
    // into the request's text.
    let (status, body) = server.ksql("CREATE STREAM NEVER (V STRING) WITH (KAFKA_TOPIC='never', VALUE_FORMAT='JSON', PARTITIONS=1);\nSHOW STREAMZ;").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().starts_with("line 2:6: Syntax Error"), "{body}");
    let streams = server.ksql_ok("SHOW STREAMS;").await;
    assert_eq!(streams[0]["streams"].as_array().unwrap().len(), 1, "{streams}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inserts_stream_acknowledges_each_row_and_stops_at_the_first_bad_one() {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    server.ksql_ok("CREATE STREAM METER (ID BIGINT KEY, WATTS DOUBLE, RAW BYTES) WITH (KAFKA_TOPIC='meter', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    let post = |body: &str, accept: &str| {
        server
            .client()
            .post(format!("{}/inserts-stream", server.url))
            .header("accept", accept)
            .body(body.to_string())
            .send()
    };
    let body = "{\"target\": \"meter\"}\n{\"ID\": 1, \"WATTS\": 2.5, \"RAW\": \"AAE=\"}\n{\"id\": 2, \"watts\": 3}\n{\"ID\": 3, \"WATTS\": \"high\"}\n{\"ID\": 4}\n";
    let answer = post(body, "application/vnd.ksqlapi.delimited.v1").await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let lines: Vec<Value> = answer.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[..2], [json!({"status": "ok", "seq": 0}), json!({"status": "ok", "seq": 1})]);
    assert_eq!(lines.len(), 3, "the bad row ends the stream: {lines:?}");
    assert_eq!(lines[2]["status"], "error");
    assert_eq!(lines[2]["seq"], 2);
    assert!(lines[2]["message"].as_str().unwrap().contains("Expected type DOUBLE for field WATTS but got STRING(high)"), "{lines:?}");
    let written = read_topic(&broker.bootstrap, "meter", 2, Duration::from_secs(30));
    let lossy = |n: i64| String::from_utf8_lossy(&n.to_be_bytes()).into_owned();
    assert_eq!(
        written,
        vec![
            (Some(lossy(1)), r#"{"WATTS":2.5,"RAW":"AAE="}"#.to_string()),
            (Some(lossy(2)), r#"{"WATTS":3.0,"RAW":null}"#.to_string()),
        ]
    );

    let answer: Value = post("{\"target\": \"METER\"}\n{\"ID\": 5}\n", "application/json").await.unwrap().json().await.unwrap();
    assert_eq!(answer, json!([{"status": "ok", "seq": 0}]));
    let unknown = post("{\"target\": \"NOPE\"}\n", "application/json").await.unwrap();
    assert_eq!(unknown.status().as_u16(), 400);
    let refused: Value = unknown.json().await.unwrap();
    assert_eq!(refused["error_code"], 40000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explain_shows_a_querys_operators_topics_and_state_and_plans_a_statement_without_running_it_and_functions_are_listed() {
    let (_broker, _data, server) = common::server_over_ingestion().await;
    server
        .ksql_ok("CREATE STREAM SENSOR_ID_3 AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '3';")
        .await;
    let id = server.ksql_ok("SHOW QUERIES;").await[0]["queries"][0]["id"].as_str().unwrap().to_string();

    let explained = server.ksql_ok(&format!("EXPLAIN {id};")).await;
    assert_eq!(explained[0]["@type"], "queryDescription", "{explained}");
    let description = &explained[0]["queryDescription"];
    assert_eq!(description["id"], id.as_str());
    assert_eq!(description["state"], "RUNNING");
    assert_eq!(description["sources"], json!(["STREAM_INGESTION"]));
    assert_eq!(description["sinks"], json!(["SENSOR_ID_3"]));
    assert_eq!(description["queryType"], "PERSISTENT");
    let plan = description["executionPlan"].as_str().unwrap();
    let steps: Vec<&str> = plan.lines().map(|l| l.trim_start().split(" |").next().unwrap()).collect();
    assert_eq!(steps, ["> [ SINK ]", "> [ PROJECT ]", "> [ FILTER ]", "> [ SOURCE ]"], "{plan}");
    assert!(plan.contains("Topic: INGESTION"), "{plan}");
    let topology = description["topology"].as_str().unwrap();
    assert!(topology.contains("_offsets") && topology.contains("_processing_log") && topology.contains("exactly once"), "{topology}");

    let explained = server
        .ksql_ok("EXPLAIN CREATE TABLE WATTS AS SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR, COUNT(*) AS N FROM STREAM_INGESTION GROUP BY EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id');")
        .await;
    let description = &explained[0]["queryDescription"];
    assert_eq!(description["sinks"], json!(["WATTS"]), "{explained}");
    assert_eq!(description["fields"][0]["type"], "KEY", "{explained}");
    let plan = description["executionPlan"].as_str().unwrap();
    assert!(plan.contains("[ AGGREGATE ] | Group by: extractjsonfield(PAYLOAD, $.sensor_id) | Aggregates: COUNT(1)"), "{plan}");
    let streams = server.ksql_ok("SHOW TABLES;").await;
    assert_eq!(streams[0]["tables"], json!([]), "EXPLAIN runs nothing: {streams}");

    let explained = server.ksql_ok("EXPLAIN SELECT PAYLOAD FROM STREAM_INGESTION EMIT CHANGES;").await;
    assert_eq!(explained[0]["queryDescription"]["queryType"], "PUSH", "{explained}");

    let functions = server.ksql_ok("SHOW FUNCTIONS;").await;
    let listed = functions[0]["functions"].as_array().unwrap();
    assert!(listed.contains(&json!({"name": "EXTRACTJSONFIELD", "type": "SCALAR", "category": "JSON"})), "{functions}");
    assert!(listed.contains(&json!({"name": "COUNT", "type": "AGGREGATE", "category": "AGGREGATE"})), "{functions}");
    let described = server.ksql_ok("DESCRIBE FUNCTION extractjsonfield;").await;
    assert_eq!(described[0]["@type"], "describe_function", "{described}");
    assert_eq!(described[0]["name"], "EXTRACTJSONFIELD");
    assert_eq!(described[0]["functions"][0]["argumentTypes"], json!(["STRING", "STRING"]), "{described}");
    assert_eq!(described[0]["functions"][0]["arguments"][1]["name"], "path", "{described}");
    assert!(listed.contains(&json!({"name": "EXPLODE", "type": "TABLE", "category": "TABLE"})), "{functions}");
    let described = server.ksql_ok("DESCRIBE FUNCTION CUBE_EXPLODE;").await;
    assert_eq!((&described[0]["type"], &described[0]["functions"][0]["returnType"]), (&json!("TABLE"), &json!("ARRAY<T>")), "{described}");
    let (status, body) = server.ksql("DESCRIBE FUNCTION NO_SUCH_THING;").await;
    assert_eq!((status, body["message"].as_str()), (400, Some("Can't find any functions with the name 'NO_SUCH_THING'")), "{body}");

    let (status, body) = server.ksql("EXPLAIN CSAS_NOTHING_1;").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Query with id:CSAS_NOTHING_1 does not exist, use SHOW QUERIES to view the full set of queries.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn custom_types_name_column_types_and_casts_and_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut server = SluiceServer::start_embedded(data.path().to_path_buf()).await;
    let created = server
        .ksql_ok(
            "CREATE TYPE ADDRESS AS STRUCT<NUMBER INTEGER, CITY STRING>;\n\
             CREATE STREAM PEOPLE (ID STRING KEY, HOME ADDRESS, PAST ARRAY<ADDRESS>) WITH (KAFKA_TOPIC='people', VALUE_FORMAT='JSON', PARTITIONS=1);",
        )
        .await;
    assert_eq!(created[0]["commandStatus"]["message"], "Registered custom type with name 'ADDRESS' and SQL type STRUCT<`NUMBER` INTEGER, `CITY` STRING>");
    assert_eq!(created[0]["commandId"], "type/ADDRESS/create");
    let (status, body) = server.ksql("CREATE TYPE ADDRESS AS INTEGER;").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["message"], "Cannot register custom type 'ADDRESS' since it is already registered with type: STRUCT<`NUMBER` INTEGER, `CITY` STRING>");
    let (_, body) = server.ksql("CREATE STREAM NOPE (V POSTCODE) WITH (KAFKA_TOPIC='nope', VALUE_FORMAT='JSON', PARTITIONS=1);").await;
    assert_eq!(body["message"], "Cannot resolve unknown type: POSTCODE");

    let types = server.ksql_ok("SHOW TYPES;").await;
    assert_eq!(types[0]["@type"], "type_list");
    assert_eq!(types[0]["types"]["ADDRESS"]["type"], "STRUCT");
    assert_eq!(types[0]["types"]["ADDRESS"]["fields"][0], json!({"name": "NUMBER", "schema": {"type": "INTEGER", "fields": null, "memberSchema": null}}));
    let described = server.ksql_ok("DESCRIBE PEOPLE;").await;
    let fields = &described[0]["sourceDescription"]["fields"];
    assert_eq!(fields[1]["schema"]["fields"][1]["name"], "CITY");
    assert_eq!(fields[2]["schema"]["memberSchema"]["type"], "STRUCT");

    // A CAST to a struct matches fields by name; one the value lacks is NULL.
    server
        .ksql_ok(
            "SET 'auto.offset.reset' = 'earliest';\n\
             CREATE STREAM PLACES AS SELECT ID, CAST(HOME AS STRUCT<CITY STRING, ZIP STRING>) AS PLACE, CAST(PAST AS ARRAY<STRUCT<NUMBER BIGINT>>) AS NUMBERS FROM PEOPLE;",
        )
        .await;
    server.ksql_ok("INSERT INTO PEOPLE (ID, HOME, PAST) VALUES ('ann', STRUCT(NUMBER := 7, CITY := 'Lyon'), ARRAY[STRUCT(NUMBER := 3, CITY := 'Nice')]);").await;
    let places = read_topic(&server.bootstrap, "PLACES", 1, Duration::from_secs(60));
    assert_eq!(places[0].1, r#"{"PLACE":{"CITY":"Lyon","ZIP":null},"NUMBERS":[{"NUMBER":3}]}"#);

    // The catalog's types come back from the command log; a dropped one is gone, and the
    // stream made with it keeps its columns.
    server.ksql_ok("DROP TYPE ADDRESS;").await;
    assert!(server.terminate(), "sluice-server exits cleanly on SIGTERM");
    server.start_again().await;
    let types = server.ksql_ok("SHOW TYPES;").await;
    assert_eq!(types[0]["types"], json!({}));
    let described = server.ksql_ok("DESCRIBE PEOPLE;").await;
    assert_eq!(described[0]["sourceDescription"]["fields"][1]["schema"]["type"], "STRUCT");
    let (_, body) = server.ksql("DROP TYPE ADDRESS;").await;
    assert_eq!(body["message"], "Type ADDRESS does not exist.");
    let dropped = server.ksql_ok("DROP TYPE IF EXISTS ADDRESS;").await;
    assert_eq!(dropped[0]["commandStatus"]["message"], "Type 'ADDRESS' does not exist");
}
