//! The table benchmarks (issue 14): PowerGrid's wattage per sensor per minute (a tumbling
//! one-minute `COUNT`/`AVG`/`MAX` per sensor) over 1M seed records and an aggregation over 1M
//! distinct keys (the work of restoring its state, which is rebuilt from the source topic on
//! restart), each beside a hand-written serde_json + hash-map loop doing the same, and pull
//! queries by key against a table of 1M keys, paced at 1,000 a second, beside the same query
//! answered by a scan of every row.
//!
//! `cargo bench --bench tables` (records and keys: `SLUICE_BENCH_KEYS`, default 1,000,000). Each variant
//! runs in a process of its own (this binary re-run with its name), so its CPU time and peak RSS
//! (`VmHWM`) are its own. The runs check their answers (one group per key, one row per pull
//! query), so a fast wrong run cannot pass.

use std::{
    borrow::Cow,
    collections::HashMap,
    hint::black_box,
    time::{Duration, Instant},
};

use serde::Deserialize;
use serde_json::{Value, json};
use sluice::{
    catalog::{Catalog, SourceDef},
    format::{RawRecord, RecordDecoder},
    parser::{KsqlParser, Statement},
    planner::{ContinuousPlan, QueryPlanner},
    runtime::{
        aggregate::Aggregator,
        operator, pull,
        sink::{QuerySink, RowsSink},
        table_state::{StoredRecord, TableState},
    },
};

mod common;

use common::{cpu_seconds, peak_rss_mb, run_variant};

const BATCH: usize = 8192;
const READINGS: &str = "CREATE STREAM READINGS (SENSOR STRING KEY, WATTS INTEGER, CREATED_AT DOUBLE) WITH (KAFKA_TOPIC = 'readings', VALUE_FORMAT = 'JSON');";
const PER_SENSOR: &str = "CREATE TABLE PER_SENSOR AS SELECT SENSOR, COUNT(*) AS READINGS, SUM(WATTS) AS TOTAL, MAX(WATTS) AS PEAK FROM READINGS GROUP BY SENSOR;";
const LATEST: &str = "CREATE SOURCE TABLE LATEST_READING (SENSOR STRING PRIMARY KEY, WATTS INTEGER, CREATED_AT DOUBLE) WITH (KAFKA_TOPIC = 'latest', VALUE_FORMAT = 'JSON');";
const INGESTION: &str = include_str!("../queries/powergrid/V000001__ingestion_stream.sql");
const WATTAGE_PER_MINUTE: &str = include_str!("../queries/powergrid/V000005__wattage_per_minute.sql");
/// Milliseconds between two seed records: 1M records span about 167 one-minute windows.
const RECORD_SPACING_MS: i64 = 10;
const SENSORS: u64 = 6;
const PULLS: usize = 1_000;

/// Readings by key: each sensor's key and JSON value.
type Readings = [(String, Vec<u8>)];
/// Seed records: each one's timestamp and JSON value.
type SeedRecords = [(i64, Vec<u8>)];
const SCANS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let keys: usize = std::env::var("SLUICE_BENCH_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    match args.first().map(String::as_str) {
        Some("aggregate") => report(keys, sluice_aggregate),
        Some("hand") => report(keys, hand_written_aggregate),
        Some("tumbling") => report_tumbling(keys, sluice_tumbling),
        Some("tumbling-hand") => report_tumbling(keys, hand_written_tumbling),
        Some("pull") => pull_queries(keys),
        _ => {
            println!("wattage per sensor per minute over {keys} seed records ({SENSORS} sensors), from record bytes");
            println!("{:<30} {:>8} {:>8} {:>14} {:>9}", "", "wall s", "CPU s", "records/CPU-s", "peak MB");
            let mut rates = Vec::new();
            for variant in ["tumbling", "tumbling-hand"] {
                let measured = run_variant(variant);
                let cpu = measured["cpu"].as_f64().unwrap();
                rates.push(keys as f64 / cpu);
                println!(
                    "{:<30} {:>8.2} {:>8.2} {:>14.0} {:>9.1}",
                    if variant == "tumbling" { "sluice decode+window+aggregate" } else { "hand-written serde+HashMap" },
                    measured["wall"].as_f64().unwrap(),
                    cpu,
                    keys as f64 / cpu,
                    measured["rss_mb"].as_f64().unwrap()
                );
            }
            println!("sluice / hand-written, records per CPU-second: {:.2}\n", rates[0] / rates[1]);
            println!("aggregation over {keys} distinct keys (COUNT, SUM, MAX per key), from record bytes");
            println!("{:<30} {:>8} {:>8} {:>14} {:>9}", "", "wall s", "CPU s", "records/CPU-s", "peak MB");
            for variant in ["aggregate", "hand"] {
                let measured = run_variant(variant);
                let cpu = measured["cpu"].as_f64().unwrap();
                println!(
                    "{:<30} {:>8.2} {:>8.2} {:>14.0} {:>9.1}",
                    if variant == "aggregate" { "sluice decode+aggregate" } else { "hand-written serde+HashMap" },
                    measured["wall"].as_f64().unwrap(),
                    cpu,
                    keys as f64 / cpu,
                    measured["rss_mb"].as_f64().unwrap()
                );
            }
            let measured = run_variant("pull");
            println!("\npull queries by key against a table of {keys} keys, {PULLS} paced at 1,000/s (planning included)");
            println!("table filled in {:.2} s, peak RSS {:.1} MB", measured["fill_s"].as_f64().unwrap(), measured["rss_mb"].as_f64().unwrap());
            println!(
                "by key: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; by a scan of every row (mean of {SCANS}): {:.1} ms",
                measured["p50_ms"].as_f64().unwrap(),
                measured["p99_ms"].as_f64().unwrap(),
                measured["max_ms"].as_f64().unwrap(),
                measured["scan_ms"].as_f64().unwrap()
            );
        }
    }
}

/// This binary re-run as `variant`, its measurements read back.
/// Runs `aggregate` over one record per key and prints its wall and CPU seconds and peak RSS.
fn report(keys: usize, aggregate: fn(&Readings) -> usize) {
    let records = readings(keys);
    let (cpu_before, wall) = (cpu_seconds(), Instant::now());
    let groups = aggregate(&records);
    let (cpu, wall) = (cpu_seconds() - cpu_before, wall.elapsed().as_secs_f64());
    assert_eq!(groups, keys, "one group per key");
    println!("{}", json!({"wall": wall, "cpu": cpu, "rss_mb": peak_rss_mb()}));
}

/// Runs `aggregate` over `count` seed records and prints its wall and CPU seconds and peak RSS;
/// the runs must agree on the rows they emit.
fn report_tumbling(count: usize, aggregate: fn(&SeedRecords) -> usize) {
    let records = seed_records(count);
    let (cpu_before, wall) = (cpu_seconds(), Instant::now());
    let rows = aggregate(&records);
    let (cpu, wall) = (cpu_seconds() - cpu_before, wall.elapsed().as_secs_f64());
    assert_eq!(rows, expected_tumbling_rows(&records), "one row per sensor and window each batch changed");
    println!("{}", json!({"wall": wall, "cpu": cpu, "rss_mb": peak_rss_mb()}));
}

/// PowerGrid records as the seed's producer writes them, round-robin over the sensors, each
/// with its timestamp.
fn seed_records(count: usize) -> Vec<(i64, Vec<u8>)> {
    (0..count as u64)
        .map(|n| {
            let sensor = n % SENSORS + 1;
            let payload = format!(
                "{{\"sensor_id\": {sensor}, \"modality\": {}, \"unit\": \"MW\", \"temporal_aspect\": \"real_time\"}}",
                400 + n % 97
            );
            let value = json!({"payload": payload, "correlation_id": format!("{sensor:02}-{n:06}"), "created_at": 1694902173.12 + n as f64, "schema_version": 1});
            (n as i64 * RECORD_SPACING_MS, value.to_string().into_bytes())
        })
        .collect()
}

/// How many rows a batch-at-a-time windowed aggregation of `records` emits: one per sensor and
/// window each batch touches.
fn expected_tumbling_rows(records: &[(i64, Vec<u8>)]) -> usize {
    records
        .chunks(BATCH)
        .enumerate()
        .map(|(chunk, batch)| {
            let first = (chunk * BATCH) as u64;
            let touched: std::collections::HashSet<(u64, i64)> =
                (0..batch.len() as u64).map(|i| ((first + i) % SENSORS, batch[i as usize].0 / 60_000)).collect();
            touched.len()
        })
        .sum()
}

fn sluice_tumbling(records: &[(i64, Vec<u8>)]) -> usize {
    let batches = records.chunks(BATCH).enumerate().map(|(chunk, batch)| {
        let raw = batch.iter().enumerate().map(|(i, (timestamp, value))| RawRecord {
            partition: 0,
            offset: (chunk * BATCH + i) as i64,
            timestamp: *timestamp,
            key: None,
            value: Some(value.as_slice()),
        });
        raw.collect()
    });
    aggregate_batches(INGESTION.trim(), WATTAGE_PER_MINUTE.trim(), batches)
}

/// Plans `ctas` over the stream `declaration` declares, then decodes and aggregates each batch;
/// how many rows the aggregation emitted.
fn aggregate_batches<'a>(declaration: &str, ctas: &str, batches: impl Iterator<Item = Vec<RawRecord<'a>>>) -> usize {
    let catalog = Catalog::default();
    catalog.put_stream(SourceDef::from_create(declaration).unwrap());
    let Statement::CreateAsSelect(ctas) = KsqlParser::parse_one(ctas).unwrap().statement else { unreachable!("a CTAS") };
    let plan = plan(&catalog, &ctas.select);
    let decoder = RecordDecoder::new(&plan.source).unwrap();
    let mut aggregator = Aggregator::for_plan(&plan).unwrap().expect("an aggregation");
    let mut emitted = 0;
    for raw in batches {
        let decoded = decoder.decode(&raw).unwrap();
        let evaluated = operator::evaluate(&plan, None, &decoded.batch, None, None, Some(&mut aggregator)).unwrap();
        emitted += evaluated.rows.len();
    }
    emitted
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Reading {
    sensor_id: u32,
    modality: f64,
}

/// Count, sum and maximum of one sensor's readings in one window.
struct WindowTotals {
    readings: u64,
    total: f64,
    peak: f64,
}

/// The same figures by hand: parse each value and its payload, key by sensor and minute, and
/// emit, after each batch, the row of every window the batch changed.
fn hand_written_tumbling(records: &[(i64, Vec<u8>)]) -> usize {
    let mut windows: HashMap<(u32, i64), WindowTotals> = HashMap::new();
    let mut emitted = 0;
    for batch in records.chunks(BATCH) {
        let mut changed: Vec<(u32, i64)> = Vec::new();
        for (timestamp, value) in batch {
            let envelope: Envelope<'_> = serde_json::from_slice(value).unwrap();
            let reading: Reading = serde_json::from_str(&envelope.payload).unwrap();
            let key = (reading.sensor_id, timestamp - timestamp % 60_000);
            let totals = windows.entry(key).or_insert(WindowTotals { readings: 0, total: 0.0, peak: f64::MIN });
            totals.readings += 1;
            totals.total += reading.modality;
            totals.peak = totals.peak.max(reading.modality);
            if !changed.contains(&key) {
                changed.push(key);
            }
        }
        let rows: Vec<(String, i64, i64, u64, f64, f64)> = changed
            .into_iter()
            .map(|(sensor, start)| {
                let totals = &windows[&(sensor, start)];
                (sensor.to_string(), start, start + 60_000, totals.readings, totals.total / totals.readings as f64, totals.peak)
            })
            .collect();
        emitted += black_box(rows).len();
    }
    emitted
}

/// One reading per sensor: its key and JSON value.
fn readings(keys: usize) -> Vec<(String, Vec<u8>)> {
    (0..keys)
        .map(|n| {
            let value = json!({"WATTS": 400 + n % 97, "CREATED_AT": 1694902173.12 + n as f64}).to_string();
            (sensor(n), value.into_bytes())
        })
        .collect()
}

fn sensor(n: usize) -> String {
    format!("sensor-{n:07}")
}

fn plan(catalog: &Catalog, select: &sluice::parser::Select) -> ContinuousPlan {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(QueryPlanner::plan(catalog, select)).unwrap()
}

fn sluice_aggregate(records: &[(String, Vec<u8>)]) -> usize {
    let batches = records.chunks(BATCH).enumerate().map(|(chunk, batch)| {
        let raw = batch.iter().enumerate().map(|(i, (key, value))| RawRecord {
            partition: 0,
            offset: (chunk * BATCH + i) as i64,
            timestamp: (chunk * BATCH + i) as i64,
            key: Some(key.as_bytes()),
            value: Some(value.as_slice()),
        });
        raw.collect()
    });
    aggregate_batches(READINGS, PER_SENSOR, batches)
}

/// Count, sum and maximum of one sensor's readings.
#[derive(Default)]
struct Totals {
    readings: u64,
    total: i64,
    peak: i64,
}

fn hand_written_aggregate(records: &[(String, Vec<u8>)]) -> usize {
    let mut groups: HashMap<String, Totals> = HashMap::new();
    for (key, value) in records {
        let value: Value = serde_json::from_slice(value).unwrap();
        let watts = value["WATTS"].as_i64().unwrap();
        let totals = groups.entry(key.clone()).or_default();
        totals.readings += 1;
        totals.total += watts;
        totals.peak = totals.peak.max(watts);
    }
    black_box(groups.len())
}

/// Fills a table of `keys` rows, then answers pull queries by key paced at 1,000 a second
/// (latency counted from each query's due time, planning included), then a few answered by a
/// scan of every row (`OR WATTS IS NULL` pins no key; no reading lacks its watts).
fn pull_queries(keys: usize) {
    let table = TableState::default();
    let fill = Instant::now();
    for (offset, (key, value)) in readings(keys).into_iter().enumerate() {
        table.upsert(StoredRecord { key: key.into_bytes(), value, timestamp: offset as i64, partition: 0, offset: offset as i64 });
    }
    let fill_s = fill.elapsed().as_secs_f64();
    let catalog = Catalog::default();
    catalog.put_stream(SourceDef::from_create(LATEST).unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let ask = |query: &str| {
        let Statement::Select(select) = KsqlParser::parse_one(query).unwrap().statement else { unreachable!("a SELECT") };
        let plan = runtime.block_on(QueryPlanner::plan(&catalog, &select)).unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1024);
        let sink = QuerySink::Rows(RowsSink { sender, key_outputs: plan.key_outputs.clone() });
        pull::run(&table, plan, sink).unwrap();
        let mut rows = 0;
        while receiver.try_recv().is_ok() {
            rows += 1;
        }
        assert_eq!(rows, 1, "{query} answers one row");
    };
    let mut latencies = Vec::with_capacity(PULLS);
    let start = Instant::now();
    for n in 0..PULLS {
        let due = start + Duration::from_millis(n as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        ask(&format!("SELECT * FROM LATEST_READING WHERE SENSOR = '{}';", sensor(n * 7919 % keys)));
        latencies.push(due.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    let scans = Instant::now();
    for n in 0..SCANS {
        ask(&format!("SELECT * FROM LATEST_READING WHERE SENSOR = '{}' OR WATTS IS NULL;", sensor(n * 7919 % keys)));
    }
    let scan_ms = scans.elapsed().as_secs_f64() * 1000.0 / SCANS as f64;
    println!(
        "{}",
        json!({"fill_s": fill_s, "p50_ms": percentile(50), "p99_ms": percentile(99), "max_ms": latencies[latencies.len() - 1], "scan_ms": scan_ms, "rss_mb": peak_rss_mb()})
    );
}
