//! Encoding Arrow rows as record keys and values (JSON, KAFKA, DELIMITED) and as JSON for push
//! queries.

use std::{borrow::Cow, io::Write};

use arrow::{
    array::{
        Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float64Array,
        Int32Array, Int64Array, StringArray, Time32MillisecondArray, TimestampMillisecondArray,
    },
    datatypes::{DataType, TimeUnit},
};

use crate::{
    catalog::Format,
    error::{Result, SluiceError},
};

/// One column of a batch, downcast once, that writes a row's value.
pub enum ColumnWriter<'a> {
    Bool(&'a BooleanArray),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Float64(&'a Float64Array),
    Text(&'a StringArray),
    Binary(&'a BinaryArray),
    Timestamp(&'a TimestampMillisecondArray),
    Decimal(&'a Decimal128Array),
    /// Days since the epoch, written as a number as ksqlDB writes a DATE.
    Date(&'a Date32Array),
    /// Milliseconds since midnight, written as a number as ksqlDB writes a TIME.
    Time(&'a Time32MillisecondArray),
    /// An ARRAY, MAP or STRUCT, written as a JSON array or object of its values.
    Nested(&'a ArrayRef),
    Null,
    /// Any other type: rendered through Arrow's display formatting.
    Other(&'a ArrayRef),
}

impl<'a> ColumnWriter<'a> {
    pub fn new(array: &'a ArrayRef) -> ColumnWriter<'a> {
        match array.data_type() {
            DataType::Boolean => ColumnWriter::Bool(array.as_boolean()),
            DataType::Int32 => ColumnWriter::Int32(array.as_primitive()),
            DataType::Int64 => ColumnWriter::Int64(array.as_primitive()),
            DataType::Float64 => ColumnWriter::Float64(array.as_primitive()),
            DataType::Utf8 => ColumnWriter::Text(array.as_string()),
            DataType::Binary => ColumnWriter::Binary(array.as_binary()),
            DataType::Timestamp(TimeUnit::Millisecond, None) => {
                ColumnWriter::Timestamp(array.as_primitive())
            }
            DataType::Decimal128(_, _) => ColumnWriter::Decimal(array.as_primitive()),
            DataType::Date32 => ColumnWriter::Date(array.as_primitive()),
            DataType::Time32(TimeUnit::Millisecond) => ColumnWriter::Time(array.as_primitive()),
            DataType::List(_) | DataType::Struct(_) | DataType::Map(_, _) => ColumnWriter::Nested(array),
            DataType::Null => ColumnWriter::Null,
            _ => ColumnWriter::Other(array),
        }
    }

    pub fn is_null(&self, row: usize) -> bool {
        match self {
            ColumnWriter::Bool(a) => a.is_null(row),
            ColumnWriter::Int32(a) => a.is_null(row),
            ColumnWriter::Int64(a) => a.is_null(row),
            ColumnWriter::Float64(a) => a.is_null(row),
            ColumnWriter::Text(a) => a.is_null(row),
            ColumnWriter::Binary(a) => a.is_null(row),
            ColumnWriter::Timestamp(a) => a.is_null(row),
            ColumnWriter::Decimal(a) => a.is_null(row),
            ColumnWriter::Date(a) => a.is_null(row),
            ColumnWriter::Time(a) => a.is_null(row),
            ColumnWriter::Nested(a) => a.is_null(row),
            ColumnWriter::Null => true,
            ColumnWriter::Other(a) => a.is_null(row),
        }
    }

    /// Writes the row's value as JSON.
    pub fn write_json(&self, row: usize, out: &mut Vec<u8>) {
        if self.is_null(row) {
            out.extend_from_slice(b"null");
            return;
        }
        match self {
            ColumnWriter::Bool(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
            ColumnWriter::Int32(a) => write_display(out, a.value(row)),
            ColumnWriter::Int64(a) => write_display(out, a.value(row)),
            ColumnWriter::Timestamp(a) => write_display(out, a.value(row)),
            ColumnWriter::Float64(a) => {
                let v = a.value(row);
                if v.is_finite() {
                    let _ = serde_json::to_writer(&mut *out, &v);
                } else {
                    // As ksqlDB's JSON writer (Jackson) writes them; read back as doubles.
                    let text: &[u8] = if v.is_nan() { b"\"NaN\"" } else if v > 0.0 { b"\"Infinity\"" } else { b"\"-Infinity\"" };
                    out.extend_from_slice(text);
                }
            }
            ColumnWriter::Text(a) => {
                let _ = serde_json::to_writer(&mut *out, a.value(row));
            }
            ColumnWriter::Binary(a) => {
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD.encode(a.value(row));
                let _ = serde_json::to_writer(&mut *out, &encoded);
            }
            ColumnWriter::Decimal(a) => out.extend_from_slice(a.value_as_string(row).as_bytes()),
            ColumnWriter::Date(a) => write_display(out, a.value(row)),
            ColumnWriter::Time(a) => write_display(out, a.value(row)),
            ColumnWriter::Nested(a) => write_nested_json(a, row, out),
            ColumnWriter::Null => out.extend_from_slice(b"null"),
            ColumnWriter::Other(a) => {
                let text = arrow::util::display::array_value_to_string(a, row).unwrap_or_default();
                let _ = serde_json::to_writer(&mut *out, &text);
            }
        }
    }

    /// Writes the row's value as plain text (DELIMITED fields, KAFKA strings, keys).
    pub fn write_text(&self, row: usize, out: &mut Vec<u8>) {
        match self {
            ColumnWriter::Text(a) => out.extend_from_slice(a.value(row).as_bytes()),
            ColumnWriter::Binary(a) => out.extend_from_slice(a.value(row)),
            _ if self.is_null(row) => {}
            ColumnWriter::Other(a) => out.extend_from_slice(
                arrow::util::display::array_value_to_string(a, row)
                    .unwrap_or_default()
                    .as_bytes(),
            ),
            _ => self.write_json(row, out),
        }
    }
}

/// Writes a row of a list, struct or map column as a JSON array or object; a map's keys as text.
fn write_nested_json(array: &ArrayRef, row: usize, out: &mut Vec<u8>) {
    let write_items = |items: ArrayRef, out: &mut Vec<u8>| {
        let writer = ColumnWriter::new(&items);
        out.push(b'[');
        for i in 0..items.len() {
            if i > 0 {
                out.push(b',');
            }
            writer.write_json(i, out);
        }
        out.push(b']');
    };
    match array.data_type() {
        DataType::List(_) => write_items(array.as_list::<i32>().value(row), out),
        DataType::Struct(fields) => {
            out.push(b'{');
            for (i, (field, column)) in fields.iter().zip(array.as_struct().columns()).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let _ = serde_json::to_writer(&mut *out, field.name());
                out.push(b':');
                ColumnWriter::new(column).write_json(row, out);
            }
            out.push(b'}');
        }
        DataType::Map(_, _) => {
            let entries = array.as_map().value(row);
            let (keys, values) = (ColumnWriter::new(entries.column(0)), ColumnWriter::new(entries.column(1)));
            out.push(b'{');
            let mut key = Vec::new();
            for i in 0..entries.len() {
                if i > 0 {
                    out.push(b',');
                }
                key.clear();
                keys.write_text(i, &mut key);
                let _ = serde_json::to_writer(&mut *out, &*String::from_utf8_lossy(&key));
                out.push(b':');
                values.write_json(i, out);
            }
            out.push(b'}');
        }
        _ => {
            let text = arrow::util::display::array_value_to_string(array, row).unwrap_or_default();
            let _ = serde_json::to_writer(&mut *out, &text);
        }
    }
}

fn write_display(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    let _ = write!(out, "{value}");
}

/// Writes a key or value in the KAFKA format: UTF-8 text, raw bytes or big-endian numbers, as
/// Kafka's own serializers do. NULL writes nothing (the caller sends no bytes).
pub fn encode_kafka_value(column: &ColumnWriter, row: usize, out: &mut Vec<u8>) -> Result<()> {
    if column.is_null(row) {
        return Ok(());
    }
    match column {
        ColumnWriter::Int32(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
        ColumnWriter::Int64(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
        ColumnWriter::Float64(a) => out.extend_from_slice(&a.value(row).to_be_bytes()),
        ColumnWriter::Text(a) => out.extend_from_slice(a.value(row).as_bytes()),
        ColumnWriter::Binary(a) => out.extend_from_slice(a.value(row)),
        _ => {
            return Err(SluiceError::Plan(
                "the KAFKA format holds only STRING, INTEGER, BIGINT, DOUBLE and BYTES values".into(),
            ));
        }
    }
    Ok(())
}

/// A row's value as its record holds it: [`encode_row`]'s, except that a single JSON column is
/// written as its bare value when the stream does not wrap single values
/// (`WRAP_SINGLE_VALUE=false`; a NULL is then no value at all). False when there is no value.
pub fn encode_value(
    format: Format,
    delimiter: u8,
    names: &[String],
    writers: &[ColumnWriter],
    row: usize,
    wrap_single_value: bool,
    out: &mut Vec<u8>,
) -> Result<bool> {
    if let (false, Format::Json, [single]) = (wrap_single_value, format, writers) {
        if single.is_null(row) {
            return Ok(false);
        }
        single.write_json(row, out);
        return Ok(true);
    }
    encode_row(format, delimiter, names, writers, row, out)
}

/// Writes one key column's value in the key format: KAFKA's bytes, JSON's value or DELIMITED's
/// field (quoted if it holds `delimiter`).
pub fn encode_key(format: Format, delimiter: u8, column: &ColumnWriter, row: usize, out: &mut Vec<u8>) -> Result<()> {
    match format {
        Format::Kafka => encode_kafka_value(column, row, out)?,
        Format::Json => column.write_json(row, out),
        Format::Delimited => write_delimited_field(column, row, delimiter, true, out),
        Format::None => {}
    }
    Ok(())
}

/// Writes a key of one or several columns in the key format: one column as [`encode_key`]
/// does; several as a JSON object of the columns named `names`, or DELIMITED fields, in the
/// order of `order` (the sink's key columns; `names` in their own order when they differ),
/// separated by `delimiter`.
pub fn encode_keys(format: Format, delimiter: u8, order: &[String], names: &[String], columns: &[ColumnWriter], row: usize, out: &mut Vec<u8>) -> Result<()> {
    if let [single] = columns {
        return encode_key(format, delimiter, single, row, out);
    }
    let mut positions: Vec<usize> = order.iter().filter_map(|o| names.iter().position(|n| n == o)).collect();
    if positions.len() != columns.len() {
        positions = (0..columns.len()).collect();
    }
    match format {
        Format::Json => {
            out.push(b'{');
            for (i, position) in positions.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, names.get(position).map_or("", String::as_str))?;
                out.push(b':');
                columns[position].write_json(row, out);
            }
            out.push(b'}');
        }
        Format::Delimited => {
            for (i, position) in positions.into_iter().enumerate() {
                if i > 0 {
                    out.push(delimiter);
                }
                write_delimited_field(&columns[position], row, delimiter, i == 0, out);
            }
        }
        Format::Kafka => {
            return Err(SluiceError::Plan("The 'KAFKA' format only supports a single field".into()));
        }
        Format::None => {}
    }
    Ok(())
}

/// Writes one DELIMITED field as ksqlDB's serializer (Apache Commons CSV, minimal quoting)
/// does: quoted when it holds the delimiter, a quote or a line break, starts with a character
/// at or below `#`, ends in whitespace, or opens the line with anything but a letter or digit
/// (`"-10",…`) or empty; quotes doubled.
/// NULL is an empty field, never quoted. BYTES are base64, DECIMAL plain digits.
fn write_delimited_field(column: &ColumnWriter, row: usize, delimiter: u8, first: bool, out: &mut Vec<u8>) {
    use base64::Engine;
    if column.is_null(row) {
        return;
    }
    let text: Cow<'_, [u8]> = match column {
        ColumnWriter::Text(a) => Cow::Borrowed(a.value(row).as_bytes()),
        ColumnWriter::Binary(a) => {
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(a.value(row)).into_bytes())
        }
        _ => {
            let mut scratch = Vec::new();
            column.write_text(row, &mut scratch);
            Cow::Owned(scratch)
        }
    };
    let quote = match (text.first(), text.last()) {
        (Some(&start), Some(&end)) => {
            start <= b'#'
                || (first && !start.is_ascii_alphanumeric())
                || end <= b' '
                || text.iter().any(|&b| b == delimiter || b == b'"' || b == b'\n' || b == b'\r')
        }
        _ => first,
    };
    if !quote {
        out.extend_from_slice(&text);
        return;
    }
    out.push(b'"');
    for &b in text.iter() {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Casts arrays of narrower Arrow types that DataFusion may produce to the ones Sluice stores.
pub fn normalize_array(array: ArrayRef) -> Result<ArrayRef> {
    let target = match array.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::UInt8 | DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 => DataType::Float64,
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::Timestamp(_, _) => DataType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Date64 => DataType::Date32,
        DataType::Time32(TimeUnit::Second) | DataType::Time64(_) => DataType::Time32(TimeUnit::Millisecond),
        _ => return Ok(array),
    };
    Ok(arrow::compute::cast(&array, &target)?)
}

/// One row's value in `format` from the value columns' `writers`: a JSON object of `names`,
/// the single KAFKA column, or the delimited columns. `false` when the row has no value: its
/// single KAFKA column is NULL, which Kafka carries as a record without a value.
pub fn encode_row(
    format: Format,
    delimiter: u8,
    names: &[String],
    writers: &[ColumnWriter],
    row: usize,
    out: &mut Vec<u8>,
) -> Result<bool> {
    match format {
        Format::Json => {
            out.push(b'{');
            for (i, (name, w)) in names.iter().zip(writers).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, name)?;
                out.push(b':');
                w.write_json(row, out);
            }
            out.push(b'}');
        }
        Format::Kafka => {
            if let Some(w) = writers.first() {
                if w.is_null(row) {
                    return Ok(false);
                }
                encode_kafka_value(w, row, out)?;
            }
        }
        Format::Delimited => {
            for (i, w) in writers.iter().enumerate() {
                if i > 0 {
                    out.push(delimiter);
                }
                write_delimited_field(w, row, delimiter, i == 0, out);
            }
        }
        Format::None => return Ok(false),
    }
    Ok(true)
}
