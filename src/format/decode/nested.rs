//! JSON arrays, maps and objects read into Arrow list, map and struct columns: each record's
//! value is checked against the column's declared type when it is decoded, so that building the
//! batch's column never fails.
//!
//! As ksqlDB's JSON format reads them, a STRUCT's fields are matched by name in any case and
//! fields it does not declare are ignored; a missing field is NULL. A MAP's entries are kept in
//! the order of their keys.

use std::{borrow::Cow, sync::Arc};

use arrow::{
    array::{ArrayRef, ListArray, MapArray, StringArray, StructArray},
    buffer::{NullBuffer, OffsetBuffer},
    datatypes::{DataType, Field, Fields},
};
use serde_json::{Map, Value};

use super::{Builder, Cell, check_range, text_cell, whole_part};
use crate::catalog::types::SqlType;

/// Checks that `value` can be read as `data_type`, saying where it cannot.
pub(super) fn check(data_type: &SqlType, value: &Value) -> Result<(), String> {
    match (data_type, value) {
        (_, Value::Null) => Ok(()),
        (SqlType::Array(item), Value::Array(items)) => items.iter().try_for_each(|v| check(item, v)),
        (SqlType::Map(item), Value::Object(entries)) => entries
            .iter()
            .try_for_each(|(key, v)| check(item, v).map_err(|e| format!("map entry '{key}': {e}"))),
        (SqlType::Struct(fields), Value::Object(object)) => fields.iter().try_for_each(|(name, field_type)| match field(object, name) {
            Some(v) => check(field_type, v).map_err(|e| format!("field {name}: {e}")),
            None => Ok(()),
        }),
        (SqlType::Array(_) | SqlType::Map(_) | SqlType::Struct(_), other) => Err(format!("cannot read {other} as {data_type}")),
        (leaf_type, v) => check_range(leaf_type, &leaf(leaf_type, v)?),
    }
}

/// A column of `data_type` holding `values` (None and JSON null are NULL), each already checked.
pub(super) fn array(data_type: &SqlType, values: &[Option<&Value>]) -> ArrayRef {
    let present = || NullBuffer::from_iter(values.iter().map(|v| v.is_some_and(|v| !v.is_null())));
    match data_type {
        SqlType::Array(item) => {
            let mut children = Vec::new();
            let offsets = OffsetBuffer::from_lengths(values.iter().map(|v| match v {
                Some(Value::Array(items)) => {
                    children.extend(items.iter().map(Some));
                    items.len()
                }
                _ => 0,
            }));
            let field = Arc::new(Field::new("item", item.to_arrow(), true));
            Arc::new(ListArray::new(field, offsets, array(item, &children), Some(present())))
        }
        SqlType::Map(item) => {
            let mut keys = Vec::new();
            let mut children = Vec::new();
            let offsets = OffsetBuffer::from_lengths(values.iter().map(|v| match v {
                Some(Value::Object(entries)) => {
                    // By key, so that two maps of the same entries are one value (COLLECT_SET).
                    let mut sorted: Vec<(&String, &Value)> = entries.iter().collect();
                    sorted.sort_unstable_by_key(|(key, _)| *key);
                    for (key, v) in sorted {
                        keys.push(key.as_str());
                        children.push(Some(v));
                    }
                    entries.len()
                }
                _ => 0,
            }));
            let DataType::Map(entries_field, _) = data_type.to_arrow() else {
                unreachable!("a MAP's Arrow type is a map")
            };
            let DataType::Struct(pair) = entries_field.data_type().clone() else {
                unreachable!("a map's entries are structs")
            };
            let entries = StructArray::new(pair, vec![Arc::new(StringArray::from(keys)), array(item, &children)], None);
            Arc::new(MapArray::new(entries_field, offsets, entries, Some(present()), false))
        }
        SqlType::Struct(fields) => {
            let nulls = Some(present());
            if fields.is_empty() {
                return Arc::new(StructArray::new_empty_fields(values.len(), nulls));
            }
            let children = fields
                .iter()
                .map(|(name, field_type)| {
                    let column: Vec<Option<&Value>> = values
                        .iter()
                        .map(|v| v.and_then(Value::as_object).and_then(|object| field(object, name)))
                        .collect();
                    array(field_type, &column)
                })
                .collect();
            let arrow_fields: Fields = fields.iter().map(|(name, t)| Field::new(name, t.to_arrow(), true)).collect();
            Arc::new(StructArray::new(arrow_fields, children, nulls))
        }
        leaf_type => {
            let mut builder = Builder::new(leaf_type, values.len());
            for value in values {
                let cell = value.map_or(Ok(Cell::Null), |v| leaf(leaf_type, v)).unwrap_or(Cell::Null);
                builder.append(cell, "");
            }
            builder.finish()
        }
    }
}

/// The field `name` of a JSON object, its name matched in any case.
fn field<'v>(object: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    object.get(name).or_else(|| object.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// One JSON value inside an array, map or struct as a cell of a type that holds no values.
fn leaf<'v>(data_type: &SqlType, value: &'v Value) -> Result<Cell<'v>, String> {
    match (data_type, value) {
        (_, Value::Null) => Ok(Cell::Null),
        (SqlType::String, Value::String(text)) => Ok(Cell::Text(Cow::Borrowed(text))),
        (SqlType::String, Value::Number(_) | Value::Bool(_)) => Ok(Cell::Text(Cow::Owned(value.to_string()))),
        (SqlType::Boolean, Value::Bool(flag)) => Ok(Cell::Bool(*flag)),
        (_, Value::String(text)) => text_cell(data_type, Cow::Borrowed(text)),
        (SqlType::Integer | SqlType::Bigint, Value::Number(number)) if number.is_f64() => whole_part(&number.to_string()).map(Cell::Int),
        (_, Value::Number(number)) if *data_type != SqlType::Boolean && *data_type != SqlType::Bytes => {
            text_cell(data_type, Cow::Owned(number.to_string()))
        }
        _ => Err(format!("cannot read {value} as {data_type}")),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int32Type;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_list_of_structs_with_maps_is_built_with_fields_matched_in_any_case() {
        let data_type = SqlType::Array(Box::new(SqlType::Struct(vec![
            ("A".into(), SqlType::String),
            ("M".into(), SqlType::Map(Box::new(SqlType::Integer))),
        ])));
        let first = json!([{"a": "x", "M": {"k": 1, "j": null}}, null, {"A": 7}]);
        let values = [Some(&first), None, Some(&Value::Null)];
        for value in values.iter().flatten() {
            check(&data_type, value).unwrap();
        }
        let column = array(&data_type, &values);
        assert_eq!(column.data_type(), &data_type.to_arrow());
        let lists = column.as_list::<i32>();
        assert_eq!((lists.is_valid(0), lists.is_valid(1), lists.is_valid(2)), (true, false, false));
        let structs = lists.value(0);
        let structs = structs.as_struct();
        assert_eq!(structs.len(), 3);
        assert!(structs.is_null(1));
        let names = structs.column(0).as_string::<i32>();
        assert_eq!((names.value(0), names.value(2)), ("x", "7"));
        let maps = structs.column(1).as_map();
        assert_eq!(maps.value_length(0), 2);
        let counts = maps.values().as_primitive::<Int32Type>();
        assert_eq!((counts.is_null(0), counts.value(1)), (true, 1), "entries by key: j, then k");
    }

    #[test]
    fn a_value_of_the_wrong_shape_or_out_of_range_is_refused_with_where() {
        let ints = SqlType::Array(Box::new(SqlType::Integer));
        assert!(check(&ints, &json!({"a": 1})).is_err());
        assert!(check(&ints, &json!([1, "two"])).is_err());
        assert!(check(&ints, &json!([1, 4_000_000_000_i64])).is_err());
        assert!(check(&ints, &json!([1, 4.0e9])).is_err());
        assert!(matches!(leaf(&SqlType::Integer, &json!(-2.7)), Ok(Cell::Int(-2))), "truncated as ksqlDB reads it");
        let nested = SqlType::Struct(vec![("B".into(), SqlType::Map(Box::new(SqlType::Boolean)))]);
        let error = check(&nested, &json!({"b": {"k": 3}})).unwrap_err();
        assert!(error.contains("field B") && error.contains("map entry 'k'"), "{error}");
        assert!(check(&nested, &json!({"other": 1})).is_ok());
    }
}
