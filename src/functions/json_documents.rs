//! ksqlDB's functions over whole JSON documents held in STRINGs: JSON_RECORDS (an object's
//! entries as a MAP), JSON_ITEMS (an array's items as an ARRAY), JSON_CONCAT (objects merged,
//! anything else joined into one array) and JSON_ARRAY_CONTAINS.

use arrow::{
    array::{MapBuilder, StringBuilder},
    datatypes::DataType,
};
use datafusion::{
    common::ScalarValue,
    logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility},
};
use serde_json::Value;

use super::{
    maps::map_type,
    row_function::{Doc, RowFunction, text},
};

const SECTION: &str = "JSON Functions";

pub fn functions() -> Vec<ScalarUDF> {
    let strings = |n: usize| Signature::exact(vec![DataType::Utf8; n], Volatility::Immutable);
    vec![
        RowFunction::new("json_records", strings(1), |_| Ok(map_type(&DataType::Utf8)), records, Doc {
            section: SECTION,
            description: "The entries of a JSON object as a MAP of STRING to STRING: a string value unquoted, any other value as compact JSON. NULL when the text is not a JSON object.",
            syntax: "json_records(json)",
            arguments: &[("json", "A STRING holding a JSON object.")],
        })
        .udf(),
        RowFunction::new("json_items", strings(1), |_| Ok(DataType::new_list(DataType::Utf8, true)), items, Doc {
            section: SECTION,
            description: "The items of a JSON array as an ARRAY of STRING, each as compact JSON. NULL, with a processing error, when the text is not a JSON array.",
            syntax: "json_items(json)",
            arguments: &[("json", "A STRING holding a JSON array.")],
        })
        .udf(),
        RowFunction::new(
            "json_concat",
            Signature::new(TypeSignature::Variadic(vec![DataType::Utf8]), Volatility::Immutable),
            |_| Ok(DataType::Utf8),
            concat,
            Doc {
                section: SECTION,
                description: "JSON documents joined: objects merged (a later key wins); otherwise one array of every array's items and every other document. NULL when any is NULL or not JSON.",
                syntax: "json_concat(json1, json2 [, …])",
                arguments: &[("json", "STRINGs holding JSON documents.")],
            },
        )
        .udf(),
        RowFunction::new(
            "json_array_contains",
            Signature::new(TypeSignature::Any(2), Volatility::Immutable),
            |_| Ok(DataType::Boolean),
            array_contains,
            Doc {
                section: SECTION,
                description: "Whether a JSON array holds a value at its top level: a STRING a JSON string, an INTEGER or BIGINT a JSON integer, a DOUBLE a JSON decimal, a BOOLEAN a JSON boolean, NULL a JSON null. False when the text is not a JSON array.",
                syntax: "json_array_contains(json, value)",
                arguments: &[("json", "A STRING holding a JSON array."), ("value", "The value to look for.")],
            },
        )
        .taking_nulls()
        .udf(),
    ]
}

/// The document in `text`: None when it is blank (Jackson's missing node), an error when it
/// is not JSON.
fn parse(text: &str) -> std::result::Result<Option<Value>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(text).map(Some).map_err(|e| format!("Invalid JSON format: {e}"))
}

fn records(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let Some(Some(Value::Object(object))) = text(&args[0]).map(parse).transpose()? else {
        return Ok(ScalarValue::Null);
    };
    let mut builder = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for (key, value) in &object {
        builder.keys().append_value(key);
        match value {
            Value::String(s) => builder.values().append_value(s),
            other => builder.values().append_value(other.to_string()),
        }
    }
    builder.append(true).map_err(|e| e.to_string())?;
    let map = builder.finish();
    let map = arrow::compute::cast(&map, &map_type(&DataType::Utf8)).map_err(|e| e.to_string())?;
    ScalarValue::try_from_array(&map, 0).map_err(|e| e.to_string())
}

fn items(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let Some(document) = text(&args[0]) else { return Ok(ScalarValue::Null) };
    let Some(Value::Array(items)) = parse(document)? else {
        return Err(format!("Invalid JSON array: {document}"));
    };
    let items: Vec<ScalarValue> = items.iter().map(|item| ScalarValue::Utf8(Some(item.to_string()))).collect();
    Ok(ScalarValue::List(ScalarValue::new_list_nullable(&items, &DataType::Utf8)))
}

fn concat(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let mut documents = Vec::with_capacity(args.len());
    for arg in args {
        let Some(document) = text(arg).map(parse).transpose()?.flatten() else { return Ok(ScalarValue::Utf8(None)) };
        documents.push(document);
    }
    let joined = if documents.iter().all(Value::is_object) {
        let mut merged = serde_json::Map::new();
        for document in documents {
            if let Value::Object(object) = document {
                merged.extend(object);
            }
        }
        Value::Object(merged)
    } else {
        let mut items = Vec::new();
        for document in documents {
            match document {
                Value::Array(array) => items.extend(array),
                other => items.push(other),
            }
        }
        Value::Array(items)
    };
    Ok(ScalarValue::Utf8(Some(joined.to_string())))
}

fn array_contains(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let Some(document) = text(&args[0]) else { return Ok(ScalarValue::Boolean(None)) };
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(document) else { return Ok(ScalarValue::Boolean(Some(false))) };
    let wanted = &args[1];
    let found = items.iter().any(|item| match (item, wanted) {
        (Value::Null, value) => value.is_null(),
        (_, value) if value.is_null() => false,
        (Value::String(s), value) => text(value) == Some(s.as_str()),
        (Value::Bool(b), ScalarValue::Boolean(Some(v))) => b == v,
        (Value::Number(n), ScalarValue::Int32(Some(v))) => n.as_i64() == Some(i64::from(*v)),
        (Value::Number(n), ScalarValue::Int64(Some(v))) => n.as_i64() == Some(*v),
        (Value::Number(n), ScalarValue::Float64(Some(v))) => !n.is_i64() && !n.is_u64() && n.as_f64() == Some(*v),
        _ => false,
    });
    Ok(ScalarValue::Boolean(Some(found)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(text.into()))
    }

    #[test]
    fn concat_merges_objects_and_joins_anything_else_into_an_array() {
        assert_eq!(concat(&[s(r#"{"a": {"5": 6}}"#), s(r#"{"a": {"3": 4}}"#)]).unwrap(), s(r#"{"a":{"3":4}}"#));
        assert_eq!(concat(&[s("[1, 2]"), s(r#"{"a": 1}"#), s("4")]).unwrap(), s(r#"[1,2,{"a":1},4]"#));
        assert_eq!(concat(&[s("null"), s("null")]).unwrap(), s("[null,null]"));
        assert_eq!(concat(&[s("1"), s("")]).unwrap(), ScalarValue::Utf8(None));
    }

    #[test]
    fn array_contains_matches_the_json_type_of_the_value() {
        let colors = s(r#"["Pink", null, 3, 2.5, true, [1]]"#);
        let contains = |value: ScalarValue| array_contains(&[colors.clone(), value]).unwrap();
        assert_eq!(contains(s("Pink")), ScalarValue::Boolean(Some(true)));
        assert_eq!(contains(ScalarValue::Int32(Some(3))), ScalarValue::Boolean(Some(true)));
        assert_eq!(contains(ScalarValue::Float64(Some(3.0))), ScalarValue::Boolean(Some(false)));
        assert_eq!(contains(ScalarValue::Float64(Some(2.5))), ScalarValue::Boolean(Some(true)));
        assert_eq!(contains(ScalarValue::Int64(Some(1))), ScalarValue::Boolean(Some(false)), "nested arrays are not searched");
        assert_eq!(contains(ScalarValue::Utf8(None)), ScalarValue::Boolean(Some(true)));
        assert_eq!(array_contains(&[s("{}"), s("Pink")]).unwrap(), ScalarValue::Boolean(Some(false)));
    }

    #[test]
    fn records_and_items_give_values_as_text() {
        let ScalarValue::Map(map) = records(&[s(r#"{"Red": 3, "White": "Seven"}"#)]).unwrap() else { panic!("not a map") };
        assert_eq!(arrow::util::display::array_value_to_string(map.as_ref(), 0).unwrap(), "{Red: 3, White: Seven}");
        assert_eq!(records(&[s("[1]")]).unwrap(), ScalarValue::Null);
        let ScalarValue::List(list) = items(&[s(r#"[{"type": "A"}, "b"]"#)]).unwrap() else { panic!("not a list") };
        assert_eq!(arrow::util::display::array_value_to_string(list.as_ref(), 0).unwrap(), r#"[{"type":"A"}, "b"]"#);
        assert!(items(&[s("{}")]).is_err());
    }
}
