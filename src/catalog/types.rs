//! ksqlDB's SQL column types and their Arrow counterparts.

use std::{fmt, sync::Arc};

use arrow::datatypes::{DataType, Field, TimeUnit};

use crate::error::{Result, SluiceError};

/// The types `CREATE TYPE` has named, by name: each a name for a column type, which any column
/// type may use in its place (ksqlDB's type registry).
pub type CustomTypes = std::collections::BTreeMap<String, SqlType>;

/// A column type as written in a `CREATE STREAM` column list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SqlType {
    Boolean,
    Integer,
    Bigint,
    Double,
    Decimal { precision: u8, scale: i8 },
    String,
    Bytes,
    Timestamp,
    /// Days since the epoch.
    Date,
    /// Milliseconds since midnight.
    Time,
    Array(Box<SqlType>),
    /// A map from STRING keys to values of this type.
    Map(Box<SqlType>),
    /// Named fields, in their declared order.
    Struct(Vec<(String, SqlType)>),
}

impl SqlType {
    /// Resolves a type name as ksqlDB spells it (`VARCHAR` and `STRING` are one type).
    pub fn from_name(name: &str) -> Option<SqlType> {
        Some(match name.to_ascii_uppercase().as_str() {
            "BOOLEAN" | "BOOL" => SqlType::Boolean,
            "INT" | "INTEGER" => SqlType::Integer,
            "BIGINT" => SqlType::Bigint,
            "DOUBLE" => SqlType::Double,
            "STRING" | "VARCHAR" => SqlType::String,
            "BYTES" => SqlType::Bytes,
            "TIMESTAMP" => SqlType::Timestamp,
            "DATE" => SqlType::Date,
            "TIME" => SqlType::Time,
            _ => return None,
        })
    }

    /// ARRAY, MAP and STRUCT: values that hold values.
    pub fn is_nested(&self) -> bool {
        matches!(self, SqlType::Array(_) | SqlType::Map(_) | SqlType::Struct(_))
    }

    /// Whether a MAP is this type or inside it.
    pub fn has_map(&self) -> bool {
        match self {
            SqlType::Map(_) => true,
            SqlType::Array(element) => element.has_map(),
            SqlType::Struct(fields) => fields.iter().any(|(_, t)| t.has_map()),
            _ => false,
        }
    }

    pub fn to_arrow(&self) -> DataType {
        match self {
            SqlType::Boolean => DataType::Boolean,
            SqlType::Integer => DataType::Int32,
            SqlType::Bigint => DataType::Int64,
            SqlType::Double => DataType::Float64,
            SqlType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            SqlType::String => DataType::Utf8,
            SqlType::Bytes => DataType::Binary,
            SqlType::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
            SqlType::Date => DataType::Date32,
            SqlType::Time => DataType::Time32(TimeUnit::Millisecond),
            SqlType::Struct(fields) => DataType::Struct(
                fields.iter().map(|(name, data_type)| Field::new(name, data_type.to_arrow(), true)).collect(),
            ),
            SqlType::Array(item) => {
                DataType::List(Arc::new(Field::new("item", item.to_arrow(), true)))
            }
            SqlType::Map(value) => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(
                        vec![
                            Field::new("key", DataType::Utf8, false),
                            Field::new("value", value.to_arrow(), true),
                        ]
                        .into(),
                    ),
                    false,
                )),
                false,
            ),
        }
    }

    /// ksqlDB's name for the type of a computed value, or Arrow's where it has none (for messages).
    pub fn name_of(data_type: &DataType) -> String {
        SqlType::from_arrow(data_type).map_or_else(|_| data_type.to_string(), |t| t.to_string())
    }

    /// The SQL type of a value computed by a query, for the sink stream's schema.
    pub fn from_arrow(data_type: &DataType) -> Result<SqlType> {
        Ok(match data_type {
            DataType::Boolean => SqlType::Boolean,
            DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::UInt8 | DataType::UInt16 => {
                SqlType::Integer
            }
            DataType::Int64 | DataType::UInt32 | DataType::UInt64 => SqlType::Bigint,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => SqlType::Double,
            DataType::Decimal128(p, s) => SqlType::Decimal {
                precision: *p,
                scale: *s,
            },
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                SqlType::String
            }
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::Bytes,
            DataType::Timestamp(_, _) => SqlType::Timestamp,
            DataType::Date32 | DataType::Date64 => SqlType::Date,
            DataType::Time32(_) | DataType::Time64(_) => SqlType::Time,
            DataType::List(item) | DataType::LargeList(item) => {
                SqlType::Array(Box::new(SqlType::from_arrow(item.data_type())?))
            }
            DataType::Struct(fields) => SqlType::Struct(
                fields
                    .iter()
                    .map(|f| Ok((f.name().clone(), SqlType::from_arrow(f.data_type())?)))
                    .collect::<Result<_>>()?,
            ),
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(pair) if pair.len() == 2 && SqlType::from_arrow(pair[0].data_type())? == SqlType::String => {
                    SqlType::Map(Box::new(SqlType::from_arrow(pair[1].data_type())?))
                }
                other => {
                    return Err(SluiceError::NotImplemented(format!("a map of {other} in a stream: map keys are STRING")));
                }
            },
            other => {
                return Err(SluiceError::NotImplemented(format!(
                    "a column of type {other} in a stream"
                )));
            }
        })
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlType::Boolean => write!(f, "BOOLEAN"),
            SqlType::Integer => write!(f, "INTEGER"),
            SqlType::Bigint => write!(f, "BIGINT"),
            SqlType::Double => write!(f, "DOUBLE"),
            SqlType::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            SqlType::String => write!(f, "STRING"),
            SqlType::Bytes => write!(f, "BYTES"),
            SqlType::Timestamp => write!(f, "TIMESTAMP"),
            SqlType::Date => write!(f, "DATE"),
            SqlType::Time => write!(f, "TIME"),
            SqlType::Array(item) => write!(f, "ARRAY<{item}>"),
            SqlType::Map(value) => write!(f, "MAP<STRING, {value}>"),
            SqlType::Struct(fields) => {
                write!(f, "STRUCT<")?;
                for (i, (name, data_type)) in fields.iter().enumerate() {
                    let separator = if i == 0 { "" } else { ", " };
                    write!(f, "{separator}`{name}` {data_type}")?;
                }
                write!(f, ">")
            }
        }
    }
}
