//! Micro-benchmarks of the routing hot path on seed-shaped records (the PowerGrid record: an
//! escaped-JSON `payload` string and three more fields), one 8192-record batch per iteration:
//! JSON → Arrow decode, `EXTRACTJSONFIELD` over the batch, six-sensor filter-and-route with the
//! shared extraction, and Arrow → JSON encode; and the PowerGrid windowed aggregation (count,
//! average and maximum of `modality` per sensor per minute) from record bytes to updated
//! windows, beside a hand-written serde_json + hash-map loop doing the same; and PowerGrid's
//! readings joined with a 10,000-row node table, from record bytes to joined JSON records,
//! beside a hand-written serde_json + hash-map lookup. Throughput is reported in records per
//! second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::{
    catalog::{Catalog, Format, SourceDef},
    format::{ColumnWriter, RawRecord, RecordDecoder, encode_row},
    parser::{KsqlParser, Statement},
    planner::{ContinuousPlan, QueryPlanner},
    runtime::{
        aggregate::Aggregator,
        join::TableJoiner,
        operator,
        shared::SharedExprs,
        table_versions::{TableVersions, Version},
    },
};

const BATCH: usize = 8192;
const CREATE_INGESTION: &str = "CREATE STREAM STREAM_INGESTION (payload STRING, correlation_id STRING, created_at DOUBLE, schema_version INTEGER) WITH (KAFKA_TOPIC = 'INGESTION', VALUE_FORMAT = 'JSON');";

/// Records as the seed's producer writes them, sensors 1–6 in turn.
fn seed_values() -> Vec<String> {
    (0..BATCH)
        .map(|n| {
            let sensor = n % 6 + 1;
            let payload = format!(
                "{{\"sensor_id\": {sensor}, \"modality\": {}, \"unit\": \"MW\", \"temporal_aspect\": \"real_time\"}}",
                400 + n % 97
            );
            serde_json::json!({
                "payload": payload,
                "correlation_id": format!("{sensor:02}-{n:06}"),
                "created_at": 1694902173.12 + n as f64,
                "schema_version": 1
            })
            .to_string()
        })
        .collect()
}

fn ingestion() -> (Catalog, SourceDef) {
    let parsed = KsqlParser::parse_one(CREATE_INGESTION).unwrap();
    let Statement::CreateSource(create) = &parsed.statement else { unreachable!("a CREATE STREAM") };
    let stream =
        SourceDef::from_declaration(&create.name, create.columns.clone(), &create.properties, None, CREATE_INGESTION).unwrap();
    let catalog = Catalog::default();
    catalog.put_stream(stream.clone());
    (catalog, stream)
}

fn plan(catalog: &Catalog, sql: &str) -> ContinuousPlan {
    let Statement::CreateAsSelect(csas) = KsqlParser::parse_one(sql).unwrap().statement else {
        unreachable!("a CSAS")
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(QueryPlanner::plan(catalog, &csas.select)).unwrap()
}

fn records(values: &[String]) -> Vec<RawRecord<'_>> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| RawRecord { partition: 0, offset: i as i64, timestamp: 0, key: None, value: Some(v.as_bytes()) })
        .collect()
}

fn hot_path(c: &mut Criterion) {
    let (catalog, stream) = ingestion();
    let decoder = RecordDecoder::new(&stream).unwrap();
    let values = seed_values();
    let raw = records(&values);
    let decoded = decoder.decode(&raw).unwrap();

    let mut group = c.benchmark_group("routing");
    group.throughput(Throughput::Elements(BATCH as u64));

    group.bench_function("decode_json_to_arrow", |b| b.iter(|| black_box(decoder.decode(black_box(&raw)).unwrap())));

    let extract = plan(
        &catalog,
        "CREATE STREAM S AS SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR FROM STREAM_INGESTION;",
    );
    group.bench_function("extractjsonfield_sensor_id", |b| {
        b.iter(|| black_box(operator::evaluate(&extract, None, black_box(&decoded.batch), None, None, None).unwrap()))
    });

    let routes: Vec<ContinuousPlan> = (1..=6)
        .map(|id| {
            plan(
                &catalog,
                &format!("CREATE STREAM SENSOR_ID_{id} AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '{id}';"),
            )
        })
        .collect();
    let (shared, filters) = SharedExprs::plan(&routes.iter().collect::<Vec<_>>(), decoder.schema().fields().len());
    group.bench_function("route_six_sensors", |b| {
        b.iter(|| {
            let augmented = shared.evaluate(black_box(&decoded.batch)).unwrap();
            for (route, filter) in routes.iter().zip(&filters) {
                black_box(operator::evaluate(route, filter.as_ref(), &augmented.batch, None, None, None).unwrap());
            }
        })
    });

    let names: Vec<String> = decoded.batch.schema().fields().iter().map(|f| f.name().clone()).collect();
    group.bench_function("encode_arrow_to_json", |b| {
        b.iter(|| {
            let writers: Vec<ColumnWriter> = decoded.batch.columns().iter().map(ColumnWriter::new).collect();
            let mut value = Vec::with_capacity(256);
            for row in 0..decoded.batch.num_rows() {
                value.clear();
                encode_row(Format::Json, b',', &names, &writers, row, &mut value).unwrap();
                black_box(&value);
            }
        })
    });
    group.finish();
}

/// A seed record's value and its `payload`, parsed as a hand-written consumer parses them.
fn parse_seed_record(record: &RawRecord<'_>) -> (serde_json::Value, serde_json::Value) {
    let value: serde_json::Value = serde_json::from_slice(record.value.unwrap()).unwrap();
    let payload: serde_json::Value = serde_json::from_str(value["payload"].as_str().unwrap()).unwrap();
    (value, payload)
}

/// The per-minute wattage of `queries/powergrid/V000005__wattage_per_minute.sql`.
const WATTAGE_PER_MINUTE: &str = "CREATE TABLE WATTAGE_PER_MINUTE AS SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') AS SENSOR, COUNT(*) AS READINGS, AVG(CAST(EXTRACTJSONFIELD(PAYLOAD, '$.modality') AS DOUBLE)) AS AVG_WATTAGE, MAX(CAST(EXTRACTJSONFIELD(PAYLOAD, '$.modality') AS DOUBLE)) AS MAX_WATTAGE FROM STREAM_INGESTION WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id');";

/// Count, sum and maximum of one sensor's readings in one window.
#[derive(Default)]
struct Wattage {
    count: u64,
    sum: f64,
    max: f64,
}

fn windowed_aggregation(c: &mut Criterion) {
    let (catalog, stream) = ingestion();
    let decoder = RecordDecoder::new(&stream).unwrap();
    let values = seed_values();
    // Ten readings a second: a batch spans 14 one-minute windows.
    let raw: Vec<RawRecord> = records(&values).into_iter().map(|r| RawRecord { timestamp: r.offset * 100, ..r }).collect();
    let plan = plan(&catalog, WATTAGE_PER_MINUTE);

    let mut group = c.benchmark_group("wattage_per_minute");
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut aggregator = Aggregator::for_plan(&plan).unwrap().unwrap();
    group.bench_function("sluice_decode_and_aggregate", |b| {
        b.iter(|| {
            let decoded = decoder.decode(black_box(&raw)).unwrap();
            black_box(operator::evaluate(&plan, None, &decoded.batch, None, None, Some(&mut aggregator)).unwrap())
        })
    });
    let mut windows: std::collections::HashMap<(String, i64), Wattage> = std::collections::HashMap::new();
    group.bench_function("hand_written_serde_hash_map", |b| {
        b.iter(|| {
            for record in black_box(&raw) {
                let (_, payload) = parse_seed_record(record);
                let sensor = payload["sensor_id"].to_string();
                let watts = payload["modality"].as_f64().unwrap();
                let window = windows.entry((sensor, record.timestamp / 60_000 * 60_000)).or_default();
                window.count += 1;
                window.sum += watts;
                window.max = window.max.max(watts);
            }
            black_box(windows.len())
        })
    });
    group.finish();
}

const NODES: usize = 10_000;
const CREATE_NODES: &str = "CREATE TABLE NODES (SENSOR_ID STRING PRIMARY KEY, NODE STRING, REGION STRING) WITH (KAFKA_TOPIC = 'NODES', VALUE_FORMAT = 'JSON');";
const READINGS_BY_NODE: &str = "CREATE STREAM READINGS_BY_NODE AS SELECT N.SENSOR_ID, N.NODE, N.REGION, S.CORRELATION_ID, S.CREATED_AT FROM STREAM_INGESTION S JOIN NODES N ON EXTRACTJSONFIELD(S.PAYLOAD, '$.sensor_id') = N.SENSOR_ID;";

/// Seed-shaped readings of sensors spread over all `NODES` nodes.
fn readings_over_nodes() -> Vec<String> {
    (0..BATCH)
        .map(|n| {
            let sensor = n * 7919 % NODES + 1;
            let payload = format!("{{\"sensor_id\": {sensor}, \"modality\": {}, \"unit\": \"MW\"}}", 400 + n % 97);
            serde_json::json!({"payload": payload, "correlation_id": format!("{sensor:05}-{n:06}"), "created_at": 1694902173.12 + n as f64, "schema_version": 1})
                .to_string()
        })
        .collect()
}

fn node_row(sensor: usize) -> serde_json::Value {
    serde_json::json!({"NODE": format!("node-{sensor}"), "REGION": format!("region-{}", sensor % 17)})
}

fn stream_table_join(c: &mut Criterion) {
    let (catalog, stream) = ingestion();
    let Statement::CreateSource(create) = KsqlParser::parse_one(CREATE_NODES).unwrap().statement else { unreachable!("a CREATE TABLE") };
    catalog.put_stream(SourceDef::declared(&create, CREATE_NODES).unwrap());
    let decoder = RecordDecoder::new(&stream).unwrap();
    let values = readings_over_nodes();
    let raw = records(&values);
    let plan = plan(&catalog, READINGS_BY_NODE);
    let join = plan.join.as_ref().unwrap();
    let versions = std::sync::Arc::new(TableVersions::default());
    for sensor in 1..=NODES {
        let value = node_row(sensor).to_string().into_bytes();
        versions.put(sensor.to_string().as_bytes(), Version { timestamp: 0, value: Some(value), partition: 0, offset: sensor as i64 });
    }
    let joiner = TableJoiner::new(&join.steps[0], versions).unwrap();
    let names: Vec<String> = plan.output_schema.fields().iter().skip(1).map(|f| f.name().clone()).collect();

    let mut group = c.benchmark_group("readings_by_node");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("sluice_decode_join_encode", |b| {
        b.iter(|| {
            let decoded = decoder.decode(black_box(&raw)).unwrap();
            let joined = joiner.join(&join.steps[0], &decoded.batch, None).unwrap();
            let evaluated = operator::evaluate(&plan, None, &joined.batch, Some(&joined.joins), None, None).unwrap();
            let writers: Vec<ColumnWriter> = evaluated.columns.iter().skip(1).map(ColumnWriter::new).collect();
            let mut value = Vec::with_capacity(256);
            for row in 0..evaluated.rows.len() {
                value.clear();
                encode_row(Format::Json, b',', &names, &writers, row, &mut value).unwrap();
                black_box(&value);
            }
        })
    });
    let nodes: std::collections::HashMap<String, serde_json::Value> = (1..=NODES).map(|s| (s.to_string(), node_row(s))).collect();
    group.bench_function("hand_written_serde_hash_map", |b| {
        b.iter(|| {
            for record in black_box(&raw) {
                let (value, payload) = parse_seed_record(record);
                let sensor = payload["sensor_id"].to_string();
                if let Some(node) = nodes.get(&sensor) {
                    let joined = serde_json::json!({
                        "NODE": node["NODE"],
                        "REGION": node["REGION"],
                        "CORRELATION_ID": value["correlation_id"],
                        "CREATED_AT": value["created_at"],
                    });
                    black_box(serde_json::to_vec(&joined).unwrap());
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, hot_path, windowed_aggregation, stream_table_join);
criterion_main!(benches);
