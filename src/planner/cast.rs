//! `KSQL_CAST(value, 'type')`, what the parser makes of a `CAST` to an ARRAY, MAP or STRUCT:
//! ksqlDB's cast, element by element, entry by entry and field by field.
//!
//! A struct's fields are matched by name: a field the value lacks is NULL, one the type lacks
//! is dropped. Integers narrow and doubles become integers as Java's casts do them (wrapping,
//! and saturating); other scalars are cast as DataFusion casts them, NULL where one cannot be.

use std::sync::Arc;

use arrow::{
    array::{Array, ArrayRef, AsArray, ListArray, MapArray, StructArray, new_null_array},
    compute::{CastOptions, cast_with_options, kernels::cast::can_cast_types},
    datatypes::{DataType, Float64Type, Int32Type, Int64Type},
};
use datafusion::{
    common::{Result, ScalarValue, exec_err, plan_err},
    logical_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility},
};

use crate::{catalog::SqlType, parser::{KSQL_CAST, parse_column_type}};

#[derive(Debug, PartialEq, Eq, Hash)]
struct KsqlCast {
    signature: Signature,
}

/// The function a `CAST` to a nested type is planned as.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(KsqlCast { signature: Signature::any(2, Volatility::Immutable) })
}

impl ScalarUDFImpl for KsqlCast {
    fn name(&self) -> &str {
        "ksql_cast"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        plan_err!("{KSQL_CAST} takes its type from its second argument")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<arrow::datatypes::FieldRef> {
        let Some(Some(ScalarValue::Utf8(Some(written)))) = args.scalar_arguments.get(1) else {
            return plan_err!("{KSQL_CAST} takes a type written as a string literal");
        };
        let target = parse_column_type(written).map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?.to_arrow();
        let from = args.arg_fields[0].data_type();
        if !castable(from, &target) {
            let name = |t: &DataType| SqlType::from_arrow(t).map_or_else(|_| t.to_string(), |t| t.to_string());
            return plan_err!("Cast of {} to {} is not supported", name(from), written);
        }
        Ok(Arc::new(arrow::datatypes::Field::new(self.name(), target, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let target = args.return_field.data_type().clone();
        match &args.args[0] {
            ColumnarValue::Array(values) => Ok(ColumnarValue::Array(cast(values, &target)?)),
            ColumnarValue::Scalar(value) => {
                let cast = cast(&value.to_array()?, &target)?;
                Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&cast, 0)?))
            }
        }
    }
}

/// Whether ksqlDB casts a value of type `from` to `to`.
fn castable(from: &DataType, to: &DataType) -> bool {
    match (from, to) {
        (DataType::Null, _) => true,
        (DataType::List(from), DataType::List(to)) => castable(from.data_type(), to.data_type()),
        (DataType::Map(from, _), DataType::Map(to, _)) => match (from.data_type(), to.data_type()) {
            (DataType::Struct(from), DataType::Struct(to)) => castable(from[1].data_type(), to[1].data_type()),
            _ => false,
        },
        (DataType::Struct(_), DataType::Struct(_)) => true,
        (from, to) if !from.is_nested() && !to.is_nested() => can_cast_types(from, to),
        _ => false,
    }
}

/// `values` cast to `to`, which [`castable`] allows.
fn cast(values: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    Ok(match (values.data_type(), to) {
        (DataType::Null, _) => new_null_array(to, values.len()),
        (DataType::List(_), DataType::List(element)) => {
            let list = values.as_list::<i32>();
            let elements = cast(list.values(), element.data_type())?;
            Arc::new(ListArray::try_new(element.clone(), list.offsets().clone(), elements, list.nulls().cloned())?)
        }
        (DataType::Map(_, _), DataType::Map(entries, sorted)) => {
            let map = values.as_map();
            let DataType::Struct(fields) = entries.data_type() else {
                return exec_err!("a map's entries are not a struct");
            };
            let cast_values = cast(map.values(), fields[1].data_type())?;
            let pairs = StructArray::try_new(fields.clone(), vec![map.keys().clone(), cast_values], None)?;
            Arc::new(MapArray::try_new(entries.clone(), map.offsets().clone(), pairs, map.nulls().cloned(), *sorted)?)
        }
        (DataType::Struct(from), DataType::Struct(fields)) => {
            let record = values.as_struct();
            let columns = fields
                .iter()
                .map(|field| match from.iter().position(|f| f.name() == field.name()) {
                    Some(at) => cast(record.column(at), field.data_type()),
                    None => Ok(new_null_array(field.data_type(), record.len())),
                })
                .collect::<Result<Vec<_>>>()?;
            Arc::new(StructArray::try_new(fields.clone(), columns, record.nulls().cloned())?)
        }
        (DataType::Int64, DataType::Int32) => Arc::new(values.as_primitive::<Int64Type>().unary::<_, Int32Type>(|v| v as i32)),
        (DataType::Float64, DataType::Int32) => Arc::new(values.as_primitive::<Float64Type>().unary::<_, Int32Type>(|v| v as i32)),
        (DataType::Float64, DataType::Int64) => Arc::new(values.as_primitive::<Float64Type>().unary::<_, Int64Type>(|v| v as i64)),
        (_, to) => cast_with_options(values, to, &CastOptions { safe: true, ..Default::default() })?,
    })
}

#[cfg(test)]
mod tests {
    use arrow::{
        array::{Int32Array, Int64Array, StringArray},
        datatypes::{Field, Fields},
    };

    use super::*;

    #[test]
    fn structs_are_cast_field_by_name_and_integers_wrap() {
        let from = Fields::from(vec![Field::new("F0", DataType::Int64, true), Field::new("F1", DataType::Utf8, true)]);
        let values: ArrayRef = Arc::new(StructArray::new(
            from,
            vec![Arc::new(Int64Array::from(vec![1, 2_147_483_648])), Arc::new(StringArray::from(vec!["a", "b"]))],
            None,
        ));
        let to = parse_column_type("STRUCT<F0 INTEGER, F3 STRING>").unwrap().to_arrow();
        assert!(castable(values.data_type(), &to));
        let cast = cast(&values, &to).unwrap();
        let record = cast.as_struct();
        assert_eq!(record.column(0).as_primitive::<Int32Type>(), &Int32Array::from(vec![1, i32::MIN]));
        assert_eq!(record.column(1).null_count(), 2, "a field the value lacks is NULL");
    }

    #[test]
    fn a_scalar_is_not_cast_to_a_collection() {
        let to = parse_column_type("ARRAY<INTEGER>").unwrap().to_arrow();
        assert!(!castable(&DataType::Utf8, &to));
        assert!(castable(&DataType::Null, &to));
        let from = parse_column_type("MAP<STRING, BIGINT>").unwrap().to_arrow();
        assert!(castable(&from, &parse_column_type("MAP<STRING, INTEGER>").unwrap().to_arrow()));
    }
}
