//! ksqlDB's array functions that DataFusion lacks or gives other meanings: SLICE (from 1, both
//! ends included, NULL when out of bounds) and ARRAY_JOIN (elements as Java prints them, NULL as
//! `null`, a `,` unless told otherwise), ARRAY_REMOVE (every element equal to the value, NULL
//! elements when the value is NULL) and ARRAY_LENGTH (an INTEGER, where DataFusion's is unsigned).

use std::sync::Arc;

use arrow::{
    array::{Array, BooleanArray, ListArray, cast::AsArray},
    buffer::OffsetBuffer,
    compute::filter,
    datatypes::{DataType, Float32Type, Float64Type},
};
use datafusion::{
    common::{Result, ScalarValue, exec_err, plan_err},
    logical_expr::{Signature, TypeSignature, Volatility},
};

use super::row_function::{Doc, RowFunction, integer, refuse_parameters, text};
use crate::java_number::double_to_string;

const SECTION: &str = "Array Functions";

pub fn functions() -> Vec<datafusion::logical_expr::ScalarUDF> {
    let any = |n: usize| TypeSignature::Any(n);
    vec![
        RowFunction::new("slice", Signature::new(any(3), Volatility::Immutable), list_type, slice, Doc {
            section: SECTION,
            description: "The elements of an ARRAY from one position to another (from 1, both included); NULL when they are out of its bounds.",
            syntax: "slice(array, from, to)",
            arguments: &[("array", "An ARRAY."), ("from", "The first position (1 when NULL)."), ("to", "The last position (the end when NULL).")],
        })
        .taking_nulls()
        .udf(),
        RowFunction::new(
            "array_join",
            Signature::one_of(vec![any(1), any(2)], Volatility::Immutable),
            joined_type,
            array_join,
            Doc {
                section: SECTION,
                description: "The elements of an ARRAY of BOOLEAN, INTEGER, BIGINT, DOUBLE, DECIMAL or STRING as one STRING, NULL elements as 'null', each pair separated by a delimiter.",
                syntax: "array_join(array [, delimiter])",
                arguments: &[("array", "An ARRAY of a primitive type."), ("delimiter", "What separates elements: ',' by default, nothing when NULL.")],
            },
        )
        .taking_nulls()
        .udf(),
        RowFunction::new("array_length", Signature::new(any(1), Volatility::Immutable), length_type, array_length, Doc {
            section: SECTION,
            description: "The number of elements of an ARRAY, as an INTEGER.",
            syntax: "array_length(array)",
            arguments: &[("array", "An ARRAY.")],
        })
        .udf(),
        RowFunction::new("array_remove", Signature::new(any(2), Volatility::Immutable), removed_type, array_remove, Doc {
            section: SECTION,
            description: "An ARRAY without the elements equal to a value (without its NULL elements when the value is NULL).",
            syntax: "array_remove(array, value)",
            arguments: &[("array", "An ARRAY."), ("value", "The value to remove, of the ARRAY's element type.")],
        })
        .taking_nulls()
        .udf(),
    ]
}

fn removed_type(types: &[DataType]) -> Result<DataType> {
    match types.first() {
        Some(list @ DataType::List(_)) => Ok(list.clone()),
        Some(other) => exec_err!("ARRAY_REMOVE takes an ARRAY, not {other}"),
        None => exec_err!("ARRAY_REMOVE takes an ARRAY and a value"),
    }
}

fn list_type(types: &[DataType]) -> Result<DataType> {
    match types.first() {
        Some(list @ DataType::List(_)) => Ok(list.clone()),
        Some(other) => exec_err!("SLICE takes an ARRAY, not {other}"),
        None => exec_err!("SLICE takes an ARRAY"),
    }
}

fn joined_type(types: &[DataType]) -> Result<DataType> {
    match types.first() {
        Some(DataType::List(element)) if is_primitive(element.data_type()) => Ok(DataType::Utf8),
        Some(DataType::List(element)) => {
            exec_err!("ARRAY_JOIN takes an ARRAY of BOOLEAN, INTEGER, BIGINT, DOUBLE, DECIMAL or STRING, not of {}", element.data_type())
        }
        Some(DataType::Null) => Ok(DataType::Utf8),
        _ => exec_err!("ARRAY_JOIN takes an ARRAY"),
    }
}

fn is_primitive(data_type: &DataType) -> bool {
    data_type.is_integer()
        || data_type.is_floating()
        || matches!(data_type, DataType::Boolean | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Decimal128(..) | DataType::Null)
}

/// The single row of a list scalar, or `None` for NULL.
fn elements(value: &ScalarValue) -> Option<(Arc<dyn Array>, &ListArray)> {
    match value {
        ScalarValue::List(list) if !list.is_null(0) => Some((list.value(0), list)),
        _ => None,
    }
}

fn slice(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let Some((values, list)) = elements(&args[0]) else { return Ok(ScalarValue::Null) };
    let start = integer(&args[1]).map_or(0, |from| from - 1);
    let end = integer(&args[2]).unwrap_or(values.len() as i64);
    if start < 0 || end > values.len() as i64 || start > end {
        return Ok(ScalarValue::Null);
    }
    let DataType::List(field) = list.data_type() else { return Err("not an ARRAY".into()) };
    let length = (end - start) as usize;
    let sliced = values.slice(start as usize, length);
    Ok(ScalarValue::List(Arc::new(ListArray::new(field.clone(), OffsetBuffer::from_lengths([length]), sliced, None))))
}

fn length_type(types: &[DataType]) -> Result<DataType> {
    match types {
        [DataType::List(_) | DataType::Null] => Ok(DataType::Int32),
        [_] => refuse_parameters("ARRAY_LENGTH", types),
        _ => plan_err!("Function 'ARRAY_LENGTH' takes one ARRAY"),
    }
}

fn array_length(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let Some((values, _)) = elements(&args[0]) else { return Ok(ScalarValue::Int32(None)) };
    let length = i32::try_from(values.len()).map_err(|_| "an ARRAY longer than an INTEGER counts".to_string())?;
    Ok(ScalarValue::Int32(Some(length)))
}

fn array_remove(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let Some((values, list)) = elements(&args[0]) else { return Ok(ScalarValue::Null) };
    let DataType::List(field) = list.data_type() else { return Err("not an ARRAY".into()) };
    let victim = if args[1].is_null() { ScalarValue::try_from(field.data_type()) } else { args[1].cast_to(field.data_type()) }.map_err(|e| e.to_string())?;
    let kept = (0..values.len())
        .map(|i| ScalarValue::try_from_array(&values, i).map(|element| Some(element != victim)))
        .collect::<Result<BooleanArray>>()
        .map_err(|e| e.to_string())?;
    let remaining = filter(&values, &kept).map_err(|e| e.to_string())?;
    let length = remaining.len();
    Ok(ScalarValue::List(Arc::new(ListArray::new(field.clone(), OffsetBuffer::from_lengths([length]), remaining, None))))
}

fn array_join(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let Some((values, _)) = elements(&args[0]) else { return Ok(ScalarValue::Utf8(None)) };
    let delimiter = match args.get(1) {
        None => ",",
        Some(value) => text(value).unwrap_or(""),
    };
    let mut joined = String::new();
    for i in 0..values.len() {
        if i > 0 {
            joined.push_str(delimiter);
        }
        joined.push_str(&java_text(values.as_ref(), i)?);
    }
    Ok(ScalarValue::Utf8(Some(joined)))
}

/// Element `i` as Java's `toString` prints it.
fn java_text(values: &dyn Array, i: usize) -> std::result::Result<String, String> {
    if values.is_null(i) {
        return Ok("null".to_string());
    }
    Ok(match values.data_type() {
        DataType::Float64 => double_to_string(values.as_primitive::<Float64Type>().value(i)),
        DataType::Float32 => double_to_string(f64::from(values.as_primitive::<Float32Type>().value(i))),
        other if is_primitive(other) => ScalarValue::try_from_array(values, i).map_err(|e| e.to_string())?.to_string(),
        other => return Err(format!("error: hit element of type {other} which is currently not supported")),
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::{Float64Array, StringArray};

    use super::*;

    fn list(values: Arc<dyn Array>) -> ScalarValue {
        ScalarValue::List(Arc::new(ListArray::new(
            Arc::new(arrow::datatypes::Field::new("item", values.data_type().clone(), true)),
            OffsetBuffer::from_lengths([values.len()]),
            values,
            None,
        )))
    }

    fn strings(value: &ScalarValue) -> Vec<String> {
        let (values, _) = elements(value).unwrap();
        values.as_string::<i32>().iter().map(|s| s.unwrap().to_string()).collect()
    }

    #[test]
    fn slice_counts_from_one_includes_both_ends_and_is_null_out_of_bounds() {
        let letters = list(Arc::new(StringArray::from(vec!["a", "b", "c", "d"])));
        let at = |from: Option<i32>, to: Option<i32>| slice(&[letters.clone(), ScalarValue::Int32(from), ScalarValue::Int32(to)]).unwrap();
        assert_eq!(strings(&at(Some(2), Some(3))), ["b", "c"]);
        assert_eq!(strings(&at(None, Some(2))), ["a", "b"]);
        assert_eq!(strings(&at(Some(3), None)), ["c", "d"]);
        assert_eq!(strings(&at(Some(3), Some(2))), Vec::<String>::new());
        assert!(at(Some(0), Some(2)).is_null());
        assert!(at(Some(2), Some(5)).is_null());
    }

    #[test]
    fn array_length_is_an_integer() {
        let letters = list(Arc::new(StringArray::from(vec!["a", "b", "c"])));
        assert_eq!(array_length(&[letters]).unwrap(), ScalarValue::Int32(Some(3)));
        assert_eq!(length_type(&[DataType::List(Arc::new(arrow::datatypes::Field::new("item", DataType::Utf8, true)))]).unwrap(), DataType::Int32);
        assert!(length_type(&[DataType::Utf8]).unwrap_err().to_string().contains("does not accept parameters (STRING)"));
    }

    #[test]
    fn array_join_prints_elements_as_java_with_null_as_text() {
        let doubles = list(Arc::new(Float64Array::from(vec![Some(1.23), None, Some(0.0), Some(1e10)])));
        assert_eq!(array_join(&[doubles.clone()]).unwrap(), ScalarValue::Utf8(Some("1.23,null,0.0,1.0E10".into())));
        assert_eq!(array_join(&[doubles, ScalarValue::Utf8(None)]).unwrap(), ScalarValue::Utf8(Some("1.23null0.01.0E10".into())));
    }
}
