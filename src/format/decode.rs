//! Decoding a batch of records into one Arrow batch; a record that does not fit is set aside.

mod headers;
mod nested;

use std::{borrow::Cow, fmt, ops::Range, sync::Arc};

use arrow::{
    array::{
        ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int32Builder,
        Int64Builder, RecordBatch, StringBuilder, Time32MillisecondBuilder, TimestampMillisecondBuilder,
    },
    datatypes::SchemaRef,
};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{RawRecord, WindowKey};
use crate::{
    catalog::{Format, SourceDef, SourceWindow, types::SqlType},
    error::{Result, SluiceError},
    java_time::{Pattern, Zone},
    parser::HeaderColumn,
};

/// The decoded rows of a batch and the records that could not be decoded.
pub struct DecodedBatch {
    /// Rows in the stream's row schema (declared columns, then pseudo-columns).
    pub batch: RecordBatch,
    /// For each row, the index of its record in the input.
    pub rows: Vec<usize>,
    /// Records that were skipped, by index, with the reason.
    pub errors: Vec<(usize, String)>,
    /// For each row, whether its record had no value: a table's tombstone, a stream's null row.
    /// Its value columns are NULL. Empty when no record of the batch lacked one.
    pub no_value: Vec<bool>,
    /// Every decoded record's value is as Sluice would write its columns again (see
    /// [`RecordDecoder::canonical`]): a query passing the columns on unchanged may forward it.
    pub canonical: bool,
}

/// Decodes records of one stream. Built once per stream, reused for every batch.
pub struct RecordDecoder {
    schema: SchemaRef,
    columns: Vec<ColumnSpec>,
    key_format: Format,
    value_format: Format,
    delimiter: u8,
    key_delimiter: u8,
    timestamp_column: Option<usize>,
    /// `TIMESTAMP_FORMAT`: how a STRING timestamp column is read.
    timestamp_pattern: Option<Pattern>,
    /// A table's rows are identified by their key: a record without one is skipped.
    keyed: bool,
    /// A windowed table's keys end with their window.
    window: Option<SourceWindow>,
    /// `WRAP_SINGLE_VALUE=false`: the value is the one value column's own, even a JSON object.
    unwrapped: bool,
    /// Whether a record's value can be as Sluice (and ksqlDB) would write its columns: always
    /// in the KAFKA format; in JSON, for an object of primitive columns only, checked per record.
    canonical: bool,
}

struct ColumnSpec {
    name: String,
    data_type: SqlType,
    key: bool,
    header: Option<HeaderColumn>,
}

impl ColumnSpec {
    /// Read from the record's value.
    fn in_value(&self) -> bool {
        !self.key && self.header.is_none()
    }
}

/// One decoded value, borrowing from the record where it can.
#[derive(Debug, Clone, PartialEq)]
enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
    /// A JSON string with escapes, unescaped into the record's scratch text at this range.
    Unescaped(Range<usize>),
    /// A JSON array or object, checked against its column's ARRAY, MAP or STRUCT type.
    Nested(serde_json::Value),
}

impl RecordDecoder {
    pub fn new(stream: &SourceDef) -> Result<Self> {
        for column in stream.columns.iter().filter(|c| c.header.is_none()) {
            let format = if column.key { stream.key_format } else { stream.value_format };
            if column.data_type.is_nested() && format != Format::Json {
                return Err(SluiceError::NotImplemented(format!(
                    "decoding {} {} columns in the {} format ({})",
                    column.data_type,
                    if column.key { "key" } else { "value" },
                    format.name(),
                    column.name
                )));
            }
        }
        let columns: Vec<ColumnSpec> = stream
            .columns
            .iter()
            .map(|c| ColumnSpec {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
                key: c.key,
                header: c.header.clone(),
            })
            .collect();
        let canonical = match stream.value_format {
            Format::Kafka => true,
            Format::Json => {
                stream.wrap_single_value && columns.iter().filter(|c| c.in_value()).all(|c| native_json_kind(&c.data_type).is_some())
            }
            Format::Delimited | Format::None => false,
        };
        let timestamp_column = stream
            .timestamp_column
            .as_ref()
            .and_then(|ts| columns.iter().position(|c| &c.name == ts));
        Ok(Self {
            schema: stream.row_schema(),
            columns,
            key_format: stream.key_format,
            value_format: stream.value_format,
            delimiter: stream.value_delimiter,
            key_delimiter: stream.key_delimiter,
            timestamp_column,
            timestamp_pattern: stream
                .timestamp_format
                .as_deref()
                .map(Pattern::parse)
                .transpose()
                .map_err(|e| SluiceError::Plan(format!("Invalid TIMESTAMP_FORMAT: {e}")))?,
            keyed: stream.is_table(),
            window: stream.window,
            unwrapped: !stream.wrap_single_value,
            canonical,
        })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn decode(&self, records: &[RawRecord<'_>]) -> Result<DecodedBatch> {
        let mut builders: Vec<Builder> = self
            .columns
            .iter()
            .map(|c| Builder::new(&c.data_type, records.len()))
            .collect();
        let mut rowtime = Int64Builder::with_capacity(records.len());
        let mut partition = Int32Builder::with_capacity(records.len());
        let mut offset = Int64Builder::with_capacity(records.len());
        let mut window_bounds = self.window.map(|_| (Int64Builder::new(), Int64Builder::new()));
        let mut rows = Vec::with_capacity(records.len());
        let mut errors = Vec::new();
        let mut no_value: Option<Vec<bool>> = None;
        let mut cells: Vec<Cell> = Vec::with_capacity(self.columns.len());
        let mut scratch = String::new();
        let mut canonical = self.canonical;
        for (index, record) in records.iter().enumerate() {
            if self.keyed && record.key.is_none() {
                errors.push((index, "the record has no key, and a table's rows are identified by their key".into()));
                continue;
            }
            let mut record = *record;
            let mut window = None;
            if let (Some(shape), Some(key)) = (self.window, record.key) {
                let Some((own, bounds)) = WindowKey::split(key, shape.session, shape.size_ms.unwrap_or(0)) else {
                    errors.push((index, "the key is too short to hold a window".into()));
                    continue;
                };
                record.key = Some(own);
                window = Some(bounds);
            }
            if record.value.is_none() && no_value.is_none() {
                no_value = Some(vec![false; rows.len()]);
            }
            cells.clear();
            cells.resize(self.columns.len(), Cell::Null);
            scratch.clear();
            let mut exact = true;
            if let Err(reason) = self.decode_record(&record, &mut cells, &mut scratch, &mut exact) {
                errors.push((index, reason));
                continue;
            }
            canonical &= exact;
            let mut failed = None;
            for (column, cell) in self.columns.iter().zip(&cells) {
                if let Err(reason) = check_range(&column.data_type, cell) {
                    failed = Some(format!("column {}: {reason}", column.name));
                    break;
                }
            }
            if let Some(reason) = failed {
                errors.push((index, reason));
                continue;
            }
            let time = match self.row_time(&cells, &scratch) {
                Ok(time) => time.unwrap_or(record.timestamp),
                Err(reason) => {
                    errors.push((index, reason));
                    continue;
                }
            };
            for (builder, cell) in builders.iter_mut().zip(cells.drain(..)) {
                builder.append(cell, &scratch);
            }
            rowtime.append_value(time);
            partition.append_value(record.partition);
            offset.append_value(record.offset);
            if let Some((starts, ends)) = window_bounds.as_mut() {
                let window = window.unwrap_or(WindowKey { start: 0, end: 0, session: false });
                starts.append_value(window.start);
                ends.append_value(window.end);
            }
            rows.push(index);
            if let Some(no_value) = no_value.as_mut() {
                no_value.push(record.value.is_none());
            }
        }
        let mut arrays: Vec<ArrayRef> = builders.into_iter().map(Builder::finish).collect();
        for (i, column) in self.columns.iter().enumerate() {
            if let Some(header) = &column.header {
                arrays[i] = headers::column(header, rows.iter().map(|r| records[*r].headers));
            }
        }
        arrays.push(Arc::new(rowtime.finish()));
        arrays.push(Arc::new(partition.finish()));
        arrays.push(Arc::new(offset.finish()));
        if let Some((mut starts, mut ends)) = window_bounds {
            arrays.push(Arc::new(starts.finish()));
            arrays.push(Arc::new(ends.finish()));
        }
        Ok(DecodedBatch {
            batch: RecordBatch::try_new(self.schema.clone(), arrays)?,
            rows,
            errors,
            no_value: no_value.unwrap_or_default(),
            canonical,
        })
    }

    /// The record's time from its timestamp column, if it has one holding a value: epoch
    /// milliseconds, or a STRING read in `TIMESTAMP_FORMAT`.
    fn row_time(&self, cells: &[Cell<'_>], scratch: &str) -> Result<Option<i64>, String> {
        let Some(column) = self.timestamp_column else { return Ok(None) };
        let name = &self.columns[column].name;
        // Kafka carries no timestamp before the epoch: the record is skipped, as ksqlDB's
        // LogAndSkipOnInvalidTimestamp skips it.
        let checked = |millis: i64| match millis {
            0.. => Ok(Some(millis)),
            _ => Err(format!("the timestamp column {name} holds {millis}, before the epoch: a record's timestamp cannot be negative")),
        };
        let text = match &cells[column] {
            Cell::Int(ms) => return checked(*ms),
            Cell::Text(text) => text.as_ref(),
            Cell::Unescaped(range) => &scratch[range.clone()],
            _ => return Ok(None),
        };
        let Some(pattern) = &self.timestamp_pattern else { return Ok(None) };
        let instant = pattern
            .parse_instant(text, &Zone::UTC)
            .map_err(|e| format!("Failed to read the timestamp column {name} ('{text}') in its TIMESTAMP_FORMAT: {e}"))?;
        checked(instant.timestamp_millis())
    }

    /// Decodes one record into `cells`; clears `exact` when its JSON value is not as Sluice
    /// would write the columns again.
    fn decode_record<'a>(
        &self,
        record: &RawRecord<'a>,
        cells: &mut [Cell<'a>],
        scratch: &mut String,
        exact: &mut bool,
    ) -> Result<(), String> {
        if let Some(key) = record.key {
            self.decode_key(key, cells, scratch)?;
        }
        let Some(value) = record.value else {
            // Every value column stays NULL; `DecodedBatch::no_value` marks the row.
            return Ok(());
        };
        match self.value_format {
            Format::Json => self.decode_json(value, cells, scratch, exact),
            Format::Kafka => {
                if let Some(i) = self.columns.iter().position(ColumnSpec::in_value) {
                    cells[i] = kafka_cell(&self.columns[i].data_type, value)?;
                }
                Ok(())
            }
            Format::Delimited => self.decode_delimited(value, cells),
            Format::None => Ok(()),
        }
    }

    /// The key columns from the record's key in the key format: KAFKA (one column), JSON (one
    /// column's value, or an object of several) or DELIMITED (fields separated by `KEY_DELIMITER`).
    fn decode_key<'a>(&self, key: &'a [u8], cells: &mut [Cell<'a>], scratch: &mut String) -> Result<(), String> {
        let keys: Vec<usize> = (0..self.columns.len()).filter(|i| self.columns[*i].key).collect();
        let text = || std::str::from_utf8(key).map_err(|e| format!("the key is not UTF-8 text ({e})"));
        match (self.key_format, keys.as_slice()) {
            (_, []) => {}
            (Format::Kafka, [i]) => cells[*i] = kafka_cell(&self.columns[*i].data_type, key)?,
            (Format::Json, [i]) => {
                let raw: &RawValue = serde_json::from_str(text()?).map_err(|e| format!("Invalid JSON key: {e}"))?;
                cells[*i] = json_cell(&self.columns[*i].data_type, raw, scratch)?;
            }
            (Format::Json, _) => {
                let object: std::collections::HashMap<&str, &RawValue> =
                    serde_json::from_str(text()?).map_err(|e| format!("Invalid JSON key: {e}"))?;
                for i in keys {
                    let column = &self.columns[i];
                    if let Some((_, raw)) = object.iter().find(|(name, _)| name.eq_ignore_ascii_case(&column.name)) {
                        cells[i] = json_cell(&column.data_type, raw, scratch)?;
                    }
                }
            }
            (Format::Delimited, _) => {
                let fields = split_delimited(text()?, self.key_delimiter as char);
                if fields.len() != keys.len() {
                    return Err(format!("Unexpected field count in the key, csvFields:{} schemaFields:{}", fields.len(), keys.len()));
                }
                for (i, field) in keys.into_iter().zip(fields) {
                    cells[i] = if field.is_empty() { Cell::Null } else { text_cell(&self.columns[i].data_type, field)? };
                }
            }
            (Format::Kafka, _) => return Err("the KAFKA format holds one key column".into()),
            (Format::None, _) => {}
        }
        Ok(())
    }

    fn decode_json<'a>(
        &self,
        value: &'a [u8],
        cells: &mut [Cell<'a>],
        scratch: &mut String,
        exact: &mut bool,
    ) -> Result<(), String> {
        // Validated once here, so serde_json's text reader checks no string's UTF-8 again.
        let value = std::str::from_utf8(value).map_err(|e| format!("Invalid JSON: the value is not UTF-8 text ({e})"))?;
        let mut deserializer = serde_json::Deserializer::from_str(value);
        let single_value = self.columns.iter().filter(|c| c.in_value()).count() == 1;
        let first = value.bytes().find(|b| !b.is_ascii_whitespace());
        if first == Some(b'{') && !self.unwrapped {
            let mut matched = 0;
            deserializer
                .deserialize_map(RowVisitor {
                    decoder: self,
                    cells,
                    scratch,
                    exact: &mut *exact,
                    matched: &mut matched,
                })
                .map_err(|e| format!("Invalid JSON: {e}"))?;
            // A missing field is written back as an explicit null.
            *exact &= matched == self.columns.iter().filter(|c| c.in_value()).count();
            deserializer.end().map_err(|e| format!("Invalid JSON: {e}"))
        } else if single_value {
            *exact = false;
            let i = self.columns.iter().position(ColumnSpec::in_value).unwrap_or(0);
            let raw: &RawValue = serde_json::from_str(value).map_err(|e| format!("Invalid JSON: {e}"))?;
            cells[i] = json_cell(&self.columns[i].data_type, raw, scratch)?;
            Ok(())
        } else {
            Err("Invalid JSON: expected a JSON object for the record's value".into())
        }
    }

    fn decode_delimited<'a>(&self, value: &'a [u8], cells: &mut [Cell<'a>]) -> Result<(), String> {
        let text = std::str::from_utf8(value).map_err(|_| "the value is not UTF-8".to_string())?;
        let fields = split_delimited(text, self.delimiter as char);
        let value_columns: Vec<usize> = (0..self.columns.len()).filter(|i| self.columns[*i].in_value()).collect();
        if fields.len() != value_columns.len() {
            return Err(format!(
                "Unexpected field count, csvFields:{} schemaFields:{}",
                fields.len(),
                value_columns.len()
            ));
        }
        for (i, field) in value_columns.into_iter().zip(fields) {
            cells[i] = if field.is_empty() {
                Cell::Null
            } else {
                text_cell(&self.columns[i].data_type, field)?
            };
        }
        Ok(())
    }
}

/// Splits one delimited line, honouring double quotes as RFC 4180 does.
fn split_delimited(line: &str, delimiter: char) -> Vec<Cow<'_, str>> {
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                if c == '"' {
                    if chars.peek().is_some_and(|(_, n)| *n == '"') {
                        value.push('"');
                        chars.next();
                    } else {
                        end = i + 1;
                        break;
                    }
                } else {
                    value.push(c);
                }
            }
            fields.push(Cow::Owned(value));
            rest = &quoted[end..];
            match rest.strip_prefix(delimiter) {
                Some(next) => rest = next,
                None => break,
            }
        } else {
            match rest.find(delimiter) {
                Some(i) => {
                    fields.push(Cow::Borrowed(&rest[..i]));
                    rest = &rest[i + delimiter.len_utf8()..];
                }
                None => {
                    fields.push(Cow::Borrowed(rest.trim_end_matches(['\r', '\n'])));
                    break;
                }
            }
        }
    }
    fields
}

struct RowVisitor<'d, 'c, 'a> {
    decoder: &'d RecordDecoder,
    cells: &'c mut [Cell<'a>],
    scratch: &'c mut String,
    /// Cleared by a field whose name differs in case from its column's, a field no column
    /// reads (both are not written again), or a value of another JSON kind than its column's.
    exact: &'c mut bool,
    /// Fields that matched a column.
    matched: &'c mut usize,
}

impl<'de, 'd, 'c> Visitor<'de> for RowVisitor<'d, 'c, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            let column = self
                .decoder
                .columns
                .iter()
                .position(|c| c.in_value() && c.name.eq_ignore_ascii_case(&key));
            match column {
                Some(i) => {
                    let raw: &'de RawValue = map.next_value()?;
                    let column = &self.decoder.columns[i];
                    *self.matched += 1;
                    *self.exact &= column.name == key && is_native_json(&column.data_type, raw.get());
                    self.cells[i] = json_cell(&column.data_type, raw, self.scratch).map_err(de::Error::custom)?;
                }
                None => {
                    *self.exact = false;
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The kinds of JSON a column of `data_type` is written as: how its value's text starts, and
/// whether a number holds a fraction or an exponent. `None` for types written in forms a
/// value may not be in already (DECIMAL's scale, nested types' field names).
fn native_json_kind(data_type: &SqlType) -> Option<(&'static [u8], Option<bool>)> {
    const NUMBER: &[u8] = b"-0123456789";
    Some(match data_type {
        SqlType::Boolean => (b"tf", None),
        SqlType::Integer | SqlType::Bigint | SqlType::Timestamp | SqlType::Date | SqlType::Time => (NUMBER, Some(false)),
        SqlType::Double => (NUMBER, Some(true)),
        SqlType::String | SqlType::Bytes => (b"\"", None),
        SqlType::Decimal { .. } | SqlType::Array(_) | SqlType::Map(_) | SqlType::Struct(_) => return None,
    })
}

/// Whether the JSON text `raw` is null or of the kind a column of `data_type` is written as.
fn is_native_json(data_type: &SqlType, raw: &str) -> bool {
    let Some((starts, fractional)) = native_json_kind(data_type) else { return false };
    let Some(first) = raw.bytes().next() else { return false };
    if first == b'n' {
        return true;
    }
    starts.contains(&first) && fractional.is_none_or(|fractional| raw.contains(['.', 'e', 'E']) == fractional)
}

/// Converts one JSON value to a cell of the column's type, coercing as ksqlDB does. A STRING
/// with escapes is unescaped into `scratch`, so decoding allocates nothing per record.
fn json_cell<'a>(data_type: &SqlType, raw: &'a RawValue, scratch: &mut String) -> Result<Cell<'a>, String> {
    let text = raw.get();
    let first = text.as_bytes().first().copied().unwrap_or(b'n');
    if text == "null" {
        return Ok(Cell::Null);
    }
    if data_type.is_nested() {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        nested::check(data_type, &value)?;
        return Ok(Cell::Nested(value));
    }
    match data_type {
        SqlType::String => Ok(match first {
            b'"' if text.contains('\\') => {
                let start = scratch.len();
                unescape(&text[1..text.len() - 1], scratch)?;
                Cell::Unescaped(start..scratch.len())
            }
            b'"' => Cell::Text(Cow::Borrowed(&text[1..text.len() - 1])),
            _ => Cell::Text(Cow::Borrowed(text)),
        }),
        _ => match first {
            b'"' => text_cell(data_type, json_string(text)?),
            b't' | b'f' if *data_type == SqlType::Boolean => Ok(Cell::Bool(first == b't')),
            b'-' | b'0'..=b'9' if matches!(data_type, SqlType::Integer | SqlType::Bigint) && text.contains(['.', 'e', 'E']) => {
                whole_part(text).map(Cell::Int)
            }
            b'-' | b'0'..=b'9' => text_cell(data_type, Cow::Borrowed(text)),
            _ => Err(format!("cannot read {text} as {data_type}")),
        },
    }
}

/// A JSON number with a fraction or an exponent read into a whole-number column: truncated
/// towards zero, as ksqlDB's reader takes a number node's `longValue()`.
fn whole_part(number: &str) -> Result<i64, String> {
    let out_of_range = || format!("{number} does not fit a BIGINT");
    if !number.contains(['e', 'E']) {
        let whole = number.split('.').next().unwrap_or_default();
        return whole.parse::<i64>().map_err(|_| out_of_range());
    }
    let value: f64 = number.parse().map_err(|_| format!("cannot read {number} as a number"))?;
    let whole = value.trunc();
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&whole) { Ok(whole as i64) } else { Err(out_of_range()) }
}

/// Appends the content of a JSON string literal (without its quotes; already validated by the
/// parser) to `out`, unescaped.
fn unescape(escaped: &str, out: &mut String) -> Result<(), String> {
    let mut rest = escaped;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let mut chars = rest[at + 1..].chars();
        let code = chars.next().ok_or("a JSON string ends in a lone backslash")?;
        let mut consumed = 1 + code.len_utf8();
        match code {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'u' => {
                let unit = |at: usize| -> Result<u32, String> {
                    rest.get(at..at + 4)
                        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                        .ok_or_else(|| "a JSON string has a bad \\u escape".to_string())
                };
                let high = unit(at + 2)?;
                consumed = 6;
                let scalar = if (0xD800..0xDC00).contains(&high) && rest[at + 6..].starts_with("\\u") {
                    let low = unit(at + 8)?;
                    consumed = 12;
                    0x10000 + ((high - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF)
                } else {
                    high
                };
                out.push(char::from_u32(scalar).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            other => out.push(other),
        }
        rest = &rest[at + consumed..];
    }
    out.push_str(rest);
    Ok(())
}

/// A JSON string literal's content, unescaped only when it has escapes.
fn json_string(literal: &str) -> Result<Cow<'_, str>, String> {
    let inner = &literal[1..literal.len() - 1];
    if inner.contains('\\') {
        let mut text = String::new();
        unescape(inner, &mut text)?;
        Ok(Cow::Owned(text))
    } else {
        Ok(Cow::Borrowed(inner))
    }
}

/// Reads text (a delimited field, a quoted JSON number, a JSON number) as the column's type;
/// BYTES are base64, as ksqlDB writes them in JSON and DELIMITED.
fn text_cell<'a>(data_type: &SqlType, text: Cow<'a, str>) -> Result<Cell<'a>, String> {
    let trimmed = text.trim();
    let fail = || format!("cannot read '{trimmed}' as {data_type}");
    Ok(match data_type {
        SqlType::String => Cell::Text(text),
        SqlType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
            "true" => Cell::Bool(true),
            "false" => Cell::Bool(false),
            _ => return Err(fail()),
        },
        SqlType::Integer | SqlType::Bigint | SqlType::Timestamp | SqlType::Date | SqlType::Time => {
            Cell::Int(trimmed.parse::<i64>().map_err(|_| fail())?)
        }
        SqlType::Double => Cell::Float(trimmed.parse::<f64>().map_err(|_| fail())?),
        SqlType::Decimal { .. } => {
            trimmed.parse::<f64>().map_err(|_| fail())?;
            Cell::Text(text)
        }
        SqlType::Bytes => {
            use base64::Engine;
            Cell::Bytes(Cow::Owned(
                base64::engine::general_purpose::STANDARD.decode(trimmed).map_err(|_| fail())?,
            ))
        }
        SqlType::Array(_) | SqlType::Map(_) | SqlType::Struct(_) => return Err(fail()),
    })
}

/// Reads a key or value in the KAFKA format: UTF-8 text, raw bytes or big-endian numbers.
fn kafka_cell<'a>(data_type: &SqlType, bytes: &'a [u8]) -> Result<Cell<'a>, String> {
    let sized = |n: usize| -> Result<&[u8], String> {
        if bytes.len() == n {
            Ok(bytes)
        } else {
            Err(format!("expected {n} bytes for a KAFKA {data_type}, found {}", bytes.len()))
        }
    };
    Ok(match data_type {
        SqlType::String => Cell::Text(String::from_utf8_lossy(bytes)),
        SqlType::Bytes => Cell::Bytes(Cow::Borrowed(bytes)),
        SqlType::Integer => Cell::Int(i32::from_be_bytes(sized(4)?.try_into().unwrap_or_default()) as i64),
        SqlType::Bigint => {
            Cell::Int(i64::from_be_bytes(sized(8)?.try_into().unwrap_or_default()))
        }
        SqlType::Double => Cell::Float(f64::from_be_bytes(sized(8)?.try_into().unwrap_or_default())),
        other => return Err(format!("the KAFKA format cannot hold {other}")),
    })
}

/// Checks a cell fits its column (an INTEGER, DATE or TIME must fit 32 bits, a DECIMAL its
/// precision).
fn check_range(data_type: &SqlType, cell: &Cell) -> Result<(), String> {
    match (data_type, cell) {
        (SqlType::Integer | SqlType::Date | SqlType::Time, Cell::Int(v)) if i32::try_from(*v).is_err() => {
            Err(format!("{v} does not fit {}", if *data_type == SqlType::Integer { "an INTEGER" } else { "a DATE or TIME" }))
        }
        (SqlType::Decimal { precision, scale }, Cell::Text(t)) => {
            decimal_value(t, *precision, *scale).map(|_| ())
        }
        _ => Ok(()),
    }
}

fn decimal_value(text: &str, precision: u8, scale: i8) -> Result<i128, String> {
    arrow::compute::kernels::cast_utils::parse_decimal::<arrow::datatypes::Decimal128Type>(
        text.trim(),
        precision,
        scale,
    )
    .map_err(|e| e.to_string())
}

enum Builder {
    Bool(BooleanBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Text(StringBuilder),
    Binary(BinaryBuilder),
    Timestamp(TimestampMillisecondBuilder),
    Date(Date32Builder),
    Time(Time32MillisecondBuilder),
    Decimal(Decimal128Builder, u8, i8),
    /// ARRAY, MAP and STRUCT values, built into their column when the batch is finished.
    Nested(SqlType, Vec<Option<serde_json::Value>>),
}

impl Builder {
    fn new(data_type: &SqlType, capacity: usize) -> Builder {
        match data_type {
            SqlType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(capacity)),
            SqlType::Integer => Builder::Int32(Int32Builder::with_capacity(capacity)),
            SqlType::Bigint => Builder::Int64(Int64Builder::with_capacity(capacity)),
            SqlType::Double => Builder::Float64(Float64Builder::with_capacity(capacity)),
            SqlType::String => Builder::Text(StringBuilder::with_capacity(capacity, capacity * 32)),
            SqlType::Array(_) | SqlType::Map(_) | SqlType::Struct(_) => {
                Builder::Nested(data_type.clone(), Vec::with_capacity(capacity))
            }
            SqlType::Date => Builder::Date(Date32Builder::with_capacity(capacity)),
            SqlType::Time => Builder::Time(Time32MillisecondBuilder::with_capacity(capacity)),
            SqlType::Bytes => Builder::Binary(BinaryBuilder::with_capacity(capacity, capacity * 32)),
            SqlType::Timestamp => Builder::Timestamp(TimestampMillisecondBuilder::with_capacity(capacity)),
            SqlType::Decimal { precision, scale } => Builder::Decimal(
                Decimal128Builder::with_capacity(capacity),
                *precision,
                *scale,
            ),
        }
    }

    /// Appends a cell already checked against the column's type; `scratch` holds the record's
    /// unescaped strings.
    fn append(&mut self, cell: Cell, scratch: &str) {
        match (self, cell) {
            (Builder::Text(b), Cell::Unescaped(range)) => b.append_value(&scratch[range]),
            (Builder::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Builder::Int32(b), Cell::Int(v)) => b.append_value(v as i32),
            (Builder::Int64(b), Cell::Int(v)) => b.append_value(v),
            (Builder::Float64(b), Cell::Float(v)) => b.append_value(v),
            (Builder::Float64(b), Cell::Int(v)) => b.append_value(v as f64),
            (Builder::Text(b), Cell::Text(v)) => b.append_value(v),
            (Builder::Binary(b), Cell::Bytes(v)) => b.append_value(v),
            (Builder::Timestamp(b), Cell::Int(v)) => b.append_value(v),
            (Builder::Date(b), Cell::Int(v)) => b.append_value(v as i32),
            (Builder::Time(b), Cell::Int(v)) => b.append_value(v as i32),
            (Builder::Nested(_, values), Cell::Nested(v)) => values.push(Some(v)),
            (Builder::Decimal(b, p, s), Cell::Text(v)) => match decimal_value(&v, *p, *s) {
                Ok(d) => b.append_value(d),
                Err(_) => b.append_null(),
            },
            (Builder::Bool(b), _) => b.append_null(),
            (Builder::Int32(b), _) => b.append_null(),
            (Builder::Int64(b), _) => b.append_null(),
            (Builder::Float64(b), _) => b.append_null(),
            (Builder::Text(b), _) => b.append_null(),
            (Builder::Binary(b), _) => b.append_null(),
            (Builder::Timestamp(b), _) => b.append_null(),
            (Builder::Decimal(b, _, _), _) => b.append_null(),
            (Builder::Date(b), _) => b.append_null(),
            (Builder::Time(b), _) => b.append_null(),
            (Builder::Nested(_, values), _) => values.push(None),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Int32(mut b) => Arc::new(b.finish()),
            Builder::Int64(mut b) => Arc::new(b.finish()),
            Builder::Float64(mut b) => Arc::new(b.finish()),
            Builder::Text(mut b) => Arc::new(b.finish()),
            Builder::Binary(mut b) => Arc::new(b.finish()),
            Builder::Timestamp(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Time(mut b) => Arc::new(b.finish()),
            Builder::Nested(data_type, values) => {
                let values: Vec<Option<&serde_json::Value>> = values.iter().map(Option::as_ref).collect();
                nested::array(&data_type, &values)
            }
            Builder::Decimal(mut b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(p, s)
                    .expect("precision and scale were checked when the stream was declared"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{RecordDecoder, unescape, whole_part};
    use crate::{catalog::SourceDef, format::RawRecord};

    fn canonical(create: &str, values: &[&str]) -> bool {
        let decoder = RecordDecoder::new(&SourceDef::from_create(create).unwrap()).unwrap();
        let records: Vec<RawRecord> = values
            .iter()
            .enumerate()
            .map(|(i, v)| RawRecord { partition: 0, offset: i as i64, timestamp: 0, key: None, value: Some(v.as_bytes()), headers: None })
            .collect();
        decoder.decode(&records).unwrap().canonical
    }

    #[test]
    fn a_value_is_canonical_only_as_it_would_be_written_again() {
        let stream = "CREATE STREAM S (ID STRING, N INT, D DOUBLE, B BOOLEAN) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');";
        assert!(canonical(stream, &[r#"{"ID": "a", "N": 1, "D": 1.5, "B": true}"#, r#"{"ID": null, "N": null, "D": 2e3, "B": false}"#]));
        assert!(!canonical(stream, &[r#"{"id": "a", "N": 1, "D": 1.5, "B": true}"#]), "a name in another case");
        assert!(!canonical(stream, &[r#"{"ID": "a", "N": 1, "D": 1.5}"#]), "a field missing");
        assert!(!canonical(stream, &[r#"{"ID": "a", "N": 1, "D": 1.5, "B": true, "X": 0}"#]), "a field no column reads");
        assert!(!canonical(stream, &[r#"{"ID": "a", "N": "1", "D": 1.5, "B": true}"#]), "a number in a string");
        assert!(!canonical(stream, &[r#"{"ID": "a", "N": 1, "D": 1, "B": true}"#]), "a DOUBLE written without a fraction");
        assert!(!canonical(stream, &[r#"{"ID": "a", "N": 1.5, "D": 1.5, "B": true}"#]), "an INT with a fraction");
        let nested = "CREATE STREAM S (A STRUCT<X INT>) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');";
        assert!(!canonical(nested, &[r#"{"A": {"X": 1}}"#]), "nested field names are not checked");
        let kafka = "CREATE STREAM S (N INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='KAFKA');";
        assert!(canonical(kafka, &["\0\0\0\x01"]));
    }

    #[test]
    fn fractional_numbers_in_whole_number_columns_are_truncated() {
        assert_eq!(whole_part("-1.7"), Ok(-1));
        assert_eq!(whole_part("-0.5"), Ok(0));
        assert_eq!(whole_part("12345.678"), Ok(12345));
        assert_eq!(whole_part("1.5e3"), Ok(1500));
        assert_eq!(whole_part("-2E-1"), Ok(0));
        assert!(whole_part("1e19").is_err());
        assert!(whole_part("99999999999999999999.5").is_err());
    }

    #[test]
    fn unescape_agrees_with_serde_json() {
        for literal in [
            r#""{\"sensor_id\": 3, \"unit\": \"MW\"}""#,
            r#""tab\there\\back\/slash\r\n""#,
            r#""caf\u00e9 \ud83d\ude00 \b\f""#,
            r#""no escapes""#,
        ] {
            let mut out = String::from("kept ");
            unescape(&literal[1..literal.len() - 1], &mut out).unwrap();
            let expected: String = serde_json::from_str(literal).unwrap();
            assert_eq!(out, format!("kept {expected}"));
        }
    }
}
