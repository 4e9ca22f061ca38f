//! A row as the JDBC source writes it with Connect's JsonConverter: a struct named after the
//! table, each column typed as the connector maps its SQL type (INTEGER `int32`, NUMERIC the
//! logical `Decimal`, DATE/TIME/TIMESTAMP Connect's logical types, BYTEA base64 `bytes`), in the
//! `{"schema": …, "payload": …}` envelope when `schemas.enable` is on.

use base64::Engine;
use chrono::{NaiveTime, Timelike};
use serde_json::{Map, Value, json};

use super::config::NumericMapping;
use crate::{
    connectors::postgres::{Column, ColumnKind, CopyRow, bytea, days_since_epoch, timestamp_micros, unscaled_bytes},
    error::{Result, SluiceError},
};

const DECIMAL: &str = "org.apache.kafka.connect.data.Decimal";
const DATE: &str = "org.apache.kafka.connect.data.Date";
const TIME: &str = "org.apache.kafka.connect.data.Time";
const TIMESTAMP: &str = "org.apache.kafka.connect.data.Timestamp";

/// How one column is written.
#[derive(Debug, Clone, PartialEq)]
enum FieldType {
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Decimal { scale: u32 },
    Date,
    Time,
    Timestamp,
}

/// Writes rows of one table or query as JSON values.
pub struct RecordWriter {
    fields: Vec<(String, FieldType)>,
    /// The schema half of the envelope, when schemas are on.
    schema: Option<Value>,
}

impl RecordWriter {
    /// `name` is the struct's name: the unqualified table name, `None` for a query.
    pub fn new(columns: &[Column], name: Option<&str>, mapping: NumericMapping, schemas: bool) -> RecordWriter {
        let fields: Vec<(String, FieldType)> = columns.iter().map(|c| (c.name.clone(), field_type(c, mapping))).collect();
        let schema = schemas.then(|| {
            let described: Vec<Value> = columns
                .iter()
                .zip(&fields)
                .map(|(column, (name, ty))| field_schema(name, ty, column.nullable))
                .collect();
            let mut schema = Map::new();
            schema.insert("type".into(), json!("struct"));
            schema.insert("fields".into(), Value::Array(described));
            schema.insert("optional".into(), json!(false));
            if let Some(name) = name {
                schema.insert("name".into(), json!(name));
            }
            Value::Object(schema)
        });
        RecordWriter { fields, schema }
    }

    /// The value of a row, JSON-encoded.
    pub fn value(&self, row: &CopyRow<'_>) -> Result<Vec<u8>> {
        let mut payload = Map::with_capacity(self.fields.len());
        for (index, (name, ty)) in self.fields.iter().enumerate() {
            let value = match row.field(index)? {
                None => Value::Null,
                Some(text) => field_value(ty, text).ok_or_else(|| {
                    SluiceError::Execution(format!("column {name}: '{text}' could not be read as {ty:?}"))
                })?,
            };
            payload.insert(name.clone(), value);
        }
        let value = match &self.schema {
            Some(schema) => json!({"schema": schema, "payload": payload}),
            None => Value::Object(payload),
        };
        Ok(serde_json::to_vec(&value)?)
    }
}

fn field_type(column: &Column, mapping: NumericMapping) -> FieldType {
    match column.kind {
        ColumnKind::Int16 => FieldType::Int16,
        ColumnKind::Int32 => FieldType::Int32,
        ColumnKind::Int64 => FieldType::Int64,
        ColumnKind::Float32 => FieldType::Float32,
        ColumnKind::Float64 => FieldType::Float64,
        ColumnKind::Boolean => FieldType::Boolean,
        ColumnKind::Bytes => FieldType::Bytes,
        ColumnKind::Date => FieldType::Date,
        ColumnKind::Time => FieldType::Time,
        ColumnKind::Timestamp | ColumnKind::TimestampTz => FieldType::Timestamp,
        ColumnKind::Numeric => match (column.numeric_precision_scale(), mapping) {
            (Some((precision, 0)), NumericMapping::PrecisionOnly | NumericMapping::BestFit) => match precision {
                0..=2 => FieldType::Int16,
                3..=9 => FieldType::Int32,
                10..=18 => FieldType::Int64,
                _ => FieldType::Decimal { scale: 0 },
            },
            (Some(_), NumericMapping::BestFit) | (None, _) => FieldType::Float64,
            (Some((_, scale)), _) => FieldType::Decimal { scale },
        },
        ColumnKind::Text | ColumnKind::Other => FieldType::String,
    }
}

fn field_schema(name: &str, ty: &FieldType, optional: bool) -> Value {
    let (type_name, logical) = match ty {
        FieldType::Int16 => ("int16", None),
        FieldType::Int32 => ("int32", None),
        FieldType::Int64 => ("int64", None),
        FieldType::Float32 => ("float", None),
        FieldType::Float64 => ("double", None),
        FieldType::Boolean => ("boolean", None),
        FieldType::String => ("string", None),
        FieldType::Bytes => ("bytes", None),
        FieldType::Decimal { .. } => ("bytes", Some(DECIMAL)),
        FieldType::Date => ("int32", Some(DATE)),
        FieldType::Time => ("int32", Some(TIME)),
        FieldType::Timestamp => ("int64", Some(TIMESTAMP)),
    };
    let mut schema = Map::new();
    schema.insert("type".into(), json!(type_name));
    schema.insert("optional".into(), json!(optional));
    if let Some(logical) = logical {
        schema.insert("name".into(), json!(logical));
        schema.insert("version".into(), json!(1));
    }
    if let FieldType::Decimal { scale } = ty {
        schema.insert("parameters".into(), json!({"scale": scale.to_string()}));
    }
    schema.insert("field".into(), json!(name));
    Value::Object(schema)
}

/// PostgreSQL's text for a value as the field's JSON; `None` when the text does not fit.
fn field_value(ty: &FieldType, text: &str) -> Option<Value> {
    Some(match ty {
        FieldType::Int16 | FieldType::Int32 | FieldType::Int64 => json!(text.parse::<i64>().ok()?),
        FieldType::Float32 | FieldType::Float64 => match text.parse::<f64>().ok()? {
            v if v.is_finite() => json!(v),
            _ => json!(text),
        },
        FieldType::Boolean => json!(text == "t"),
        FieldType::String => json!(text),
        FieldType::Bytes => json!(base64::engine::general_purpose::STANDARD.encode(bytea(text)?)),
        FieldType::Decimal { scale } => json!(base64::engine::general_purpose::STANDARD.encode(unscaled_bytes(text, *scale)?)),
        FieldType::Date => json!(days_since_epoch(text)?),
        FieldType::Time => {
            let time = NaiveTime::parse_from_str(text.split(['+', '-']).next()?, "%H:%M:%S%.f").ok()?;
            json!(time.num_seconds_from_midnight() * 1000 + time.nanosecond() / 1_000_000)
        }
        FieldType::Timestamp => json!(timestamp_micros(text)? / 1000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::postgres::CopyTextRows;

    fn column(name: &str, kind: ColumnKind, nullable: bool) -> Column {
        Column { name: name.to_string(), kind, modifier: -1, nullable }
    }

    fn values(writer: &RecordWriter, text: &[u8]) -> Vec<Value> {
        let mut out = Vec::new();
        CopyTextRows::default()
            .push(text, |row| {
                out.push(serde_json::from_slice(&writer.value(row)?).unwrap());
                Ok(())
            })
            .unwrap();
        out
    }

    #[test]
    fn the_seed_row_reads_as_the_confluent_connector_writes_it() {
        let columns = [
            column("id", ColumnKind::Int32, false),
            column("name", ColumnKind::Text, false),
            column("wattage", ColumnKind::Int32, false),
        ];
        let with_schema = RecordWriter::new(&columns, Some("telemetry"), NumericMapping::None, true);
        assert_eq!(
            serde_json::to_string(&values(&with_schema, b"1\tNode1\t75000\n")[0]).unwrap(),
            r#"{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":false,"field":"name"},{"type":"int32","optional":false,"field":"wattage"}],"optional":false,"name":"telemetry"},"payload":{"id":1,"name":"Node1","wattage":75000}}"#
        );
        let plain = RecordWriter::new(&columns, Some("telemetry"), NumericMapping::None, false);
        assert_eq!(values(&plain, b"1\tNode1\t75000\n")[0], json!({"id": 1, "name": "Node1", "wattage": 75000}));
    }

    #[test]
    fn logical_types_are_connects() {
        let mut price = column("price", ColumnKind::Numeric, true);
        price.modifier = ((8 << 16) | 2) + 4;
        let columns = [
            price,
            column("day", ColumnKind::Date, true),
            column("at", ColumnKind::Timestamp, true),
            column("raw", ColumnKind::Bytes, true),
            column("t", ColumnKind::Time, true),
        ];
        let writer = RecordWriter::new(&columns, None, NumericMapping::None, false);
        let row = &values(&writer, b"-1.50\t1970-01-11\t1970-01-01 00:00:01.5\t\\\\x0aff\t00:00:02.25\n")[0];
        assert_eq!(row["price"], json!("/2o="), "-150 unscaled is ff 6a");
        assert_eq!(row["day"], json!(10));
        assert_eq!(row["at"], json!(1500));
        assert_eq!(row["raw"], json!("Cv8="));
        assert_eq!(row["t"], json!(2250));
        assert_eq!(unscaled_bytes("1.50", 2).unwrap(), [0x00, 0x96]);
        assert_eq!(unscaled_bytes("127", 0).unwrap(), [0x7f]);
        assert_eq!(unscaled_bytes("-128", 0).unwrap(), [0x80]);
        assert_eq!(unscaled_bytes("0", 0).unwrap(), [0x00]);
    }
}
