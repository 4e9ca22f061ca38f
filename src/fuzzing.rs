//! Fuzz targets as property tests: the statement parser, the record decoders, JSON paths and the
//! Connect config reader meet generated input and mutations of the seed's own statements and
//! records, and must answer every one without a panic or a hang.
//!
//! `cargo test` runs a short smoke of each target; `SLUICE_FUZZ_CASES=<n>` drives them long.
//! An input that fails is written under `proptest-regressions/` and replayed first on every run.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use proptest::{collection::vec, prelude::*, test_runner::Config};

use crate::{
    catalog::{Format, types::SqlType},
    connectors::hdfs::config::HdfsSinkConfig,
    format::{RawRecord, RecordDecoder, roundtrip::stream},
    functions::json_path,
    parser::{KsqlParser, variables},
};

/// One input may take this long before it counts as a hang.
const HANG: Duration = Duration::from_secs(10);

/// Cases per target: `SLUICE_FUZZ_CASES`, or a smoke run's 2,000.
pub fn config() -> Config {
    let cases = std::env::var("SLUICE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
    Config {
        cases,
        max_shrink_iters: 10_000,
        ..Config::default()
    }
}

/// Runs `f` on one input and fails the case if it takes longer than a hang allows.
pub fn within_bounds<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, TestCaseError> {
    let start = Instant::now();
    let value = f();
    let took = start.elapsed();
    prop_assert!(took < HANG, "{what} took {took:?}");
    Ok(value)
}

/// The seed corpus: every statement users run (grammar examples, migrations) and the
/// statements the seed documents carry in SQL blocks.
fn statements() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for dir in ["grammar/examples", "queries/powergrid"] {
        for entry in std::fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                found.extend(text.split_inclusive(';').map(str::to_string).filter(|s| !s.trim().is_empty()));
            }
        }
    }
    found.extend(
        [
            "CREATE STREAM SENSOR_ID_3 AS SELECT * FROM STREAM_INGESTION WHERE EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') = '3';",
            "DESCRIBE SENSOR_ID_3 EXTENDED;",
            "INSERT INTO T (K, A) VALUES ('k', 'a,\"b\"');",
            "DEFINE x = 'y'; SELECT * FROM ${x} EMIT CHANGES LIMIT 1;",
        ]
        .map(String::from),
    );
    found
}

/// A statement of the corpus with bytes replaced, inserted and removed, and pieces of other
/// statements spliced in: grammar-aware enough to reach deep into the parser.
fn mutated_statement() -> impl Strategy<Value = String> {
    let corpus = statements();
    let pieces: Vec<String> = corpus.iter().flat_map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>()).collect();
    (
        proptest::sample::select(corpus),
        vec((any::<prop::sample::Index>(), 0u8..4, proptest::sample::select(pieces), any::<char>()), 1..6),
    )
        .prop_map(|(statement, edits)| {
            let mut text: Vec<char> = statement.chars().collect();
            for (at, kind, piece, c) in edits {
                let i = at.index(text.len() + 1);
                match kind {
                    0 => text.insert(i, c),
                    1 if i < text.len() => {
                        text.remove(i);
                    }
                    2 => text.splice(i..i, piece.chars()).for_each(drop),
                    _ => text.splice(i..(i + piece.len()).min(text.len()), piece.chars()).for_each(drop),
                }
            }
            text.into_iter().collect()
        })
}

fn sql_type() -> impl Strategy<Value = SqlType> {
    prop_oneof![
        Just(SqlType::Boolean),
        Just(SqlType::Integer),
        Just(SqlType::Bigint),
        Just(SqlType::Double),
        Just(SqlType::String),
        Just(SqlType::Bytes),
        Just(SqlType::Timestamp),
        Just(SqlType::Decimal { precision: 6, scale: 2 }),
        Just(SqlType::Date),
        Just(SqlType::Time),
        Just(SqlType::Array(Box::new(SqlType::Integer))),
        Just(SqlType::Map(Box::new(SqlType::Double))),
        Just(SqlType::Struct(vec![("A".into(), SqlType::String), ("B".into(), SqlType::Array(Box::new(SqlType::Bigint)))])),
    ]
}

/// Record bytes: arbitrary, or a seed record (JSON, DELIMITED, big-endian) with bytes flipped.
fn record_bytes() -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = vec![
        br#"{"payload":"{\"sensor_id\": 3}","correlation_id":"906f764e","created_at":1694902173.122458,"schema_version":1}"#.to_vec(),
        br#"{"V0": true, "v1": "x\u00e9\n", "V2": [1, {"a": null}], "V3": -1.5e300}"#.to_vec(),
        b"1,\"a,b\"\"c\",,3.25,true".to_vec(),
        7i32.to_be_bytes().to_vec(),
        (-2f64).to_be_bytes().to_vec(),
    ];
    prop_oneof![
        vec(any::<u8>(), 0..64),
        (proptest::sample::select(seeds), vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)).prop_map(|(mut bytes, flips)| {
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            bytes
        }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_parser_answers_any_text(text in prop_oneof![any::<String>(), mutated_statement()]) {
        within_bounds("parse", || {
            let _ = KsqlParser::parse(&text);
            if let Ok(pieces) = KsqlParser::split(&text) {
                for piece in pieces {
                    let substituted = variables::substitute(&piece.text, &BTreeMap::from([("x".into(), "S".into())]));
                    let _ = KsqlParser::parse_split(&substituted, piece.location, &Default::default());
                }
            }
        })?;
    }

    #[test]
    fn decoders_answer_any_record(
        format in prop_oneof![Just(Format::Json), Just(Format::Delimited), Just(Format::Kafka)],
        key in proptest::option::of(prop_oneof![Just(SqlType::Integer), Just(SqlType::Bigint), Just(SqlType::Double), Just(SqlType::String), Just(SqlType::Bytes)]),
        values in vec(sql_type(), 1..5),
        records in vec((proptest::option::of(record_bytes()), proptest::option::of(record_bytes())), 1..8),
    ) {
        let kept = if format == Format::Kafka { 1 } else { values.len() };
        let values: Vec<SqlType> =
            values.into_iter().take(kept).map(|t| if format.refuses(&t).is_some() { SqlType::String } else { t }).collect();
        let stream = stream(format, key, &values);
        let decoder = RecordDecoder::new(&stream).unwrap();
        let raw: Vec<RawRecord> = records
            .iter()
            .enumerate()
            .map(|(offset, (key, value))| RawRecord { partition: 0, offset: offset as i64, timestamp: 0, key: key.as_deref(), value: value.as_deref(), headers: None })
            .collect();
        let decoded = within_bounds("decode", || decoder.decode(&raw))?.unwrap();
        prop_assert_eq!(decoded.batch.num_rows() + decoded.errors.len(), raw.len(), "each record is a row or an error");
    }

    #[test]
    fn json_paths_answer_any_path_and_document(
        path in prop_oneof![any::<String>(), "\\$(\\.[a-z_]{1,4}|\\[[0-9*]{1,2}\\]|\\['[a-z ]{0,3}'\\]){0,4}"],
        document in prop_oneof![any::<String>(), record_bytes().prop_map(|b| String::from_utf8_lossy(&b).into_owned())],
    ) {
        within_bounds("json path", || {
            if let Ok(steps) = json_path::parse_path(&path) {
                if let Ok(Some(found)) = json_path::find(&document, &steps) {
                    let _ = json_path::render(found);
                }
            }
        })?;
    }

    #[test]
    fn the_connect_config_reader_answers_any_config(
        entries in vec((
            proptest::sample::select(vec![
                "connector.class", "topics", "topics.regex", "hdfs.url", "store.url", "flush.size", "format.class",
                "rotate.interval.ms", "rotate.schedule.interval.ms", "timezone", "filename.offset.zero.pad.width",
                "retry.backoff.ms", "errors.tolerance", "tasks.max", "value.converter", "value.converter.schemas.enable",
                "partitioner.class", "timestamp.extractor", "hive.integration", "topics.dir", "unknown.key",
            ]),
            prop_oneof![
                any::<String>(),
                any::<i64>().prop_map(|n| n.to_string()),
                Just("HdfsSinkConnector".to_string()),
                Just("file:///tmp/fuzz".to_string()),
                Just("io.confluent.connect.hdfs.json.JsonFormat".to_string()),
                Just("[".to_string()),
                Just("UTC".to_string()),
            ],
        ), 0..12),
    ) {
        let config: BTreeMap<String, String> = entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let _ = within_bounds("config", || HdfsSinkConfig::from_map(&config).map(|_| ()))?;
    }
}
