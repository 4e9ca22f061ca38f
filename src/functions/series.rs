//! ksqlDB's GENERATE_SERIES: the ARRAY of whole numbers from one to another, both included, by a
//! step of 1 or -1 unless told otherwise; INTEGERs unless an end is a BIGINT, in Java's wrapping
//! arithmetic. DataFusion's gives BIGINTs and an empty ARRAY when the series runs down.

use std::sync::Arc;

use arrow::{
    array::{Array, Int32Array, Int64Array, ListArray},
    buffer::OffsetBuffer,
    datatypes::{DataType, Field},
};
use datafusion::{
    common::{Result, ScalarValue},
    logical_expr::{Signature, TypeSignature, Volatility},
};

use super::row_function::{Doc, RowFunction, integer, refuse_parameters};

/// The most elements one call makes: a longer series fails its row rather than the server's memory.
const LONGEST: i64 = 10_000_000;

pub fn function() -> datafusion::logical_expr::ScalarUDF {
    let any = |n: usize| TypeSignature::Any(n);
    RowFunction::new("generate_series", Signature::one_of(vec![any(2), any(3)], Volatility::Immutable), series_type, generate_series, Doc {
        section: "Array Functions",
        description: "The ARRAY of whole numbers from start to end, both included, each step apart (1 or -1 by default).",
        syntax: "generate_series(start, end [, step])",
        arguments: &[
            ("start", "The first number, an INTEGER or BIGINT."),
            ("end", "The last number, an INTEGER or BIGINT."),
            ("step", "The INTEGER between numbers; not zero, and of the sign that leads from start to end."),
        ],
    })
    .udf()
}

fn int(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Null)
}

fn series_type(types: &[DataType]) -> Result<DataType> {
    let element = match types {
        [start, end] | [start, end, _] if int(start) && int(end) => DataType::Int32,
        [start, end] | [start, end, _] if (int(start) || *start == DataType::Int64) && (int(end) || *end == DataType::Int64) => DataType::Int64,
        _ => return refused(types),
    };
    match types.get(2) {
        Some(step) if !int(step) => refused(types),
        _ => Ok(DataType::List(Arc::new(Field::new("item", element, true)))),
    }
}

fn refused(types: &[DataType]) -> Result<DataType> {
    refuse_parameters("GENERATE_SERIES", types)
}

fn generate_series(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let bigints = args[..2].iter().any(|arg| arg.data_type() == DataType::Int64);
    let (Some(start), Some(end)) = (integer(&args[0]), integer(&args[1])) else {
        return Err("GENERATE_SERIES takes whole numbers".into());
    };
    let values: Arc<dyn Array> = if bigints {
        let step = match args.get(2) {
            Some(step) => integer(step).ok_or("GENERATE_SERIES takes a whole step")?,
            None if end.wrapping_sub(start) > 0 => 1,
            None => -1,
        };
        Arc::new(Int64Array::from(series(start, end.wrapping_sub(start), step, i64::wrapping_add)?))
    } else {
        let (start, end) = (start as i32, end as i32);
        let step = match args.get(2) {
            Some(step) => integer(step).ok_or("GENERATE_SERIES takes a whole step")?,
            None if end.wrapping_sub(start) > 0 => 1,
            None => -1,
        };
        Arc::new(Int32Array::from(series(start, i64::from(end.wrapping_sub(start)), step, |value, step| value.wrapping_add(step as i32))?))
    };
    let field = Arc::new(Field::new("item", values.data_type().clone(), true));
    Ok(ScalarValue::List(Arc::new(ListArray::new(field, OffsetBuffer::from_lengths([values.len()]), values, None))))
}

/// `1 + diff / step` values from `start`, each `step` after the last, as ksqlDB counts them.
fn series<T: Copy>(start: T, diff: i64, step: i64, next: fn(T, i64) -> T) -> std::result::Result<Vec<T>, String> {
    if step == 0 {
        return Err("GENERATE_SERIES step cannot be zero".into());
    }
    if diff > 0 && step < 0 || diff < 0 && step > 0 {
        return Err("GENERATE_SERIES step has wrong sign".into());
    }
    let size = diff.wrapping_div(step).saturating_add(1);
    if !(0..=LONGEST).contains(&size) {
        return Err(format!("GENERATE_SERIES would make more than {LONGEST} elements"));
    }
    let mut values = Vec::with_capacity(size as usize);
    let mut value = start;
    for _ in 0..size {
        values.push(value);
        value = next(value, step);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(value: ScalarValue) -> Vec<i64> {
        let ScalarValue::List(list) = value else { panic!("not a list: {value:?}") };
        let values = list.value(0);
        (0..values.len()).map(|i| integer(&ScalarValue::try_from_array(&values, i).unwrap()).unwrap()).collect()
    }

    #[test]
    fn runs_up_or_down_by_one_unless_told_and_keeps_integers() {
        let ints = |values: &[i32]| values.iter().map(|v| ScalarValue::Int32(Some(*v))).collect::<Vec<_>>();
        assert_eq!(elements(generate_series(&ints(&[4, 0])).unwrap()), vec![4, 3, 2, 1, 0]);
        assert_eq!(elements(generate_series(&ints(&[-2, 1])).unwrap()), vec![-2, -1, 0, 1]);
        assert_eq!(elements(generate_series(&ints(&[0, 9, 3])).unwrap()), vec![0, 3, 6, 9]);
        assert_eq!(elements(generate_series(&ints(&[1, -2, -2])).unwrap()), vec![1, -1]);
        assert_eq!(generate_series(&ints(&[0, 3, -1])).unwrap_err(), "GENERATE_SERIES step has wrong sign");
        assert_eq!(generate_series(&ints(&[0, 3, 0])).unwrap_err(), "GENERATE_SERIES step cannot be zero");
        let list = |element| DataType::List(Arc::new(Field::new("item", element, true)));
        assert_eq!(series_type(&[DataType::Int32, DataType::Int32]).unwrap(), list(DataType::Int32));
        assert_eq!(series_type(&[DataType::Int32, DataType::Int64, DataType::Int32]).unwrap(), list(DataType::Int64));
        let refusal = series_type(&[DataType::Int32, DataType::Int32, DataType::Int64]).unwrap_err().to_string();
        assert!(refusal.contains("does not accept parameters (INTEGER, INTEGER, BIGINT)"), "{refusal}");
    }

    #[test]
    fn bigints_make_bigints_and_a_huge_series_fails_its_row() {
        let longs = [ScalarValue::Int64(Some(5_000_000_000)), ScalarValue::Int64(Some(5_000_000_002))];
        assert_eq!(elements(generate_series(&longs).unwrap()), vec![5_000_000_000, 5_000_000_001, 5_000_000_002]);
        let huge = [ScalarValue::Int64(Some(0)), ScalarValue::Int64(Some(i64::MAX))];
        assert!(generate_series(&huge).unwrap_err().contains("more than"));
    }
}
