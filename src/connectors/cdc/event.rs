//! Debezium's change events for PostgreSQL: each column typed as Debezium maps it by default
//! (`decimal.handling.mode=precise`, `time.precision.mode=adaptive`, `interval.handling.mode=numeric`,
//! one-dimensional arrays as arrays of their elements), the key as a struct of
//! the replica-identity columns, and the value in Debezium's envelope (`before`, `after`,
//! `source`, `op`, `ts_ms`), inside JsonConverter's `{"schema", "payload"}` when schemas are on.

use base64::Engine;
use chrono::{DateTime, NaiveTime, Timelike};
use serde_json::{Map, Value, json};

use super::pgoutput::Datum;
use crate::connectors::postgres::{array_elements, bytea, days_since_epoch, interval_micros, timestamp_micros, unscaled_bytes};

/// What Debezium writes for a TOASTed text value a change left as it was.
const UNAVAILABLE: &str = "__debezium_unavailable_value";

/// A table as change events describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableShape {
    pub schema: String,
    pub name: String,
    pub columns: Vec<ColumnShape>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnShape {
    pub name: String,
    pub type_oid: u32,
    pub type_modifier: i32,
    /// Part of the key (the replica identity).
    pub key: bool,
    pub optional: bool,
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Read by the snapshot.
    Read,
    Create,
    Update,
    Delete,
}

impl Op {
    fn code(self) -> &'static str {
        match self {
            Op::Read => "r",
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
        }
    }
}

/// Where a change came from: the `source` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// When the change was committed (the snapshot: when it was read), in epoch milliseconds.
    pub ts_ms: i64,
    /// `true`, `last` (the snapshot's last row) or `false`.
    pub snapshot: &'static str,
    /// The last committed transaction's end and this change's position, as Debezium's
    /// `sequence` holds them.
    pub sequence: Option<(u64, u64)>,
    pub tx_id: Option<i64>,
    pub lsn: Option<u64>,
}

/// How values and keys are written.
#[derive(Debug, Clone)]
pub struct EventWriter {
    /// `topic.prefix`, also the logical server name in `source.name`.
    pub prefix: String,
    pub database: String,
    pub key_schemas: bool,
    pub value_schemas: bool,
}

/// An LSN as PostgreSQL writes it (`16/B374D848`).
pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// An LSN's text as its number.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

impl EventWriter {
    /// `<topic.prefix>.<schema>.<table>`.
    pub fn topic(&self, table: &TableShape) -> String {
        format!("{}.{}.{}", self.prefix, table.schema, table.name)
    }

    /// The key of `row`: its key columns as a struct; `None` for a table without a key.
    pub fn key(&self, table: &TableShape, row: &[Datum]) -> Option<Vec<u8>> {
        let keys: Vec<(usize, &ColumnShape)> = table.columns.iter().enumerate().filter(|(_, c)| c.key).collect();
        if keys.is_empty() {
            return None;
        }
        let mut payload = Map::new();
        for (index, column) in &keys {
            payload.insert(column.name.clone(), datum_value(column, row.get(*index).unwrap_or(&Datum::Null)));
        }
        let payload = Value::Object(payload);
        let key = if self.key_schemas {
            let fields: Vec<Value> = keys.iter().map(|(_, c)| field_schema(c, false, &c.name)).collect();
            json!({
                "schema": {"type": "struct", "fields": fields, "optional": false, "name": format!("{}.Key", self.topic(table))},
                "payload": payload,
            })
        } else {
            payload
        };
        Some(serde_json::to_vec(&key).expect("JSON values serialize"))
    }

    /// The change event's value.
    pub fn value(&self, table: &TableShape, op: Op, before: Option<&[Datum]>, after: Option<&[Datum]>, origin: &Origin, now_ms: i64) -> Vec<u8> {
        let row = |datums: Option<&[Datum]>| match datums {
            None => Value::Null,
            Some(datums) => Value::Object(
                table
                    .columns
                    .iter()
                    .zip(datums.iter().chain(std::iter::repeat(&Datum::Null)))
                    .map(|(column, datum)| (column.name.clone(), datum_value(column, datum)))
                    .collect(),
            ),
        };
        let source = json!({
            "version": concat!("sluice-", env!("CARGO_PKG_VERSION")),
            "connector": "postgresql",
            "name": self.prefix,
            "ts_ms": origin.ts_ms,
            "snapshot": origin.snapshot,
            "db": self.database,
            "sequence": origin.sequence.map(|(last, this)| json!([last.to_string(), this.to_string()]).to_string()),
            "ts_us": origin.ts_ms * 1000,
            "ts_ns": origin.ts_ms * 1_000_000,
            "schema": table.schema,
            "table": table.name,
            "txId": origin.tx_id,
            "lsn": origin.lsn,
            "xmin": null,
        });
        let payload = json!({
            "before": row(before),
            "after": row(after),
            "source": source,
            "transaction": null,
            "op": op.code(),
            "ts_ms": now_ms,
            "ts_us": now_ms * 1000,
            "ts_ns": now_ms * 1_000_000,
        });
        let value = if self.value_schemas { json!({"schema": self.envelope_schema(table), "payload": payload}) } else { payload };
        serde_json::to_vec(&value).expect("JSON values serialize")
    }

    /// The Connect schema of a table's envelope.
    fn envelope_schema(&self, table: &TableShape) -> Value {
        let topic = self.topic(table);
        let row = |field: &str| {
            let fields: Vec<Value> = table.columns.iter().map(|c| field_schema(c, c.optional, &c.name)).collect();
            json!({"type": "struct", "fields": fields, "optional": true, "name": format!("{topic}.Value"), "field": field})
        };
        let plain = |ty: &str, optional: bool, field: &str| json!({"type": ty, "optional": optional, "field": field});
        let source = json!({
            "type": "struct",
            "fields": [
                plain("string", false, "version"),
                plain("string", false, "connector"),
                plain("string", false, "name"),
                plain("int64", false, "ts_ms"),
                {"type": "string", "optional": true, "name": "io.debezium.data.Enum", "version": 1,
                 "parameters": {"allowed": "true,last,false,incremental"}, "default": "false", "field": "snapshot"},
                plain("string", false, "db"),
                plain("string", true, "sequence"),
                plain("int64", true, "ts_us"),
                plain("int64", true, "ts_ns"),
                plain("string", false, "schema"),
                plain("string", false, "table"),
                plain("int64", true, "txId"),
                plain("int64", true, "lsn"),
                plain("int64", true, "xmin"),
            ],
            "optional": false,
            "name": "io.debezium.connector.postgresql.Source",
            "field": "source",
        });
        let transaction = json!({
            "type": "struct",
            "fields": [plain("string", false, "id"), plain("int64", false, "total_order"), plain("int64", false, "data_collection_order")],
            "optional": true,
            "name": "event.block",
            "version": 1,
            "field": "transaction",
        });
        json!({
            "type": "struct",
            "fields": [row("before"), row("after"), source, transaction, plain("string", false, "op"),
                       plain("int64", true, "ts_ms"), plain("int64", true, "ts_us"), plain("int64", true, "ts_ns")],
            "optional": false,
            "name": format!("{topic}.Envelope"),
            "version": 2,
        })
    }
}

/// A `numeric`'s declared precision and scale, when it has them.
fn numeric_shape(modifier: i32) -> Option<(i32, i32)> {
    (modifier >= 4).then(|| (((modifier - 4) >> 16) & 0xffff, (modifier - 4) & 0xffff))
}

/// A `timestamp`'s or `time`'s declared fractional digits (6 unless narrowed).
fn precision(modifier: i32) -> i32 {
    if modifier < 0 { 6 } else { modifier }
}

/// The element type of a one-dimensional array type Debezium maps to a Connect `ARRAY`.
fn array_element(type_oid: u32) -> Option<u32> {
    Some(match type_oid {
        1000 => 16,
        1001 => 17,
        1005 => 21,
        1007 => 23,
        1016 => 20,
        1021 => 700,
        1022 => 701,
        1009 => 25,
        1014 => 1042,
        1015 => 1043,
        1231 => 1700,
        1182 => 1082,
        1183 => 1083,
        1115 => 1114,
        1185 => 1184,
        1187 => 1186,
        199 => 114,
        3807 => 3802,
        2951 => 2950,
        _ => return None,
    })
}

/// An array column's elements as a column of their own (the array's modifier is theirs).
fn element_column(column: &ColumnShape, element_oid: u32) -> ColumnShape {
    ColumnShape { name: column.name.clone(), type_oid: element_oid, type_modifier: column.type_modifier, key: false, optional: true }
}

/// The Connect schema of a column's values, as Debezium types it.
fn field_schema(column: &ColumnShape, optional: bool, field: &str) -> Value {
    let named = |ty: &str, name: &str| json!({"type": ty, "optional": optional, "name": name, "version": 1, "field": field});
    if let Some(element) = array_element(column.type_oid) {
        let mut items = field_schema(&element_column(column, element), true, "");
        if let Some(items) = items.as_object_mut() {
            items.remove("field");
        }
        return json!({"type": "array", "items": items, "optional": optional, "field": field});
    }
    match column.type_oid {
        16 => json!({"type": "boolean", "optional": optional, "field": field}),
        21 => json!({"type": "int16", "optional": optional, "field": field}),
        23 => json!({"type": "int32", "optional": optional, "field": field}),
        20 | 26 => json!({"type": "int64", "optional": optional, "field": field}),
        700 => json!({"type": "float", "optional": optional, "field": field}),
        701 => json!({"type": "double", "optional": optional, "field": field}),
        17 => json!({"type": "bytes", "optional": optional, "field": field}),
        1700 => match numeric_shape(column.type_modifier) {
            Some((digits, scale)) => json!({
                "type": "bytes", "optional": optional, "name": "org.apache.kafka.connect.data.Decimal", "version": 1,
                "parameters": {"scale": scale.to_string(), "connect.decimal.precision": digits.to_string()}, "field": field,
            }),
            None => json!({
                "type": "struct",
                "fields": [{"type": "int32", "optional": false, "field": "scale"}, {"type": "bytes", "optional": false, "field": "value"}],
                "optional": optional, "name": "io.debezium.data.VariableScaleDecimal", "version": 1,
                "doc": "Variable scaled decimal", "field": field,
            }),
        },
        1082 => named("int32", "io.debezium.time.Date"),
        1083 if precision(column.type_modifier) <= 3 => named("int32", "io.debezium.time.Time"),
        1083 => named("int64", "io.debezium.time.MicroTime"),
        1114 if precision(column.type_modifier) <= 3 => named("int64", "io.debezium.time.Timestamp"),
        1114 => named("int64", "io.debezium.time.MicroTimestamp"),
        1184 => named("string", "io.debezium.time.ZonedTimestamp"),
        1186 => named("int64", "io.debezium.time.MicroDuration"),
        114 | 3802 => named("string", "io.debezium.data.Json"),
        2950 => named("string", "io.debezium.data.Uuid"),
        _ => json!({"type": "string", "optional": optional, "field": field}),
    }
}

/// A column's value as Debezium writes it; text that does not read as its type is kept as text.
fn datum_value(column: &ColumnShape, datum: &Datum) -> Value {
    match datum {
        Datum::Null => Value::Null,
        Datum::Unchanged if field_schema(column, true, "")["type"] == "string" => json!(UNAVAILABLE),
        Datum::Unchanged => Value::Null,
        Datum::Text(text) => typed(column, text).unwrap_or_else(|| json!(text)),
    }
}

fn typed(column: &ColumnShape, text: &str) -> Option<Value> {
    let base64 = |bytes: Vec<u8>| json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    if let Some(element) = array_element(column.type_oid) {
        let element = element_column(column, element);
        let values = array_elements(text)?
            .iter()
            .map(|e| e.as_deref().map_or(Some(Value::Null), |text| typed(&element, text)))
            .collect::<Option<Vec<Value>>>()?;
        return Some(Value::Array(values));
    }
    Some(match column.type_oid {
        16 => json!(text == "t"),
        21 | 23 | 20 | 26 => json!(text.parse::<i64>().ok()?),
        700 | 701 => json!(text.parse::<f64>().ok().filter(|v| v.is_finite())?),
        17 => base64(bytea(text)?),
        1700 => match numeric_shape(column.type_modifier) {
            Some((_, scale)) => base64(unscaled_bytes(text, scale as u32)?),
            None => {
                let scale = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
                json!({"scale": scale, "value": base64(unscaled_bytes(text, scale as u32)?)})
            }
        },
        1082 => json!(days_since_epoch(text)?),
        1083 => {
            let time = NaiveTime::parse_from_str(text, "%H:%M:%S%.f").ok()?;
            let micros = i64::from(time.num_seconds_from_midnight()) * 1_000_000 + i64::from(time.nanosecond() / 1000);
            if precision(column.type_modifier) <= 3 { json!(micros / 1000) } else { json!(micros) }
        }
        1114 => {
            let micros = timestamp_micros(text)?;
            if precision(column.type_modifier) <= 3 { json!(micros.div_euclid(1000)) } else { json!(micros) }
        }
        1186 => json!(interval_micros(text)?),
        1184 => {
            // Java's ISO_OFFSET_DATE_TIME: as many fractional digits as the value needs.
            let at = DateTime::from_timestamp_micros(timestamp_micros(text)?)?;
            let fraction = format!("{:06}", at.timestamp_subsec_micros());
            let fraction = fraction.trim_end_matches('0');
            let dot = if fraction.is_empty() { "" } else { "." };
            json!(format!("{}{dot}{fraction}Z", at.format("%Y-%m-%dT%H:%M:%S")))
        }
        _ => json!(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, type_oid: u32, type_modifier: i32, key: bool, optional: bool) -> ColumnShape {
        ColumnShape { name: name.into(), type_oid, type_modifier, key, optional }
    }

    fn telemetry() -> TableShape {
        TableShape {
            schema: "public".into(),
            name: "telemetry".into(),
            columns: vec![column("id", 23, -1, true, false), column("name", 1043, 259, false, false), column("wattage", 23, -1, false, false)],
        }
    }

    fn text(values: &[&str]) -> Vec<Datum> {
        values.iter().map(|v| Datum::Text(v.to_string())).collect()
    }

    #[test]
    fn an_insert_is_debeziums_envelope() {
        let writer = EventWriter { prefix: "grid".into(), database: "telemetry".into(), key_schemas: false, value_schemas: false };
        let table = telemetry();
        assert_eq!(writer.topic(&table), "grid.public.telemetry");
        let row = text(&["5", "Node5", "70000"]);
        assert_eq!(writer.key(&table, &row).unwrap(), br#"{"id":5}"#);
        let origin = Origin { ts_ms: 1000, snapshot: "false", sequence: Some((10, 20)), tx_id: Some(742), lsn: Some(20) };
        let value: Value = serde_json::from_slice(&writer.value(&table, Op::Create, None, Some(&row), &origin, 2000)).unwrap();
        assert_eq!(value["before"], Value::Null);
        assert_eq!(value["after"], json!({"id": 5, "name": "Node5", "wattage": 70000}));
        assert_eq!(value["op"], "c");
        assert_eq!(value["ts_ms"], 2000);
        assert_eq!(value["source"]["connector"], "postgresql");
        assert_eq!(value["source"]["name"], "grid");
        assert_eq!(value["source"]["db"], "telemetry");
        assert_eq!(value["source"]["table"], "telemetry");
        assert_eq!(value["source"]["txId"], 742);
        assert_eq!(value["source"]["sequence"], r#"["10","20"]"#);
    }

    #[test]
    fn schemas_describe_key_and_envelope() {
        let writer = EventWriter { prefix: "grid".into(), database: "telemetry".into(), key_schemas: true, value_schemas: true };
        let table = telemetry();
        let key: Value = serde_json::from_slice(&writer.key(&table, &text(&["1", "a", "2"])).unwrap()).unwrap();
        assert_eq!(
            key,
            json!({"schema": {"type": "struct", "fields": [{"type": "int32", "optional": false, "field": "id"}], "optional": false,
                   "name": "grid.public.telemetry.Key"}, "payload": {"id": 1}})
        );
        let origin = Origin { ts_ms: 1, snapshot: "last", sequence: None, tx_id: None, lsn: None };
        let value: Value = serde_json::from_slice(&writer.value(&table, Op::Read, None, Some(&text(&["1", "a", "2"])), &origin, 2)).unwrap();
        assert_eq!(value["schema"]["name"], "grid.public.telemetry.Envelope");
        assert_eq!(value["schema"]["fields"][1]["name"], "grid.public.telemetry.Value");
        assert_eq!(value["schema"]["fields"][1]["fields"][1], json!({"type": "string", "optional": false, "field": "name"}));
        assert_eq!(value["payload"]["op"], "r");
        assert_eq!(value["payload"]["source"]["snapshot"], "last");
    }

    #[test]
    fn values_are_typed_as_debezium_types_them() {
        let price = column("price", 1700, ((10 << 16) | 2) + 4, false, true);
        assert_eq!(typed(&price, "-1.50").unwrap(), json!("/2o="));
        let free = column("ratio", 1700, -1, false, true);
        assert_eq!(typed(&free, "1.5").unwrap(), json!({"scale": 1, "value": "Dw=="}));
        assert_eq!(typed(&column("d", 1082, -1, false, true), "1970-01-11").unwrap(), json!(10));
        assert_eq!(typed(&column("t", 1114, -1, false, true), "1970-01-01 00:00:01.5").unwrap(), json!(1_500_000));
        assert_eq!(typed(&column("t", 1114, 3, false, true), "1970-01-01 00:00:01.5").unwrap(), json!(1500));
        assert_eq!(typed(&column("z", 1184, -1, false, true), "2026-12-07 10:00:00.25+00").unwrap(), json!("2026-12-07T10:00:00.25Z"));
        assert_eq!(typed(&column("z", 1184, -1, false, true), "2026-12-07 10:00:00+00").unwrap(), json!("2026-12-07T10:00:00Z"));
        assert_eq!(typed(&column("b", 16, -1, false, true), "t").unwrap(), json!(true));
        assert_eq!(typed(&column("raw", 17, -1, false, true), "\\x0aff").unwrap(), json!("Cv8="));
        assert_eq!(typed(&column("time", 1083, -1, false, true), "00:00:02.25").unwrap(), json!(2_250_000));
        assert_eq!(typed(&column("i", 1186, -1, false, true), "00:00:01.5").unwrap(), json!(1_500_000));
        assert_eq!(typed(&column("a", 1007, -1, false, true), "{1,NULL,3}").unwrap(), json!([1, null, 3]));
        assert_eq!(typed(&column("a", 1009, -1, false, true), r#"{a,"b c"}"#).unwrap(), json!(["a", "b c"]));
        assert_eq!(typed(&column("a", 1182, -1, false, true), "{1970-01-11}").unwrap(), json!([10]));
        assert_eq!(
            field_schema(&column("a", 1007, -1, false, true), true, "a"),
            json!({"type": "array", "items": {"type": "int32", "optional": true}, "optional": true, "field": "a"})
        );
        assert_eq!(field_schema(&column("i", 1186, -1, false, false), false, "i")["name"], "io.debezium.time.MicroDuration");
        assert_eq!(datum_value(&column("s", 25, -1, false, true), &Datum::Unchanged), json!(UNAVAILABLE));
        assert_eq!(datum_value(&column("n", 23, -1, false, true), &Datum::Unchanged), Value::Null);
    }

    #[test]
    fn lsns_read_and_write_as_postgresql_does() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(lsn_text(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("nonsense"), None);
    }
}
