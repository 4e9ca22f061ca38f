//! `INSERT INTO … VALUES` and the rows of `/inserts-stream`: the values evaluated, checked
//! against the stream's columns as ksqlDB checks them, and written with the encoders queries
//! write with.

use std::sync::Arc;

use arrow::{
    array::{Array, ArrayRef, AsArray, MapArray, RecordBatch, RecordBatchOptions, StructArray, new_null_array},
    compute::{CastOptions, cast_with_options},
    datatypes::{DataType, Schema},
    util::display::array_value_to_string,
};
use datafusion::{common::DFSchema, prelude::SessionContext};
use sqlparser::ast::Expr;

use super::Engine;
use crate::{
    catalog::{
        SourceDef,
        source::{ROWOFFSET, ROWPARTITION, ROWTIME},
        types::SqlType,
    },
    error::{Result, SluiceError},
    format::{ColumnWriter, encode::normalize_array, encode_keys, encode_value},
    functions,
    parser::{ColumnDef, InsertValues},
    planner,
};

/// One record built from an `INSERT … VALUES` or an inserted JSON row.
struct Inserted {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
}

pub async fn insert_values(engine: &Engine, insert: &InsertValues) -> Result<()> {
    let stream = engine.catalog.stream(&insert.target)?;
    check_writable(&stream)?;
    let record = build(&stream, insert)?;
    produce(engine, &stream, record).await
}

/// A `CREATE SOURCE` stream or table takes no inserts.
fn check_writable(target: &SourceDef) -> Result<()> {
    if target.read_only {
        return Err(SluiceError::Plan(format!(
            "Cannot insert values into read-only {}: {}",
            target.kind.word(),
            target.name
        )));
    }
    Ok(())
}

/// Inserts one row given as a JSON object of column names (any case) and values, as
/// `/inserts-stream` receives them; BYTES are base64 strings.
pub async fn insert_json_row(engine: &Engine, stream: &SourceDef, row: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    check_writable(stream)?;
    let mut named = Vec::with_capacity(row.len());
    for (name, value) in row {
        let column = stream
            .columns
            .iter()
            .find(|c| &c.name == name)
            .or_else(|| stream.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name)));
        let resolved = match column {
            Some(column) => column.name.clone(),
            None if name.eq_ignore_ascii_case(ROWTIME) => ROWTIME.to_string(),
            None => name.clone(),
        };
        named.push((resolved, json_array(value, column.map(|c| &c.data_type))?));
    }
    let record = record_of(stream, named)?;
    produce(engine, stream, record).await
}

async fn produce(engine: &Engine, stream: &SourceDef, record: Inserted) -> Result<()> {
    engine
        .cluster
        .producer()
        .send(&stream.topic, None, record.key.as_deref(), record.value.as_deref(), record.timestamp)
        .await?;
    Ok(())
}

/// One JSON value as a one-row array of the type JSON gives it; a string for a BYTES column is
/// its base64.
fn json_array(value: &serde_json::Value, column: Option<&SqlType>) -> Result<ArrayRef> {
    use arrow::array::{BinaryArray, BooleanArray, Float64Array, Int64Array, StringArray};
    use serde_json::Value;
    Ok(match value {
        Value::Null => new_null_array(&DataType::Null, 1),
        Value::Bool(b) => Arc::new(BooleanArray::from(vec![*b])),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Arc::new(Int64Array::from(vec![i])),
            None => Arc::new(Float64Array::from(vec![n.as_f64().unwrap_or(f64::NAN)])),
        },
        Value::String(text) if column == Some(&SqlType::Bytes) => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| SluiceError::Plan(format!("'{text}' is not base64, as a BYTES value must be")))?;
            Arc::new(BinaryArray::from_iter_values([bytes]))
        }
        Value::String(text) => Arc::new(StringArray::from(vec![text.as_str()])),
        Value::Array(_) | Value::Object(_) => {
            return Err(SluiceError::NotImplemented(format!("inserting the nested value {value}")));
        }
    })
}

/// The record `insert` writes into `stream`: each value evaluated, coerced to its column's
/// type, and encoded in the stream's key and value formats.
fn build(stream: &SourceDef, insert: &InsertValues) -> Result<Inserted> {
    let names: Vec<String> = match &insert.columns {
        Some(columns) => columns.clone(),
        None => stream.columns.iter().map(|c| c.name.clone()).collect(),
    };
    // ksqlDB names every header column the statement writes (all of them when it lists none).
    let headers: Vec<&str> = stream.header_columns().filter(|c| names.contains(&c.name)).map(|c| c.name.as_str()).collect();
    if !headers.is_empty() {
        return Err(SluiceError::Plan(format!("Cannot insert into HEADER columns: {}", headers.join(", "))));
    }
    // ksqlDB refuses these while it prepares the statement, and says so.
    if names.len() != insert.values.len() {
        return Err(SluiceError::Plan(format!(
            "Failed to prepare statement: Expected number columns and values to match: {}, {}",
            names.len(),
            insert.values.len()
        )));
    }
    if let Some(qualifier) = insert.values.iter().find_map(qualifier) {
        return Err(SluiceError::Plan(format!(
            "Failed to prepare statement: '{qualifier}' is not a valid stream/table name or alias."
        )));
    }
    let mut ctx = SessionContext::new();
    functions::register_all(&mut ctx, Default::default())?;
    ctx.register_udf(crate::planner::cast::udf());
    let named = names
        .iter()
        .zip(&insert.values)
        .map(|(name, expr)| Ok((name.clone(), evaluate(&ctx, expr)?)))
        .collect::<Result<Vec<_>>>()?;
    record_of(stream, named)
}

/// The record of `named` values: each coerced to its column's type (ROWTIME sets the
/// timestamp), then encoded in the stream's key and value formats.
fn record_of(stream: &SourceDef, named: Vec<(String, ArrayRef)>) -> Result<Inserted> {
    let mut columns: Vec<Option<ArrayRef>> = vec![None; stream.columns.len()];
    let mut timestamp = None;
    for (name, value) in named {
        if name == ROWPARTITION || name == ROWOFFSET {
            return Err(SluiceError::Plan(format!("Inserting into column `{name}` is not allowed.")));
        }
        if name == ROWTIME {
            let rowtime = ColumnDef::value(ROWTIME, SqlType::Bigint);
            let time = coerce(stream, &rowtime, value)?;
            timestamp = time.as_any().downcast_ref::<arrow::array::Int64Array>().and_then(|a| a.is_valid(0).then(|| a.value(0)));
            continue;
        }
        let index = stream
            .columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| SluiceError::Plan(format!("Column name `{name}` does not exist.")))?;
        if stream.columns[index].header.is_some() {
            return Err(SluiceError::Plan(format!("Cannot insert into HEADER columns: {name}")));
        }
        columns[index] = Some(coerce(stream, &stream.columns[index], value)?);
    }
    let columns: Vec<ArrayRef> = columns
        .into_iter()
        .zip(&stream.columns)
        .map(|(value, column)| value.unwrap_or_else(|| new_null_array(&column.data_type.to_arrow(), 1)))
        .collect();
    let writers: Vec<(&ColumnDef, ColumnWriter)> = stream.columns.iter().zip(columns.iter().map(ColumnWriter::new)).collect();
    let (keys, others): (Vec<_>, Vec<_>) = writers.into_iter().partition(|(c, _)| c.key);
    // A key of one column that is NULL is no key; a key of several is written whole.
    let key = match keys.as_slice() {
        [] => None,
        [(_, single)] if single.is_null(0) => None,
        _ => {
            let (names, columns): (Vec<String>, Vec<ColumnWriter>) = keys.into_iter().map(|(c, w)| (c.name.clone(), w)).unzip();
            let mut bytes = Vec::new();
            encode_keys(stream.key_format, stream.key_delimiter, &names, &names, &columns, 0, &mut bytes)?;
            Some(bytes)
        }
    };
    let (names, values): (Vec<String>, Vec<ColumnWriter>) = others
        .into_iter()
        .filter(|(c, _)| c.in_value())
        .map(|(c, w)| (c.name.clone(), w))
        .unzip();
    let mut value = Vec::new();
    let present = encode_value(stream.value_format, stream.value_delimiter, &names, &values, 0, stream.wrap_single_value, &mut value)?;
    Ok(Inserted {
        key,
        value: present.then_some(value),
        timestamp,
    })
}

/// The qualifier of the first qualified column `expr` reads (`FOO` of `foo.bar`): a value
/// reads no source.
fn qualifier(expr: &Expr) -> Option<String> {
    let mut found = None;
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        if let Expr::CompoundIdentifier(parts) = e
            && let Some(first) = parts.first()
        {
            found = Some(crate::parser::normalize_ident(first));
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

/// Evaluates a value's expression (no column may be named) to a one-row array.
fn evaluate(ctx: &SessionContext, expr: &Expr) -> Result<ArrayRef> {
    let empty = DFSchema::empty();
    let expr = planner::literal_value(expr)?;
    let logical = ctx
        .state()
        .create_logical_expr(&expr.to_string(), &empty)
        .map_err(|e| SluiceError::Plan(e.strip_backtrace().trim_start_matches("Schema error: ").to_string()))?;
    let physical = ctx.create_physical_expr(logical, &empty)?;
    let row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        Vec::new(),
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let (value, errors) = functions::collect_row_errors(|| physical.evaluate(&row).and_then(|v| v.into_array(1)));
    if let Some((_, message)) = errors.into_iter().next() {
        return Err(SluiceError::Plan(message));
    }
    Ok(normalize_array(value?)?)
}

/// Whether a value of type `value` can be written as a `target`: the same type, NULL, or a
/// number widened as ksqlDB widens it (INTEGER to BIGINT, DOUBLE or DECIMAL; DOUBLE to DECIMAL
/// and back), in an ARRAY's elements, a MAP's values and a STRUCT's fields as well.
fn fits(value: &DataType, target: &SqlType) -> bool {
    let numeric = matches!(value, DataType::Int32 | DataType::Int64 | DataType::Float64 | DataType::Decimal128(_, _));
    if value == &target.to_arrow() || value == &DataType::Null {
        return true;
    }
    match (target, value) {
        (SqlType::Integer | SqlType::Bigint, DataType::Int32 | DataType::Int64) => true,
        (SqlType::Double | SqlType::Decimal { .. }, _) => numeric,
        (SqlType::Array(item), DataType::List(element)) => fits(element.data_type(), item),
        (SqlType::Map(item), DataType::Map(entries, _)) => match entries.data_type() {
            DataType::Struct(pair) if pair.len() == 2 => matches!(pair[0].data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) && fits(pair[1].data_type(), item),
            _ => false,
        },
        (SqlType::Struct(fields), DataType::Struct(given)) => {
            fields.len() == given.len()
                && fields.iter().zip(given.iter()).all(|((name, field_type), field)| name == field.name() && fits(field.data_type(), field_type))
        }
        _ => false,
    }
}

/// `value` as a value of `column`, when it [`fits`]; anything else is refused with ksqlDB's
/// message.
fn coerce(stream: &SourceDef, column: &ColumnDef, value: ArrayRef) -> Result<ArrayRef> {
    let target = column.data_type.to_arrow();
    let allowed = fits(value.data_type(), &column.data_type);
    let refused = || {
        let got = SqlType::name_of(&value.data_type());
        let shown = array_value_to_string(&value, 0).unwrap_or_default();
        SluiceError::Plan(format!(
            "Failed to insert values into '{}'. Expected type {} for field {} but got {got}({shown})",
            stream.name, column.data_type, column.name
        ))
    };
    if !allowed {
        return Err(refused());
    }
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_value(&value, &target, &strict).map_err(|_| refused())
}

/// `value` cast to `target`; a map's values are cast one by one, under the target's entries.
fn cast_value(value: &ArrayRef, target: &DataType, options: &CastOptions) -> std::result::Result<ArrayRef, arrow::error::ArrowError> {
    let (DataType::Map(entries_field, sorted), Some(map)) = (target, value.as_map_opt()) else {
        return cast_with_options(value, target, options);
    };
    let DataType::Struct(pair) = entries_field.data_type() else {
        return cast_with_options(value, target, options);
    };
    let keys = cast_with_options(map.keys(), pair[0].data_type(), options)?;
    let values = cast_value(map.values(), pair[1].data_type(), options)?;
    let entries = StructArray::try_new(pair.clone(), vec![keys, values], None)?;
    Ok(Arc::new(MapArray::try_new(entries_field.clone(), map.offsets().clone(), entries, map.nulls().cloned(), *sorted)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        catalog::Format,
        format::{RawRecord, RecordDecoder},
        parser::{KsqlParser, Statement},
    };

    fn stream(declaration: &str) -> SourceDef {
        let Statement::CreateSource(create) = KsqlParser::parse_one(declaration).unwrap().statement else {
            panic!("not a CREATE STREAM")
        };
        SourceDef::from_declaration(&create.name, create.columns, &create.properties, None, declaration).unwrap()
    }

    fn insert(stream: &SourceDef, statement: &str) -> Result<Inserted> {
        let Statement::InsertValues(insert) = KsqlParser::parse_one(statement)?.statement else {
            panic!("not an INSERT VALUES")
        };
        build(stream, &insert)
    }

    /// The row a query reading `stream` decodes from the record, as display strings.
    fn read_back(stream: &SourceDef, record: &Inserted) -> Vec<String> {
        let decoder = RecordDecoder::new(stream).unwrap();
        let raw = RawRecord {
            partition: 0,
            offset: 0,
            timestamp: 0,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: None,
        };
        let decoded = decoder.decode(&[raw]).unwrap();
        assert!(decoded.errors.is_empty(), "{:?}", decoded.errors);
        (0..stream.columns.len())
            .map(|i| array_value_to_string(decoded.batch.column(i), 0).unwrap())
            .collect()
    }

    #[test]
    fn delimited_values_with_separators_and_quotes_read_back_unchanged() {
        let s = stream("CREATE STREAM D (K STRING KEY, A STRING, N INTEGER, B STRING) WITH (KAFKA_TOPIC='d', VALUE_FORMAT='DELIMITED', PARTITIONS=1);");
        let record = insert(&s, r#"INSERT INTO D (B, K, A, N) VALUES ('last, "quoted"', 'k1', 'a,b "c"', 7);"#).unwrap();
        assert_eq!(String::from_utf8(record.value.clone().unwrap()).unwrap(), r#""a,b ""c""",7,"last, ""quoted""""#);
        assert_eq!(read_back(&s, &record), vec!["k1", r#"a,b "c""#, "7", r#"last, "quoted""#]);
    }

    #[test]
    fn kafka_keys_and_values_are_big_endian_numbers() {
        for (declaration, statement, key, value) in [
            ("CREATE STREAM I (K INTEGER KEY, V INTEGER) WITH (KAFKA_TOPIC='i', FORMAT='KAFKA', PARTITIONS=1);", "INSERT INTO I VALUES (-3, 2147483647);", (-3i32).to_be_bytes().to_vec(), 2147483647i32.to_be_bytes().to_vec()),
            ("CREATE STREAM B (K BIGINT KEY, V BIGINT) WITH (KAFKA_TOPIC='b', FORMAT='KAFKA', PARTITIONS=1);", "INSERT INTO B VALUES (9000000000, -1);", 9000000000i64.to_be_bytes().to_vec(), (-1i64).to_be_bytes().to_vec()),
            ("CREATE STREAM F (K DOUBLE KEY, V DOUBLE) WITH (KAFKA_TOPIC='f', FORMAT='KAFKA', PARTITIONS=1);", "INSERT INTO F VALUES (1.5, 2);", 1.5f64.to_be_bytes().to_vec(), 2f64.to_be_bytes().to_vec()),
        ] {
            let s = stream(declaration);
            assert_eq!(s.value_format, Format::Kafka);
            let record = insert(&s, statement).unwrap();
            assert_eq!(record.key.as_deref(), Some(key.as_slice()), "{statement}");
            assert_eq!(record.value.as_deref(), Some(value.as_slice()), "{statement}");
            let row = read_back(&s, &record);
            assert_eq!(row.len(), 2, "{statement}: {row:?}");
        }
    }

    #[test]
    fn a_null_kafka_value_is_a_tombstone_and_rowtime_sets_the_timestamp() {
        let s = stream("CREATE STREAM T (K STRING KEY, V STRING) WITH (KAFKA_TOPIC='t', FORMAT='KAFKA', PARTITIONS=1);");
        let record = insert(&s, "INSERT INTO T (ROWTIME, K) VALUES (1234, 'k');").unwrap();
        assert_eq!(record.value, None);
        assert_eq!(record.timestamp, Some(1234));
        assert_eq!(record.key.as_deref(), Some(b"k".as_slice()));
    }

    #[test]
    fn values_are_checked_against_the_columns() {
        let s = stream("CREATE STREAM J (K STRING KEY, I INTEGER, D DOUBLE, S STRING) WITH (KAFKA_TOPIC='j', VALUE_FORMAT='JSON', PARTITIONS=1);");
        let record = insert(&s, "INSERT INTO J (I, D) VALUES (1 + 1, 3);").unwrap();
        assert_eq!(String::from_utf8(record.value.unwrap()).unwrap(), r#"{"I":2,"D":3.0,"S":null}"#);
        assert_eq!(record.key, None);
        let wrong = |statement: &str| insert(&s, statement).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(wrong("INSERT INTO J (I) VALUES ('abc');").contains("Expected type INTEGER for field I but got STRING(abc)"));
        assert!(wrong("INSERT INTO J (S) VALUES (5);").contains("Expected type STRING for field S but got INTEGER(5)"));
        assert!(wrong("INSERT INTO J (I) VALUES (3000000000);").contains("Expected type INTEGER"));
        assert!(wrong("INSERT INTO J (X) VALUES (1);").contains("Column name `X` does not exist."));
        assert!(wrong("INSERT INTO J (I, D) VALUES (1);").contains("Expected number columns and values to match: 2, 1"));
        assert!(wrong("INSERT INTO J (ROWOFFSET) VALUES (1);").contains("Inserting into column `ROWOFFSET` is not allowed."));
    }

    #[test]
    fn nested_values_are_built_with_ksqldbs_constructors_and_widened_inside() {
        let s = stream(
            "CREATE STREAM N (A ARRAY<INT>, B ARRAY<BIGINT>, M MAP<STRING, DOUBLE>, S STRUCT<X INT, Y STRING>) WITH (KAFKA_TOPIC='n', VALUE_FORMAT='JSON', PARTITIONS=1);",
        );
        let record = insert(&s, "INSERT INTO N (A, B, M, S) VALUES (ARRAY[1, 2], ARRAY[3], MAP('k' := 1), STRUCT(X := 4, Y := 'y'));").unwrap();
        assert_eq!(
            String::from_utf8(record.value.unwrap()).unwrap(),
            r#"{"A":[1,2],"B":[3],"M":{"k":1.0},"S":{"X":4,"Y":"y"}}"#
        );
        let refused = insert(&s, "INSERT INTO N (A) VALUES (ARRAY['a']);").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("Expected type ARRAY<INTEGER> for field A"), "{refused}");
    }
}
