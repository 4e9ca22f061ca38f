//! File content, one encoder per `format.class`: JSON lines and text lines are appended record
//! by record; Parquet is built from the declared stream's columns when the file is committed.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use base64::Engine as _;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use super::config::{FileFormat, ValueConverter};
use crate::{
    catalog::SourceDef,
    error::{Result, SluiceError},
    format::{RawRecord, RecordDecoder},
};

/// A record kept for a Parquet file until it is committed.
pub struct HeldRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

pub enum RecordEncoder {
    Lines { format: FileFormat, converter: ValueConverter },
    Parquet { decoder: Arc<RecordDecoder>, declared: usize },
}

impl RecordEncoder {
    /// The encoder for `format`; Parquet needs the stream declared over the topic for its columns.
    pub fn new(format: FileFormat, converter: ValueConverter, stream: Option<&SourceDef>) -> Result<Self> {
        match format {
            FileFormat::Json | FileFormat::String => Ok(RecordEncoder::Lines { format, converter }),
            FileFormat::Parquet => {
                let stream = stream.ok_or_else(|| {
                    SluiceError::Config(
                        "format.class ParquetFormat needs a stream with declared columns over the topic (CREATE STREAM … WITH (KAFKA_TOPIC=…))".into(),
                    )
                })?;
                Ok(RecordEncoder::Parquet {
                    decoder: Arc::new(RecordDecoder::new(stream)?),
                    declared: stream.columns.len(),
                })
            }
        }
    }

    /// Appends one record's line to `out`; `Err` carries why the value could not be read.
    pub fn encode_line(&self, value: Option<&[u8]>, out: &mut Vec<u8>) -> std::result::Result<(), String> {
        let RecordEncoder::Lines { format, converter } = self else {
            return Err("Parquet files are encoded when committed".into());
        };
        let Some(value) = value else {
            out.extend_from_slice(b"null\n");
            return Ok(());
        };
        match (format, converter) {
            (FileFormat::Json, ValueConverter::Json { schemas }) => {
                let json = read_json(value, *schemas)?;
                serde_json::to_writer(&mut *out, &json).map_err(|e| e.to_string())?;
            }
            (FileFormat::Json, ValueConverter::String) => {
                serde_json::to_writer(&mut *out, &String::from_utf8_lossy(value)).map_err(|e| e.to_string())?;
            }
            (FileFormat::Json, ValueConverter::ByteArray) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(value);
                serde_json::to_writer(&mut *out, &encoded).map_err(|e| e.to_string())?;
            }
            (_, ValueConverter::Json { schemas }) => {
                let json = read_json(value, *schemas)?;
                match json {
                    Value::String(text) => out.extend_from_slice(text.as_bytes()),
                    other => serde_json::to_writer(&mut *out, &other).map_err(|e| e.to_string())?,
                }
            }
            (_, ValueConverter::String | ValueConverter::ByteArray) => {
                out.extend_from_slice(String::from_utf8_lossy(value).as_bytes());
            }
        }
        out.push(b'\n');
        Ok(())
    }

    /// A Parquet file of `records` (declared columns only), and the records that did not
    /// decode, by index, with the reason.
    pub fn encode_parquet(&self, records: &[HeldRecord], partition: i32) -> Result<(Bytes, Vec<(usize, String)>)> {
        let RecordEncoder::Parquet { decoder, declared } = self else {
            return Err(SluiceError::Internal("encode_parquet on a line format".into()));
        };
        let raw: Vec<RawRecord<'_>> = records
            .iter()
            .map(|r| RawRecord {
                partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.as_deref(),
                value: r.value.as_deref(),
                headers: None,
            })
            .collect();
        let decoded = decoder.decode(&raw)?;
        let columns: Vec<usize> = (0..*declared).collect();
        let batch: RecordBatch = decoded.batch.project(&columns)?;
        let mut file = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut file, batch.schema(), None)?;
        writer.write(&batch)?;
        writer.close()?;
        Ok((Bytes::from(file), decoded.errors))
    }
}

/// A JSON value as Connect's JsonConverter reads it: with `schemas`, the `payload` of a
/// `{"schema":…,"payload":…}` envelope.
fn read_json(value: &[u8], schemas: bool) -> std::result::Result<Value, String> {
    let json: Value = serde_json::from_slice(value).map_err(|e| format!("value is not JSON: {e}"))?;
    if !schemas {
        return Ok(json);
    }
    match json {
        Value::Object(mut envelope) if envelope.contains_key("schema") && envelope.contains_key("payload") => {
            Ok(envelope.remove("payload").unwrap_or(Value::Null))
        }
        _ => Err(
            "value.converter.schemas.enable=true needs {\"schema\":…,\"payload\":…} values; set it to false for plain JSON"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(format: FileFormat, converter: ValueConverter, value: &[u8]) -> std::result::Result<String, String> {
        let mut out = Vec::new();
        RecordEncoder::new(format, converter, None)
            .unwrap()
            .encode_line(Some(value), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn json_lines_are_compact_and_keep_field_order() {
        let value = br#"{ "payload": "{\"sensor_id\": 3}",  "b": 1.50, "a": [1, 2] }"#;
        assert_eq!(
            line(FileFormat::Json, ValueConverter::Json { schemas: false }, value).unwrap(),
            "{\"payload\":\"{\\\"sensor_id\\\": 3}\",\"b\":1.5,\"a\":[1,2]}\n"
        );
    }

    #[test]
    fn doubles_are_written_as_the_values_read() {
        // Timestamps as Python's time.time() prints them: 16 and 17 significant digits, where a
        // parser that is not correctly rounded is off by one unit in the last place. The text
        // may differ (two shortest forms can name one double); the value may not.
        for i in 0..20_000u64 {
            let created_at = 1796167415.3241541 + i as f64 * 0.000_137;
            let record = format!("{{\"created_at\":{created_at}}}");
            let written = line(FileFormat::Json, ValueConverter::Json { schemas: false }, record.as_bytes()).unwrap();
            let number = written.trim_end().trim_start_matches("{\"created_at\":").trim_end_matches('}');
            assert_eq!(number.parse::<f64>().unwrap().to_bits(), created_at.to_bits(), "{record} was written {written}");
        }
    }

    #[test]
    fn converters_change_what_is_written() {
        let envelope = br#"{"schema":{"type":"string"},"payload":"hi"}"#;
        assert_eq!(line(FileFormat::Json, ValueConverter::Json { schemas: true }, envelope).unwrap(), "\"hi\"\n");
        assert_eq!(line(FileFormat::Json, ValueConverter::String, b"plain").unwrap(), "\"plain\"\n");
        assert_eq!(line(FileFormat::String, ValueConverter::String, b"a line of text").unwrap(), "a line of text\n");
        assert!(line(FileFormat::Json, ValueConverter::Json { schemas: true }, b"{\"a\":1}").is_err());
    }

    #[test]
    fn malformed_json_is_refused_not_written() {
        let error = line(FileFormat::Json, ValueConverter::Json { schemas: false }, b"{not json").unwrap_err();
        assert!(error.starts_with("value is not JSON"), "{error}");
    }
}
