//! Runs ksqlDB's own test cases, ported into `tests/ksqldb/*.json` in ksqlDB's format, against a
//! real broker and the real `sluice-server`: each case on a broker and server of its own.
//!
//! A case is one of ksqlDB's query-validation tests (`statements`, `inputs`, `outputs` or
//! `expectedException`) or REST query-validation tests (`statements`, `inputs`, `responses` or
//! `expectedError`). Inputs are produced once the statements that are not queries have run;
//! each output topic must then hold exactly the records listed, in order (key, value, and the
//! timestamp when one is given, and the window of a windowed key); a query's response must hold the header's schema and the rows
//! listed, in any order unless the case's `outputConditions` ask for its order (as ksqlDB's
//! REST harness compares them). Keys and values are encoded and decoded with the formats and types of the
//! stream or table over the topic, as ksqlDB's harness does.

mod common;

use std::{collections::BTreeMap, path::Path, time::Duration};

use base64::Engine as _;
use common::{SluiceServer, TestBroker};
use futures::StreamExt;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use serde_json::{Value, json};

/// Cases run at once: each waits on Kafka far more than it computes.
const CONCURRENT_CASES: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ksqldb_query_validation_cases_pass() {
    // `KSQLDB_DIR=path` runs the case files of another folder, ksqlDB's own checkout's included.
    let dir = std::env::var_os("KSQLDB_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ksqldb"));
    let mut cases = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for path in files {
        let file: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        for case in file["tests"].as_array().unwrap() {
            let case_name = format!("{name} / {}", case["name"].as_str().unwrap());
            match case["format"].as_array() {
                // ksqlDB runs such a case once per format, `{FORMAT}` in its statements replaced.
                Some(formats) => {
                    for format in formats.iter().filter_map(Value::as_str).filter(|f| FORMATS.contains(f)) {
                        cases.push((format!("{case_name} - {format}"), with_format(case, format)));
                    }
                }
                None => cases.push((case_name, case.clone())),
            }
        }
    }
    assert!(cases.len() >= 10, "only {} cases found under {}", cases.len(), dir.display());
    // `KSQLDB_CASES=window` runs only the cases whose file or name holds the text.
    if let Ok(only) = std::env::var("KSQLDB_CASES") {
        cases.retain(|(name, _)| name.contains(&only));
    }
    let total = cases.len();
    let results: Vec<(String, Result<(), String>)> = futures::stream::iter(cases)
        .map(|(name, case)| async move {
            let outcome = tokio::time::timeout(Duration::from_secs(120), run_case(&case))
                .await
                .unwrap_or_else(|_| Err("did not finish within 120 s".into()));
            (name, outcome)
        })
        .buffer_unordered(CONCURRENT_CASES)
        .collect()
        .await;
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    eprintln!("ksqlDB cases: {} of {total} pass", total - failures.len());
    assert!(failures.is_empty(), "{} of {total} ksqlDB cases failed:\n{}", failures.len(), failures.join("\n\n"));
}

/// The formats of a case's `format` list that Sluice reads and writes.
const FORMATS: [&str; 3] = ["JSON", "DELIMITED", "KAFKA"];

/// `case` with `{FORMAT}` in its statements replaced by `format`.
fn with_format(case: &Value, format: &str) -> Value {
    let mut case = case.clone();
    for statement in case["statements"].as_array_mut().unwrap() {
        *statement = Value::String(statement.as_str().unwrap().replace("{FORMAT}", format));
    }
    case
}

/// The key and value layout of a topic, from the stream or table over it.
#[derive(Debug, Clone)]
struct TopicSchema {
    key_type: Option<String>,
    key_format: String,
    /// A windowed table's window type: TUMBLING, HOPPING or SESSION.
    window_type: Option<String>,
    value_format: String,
    value_types: Vec<String>,
}

async fn run_case(case: &Value) -> Result<(), String> {
    let broker = TestBroker::start().await;
    let data = tempfile::tempdir().unwrap();
    let server = SluiceServer::start(&broker.bootstrap, data.path().to_path_buf()).await;
    let inputs = case["inputs"].as_array().cloned().unwrap_or_default();
    let mut topics: Vec<String> = inputs.iter().map(|i| i["topic"].as_str().unwrap().to_string()).collect();
    topics.extend(case["topics"].as_array().into_iter().flatten().map(|t| t["name"].as_str().unwrap().to_string()));
    // Topics the statements declare sources over exist, as ksqlDB's harness makes them; a
    // statement giving PARTITIONS makes its own.
    for statement in case["statements"].as_array().unwrap() {
        let text = statement.as_str().unwrap();
        if text.to_ascii_uppercase().contains("PARTITIONS") {
            continue;
        }
        if let Some(at) = text.to_ascii_lowercase().find("kafka_topic") {
            let rest = &text[at..];
            if let (Some(open), true) = (rest.find('\''), !text.to_ascii_uppercase().contains(" AS SELECT")) {
                let name = &rest[open + 1..];
                topics.push(name[..name.find('\'').unwrap_or(name.len())].to_string());
            }
        }
    }
    topics.sort();
    topics.dedup();
    create_topics(&broker.bootstrap, &topics).await;

    let mut properties: BTreeMap<String, Value> = case["properties"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    // A setting of ksqlDB's harness, not of the server: doubles compared to six places.
    let exact = properties.remove(INEXACT_NUMBERS).is_none_or(|v| v != json!(false));
    let expected_error = case.get("expectedException").or_else(|| case.get("expectedError"));
    let statements: Vec<String> = case["statements"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect();
    let is_query = |s: &str| s.trim_start().to_ascii_uppercase().starts_with("SELECT");
    let mut answers: Vec<Value> = Vec::new();
    for statement in statements.iter().filter(|s| !is_query(s)) {
        let (status, body) = ksql(&server, statement, &properties).await;
        if status != 200 {
            return match expected_error {
                Some(expected) => check_error(expected, &body),
                None => Err(format!("{statement} failed: {body}")),
            };
        }
        answers.extend(body.as_array().cloned().unwrap_or_default());
    }
    let schemas = topic_schemas(&server).await?;
    let shift = timestamp_shift(&inputs, &statements);
    let at_zero = untimed_at_zero(&inputs, &statements);
    match two_source_join_sink(&statements) {
        // A stream-stream or table-table join's result depends on the order its two topics'
        // records are read in, which ksqlDB's harness sets by feeding them one at a time: so
        // does this one.
        // The tables a stream-stream join goes on to join are read apart from its scan, up to
        // their end before each batch: their records are not waited for.
        // A join of more than two such sources runs as queries one after another (the joins
        // before the last as a stage of their own): each record is waited for through all.
        Some((sink, streams_only)) => {
            let tables = table_topics(&statements);
            let staged = persistent_queries(&server).await > 1;
            let mut read = 0;
            for input in &inputs {
                produce_inputs(&broker.bootstrap, std::slice::from_ref(input), &schemas, (shift, at_zero)).await?;
                if staged {
                    wait_until_caught_up(&server).await?;
                    continue;
                }
                if streams_only && tables.iter().any(|t| input["topic"].as_str() == Some(t.as_str())) {
                    continue;
                }
                read += 1;
                wait_until_read(&server, &sink, read).await?;
            }
        }
        None => produce_inputs(&broker.bootstrap, &inputs, &schemas, (shift, at_zero)).await?,
    }
    for statement in statements.iter().filter(|s| is_query(s)) {
        match query(&server, statement, &properties).await {
            Ok(response) => answers.push(json!({"query": response})),
            Err(body) => {
                return match expected_error {
                    Some(expected) => check_error(expected, &body),
                    None => Err(format!("{statement} failed: {body}")),
                };
            }
        }
    }
    if let Some(expected) = expected_error {
        return Err(format!("expected the error {expected}, but every statement succeeded"));
    }
    if let Some(outputs) = case["outputs"].as_array() {
        let rounded;
        let outputs = if exact {
            outputs
        } else {
            rounded = outputs.iter().map(round_doubles).collect::<Vec<_>>();
            &rounded
        };
        // ksqlDB's test driver runs every query in one thread, record by record; Sluice runs each
        // query on its own, so records two queries write to one topic (a query and an
        // `INSERT INTO … SELECT`) may interleave either way.
        let interleaved = statements.iter().any(|s| inserts_a_query(s));
        check_outputs(&broker.bootstrap, outputs, &schemas, shift, exact, interleaved).await?;
    }
    if let Some(responses) = case["responses"].as_array() {
        let ordered = case["outputConditions"]["verifyOrder"].as_bool().unwrap_or(false);
        check_responses(responses, &answers, ordered)?;
    }
    Ok(())
}

async fn ksql(server: &SluiceServer, statement: &str, properties: &BTreeMap<String, Value>) -> (u16, Value) {
    // As ksqlDB's harness runs them: from the start, every aggregate update emitted.
    let mut streams_properties = json!({"auto.offset.reset": "earliest", "ksql.streams.cache.max.bytes.buffering": 0});
    for (k, v) in properties {
        streams_properties[k] = v.clone();
    }
    let response = server
        .client()
        .post(format!("{}/ksql", server.url))
        .json(&json!({"ksql": statement, "streamsProperties": streams_properties}))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// A query's response through `/query` (ksqlDB's StreamedRow array): header, rows, and for a
/// push query everything up to its LIMIT.
async fn query(server: &SluiceServer, statement: &str, properties: &BTreeMap<String, Value>) -> Result<Vec<Value>, Value> {
    // The case's other properties apply; its records are produced before its queries run, so
    // a query reads them from the start, whatever offset reset the case names for a query
    // started before them (a scalable push query's `latest`). Read in one batch, they would
    // update an aggregation once: every update is asked for, as ksqlDB's harness shows them.
    let mut streams_properties = json!({"auto.offset.reset": "earliest", "cache.max.bytes.buffering": 0});
    for (k, v) in properties.iter().filter(|(k, _)| !k.ends_with("auto.offset.reset")) {
        streams_properties[k] = v.clone();
    }
    let response = server
        .client()
        .post(format!("{}/query", server.url))
        .header("Accept", "application/vnd.ksql.v1+json")
        .json(&json!({"ksql": statement, "streamsProperties": streams_properties}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let mut body = String::new();
    let mut stream = response.bytes_stream();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    })
    .await;
    if read.is_err() {
        return Err(json!({"message": format!("no end within 30 s: {body}")}));
    }
    let parsed: Value = serde_json::from_str(&body).unwrap_or(json!({"message": body}));
    if status != 200 {
        return Err(parsed);
    }
    Ok(parsed.as_array().cloned().unwrap_or_default())
}

fn check_error(expected: &Value, body: &Value) -> Result<(), String> {
    let message = expected["message"].as_str().unwrap_or_default();
    let got = body["message"].as_str().unwrap_or_default();
    if got.contains(message) {
        Ok(())
    } else {
        Err(format!("expected an error containing {message:?}, got {body}"))
    }
}

async fn create_topics(bootstrap: &str, topics: &[String]) {
    if topics.is_empty() {
        return;
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    let new: Vec<NewTopic> = topics.iter().map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1))).collect();
    admin.create_topics(&new, &AdminOptions::new()).await.unwrap();
}

/// Every stream's and table's topic with its key type and value layout.
async fn topic_schemas(server: &SluiceServer) -> Result<BTreeMap<String, TopicSchema>, String> {
    let mut schemas = BTreeMap::new();
    for list in ["SHOW STREAMS EXTENDED;", "SHOW TABLES EXTENDED;"] {
        let (_, body) = ksql(server, list, &BTreeMap::new()).await;
        for description in body[0]["sourceDescriptions"].as_array().cloned().unwrap_or_default() {
            let fields = description["fields"].as_array().cloned().unwrap_or_default();
            let key_type = fields
                .iter()
                .find(|f| f["type"] == "KEY")
                .map(|f| f["schema"]["type"].as_str().unwrap_or_default().to_string());
            let value_types = fields
                .iter()
                .filter(|f| f["type"] != "KEY")
                .map(|f| f["schema"]["type"].as_str().unwrap_or_default().to_string())
                .collect();
            schemas.insert(
                description["topic"].as_str().unwrap_or_default().to_string(),
                TopicSchema {
                    key_type,
                    key_format: description["keyFormat"].as_str().unwrap_or_default().to_string(),
                    window_type: description["windowType"].as_str().map(str::to_string),
                    value_format: description["valueFormat"].as_str().unwrap_or_default().to_string(),
                    value_types,
                },
            );
        }
    }
    Ok(schemas)
}

/// A KAFKA-format key or value of `sql_type` from its JSON form.
fn kafka_bytes(value: &Value, sql_type: &str) -> Vec<u8> {
    match sql_type {
        "INTEGER" => (value.as_i64().unwrap() as i32).to_be_bytes().to_vec(),
        "BIGINT" => value.as_i64().unwrap().to_be_bytes().to_vec(),
        "DOUBLE" => value.as_f64().unwrap().to_be_bytes().to_vec(),
        _ => match value {
            Value::String(s) => s.as_bytes().to_vec(),
            other => other.to_string().into_bytes(),
        },
    }
}

/// The JSON form of a KAFKA-format key or value of `sql_type`.
fn kafka_value(bytes: &[u8], sql_type: &str) -> Value {
    match sql_type {
        "INTEGER" if bytes.len() == 4 => json!(i32::from_be_bytes(bytes.try_into().unwrap())),
        "BIGINT" if bytes.len() == 8 => json!(i64::from_be_bytes(bytes.try_into().unwrap())),
        "DOUBLE" if bytes.len() == 8 => json!(f64::from_be_bytes(bytes.try_into().unwrap())),
        _ => json!(String::from_utf8_lossy(bytes)),
    }
}

/// A key in its topic's key format from its JSON form.
fn encode_key(key: &Value, schema: Option<&TopicSchema>) -> Vec<u8> {
    match schema.map(|s| s.key_format.as_str()) {
        Some("JSON") => key.to_string().into_bytes(),
        Some("DELIMITED") => key.as_str().map_or_else(|| key.to_string(), str::to_string).into_bytes(),
        _ => kafka_bytes(key, schema.and_then(|s| s.key_type.as_deref()).unwrap_or("STRING")),
    }
}

/// The JSON form of a key in its topic's key format.
fn decode_key(bytes: &[u8], schema: Option<&TopicSchema>) -> Value {
    let key_type = schema.and_then(|s| s.key_type.as_deref()).unwrap_or("STRING");
    match schema.map(|s| s.key_format.as_str()) {
        Some("JSON") => serde_json::from_slice(bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(bytes))),
        // ksqlDB's cases write a DELIMITED key as its text.
        Some("DELIMITED") => json!(String::from_utf8_lossy(bytes)),
        _ => kafka_value(bytes, key_type),
    }
}

fn encode_value(value: &Value, schema: Option<&TopicSchema>) -> Option<Vec<u8>> {
    if value.is_null() {
        return None;
    }
    Some(match schema.map(|s| s.value_format.as_str()) {
        Some("KAFKA") => kafka_bytes(value, schema.and_then(|s| s.value_types.first()).map_or("STRING", |t| t.as_str())),
        Some("DELIMITED") => value.as_str().map_or_else(|| value.to_string(), str::to_string).into_bytes(),
        _ => value.to_string().into_bytes(),
    })
}

fn decode_value(bytes: Option<&[u8]>, schema: Option<&TopicSchema>) -> Value {
    let Some(bytes) = bytes else { return Value::Null };
    match schema.map(|s| s.value_format.as_str()) {
        Some("KAFKA") => kafka_value(bytes, schema.and_then(|s| s.value_types.first()).map_or("STRING", |t| t.as_str())),
        Some("DELIMITED") => json!(String::from_utf8_lossy(bytes)),
        _ => serde_json::from_slice(bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(bytes))),
    }
}

/// The stream or table a case's stream-stream join (`JOIN … WITHIN`) or table-table join (a
/// `CREATE TABLE … AS SELECT` with a join and no `GROUP BY`) writes, if it has one, and whether
/// it is a stream-stream join (whose scan reads only the streams).
fn two_source_join_sink(statements: &[String]) -> Option<(String, bool)> {
    statements.iter().find_map(|statement| {
        let upper = statement.to_ascii_uppercase();
        let tables = upper.trim_start().starts_with("CREATE TABLE") && upper.contains(" JOIN ") && !upper.contains("GROUP BY");
        if !(upper.contains(" WITHIN ") || tables) || !upper.contains(" AS SELECT") {
            return None;
        }
        let words: Vec<&str> = upper.split_whitespace().collect();
        let at = words.iter().position(|w| *w == "STREAM" || *w == "TABLE")?;
        Some((words.get(at + 1)?.trim_matches('`').to_string(), !tables))
    })
}

/// The topics of the tables a case declares (not those it creates with `AS SELECT`).
fn table_topics(statements: &[String]) -> Vec<String> {
    statements
        .iter()
        .filter(|s| {
            let upper = s.to_ascii_uppercase();
            upper.trim_start().starts_with("CREATE TABLE") && !upper.contains(" AS SELECT")
        })
        .filter_map(|s| {
            let at = s.to_ascii_lowercase().find("kafka_topic")?;
            let rest = &s[at..];
            let open = rest.find('\'')? + 1;
            let close = rest[open..].find('\'')? + open;
            Some(rest[open..close].to_string())
        })
        .collect()
}

/// Waits until the query writing `sink` has read `count` records.
async fn wait_until_read(server: &SluiceServer, sink: &str, count: usize) -> Result<(), String> {
    let wanted = format!("records-in: {count},");
    for _ in 0..300 {
        let (_, body) = ksql(server, &format!("DESCRIBE {sink} EXTENDED;"), &BTreeMap::new()).await;
        let statistics = body[0]["sourceDescription"]["statistics"].as_str().unwrap_or_default();
        if statistics.contains(&wanted) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("the query writing {sink} did not read its record {count} in time"))
}

/// How many persistent queries the server runs.
async fn persistent_queries(server: &SluiceServer) -> usize {
    let (_, body) = ksql(server, "SHOW QUERIES;", &BTreeMap::new()).await;
    body[0]["queries"].as_array().map_or(0, Vec::len)
}

/// Waits until every persistent query has read its sources to their ends, as `/clusterStatus`
/// shows them (a query's position moves once its output is in Kafka).
async fn wait_until_caught_up(server: &SluiceServer) -> Result<(), String> {
    let mut status = Value::Null;
    for _ in 0..300 {
        status = server.client().get(format!("{}/clusterStatus", server.url)).send().await.unwrap().json().await.unwrap();
        let lags: Vec<&Value> = status["clusterStatus"]
            .as_object()
            .into_iter()
            .flat_map(|hosts| hosts.values())
            .filter_map(|host| host["hostStoreLags"]["stateStoreLags"].as_object())
            .flat_map(|by_topic| by_topic.values())
            .filter_map(|topic| topic["lagByPartition"].as_object())
            .flat_map(|by_partition| by_partition.values())
            .collect();
        if !lags.is_empty() && lags.iter().all(|lag| lag["offsetLag"].as_i64() == Some(0)) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("the queries did not read every record in time: {status}"))
}

/// How far a case's records are moved in time. librdkafka stamps a record produced at timestamp
/// 0 with the current time (`rdkafka_msg.c`), and so would any Kafka client built on it, Sluice
/// included; a case with a record at 0 is therefore run one day later, which moves no window
/// boundary (every window size in the cases divides a day), and compared one day earlier.
fn timestamp_shift(inputs: &[Value], statements: &[String]) -> i64 {
    const DAY_MS: i64 = 86_400_000;
    let zero = inputs.iter().any(|i| i["timestamp"].as_i64() == Some(0));
    if zero || untimed_at_zero(inputs, statements) { DAY_MS } else { 0 }
}

/// Whether the inputs (some, none with a timestamp) are produced at 0 as ksqlDB's harness
/// produces them: unless a source reads its timestamps from a column (`TIMESTAMP=…`) or its windows from
/// the keys, which the queries compare with times the harness cannot move a day later; those
/// inputs are produced at the current time.
fn untimed_at_zero(inputs: &[Value], statements: &[String]) -> bool {
    let reads_column = statements.iter().any(|s| s.to_ascii_uppercase().replace(' ', "").contains("TIMESTAMP="));
    !reads_column && !inputs.is_empty() && inputs.iter().all(|i| i["timestamp"].is_null() && i["window"].is_null())
}

/// Produces `inputs`, each `shift` later than its timestamp; one without, at `shift` when
/// `at_zero`, else at the current time.
async fn produce_inputs(
    bootstrap: &str,
    inputs: &[Value],
    schemas: &BTreeMap<String, TopicSchema>,
    (shift, at_zero): (i64, bool),
) -> Result<(), String> {
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    for input in inputs {
        let topic = input["topic"].as_str().unwrap();
        let schema = schemas.get(topic);
        let key = match &input["key"] {
            Value::Null => None,
            key => {
                let mut bytes = encode_key(key, schema);
                append_window(&mut bytes, &input["window"], shift);
                Some(bytes)
            }
        };
        let value = encode_value(&input["value"], schema);
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if let Some(key) = &key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &value {
            record = record.payload(value.as_slice());
        }
        match input["timestamp"].as_i64() {
            Some(timestamp) => record = record.timestamp(timestamp + shift),
            None if at_zero => record = record.timestamp(shift),
            None => {}
        }
        if let Some(headers) = input["headers"].as_array() {
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for header in headers {
                let value = header["VALUE"].as_str().map(|v| base64::engine::general_purpose::STANDARD.decode(v).unwrap());
                owned = owned.insert(Header { key: header["KEY"].as_str().unwrap(), value: value.as_deref() });
            }
            record = record.headers(owned);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| format!("producing into {topic}: {e}"))?;
    }
    Ok(())
}

/// Each output topic holds exactly the records expected of it, in order.
/// The property with which a case asks for doubles compared to six decimal places.
const INEXACT_NUMBERS: &str = "use.exact.numeric.comparison";

/// `value` with every fractional number rounded to six decimal places.
fn round_doubles(value: &Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => json!((n.as_f64().unwrap() * 1e6).round() / 1e6),
        Value::Array(items) => Value::Array(items.iter().map(round_doubles).collect()),
        Value::Object(fields) => Value::Object(fields.iter().map(|(k, v)| (k.clone(), round_doubles(v))).collect()),
        other => other.clone(),
    }
}

/// Checks each topic's records against the expected ones: in order, or in any order when
/// `interleaved`.
async fn check_outputs(
    bootstrap: &str,
    outputs: &[Value],
    schemas: &BTreeMap<String, TopicSchema>,
    shift: i64,
    exact: bool,
    interleaved: bool,
) -> Result<(), String> {
    let mut by_topic: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for output in outputs {
        by_topic.entry(output["topic"].as_str().unwrap()).or_default().push(output);
    }
    for (topic, expected) in by_topic {
        let schema = schemas.get(topic);
        let bootstrap = bootstrap.to_string();
        let name = topic.to_string();
        let count = expected.len();
        let records = tokio::task::spawn_blocking(move || read_records(&bootstrap, &name, count)).await.unwrap();
        let window_type = schema.and_then(|s| s.window_type.as_deref());
        let got: Vec<Value> = records
            .iter()
            .zip(expected.iter().map(|e| &e["window"]).chain(std::iter::repeat(&Value::Null)))
            .map(|((key, value, timestamp, headers), expected_window)| {
                let (key, window) = match key {
                    None => (Value::Null, Value::Null),
                    Some(k) => {
                        let (own, window) = split_window(k, window_type, expected_window, shift);
                        (decode_key(own, schema), window)
                    }
                };
                let value = decode_value(value.as_deref(), schema);
                let value = if exact { value } else { round_doubles(&value) };
                json!({"key": key, "value": value, "timestamp": timestamp - shift, "window": window, "headers": headers})
            })
            .collect();
        let record_matches = |g: &Value, e: &Value| {
            same(&g["key"], &e["key"])
                && same_columns(&g["value"], &e["value"])
                && e.get("timestamp").is_none_or(|t| same(&g["timestamp"], t))
                && e.get("window").is_none_or(|w| same(&g["window"], w))
                && e.get("headers").is_none_or(|h| same(&g["headers"], h))
        };
        let matches = got.len() == expected.len()
            && if interleaved {
                let mut unmatched: Vec<&Value> = got.iter().collect();
                expected.iter().all(|e| match unmatched.iter().position(|g| record_matches(g, e)) {
                    Some(i) => {
                        unmatched.remove(i);
                        true
                    }
                    None => false,
                })
            } else {
                got.iter().zip(&expected).all(|(g, e)| record_matches(g, e))
            };
        if !matches {
            let wanted: Vec<&Value> = expected.iter().map(|e| *e).collect();
            return Err(format!("topic {topic}: expected {}\ngot {}", json!(wanted), json!(got)));
        }
    }
    Ok(())
}

/// Whether a statement starts a query writing into an existing stream (`INSERT INTO … SELECT`).
fn inserts_a_query(statement: &str) -> bool {
    let words: Vec<String> = statement.split_whitespace().take(4).map(str::to_ascii_uppercase).collect();
    words.len() == 4 && words[0] == "INSERT" && words[1] == "INTO" && words[3] == "SELECT"
}

/// Appends an input's window to its key, as Kafka Streams' windowed serializers write it.
fn append_window(key: &mut Vec<u8>, window: &Value, shift: i64) {
    let (Some(start), Some(kind)) = (window["start"].as_i64(), window["type"].as_str()) else { return };
    if kind.eq_ignore_ascii_case("session") {
        key.extend_from_slice(&(window["end"].as_i64().unwrap_or(start) + shift).to_be_bytes());
    }
    key.extend_from_slice(&(start + shift).to_be_bytes());
}

/// A windowed key's own bytes and its window, as ksqlDB's harness shows it. A time window's key
/// holds its start only: its end is the start plus the window's size, taken from the expected
/// record's window (every window of a topic has one size).
fn split_window<'a>(key: &'a [u8], window_type: Option<&str>, expected: &Value, shift: i64) -> (&'a [u8], Value) {
    let read = |bytes: &[u8]| i64::from_be_bytes(bytes.try_into().unwrap()) - shift;
    match window_type {
        Some("SESSION") if key.len() >= 16 => {
            let (own, bounds) = key.split_at(key.len() - 16);
            (own, json!({"start": read(&bounds[8..]), "end": read(&bounds[..8]), "type": "session"}))
        }
        Some(_) if key.len() >= 8 => {
            let (own, bounds) = key.split_at(key.len() - 8);
            let start = read(bounds);
            let size = expected["end"].as_i64().zip(expected["start"].as_i64()).map_or(0, |(e, s)| e - s);
            (own, json!({"start": start, "end": start + size, "type": "time"}))
        }
        _ => (key, Value::Null),
    }
}

/// The records of `topic` once `expected` arrived (or 20 s passed), and any that follow within
/// a second and a half: key, value and timestamp.
/// A topic's records: key, value, timestamp, and headers as ksqlDB's cases write them (Sluice's
/// own origin header left out).
fn read_records(bootstrap: &str, topic: &str, expected: usize) -> Vec<(Option<Vec<u8>>, Option<Vec<u8>>, i64, Value)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "ksqldb-cases")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let partitions = loop {
        let count = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
            .unwrap_or(0);
        if count > 0 || std::time::Instant::now() > deadline {
            break count;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        assignment.add_partition_offset(topic, p, Offset::Beginning).unwrap();
    }
    if partitions > 0 {
        consumer.assign(&assignment).unwrap();
    }
    let mut records = Vec::new();
    let mut settle: Option<std::time::Instant> = None;
    loop {
        let now = std::time::Instant::now();
        if records.len() >= expected && settle.is_none() {
            settle = Some(now + Duration::from_millis(1500));
        }
        if settle.is_some_and(|s| now > s) || (settle.is_none() && now > deadline) || partitions == 0 {
            break;
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let headers: Vec<Value> = m
                .headers()
                .into_iter()
                .flat_map(|h| h.iter())
                .filter(|h| h.key != "sluice.origin")
                .map(|h| json!({"KEY": h.key, "VALUE": h.value.map(|v| base64::engine::general_purpose::STANDARD.encode(v))}))
                .collect();
            records.push((m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec), m.timestamp().to_millis().unwrap_or(0), Value::Array(headers)));
        }
    }
    records
}

/// Each response of the statements matches: an admin entity its `@type`, a query its header's
/// schema and its rows (in order when `ordered`).
fn check_responses(expected: &[Value], answers: &[Value], ordered: bool) -> Result<(), String> {
    if expected.len() != answers.len() {
        return Err(format!("expected {} responses, got {}: {}", expected.len(), answers.len(), json!(answers)));
    }
    for (wanted, got) in expected.iter().zip(answers) {
        if let Some(admin) = wanted.get("admin") {
            if got["@type"] != admin["@type"] {
                return Err(format!("expected {wanted}, got {got}"));
            }
            continue;
        }
        let Some(rows) = wanted["query"].as_array() else { continue };
        let got_rows = got["query"].as_array().cloned().unwrap_or_default();
        let expected_rows: Vec<&Value> = rows.iter().filter(|r| r.get("row").is_some()).collect();
        let actual_rows: Vec<&Value> = got_rows.iter().filter(|r| r.get("row").is_some()).collect();
        let schema_ok = rows
            .iter()
            .find_map(|r| r["header"]["schema"].as_str())
            .is_none_or(|schema| got_rows.first().and_then(|h| h["header"]["schema"].as_str()) == Some(schema));
        let row_matches = |e: &Value, a: &Value| {
            same(&e["row"]["columns"], &a["row"]["columns"])
                && e["row"]["tombstone"].as_bool().unwrap_or(false) == a["row"]["tombstone"].as_bool().unwrap_or(false)
        };
        let rows_ok = expected_rows.len() == actual_rows.len()
            && if ordered {
                expected_rows.iter().zip(&actual_rows).all(|(e, a)| row_matches(e, a))
            } else {
                let mut unmatched = actual_rows.clone();
                expected_rows.iter().all(|e| match unmatched.iter().position(|a| row_matches(e, a)) {
                    Some(i) => {
                        unmatched.remove(i);
                        true
                    }
                    None => false,
                })
            };
        if !schema_ok || !rows_ok {
            return Err(format!("expected {}\ngot {}", json!(rows), json!(got_rows)));
        }
    }
    Ok(())
}

/// A record's value: its columns are matched by name whatever their case, as ksqlDB's JSON
/// format reads a value's fields (`json_v` is the column `JSON_V`), and a column one side lacks
/// is NULL, as ksqlDB reads an expected value through the output's schema; within them, [`same`].
fn same_columns(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let upper = |o: &serde_json::Map<String, Value>| -> BTreeMap<String, Value> {
                o.iter().map(|(k, v)| (k.to_uppercase(), v.clone())).collect()
            };
            let (x, y) = (upper(x), upper(y));
            x.keys().chain(y.keys()).all(|k| same(x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null)))
        }
        _ => same(a, b),
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`); an expected string matches
/// the number it spells, as ksqlDB's cases write DECIMALs as strings (`"3.40"`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::Number(y)) | (Value::Number(y), Value::String(x)) => x.parse::<f64>().ok() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}
