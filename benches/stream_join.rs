//! The stream-stream join benchmark (issue 15): two streams of 500,000 seed-shaped records each
//! joined `WITHIN 1 MINUTE GRACE PERIOD 1 MINUTE` on their correlation id, from record bytes to joined JSON records,
//! Sluice's decode, window join and encode beside a hand-written serde_json loop with a
//! hash-map window store, in the same run.
//!
//! `cargo bench --bench stream_join` (records per stream: `SLUICE_BENCH_RECORDS`, default
//! 500,000). Each variant runs in a process of its own (this binary re-run with `sluice` or
//! `hand`), so its CPU time and peak RSS (`VmHWM`) are its own. Records are 10 ms apart, the
//! right stream's copy of a reading 2 s after the left one's: each left record finds exactly
//! one right record, and the run checks it wrote one row per record, so a fast wrong run
//! cannot pass.

use std::{
    collections::{HashMap, VecDeque},
    hint::black_box,
    time::Instant,
};

use serde_json::{Value, json};
use sluice::{
    catalog::{Catalog, Format, SourceDef},
    connectors::source::source_partition,
    format::{ColumnWriter, RawRecord, encode_row},
    parser::{KsqlParser, Statement},
    planner::{ContinuousPlan, QueryPlanner},
    runtime::{operator, two_sources::TwoSources, window_join::WindowJoiner},
};

mod common;

use common::{cpu_seconds, peak_rss_mb, run_variant};

const BATCH: usize = 8192;
const SPACING_MS: i64 = 10;
const COPY_DELAY_MS: i64 = 2_000;
const WINDOW_MS: i64 = 60_000;
const LEFT: &str = "CREATE STREAM READINGS (payload STRING, correlation_id STRING KEY, created_at DOUBLE, schema_version INTEGER) WITH (KAFKA_TOPIC = 'READINGS', VALUE_FORMAT = 'JSON');";
const RIGHT: &str = "CREATE STREAM CONFIRMATIONS (payload STRING, correlation_id STRING KEY, created_at DOUBLE, schema_version INTEGER) WITH (KAFKA_TOPIC = 'CONFIRMATIONS', VALUE_FORMAT = 'JSON');";
const JOIN: &str = "CREATE STREAM CONFIRMED AS SELECT R.CORRELATION_ID, R.PAYLOAD, C.CREATED_AT AS CONFIRMED_AT FROM READINGS R JOIN CONFIRMATIONS C WITHIN 1 MINUTE GRACE PERIOD 1 MINUTE ON R.CORRELATION_ID = C.CORRELATION_ID;";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let per_stream: usize = std::env::var("SLUICE_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(500_000);
    match args.first().map(String::as_str) {
        Some("sluice") => report(per_stream, sluice_join),
        Some("hand") => report(per_stream, hand_written_join),
        _ => {
            println!("stream-stream join, 2 × {per_stream} records, WITHIN 1 MINUTE GRACE PERIOD 1 MINUTE, one match per record");
            println!("{:<28} {:>10} {:>10} {:>14} {:>10}", "", "wall s", "CPU s", "records/CPU-s", "peak MB");
            for variant in ["sluice", "hand"] {
                let measured = run_variant(variant);
                let cpu = measured["cpu"].as_f64().unwrap();
                println!(
                    "{:<28} {:>10.2} {:>10.2} {:>14.0} {:>10.1}",
                    if variant == "sluice" { "sluice decode+join+encode" } else { "hand-written serde+HashMap" },
                    measured["wall"].as_f64().unwrap(),
                    cpu,
                    (2 * per_stream) as f64 / cpu,
                    measured["rss_mb"].as_f64().unwrap()
                );
            }
        }
    }
}

/// Runs `join` over the records and prints its wall and CPU seconds and peak RSS as JSON.
/// A record of either stream: whether it is the right one's, its key, value and time.
type Input = (bool, String, Vec<u8>, i64);

fn report(per_stream: usize, join: fn(&[Input]) -> usize) {
    let records = inputs(per_stream);
    let (cpu_before, wall) = (cpu_seconds(), Instant::now());
    let rows = join(&records);
    let (cpu, wall) = (cpu_seconds() - cpu_before, wall.elapsed().as_secs_f64());
    assert_eq!(rows, per_stream, "one joined row per reading");
    println!("{}", json!({"wall": wall, "cpu": cpu, "rss_mb": peak_rss_mb()}));
}

/// Both streams' records in arrival order (right?, key, value, time): each reading on the left,
/// its copy on the right `COPY_DELAY_MS` later.
fn inputs(per_stream: usize) -> Vec<Input> {
    let delay = (COPY_DELAY_MS / SPACING_MS) as usize;
    let mut records = Vec::with_capacity(2 * per_stream);
    for n in 0..per_stream + delay {
        for (right, reading) in [(false, n), (true, n.wrapping_sub(delay))] {
            if reading >= per_stream {
                continue;
            }
            let sensor = reading % 6 + 1;
            let key = format!("{sensor:02}-{reading:07}");
            let payload = format!("{{\"sensor_id\": {sensor}, \"modality\": {}, \"unit\": \"MW\"}}", 400 + reading % 97);
            let value = json!({"payload": payload, "created_at": 1694902173.12 + n as f64, "schema_version": 1}).to_string();
            records.push((right, key, value.into_bytes(), n as i64 * SPACING_MS));
        }
    }
    records
}


fn plan() -> ContinuousPlan {
    let catalog = Catalog::default();
    catalog.put_stream(SourceDef::from_create(LEFT).unwrap());
    catalog.put_stream(SourceDef::from_create(RIGHT).unwrap());
    let Statement::CreateAsSelect(csas) = KsqlParser::parse_one(JOIN).unwrap().statement else { unreachable!("a CSAS") };
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(QueryPlanner::plan(&catalog, &csas.select)).unwrap()
}

fn sluice_join(records: &[Input]) -> usize {
    let plan = plan();
    let window = plan.pair_join().unwrap();
    let decoder = TwoSources::new(&plan.source, &window.right, window.schema.clone()).unwrap();
    let mut joiner = WindowJoiner::new(window).unwrap();
    let names: Vec<String> = plan.output_schema.fields().iter().skip(1).map(|f| f.name().clone()).collect();
    let mut rows = 0;
    let mut value = Vec::with_capacity(256);
    for (chunk, batch) in records.chunks(BATCH).enumerate() {
        let raw: Vec<RawRecord<'_>> = batch
            .iter()
            .enumerate()
            .map(|(i, (right, key, value, timestamp))| RawRecord {
                partition: source_partition(usize::from(*right), 0),
                offset: (chunk * BATCH + i) as i64,
                timestamp: *timestamp,
                key: Some(key.as_bytes()),
                value: Some(value),
            })
            .collect();
        let decoded = decoder.decode(&raw).unwrap();
        let right: Vec<bool> = decoded.rows.iter().map(|r| batch[*r].0).collect();
        let positions: Vec<(i32, i64)> = decoded.rows.iter().map(|r| (raw[*r].partition, raw[*r].offset)).collect();
        let joined = joiner.process(window, &decoded.batch, None, &right, &positions).unwrap();
        let evaluated = operator::evaluate(&plan, None, &joined.batch, None, None, None).unwrap();
        let writers: Vec<ColumnWriter> = evaluated.columns.iter().skip(1).map(ColumnWriter::new).collect();
        for row in 0..evaluated.rows.len() {
            value.clear();
            encode_row(Format::Json, b',', &names, &writers, row, &mut value).unwrap();
            black_box(&value);
        }
        rows += evaluated.rows.len();
    }
    rows
}

/// The same join by hand: each record parsed with serde_json, kept per key with its time,
/// matched against the other stream's records of its key within the window, and dropped once
/// out of the window and grace, as Sluice drops it.
fn hand_written_join(records: &[Input]) -> usize {
    type Store = HashMap<String, Vec<(i64, Value)>>;
    let mut stores: [Store; 2] = [HashMap::new(), HashMap::new()];
    let mut expiry: [VecDeque<(i64, String)>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut stream_time = i64::MIN;
    let mut rows = 0;
    for (right, key, value, timestamp) in records {
        let side = usize::from(*right);
        let value: Value = serde_json::from_slice(value).unwrap();
        stream_time = stream_time.max(*timestamp);
        for (store, queue) in stores.iter_mut().zip(expiry.iter_mut()) {
            while queue.front().is_some_and(|(t, _)| *t < stream_time - 3 * WINDOW_MS) {
                let (t, k) = queue.pop_front().unwrap();
                if let Some(kept) = store.get_mut(&k) {
                    kept.retain(|(kt, _)| *kt != t);
                    if kept.is_empty() {
                        store.remove(&k);
                    }
                }
            }
        }
        if let Some(others) = stores[1 - side].get(key) {
            for (other_time, other) in others {
                if (other_time - timestamp).abs() <= WINDOW_MS {
                    let (left, right) = if side == 0 { (&value, other) } else { (other, &value) };
                    let joined = json!({"PAYLOAD": left["payload"], "CONFIRMED_AT": right["created_at"]});
                    black_box(serde_json::to_vec(&joined).unwrap());
                    rows += 1;
                }
            }
        }
        stores[side].entry(key.clone()).or_default().push((*timestamp, value));
        expiry[side].push_back((*timestamp, key.clone()));
    }
    rows
}
