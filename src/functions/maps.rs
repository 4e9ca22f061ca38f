//! ksqlDB's map functions that DataFusion lacks: ENTRIES, MAP_UNION and AS_MAP.
//!
//! A map is Arrow's MAP of STRING keys, as Sluice stores ksqlDB's `MAP<STRING, t>`; each
//! function works on one row's map and returns one row's value.

use std::sync::Arc;

use arrow::{
    array::{Array, ArrayRef, AsArray, ListArray, MapArray, StringArray, StructArray, UInt32Array},
    buffer::OffsetBuffer,
    compute::{concat, take},
    datatypes::{DataType, Field, Fields},
};
use datafusion::{
    common::{ScalarValue, plan_err},
    logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility},
};

use super::row_function::{Doc, RowFunction};

const SECTION: &str = "Map Functions";

pub fn functions() -> Vec<ScalarUDF> {
    let any = || Signature::new(TypeSignature::VariadicAny, Volatility::Immutable);
    vec![
        RowFunction::new("entries", any(), entries_type, entries, Doc {
            section: SECTION,
            description: "The entries of a map as an ARRAY of STRUCT<K, V>, sorted by key when asked.",
            syntax: "entries(map, sorted)",
            arguments: &[("map", "A MAP."), ("sorted", "A BOOLEAN: whether the entries are sorted by key.")],
        })
        .udf(),
        RowFunction::new("map_union", any(), union_type, map_union, Doc {
            section: SECTION,
            description: "Every entry of two maps; a key in both takes the second map's value. NULL maps count as empty unless both are.",
            syntax: "map_union(map1, map2)",
            arguments: &[("map1", "A MAP."), ("map2", "A MAP of the same type.")],
        })
        .taking_nulls()
        .udf(),
        RowFunction::new("as_map", any(), as_map_type, as_map, Doc {
            section: SECTION,
            description: "A MAP of an ARRAY of keys to the ARRAY of their values, paired in order up to the shorter.",
            syntax: "as_map(keys, values)",
            arguments: &[("keys", "An ARRAY<STRING>."), ("values", "An ARRAY of the values.")],
        })
        .udf(),
    ]
}

/// The type of a MAP of STRING keys to `value`s, as Sluice types ksqlDB's maps.
pub(crate) fn map_type(value: &DataType) -> DataType {
    let entries = DataType::Struct(vec![Field::new("key", DataType::Utf8, false), Field::new("value", value.clone(), true)].into());
    DataType::Map(Arc::new(Field::new("entries", entries, false)), false)
}

/// The value type of a MAP type.
fn map_value(data_type: &DataType) -> Option<&DataType> {
    match data_type {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) => fields.get(1).map(|f| f.data_type()),
            _ => None,
        },
        _ => None,
    }
}

fn entry_fields(value: &DataType) -> Fields {
    vec![Field::new("K", DataType::Utf8, true), Field::new("V", value.clone(), true)].into()
}

fn entries_type(types: &[DataType]) -> datafusion::common::Result<DataType> {
    match types {
        [map, DataType::Boolean] => match map_value(map) {
            Some(value) => Ok(DataType::List(Arc::new(Field::new("item", DataType::Struct(entry_fields(value)), true)))),
            None => plan_err!("ENTRIES takes a MAP and a BOOLEAN"),
        },
        _ => plan_err!("ENTRIES takes a MAP and a BOOLEAN"),
    }
}

fn union_type(types: &[DataType]) -> datafusion::common::Result<DataType> {
    match types {
        [first, second] if map_value(first).is_some() && map_value(first) == map_value(second) => Ok(first.clone()),
        [first, DataType::Null] | [DataType::Null, first] if map_value(first).is_some() => Ok(first.clone()),
        _ => plan_err!("MAP_UNION takes two MAPs of the same type"),
    }
}

fn as_map_type(types: &[DataType]) -> datafusion::common::Result<DataType> {
    match types {
        [DataType::List(keys), DataType::List(values)] if keys.data_type() == &DataType::Utf8 => Ok(map_type(values.data_type())),
        _ => plan_err!("AS_MAP takes an ARRAY<STRING> of keys and an ARRAY of values"),
    }
}

/// One row's map: its keys and values.
fn map_entries(value: &ScalarValue) -> Option<(StringArray, ArrayRef)> {
    let ScalarValue::Map(map) = value else { return None };
    if map.is_null(0) {
        return None;
    }
    let entries = map.value(0);
    Some((entries.column(0).as_string::<i32>().clone(), entries.column(1).clone()))
}

/// One row's map of `keys` to `values`, of map type `data_type`.
fn one_map(data_type: &DataType, keys: ArrayRef, values: ArrayRef) -> Result<ScalarValue, String> {
    let DataType::Map(field, sorted) = data_type else { return Err("not a map type".into()) };
    let DataType::Struct(fields) = field.data_type() else { return Err("not a map type".into()) };
    let entries = StructArray::try_new(fields.clone(), vec![keys, values], None).map_err(|e| e.to_string())?;
    let offsets = OffsetBuffer::from_lengths([entries.len()]);
    let map = MapArray::try_new(field.clone(), offsets, entries, None, *sorted).map_err(|e| e.to_string())?;
    Ok(ScalarValue::Map(Arc::new(map)))
}

fn entries(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let (keys, values) = map_entries(&args[0]).ok_or("not a map")?;
    let mut order: Vec<u32> = (0..keys.len() as u32).collect();
    if matches!(args[1], ScalarValue::Boolean(Some(true))) {
        order.sort_by(|a, b| keys.value(*a as usize).cmp(keys.value(*b as usize)));
    }
    let order = UInt32Array::from(order);
    let keys = take(&keys, &order, None).map_err(|e| e.to_string())?;
    let values = take(&values, &order, None).map_err(|e| e.to_string())?;
    let fields = entry_fields(values.data_type());
    let structs = StructArray::try_new(fields.clone(), vec![keys, values], None).map_err(|e| e.to_string())?;
    let item = Arc::new(Field::new("item", DataType::Struct(fields), true));
    let list = ListArray::try_new(item, OffsetBuffer::from_lengths([structs.len()]), Arc::new(structs), None).map_err(|e| e.to_string())?;
    Ok(ScalarValue::List(Arc::new(list)))
}

fn map_union(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let data_type = if args[0].data_type().is_null() { args[1].data_type() } else { args[0].data_type() };
    let (first, second) = (map_entries(&args[0]), map_entries(&args[1]));
    let ((first_keys, first_values), (second_keys, second_values)) = match (first, second) {
        (None, None) => return ScalarValue::try_from(&data_type).map_err(|e| e.to_string()),
        (Some(first), None) => return one_map(&data_type, Arc::new(first.0), first.1),
        (None, Some(second)) => return one_map(&data_type, Arc::new(second.0), second.1),
        (Some(first), Some(second)) => (first, second),
    };
    // Indices into the first map's values, then the second's.
    let offset = first_keys.len() as u32;
    let in_second = |key: &str| (0..second_keys.len()).rev().find(|i| second_keys.value(*i) == key);
    let mut keys: Vec<&str> = Vec::new();
    let mut picks: Vec<u32> = Vec::new();
    for i in 0..first_keys.len() {
        let key = first_keys.value(i);
        keys.push(key);
        picks.push(in_second(key).map_or(i as u32, |j| offset + j as u32));
    }
    for j in 0..second_keys.len() {
        let key = second_keys.value(j);
        if !keys.contains(&key) {
            keys.push(key);
            picks.push(offset + j as u32);
        }
    }
    let all = concat(&[first_values.as_ref(), second_values.as_ref()]).map_err(|e| e.to_string())?;
    let values = take(&all, &UInt32Array::from(picks), None).map_err(|e| e.to_string())?;
    one_map(&data_type, Arc::new(StringArray::from(keys)), values)
}

fn as_map(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let (ScalarValue::List(keys), ScalarValue::List(values)) = (&args[0], &args[1]) else { return Err("AS_MAP takes two arrays".into()) };
    if keys.is_null(0) || values.is_null(0) {
        return Err("NULL array".into());
    }
    let (keys, values) = (keys.value(0), values.value(0));
    let keys = keys.as_string::<i32>();
    let pairs: Vec<u32> = (0..keys.len().min(values.len()) as u32).filter(|i| keys.is_valid(*i as usize)).collect();
    let picks = UInt32Array::from(pairs);
    let map_keys = take(keys, &picks, None).map_err(|e| e.to_string())?;
    let map_values = take(&values, &picks, None).map_err(|e| e.to_string())?;
    one_map(&map_type(values.data_type()), map_keys, map_values)
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, MapBuilder, StringBuilder, Int64Builder};

    use super::*;

    fn map(entries: &[(&str, Option<i64>)]) -> ScalarValue {
        let mut builder = MapBuilder::new(
            Some(arrow::array::MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() }),
            StringBuilder::new(),
            Int64Builder::new(),
        );
        for (key, value) in entries {
            builder.keys().append_value(key);
            builder.values().append_option(*value);
        }
        builder.append(true).unwrap();
        ScalarValue::Map(Arc::new(builder.finish()))
    }

    fn pairs(value: &ScalarValue) -> Vec<(String, Option<i64>)> {
        let (keys, values) = map_entries(value).unwrap();
        let values = values.as_any().downcast_ref::<Int64Array>().unwrap();
        (0..keys.len()).map(|i| (keys.value(i).to_string(), values.is_valid(i).then(|| values.value(i)))).collect()
    }

    #[test]
    fn map_union_takes_the_second_maps_value_for_a_shared_key() {
        let union = map_union(&[map(&[("foo", Some(10)), ("bar", Some(20))]), map(&[("foo", None), ("apple", Some(-1))])]).unwrap();
        assert_eq!(pairs(&union), vec![("foo".into(), None), ("bar".into(), Some(20)), ("apple".into(), Some(-1))]);
        let one = map_union(&[map(&[("a", Some(1))]), ScalarValue::try_from(map(&[]).data_type()).unwrap()]).unwrap();
        assert_eq!(pairs(&one), vec![("a".into(), Some(1))]);
    }

    #[test]
    fn entries_are_sorted_by_key_when_asked() {
        let ScalarValue::List(list) = entries(&[map(&[("b", Some(2)), ("a", Some(1))]), ScalarValue::Boolean(Some(true))]).unwrap() else {
            panic!("a list")
        };
        let structs = list.value(0);
        let keys = structs.as_struct().column(0).as_string::<i32>().iter().map(|k| k.unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(keys, vec!["a", "b"]);
    }

    #[test]
    fn as_map_pairs_keys_and_values_up_to_the_shorter() {
        let keys = ScalarValue::List(ScalarValue::new_list_nullable(&[ScalarValue::from("a"), ScalarValue::from("b")], &DataType::Utf8));
        let values = ScalarValue::List(ScalarValue::new_list_nullable(&[ScalarValue::Int64(Some(1)), ScalarValue::Int64(Some(2)), ScalarValue::Int64(Some(3))], &DataType::Int64));
        assert_eq!(pairs(&as_map(&[keys, values]).unwrap()), vec![("a".into(), Some(1)), ("b".into(), Some(2))]);
    }
}
