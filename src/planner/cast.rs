//! `KSQL_CAST(value, 'type')`, what the parser makes of a `CAST` to an ARRAY, MAP or STRUCT:
//! ksqlDB's cast, element by element, entry by entry and field by field.
//!
//! A struct's fields are matched by name: a field the value lacks is NULL, one the type lacks
//! is dropped. Integers narrow and doubles become integers as Java's casts do them (wrapping,
//! and saturating); other scalars are cast as DataFusion casts them, NULL where one cannot be.
//!
//! A MAP or STRUCT (or a collection holding one) cast to STRING is written as ksqlDB writes it,
//! with Java's `toString`: `{k=v, k2=v2}`, `Struct{F0=1,F1=a}` (NULL fields left out), `[a, b]`.

use std::sync::Arc;

use arrow::{
    array::{Array, ArrayRef, AsArray, ListArray, MapArray, StringArray, StructArray, new_null_array},
    compute::{CastOptions, cast_with_options, kernels::cast::can_cast_types},
    datatypes::{DataType, Float64Type, Int32Type, Int64Type},
};
use datafusion::{
    common::{
        Result, ScalarValue, exec_err, plan_err,
        tree_node::{Transformed, TreeNode},
    },
    logical_expr::{
        ColumnarValue, Expr, ExprSchemable, LogicalPlan, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
        Volatility, lit,
    },
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
            return plan_err!("Cast of {} to {} is not supported", SqlType::name_of(from), written);
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
        (from, DataType::Utf8) if holds_map_or_struct(from) => true,
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
        (from, DataType::Utf8) if holds_map_or_struct(from) => {
            Arc::new((0..values.len()).map(|row| values.is_valid(row).then(|| java_text(values, row))).collect::<StringArray>())
        }
        (DataType::Int64, DataType::Int32) => Arc::new(values.as_primitive::<Int64Type>().unary::<_, Int32Type>(|v| v as i32)),
        (DataType::Float64, DataType::Int32) => Arc::new(values.as_primitive::<Float64Type>().unary::<_, Int32Type>(|v| v as i32)),
        (DataType::Float64, DataType::Int64) => Arc::new(values.as_primitive::<Float64Type>().unary::<_, Int64Type>(|v| v as i64)),
        (_, to) => cast_with_options(values, to, &CastOptions { safe: true, ..Default::default() })?,
    })
}

/// Whether a value of `data_type` is or holds a MAP or STRUCT, which DataFusion cannot write
/// as a string.
fn holds_map_or_struct(data_type: &DataType) -> bool {
    match data_type {
        DataType::Map(_, _) | DataType::Struct(_) => true,
        DataType::List(element) => holds_map_or_struct(element.data_type()),
        _ => false,
    }
}

/// Java's `toString` of the value at `row`, as ksqlDB's CAST to STRING writes it.
fn java_text(values: &ArrayRef, row: usize) -> String {
    if values.is_null(row) {
        return "null".into();
    }
    match values.data_type() {
        DataType::Struct(fields) => {
            let record = values.as_struct();
            let set: Vec<String> = fields
                .iter()
                .zip(record.columns())
                .filter(|(_, column)| column.is_valid(row))
                .map(|(field, column)| format!("{}={}", field.name(), java_text(column, row)))
                .collect();
            format!("Struct{{{}}}", set.join(","))
        }
        DataType::Map(_, _) => {
            let map = values.as_map();
            let entries = map.value(row);
            let (keys, values) = (entries.column(0), entries.column(1));
            let pairs: Vec<String> = (0..entries.len()).map(|i| format!("{}={}", java_text(keys, i), java_text(values, i))).collect();
            format!("{{{}}}", pairs.join(", "))
        }
        DataType::List(_) => {
            let elements = values.as_list::<i32>().value(row);
            let texts: Vec<String> = (0..elements.len()).map(|i| java_text(&elements, i)).collect();
            format!("[{}]", texts.join(", "))
        }
        DataType::Float64 => crate::java_number::double_to_string(values.as_primitive::<Float64Type>().value(row)),
        _ => arrow::util::display::array_value_to_string(values, row).unwrap_or_default(),
    }
}

/// `plan` with each CAST to a string of a value holding a MAP or STRUCT made a `KSQL_CAST`,
/// which writes it as ksqlDB does; DataFusion has no such cast.
pub fn nested_to_string(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_up(|node| {
        let Some(schema) = node.inputs().first().map(|input| input.schema().clone()) else {
            return Ok(Transformed::no(node));
        };
        let projection = matches!(node, LogicalPlan::Projection(_));
        node.map_expressions(|expr| {
            let name = expr.schema_name().to_string();
            let rewritten = expr.transform_up(|e| match &e {
                Expr::Cast(cast) if matches!(cast.field.data_type(), DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) => {
                    if !cast.expr.get_type(&schema).is_ok_and(|t| holds_map_or_struct(&t)) {
                        return Ok(Transformed::no(e));
                    }
                    let call = udf().call(vec![cast.expr.as_ref().clone(), lit("STRING")]);
                    Ok(Transformed::yes(Expr::Cast(datafusion::logical_expr::Cast::new_from_field(Box::new(call), cast.field.clone()))))
                }
                _ => Ok(Transformed::no(e)),
            })?;
            if projection && rewritten.transformed { rewritten.map_data(|e| e.alias_if_changed(name)) } else { Ok(rewritten) }
        })
    })
    .map(|t| t.data)
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
    fn maps_and_structs_are_written_as_javas_to_string() {
        let fields = Fields::from(vec![Field::new("F0", DataType::Int32, true), Field::new("f1", DataType::Float64, true), Field::new("F2", DataType::Utf8, true)]);
        let record: ArrayRef = Arc::new(StructArray::new(
            fields,
            vec![
                Arc::new(Int32Array::from(vec![1])),
                Arc::new(arrow::array::Float64Array::from(vec![1e10])),
                Arc::new(StringArray::from(vec![None::<&str>])),
            ],
            None,
        ));
        let text = cast(&record, &DataType::Utf8).unwrap();
        assert_eq!(text.as_string::<i32>().value(0), "Struct{F0=1,f1=1.0E10}", "a NULL field is left out");
        let mut map = arrow::array::MapBuilder::new(None, arrow::array::StringBuilder::new(), arrow::array::Int32Builder::new());
        map.keys().append_value("this");
        map.values().append_value(1);
        map.append(true).unwrap();
        map.append(false).unwrap();
        let map: ArrayRef = Arc::new(map.finish());
        let text = cast(&map, &DataType::Utf8).unwrap();
        assert_eq!(text.as_string::<i32>().value(0), "{this=1}");
        assert!(text.is_null(1));
        assert!(!castable(&DataType::Int32, &parse_column_type("MAP<STRING, INTEGER>").unwrap().to_arrow()));
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
