//! Round-trip properties: every row a query or `INSERT … VALUES` encodes, in every format and
//! for every type the format holds, keys included, decodes back to the same row.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array,
    StringArray, TimestampMillisecondArray,
};
use proptest::{collection::vec, option, prelude::*};

use super::{ColumnWriter, RawRecord, RecordDecoder, encode_key, encode_row};
use crate::{
    catalog::{Format, SourceDef, types::SqlType},
    parser::ColumnDef,
};

const DECIMAL: SqlType = SqlType::Decimal { precision: 12, scale: 3 };

/// Text that stresses every format: separators, quotes, line breaks, leading and trailing
/// blanks, `#`, escapes and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[,;|\"'\\\\\n\r\t #a-zA-Z0-9é€😀]{0,12}",
        Just(String::new()),
    ]
}

fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("JSON holds finite numbers", |v| v.is_finite()),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(1796167415.3241541),
        Just(-0.0),
    ]
}

/// A column of `rows` values of `data_type`, some NULL.
fn column(data_type: SqlType, rows: usize) -> BoxedStrategy<ArrayRef> {
    macro_rules! array {
        ($strategy:expr, $array:ty) => {
            vec(option::of($strategy), rows).prop_map(|v| Arc::new(<$array>::from(v)) as ArrayRef).boxed()
        };
    }
    match data_type {
        SqlType::Boolean => array!(any::<bool>(), BooleanArray),
        SqlType::Integer => array!(any::<i32>(), Int32Array),
        SqlType::Bigint => array!(any::<i64>(), Int64Array),
        SqlType::Double => array!(double(), Float64Array),
        SqlType::Timestamp => array!(any::<i64>(), TimestampMillisecondArray),
        SqlType::String => array!(text(), StringArray),
        SqlType::Bytes => vec(option::of(vec(any::<u8>(), 0..16)), rows)
            .prop_map(|v| Arc::new(BinaryArray::from_iter(v)) as ArrayRef)
            .boxed(),
        SqlType::Decimal { precision, scale } => {
            let bound = 10i128.pow(precision as u32) - 1;
            vec(option::of(-bound..=bound), rows)
                .prop_map(move |v| {
                    Arc::new(Decimal128Array::from(v).with_precision_and_scale(precision, scale).unwrap()) as ArrayRef
                })
                .boxed()
        }
        SqlType::Date | SqlType::Time => array!(any::<i32>(), Int32Array)
            .prop_map(move |ints| arrow::compute::cast(&ints, &data_type.to_arrow()).expect("a 32-bit day or time"))
            .boxed(),
        SqlType::Array(_) | SqlType::Map(_) | SqlType::Struct(_) => unreachable!("no format here holds nested types"),
    }
}

/// A stream of `format` (its keys too) with key column `K` (when given) and value columns `V0`,
/// `V1`, ….
pub(crate) fn stream(format: Format, key: Option<SqlType>, values: &[SqlType]) -> SourceDef {
    let mut columns: Vec<ColumnDef> = key
        .into_iter()
        .map(|data_type| ColumnDef::key("K", data_type))
        .collect();
    columns.extend(values.iter().enumerate().map(|(i, t)| ColumnDef::value(format!("V{i}"), t.clone())));
    SourceDef {
        name: "S".into(),
        kind: crate::parser::SourceKind::Stream,
        read_only: false,
        created_by_query: false,
        topic: "s".into(),
        columns,
        key_format: format,
        value_format: format,
        value_delimiter: b',',
        key_delimiter: b',',
        wrap_single_value: true,
        timestamp_column: None,
        timestamp_format: None,
        statement: String::new(),
        window: None,
    }
}

/// Encodes every row of `columns` (key column first when `stream` has one) as records and
/// decodes them with the stream's decoder: the columns that come back.
fn round_trip(stream: &SourceDef, columns: &[ArrayRef]) -> Result<Vec<ArrayRef>, TestCaseError> {
    let writers: Vec<ColumnWriter> = columns.iter().map(ColumnWriter::new).collect();
    let keyed = stream.key_columns().count();
    let names: Vec<String> = stream.value_columns().map(|c| c.name.clone()).collect();
    let rows = columns.first().map_or(0, |c| c.len());
    let mut records = Vec::with_capacity(rows);
    for row in 0..rows {
        let key = match writers.first() {
            Some(w) if keyed == 1 && !w.is_null(row) => {
                let mut key = Vec::new();
                encode_key(stream.key_format, stream.key_delimiter, w, row, &mut key).map_err(|e| TestCaseError::fail(e.to_string()))?;
                Some(key)
            }
            _ => None,
        };
        let mut value = Vec::new();
        let present = encode_row(stream.value_format, stream.value_delimiter, &names, &writers[keyed..], row, &mut value)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        records.push((key, present.then_some(value)));
    }
    let raw: Vec<RawRecord> = records
        .iter()
        .enumerate()
        .map(|(offset, (key, value))| RawRecord {
            partition: 0,
            offset: offset as i64,
            timestamp: 0,
            key: key.as_deref(),
            value: value.as_deref(),
            headers: None,
        })
        .collect();
    let decoded = RecordDecoder::new(stream).unwrap().decode(&raw).unwrap();
    prop_assert!(decoded.errors.is_empty(), "records that did not decode: {:?}", decoded.errors);
    Ok((0..columns.len()).map(|i| decoded.batch.column(i).clone()).collect())
}

/// DELIMITED reads an empty field as NULL, as ksqlDB does: an empty string (or BYTES) comes
/// back NULL.
fn empty_as_null(array: &ArrayRef) -> ArrayRef {
    if let Some(strings) = array.as_any().downcast_ref::<StringArray>() {
        return Arc::new(strings.iter().map(|s| s.filter(|s| !s.is_empty())).collect::<StringArray>());
    }
    if let Some(bytes) = array.as_any().downcast_ref::<BinaryArray>() {
        return Arc::new(bytes.iter().map(|b| b.filter(|b| !b.is_empty())).collect::<BinaryArray>());
    }
    array.clone()
}

const ALL: [SqlType; 10] = [
    SqlType::Boolean,
    SqlType::Integer,
    SqlType::Bigint,
    SqlType::Double,
    SqlType::String,
    DECIMAL,
    SqlType::Bytes,
    SqlType::Timestamp,
    SqlType::Date,
    SqlType::Time,
];
const KAFKA: [SqlType; 5] = [SqlType::Integer, SqlType::Bigint, SqlType::Double, SqlType::String, SqlType::Bytes];

/// A stream of `format` with one of the key types (or none) and `values` columns, with rows.
fn case(format: Format, values: Vec<SqlType>) -> impl Strategy<Value = (SourceDef, Vec<ArrayRef>)> {
    (option::of(proptest::sample::select(KAFKA.to_vec())), 0usize..12).prop_flat_map(move |(key, rows)| {
        let stream = stream(format, key.clone(), &values);
        let columns: Vec<BoxedStrategy<ArrayRef>> = stream.columns.iter().map(|c| column(c.data_type.clone(), rows)).collect();
        (Just(stream), columns)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_rows_round_trip((stream, columns) in case(Format::Json, ALL.to_vec())) {
        let back = round_trip(&stream, &columns)?;
        for (sent, got) in columns.iter().zip(&back) {
            prop_assert_eq!(sent, got);
        }
    }

    #[test]
    fn delimited_rows_round_trip((stream, columns) in case(Format::Delimited, ALL.to_vec())) {
        let back = round_trip(&stream, &columns)?;
        for (sent, got) in columns.iter().zip(&back) {
            prop_assert_eq!(&empty_as_null(sent), got);
        }
    }

    #[test]
    fn kafka_rows_round_trip(
        (stream, columns) in proptest::sample::select(KAFKA.to_vec()).prop_flat_map(|t| case(Format::Kafka, vec![t]))
    ) {
        let back = round_trip(&stream, &columns)?;
        for (sent, got) in columns.iter().zip(&back) {
            prop_assert_eq!(sent, got);
        }
    }
}

#[test]
fn delimited_fields_are_quoted_as_ksqldb_quotes_them() {
    let stream = stream(Format::Delimited, None, &[SqlType::String, SqlType::String, SqlType::Integer]);
    let cases: [([Option<&str>; 2], &str); 8] = [
        ([Some("a"), Some("b")], "a,b,1"),
        ([Some("a,b"), Some("say \"hi\"")], "\"a,b\",\"say \"\"hi\"\"\",1"),
        ([None, None], ",,1"),
        ([Some(""), None], "\"\",,1"),
        ([Some(" lead"), Some("trail ")], "\" lead\",\"trail \",1"),
        ([Some("#tag"), Some("two\nlines")], "\"#tag\",\"two\nlines\",1"),
        ([Some("é€"), Some("")], "\"é€\",,1"),
        ([Some("-10"), Some("-10")], "\"-10\",-10,1"),
    ];
    for ([a, b], expected) in cases {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![a])),
            Arc::new(StringArray::from(vec![b])),
            Arc::new(Int32Array::from(vec![1])),
        ];
        let writers: Vec<ColumnWriter> = columns.iter().map(ColumnWriter::new).collect();
        let names: Vec<String> = stream.value_columns().map(|c| c.name.clone()).collect();
        let mut out = Vec::new();
        encode_row(Format::Delimited, b',', &names, &writers, 0, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }
}

#[test]
fn a_single_value_is_written_bare_when_the_stream_does_not_wrap_it() {
    let column: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), None]));
    let writers = [ColumnWriter::new(&column)];
    let names = ["V0".to_string()];
    let written = |row: usize, wrap: bool| {
        let mut out = Vec::new();
        let present = super::encode_value(Format::Json, b',', &names, &writers, row, wrap, &mut out).unwrap();
        present.then(|| String::from_utf8(out).unwrap())
    };
    assert_eq!(written(0, true).as_deref(), Some(r#"{"V0":"a"}"#));
    assert_eq!(written(0, false).as_deref(), Some(r#""a""#));
    assert_eq!(written(1, false), None, "a bare NULL is no value");
}
