//! ksqlDB's JSON functions: EXTRACTJSONFIELD, IS_JSON_STRING, JSON_ARRAY_LENGTH, JSON_KEYS,
//! TO_JSON_STRING (the functions over whole documents are in `json_documents`).

use std::sync::{Arc, LazyLock};

use arrow::{
    array::{Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListBuilder, StringArray, StringBuilder},
    datatypes::{DataType, Field},
};
use datafusion::{
    common::{ScalarValue, exec_err},
    error::Result,
    logical_expr::{
        ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
        TypeSignature, Volatility,
    },
};

use super::{documented, json_path, report_row_error};

const JSON_FUNCTIONS: &str = "JSON Functions";
use crate::format::ColumnWriter;

pub fn functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(ExtractJsonField::new()),
        ScalarUDF::new_from_impl(IsJsonString::new()),
        ScalarUDF::new_from_impl(JsonArrayLength::new()),
        ScalarUDF::new_from_impl(JsonKeys::new()),
        ScalarUDF::new_from_impl(ToJsonString::new()),
    ]
}

/// The string arguments of a call as arrays of `rows` rows.
fn string_args(args: &ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    args.args
        .iter()
        .map(|a| {
            let array = a.to_array(args.number_rows)?;
            Ok(arrow::compute::cast(&array, &DataType::Utf8)?)
        })
        .collect()
}

/// `EXTRACTJSONFIELD(json, path)`: the value at `path` as a STRING.
///
/// ```sql
/// SELECT EXTRACTJSONFIELD(PAYLOAD, '$.sensor_id') FROM STREAM_INGESTION EMIT CHANGES;
/// ```
/// A JSON string comes back unquoted, any other value as compact JSON text, a missing path as
/// NULL. Invalid JSON gives NULL and a processing error.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExtractJsonField {
    signature: Signature,
}

impl ExtractJsonField {
    pub fn new() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Immutable),
        }
    }
}

impl Default for ExtractJsonField {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ExtractJsonField {
    fn name(&self) -> &str {
        "extractjsonfield"
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            documented(
                JSON_FUNCTIONS,
                "The value at a JSONPath in a JSON document, as a STRING: a JSON string unquoted, any other value as compact JSON, a missing path as NULL; invalid JSON gives NULL and a processing error.",
                "extractjsonfield(json, path)",
                &[("json", "A STRING holding a JSON document."), ("path", "A JSONPath such as '$.sensor_id' or '$.readings[0].watts'.")],
            )
        });
        Some(&DOC)
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let constant_path = match &args.args[1] {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(path))) => Some(parse(path)?),
            ColumnarValue::Scalar(_) => return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None))),
            ColumnarValue::Array(_) => None,
        };
        let arrays = string_args(&args)?;
        let documents = arrays[0].as_string::<i32>();
        let paths = arrays[1].as_string::<i32>();
        let mut out = StringBuilder::with_capacity(rows, rows * 4);
        for row in 0..rows {
            if documents.is_null(row) || paths.is_null(row) {
                out.append_null();
                continue;
            }
            let per_row;
            let steps = match &constant_path {
                Some(steps) => steps,
                None => {
                    per_row = parse(paths.value(row))?;
                    &per_row
                }
            };
            match json_path::find(documents.value(row), steps) {
                Ok(Some(raw)) => out.append_value(json_path::render(raw)),
                Ok(None) => out.append_null(),
                Err(json_path::ScanError::Invalid(reason)) => {
                    report_row_error(row, || format!("Invalid JSON format: {reason}"));
                    out.append_null();
                }
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn parse(path: &str) -> Result<Vec<json_path::Step>> {
    json_path::parse_path(path).or_else(|e| exec_err!("{e}"))
}

/// `IS_JSON_STRING(text)`: whether `text` is a valid JSON document.
///
/// ```sql
/// SELECT IS_JSON_STRING(PAYLOAD) FROM STREAM_INGESTION EMIT CHANGES;
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IsJsonString {
    signature: Signature,
}

impl IsJsonString {
    pub fn new() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }
    }
}

impl Default for IsJsonString {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for IsJsonString {
    fn name(&self) -> &str {
        "is_json_string"
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            documented(
                JSON_FUNCTIONS,
                "Whether a STRING is a valid JSON document.",
                "is_json_string(text)",
                &[("text", "The STRING to check.")],
            )
        });
        Some(&DOC)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = string_args(&args)?;
        let text = arrays[0].as_string::<i32>();
        let result: BooleanArray = (0..args.number_rows)
            .map(|row| {
                Some(
                    !text.is_null(row)
                        && serde_json::from_str::<serde::de::IgnoredAny>(text.value(row)).is_ok(),
                )
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}

/// `JSON_ARRAY_LENGTH(text)`: the number of elements of a JSON array, NULL for anything else.
///
/// ```sql
/// SELECT JSON_ARRAY_LENGTH('[1, 2, 3]');  -- 3
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonArrayLength {
    signature: Signature,
}

impl JsonArrayLength {
    pub fn new() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }
    }
}

impl Default for JsonArrayLength {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for JsonArrayLength {
    fn name(&self) -> &str {
        "json_array_length"
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            documented(
                JSON_FUNCTIONS,
                "The number of elements of a JSON array; NULL for anything else.",
                "json_array_length(text)",
                &[("text", "A STRING holding a JSON array.")],
            )
        });
        Some(&DOC)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = string_args(&args)?;
        let text = arrays[0].as_string::<i32>();
        let result: Int32Array = (0..args.number_rows)
            .map(|row| {
                if text.is_null(row) {
                    return None;
                }
                match serde_json::from_str::<Vec<serde::de::IgnoredAny>>(text.value(row)) {
                    Ok(items) => Some(items.len() as i32),
                    Err(_) => None,
                }
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}

/// `JSON_KEYS(text)`: the keys of a JSON object as an ARRAY<STRING>, NULL for anything else.
///
/// ```sql
/// SELECT JSON_KEYS(PAYLOAD) FROM STREAM_INGESTION EMIT CHANGES;
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonKeys {
    signature: Signature,
}

impl JsonKeys {
    pub fn new() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }
    }
}

impl Default for JsonKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for JsonKeys {
    fn name(&self) -> &str {
        "json_keys"
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            documented(
                JSON_FUNCTIONS,
                "The keys of a JSON object as an ARRAY<STRING>; NULL for anything else.",
                "json_keys(text)",
                &[("text", "A STRING holding a JSON object.")],
            )
        });
        Some(&DOC)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = string_args(&args)?;
        let text = arrays[0].as_string::<i32>();
        let mut out = ListBuilder::new(StringBuilder::new());
        for row in 0..args.number_rows {
            let keys = (!text.is_null(row))
                .then(|| {
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text.value(row)).ok()
                })
                .flatten();
            match keys {
                Some(map) => {
                    for key in map.keys() {
                        out.values().append_value(key);
                    }
                    out.append(true);
                }
                None => out.append(false),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `TO_JSON_STRING(value)`: any value as JSON text.
///
/// ```sql
/// SELECT TO_JSON_STRING(CREATED_AT) FROM STREAM_INGESTION EMIT CHANGES;
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToJsonString {
    signature: Signature,
}

impl ToJsonString {
    pub fn new() -> Self {
        Self {
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
        }
    }
}

impl Default for ToJsonString {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ToJsonString {
    fn name(&self) -> &str {
        "to_json_string"
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            documented(
                JSON_FUNCTIONS,
                "Any value as JSON text.",
                "to_json_string(value)",
                &[("value", "A value of any type.")],
            )
        });
        Some(&DOC)
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let array = args.args[0].to_array(args.number_rows)?;
        if let Some(texts) = temporal_texts(&array) {
            let result: StringArray = texts.into_iter().map(|t| Some(t.map_or("null".to_string(), |t| format!("\"{t}\"")))).collect();
            return Ok(ColumnarValue::Array(Arc::new(result)));
        }
        let writer = ColumnWriter::new(&array);
        let mut buffer = Vec::new();
        let result: StringArray = (0..args.number_rows)
            .map(|row| {
                buffer.clear();
                writer.write_json(row, &mut buffer);
                Some(String::from_utf8_lossy(&buffer).into_owned())
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(result)))
    }
}

/// A DATE, TIME or TIMESTAMP column as the text ksqlDB's `TO_JSON_STRING` quotes: ISO dates,
/// Java's `LocalTime` text, and timestamps to the millisecond.
fn temporal_texts(array: &ArrayRef) -> Option<Vec<Option<String>>> {
    use arrow::datatypes::{Date32Type, Time32MillisecondType, TimeUnit, TimestampMillisecondType};
    let millis = |ms: i64| chrono::DateTime::from_timestamp_millis(ms).map(|t| t.naive_utc());
    let texts = match array.data_type() {
        DataType::Date32 => array.as_primitive::<Date32Type>().iter().map(|d| d.and_then(|d| millis(d as i64 * 86_400_000)).map(|t| t.format("%Y-%m-%d").to_string())).collect(),
        DataType::Time32(TimeUnit::Millisecond) => array
            .as_primitive::<Time32MillisecondType>()
            .iter()
            .map(|ms| {
                ms.and_then(|ms| millis(ms as i64)).map(|t| match (ms.unwrap_or(0) % 60_000, ms.unwrap_or(0) % 1000) {
                    (0, _) => t.format("%H:%M").to_string(),
                    (_, 0) => t.format("%H:%M:%S").to_string(),
                    _ => t.format("%H:%M:%S%.3f").to_string(),
                })
            })
            .collect(),
        DataType::Timestamp(TimeUnit::Millisecond, None) => array
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .map(|ms| ms.and_then(millis).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()))
            .collect(),
        _ => return None,
    };
    Some(texts)
}
