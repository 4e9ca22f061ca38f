//! ksqlDB's `SUM_LIST(array)`: the sum of every element of the group's arrays, of the arrays'
//! element type (INTEGER, BIGINT or DOUBLE; integers wrap as Java's do). A NULL array or element
//! adds nothing, and a group of nothing else sums to 0, as ksqlDB's; a table's update takes its
//! array back out.

use std::sync::{Arc, LazyLock};

use arrow::{
    array::{Array, ArrayRef, AsArray},
    datatypes::{DataType, Field, FieldRef, Float64Type, Int32Type, Int64Type},
};
use datafusion::{
    common::{Result, ScalarValue, plan_err},
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        utils::format_state_name,
    },
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct SumList {
    signature: Signature,
}

/// `SUM_LIST`.
pub fn function() -> AggregateUDF {
    AggregateUDF::from(SumList { signature: Signature::any(1, Volatility::Immutable) })
}

impl AggregateUDFImpl for SumList {
    fn name(&self) -> &str {
        "sum_list"
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
            super::documented(
                "General Functions",
                "The sum of the elements of every array in the group; 0 when there are none.",
                "sum_list(array)",
                &[("array", "An ARRAY<INTEGER>, ARRAY<BIGINT> or ARRAY<DOUBLE> expression.")],
            )
        });
        Some(&DOCUMENTATION)
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            DataType::List(item) if matches!(item.data_type(), DataType::Int32 | DataType::Int64 | DataType::Float64) => {
                Ok(item.data_type().clone())
            }
            other => plan_err!(
                "Function 'SUM_LIST' does not accept parameters ({other}): it takes an ARRAY<INTEGER>, ARRAY<BIGINT> or ARRAY<DOUBLE>"
            ),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(match args.return_field.data_type() {
            DataType::Int32 => Total::Integer(0),
            DataType::Int64 => Total::Bigint(0),
            _ => Total::Double(0.0),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format_state_name(args.name, "sum"), args.return_field.data_type().clone(), false))])
    }
}

/// The running sum, of the arrays' element type.
#[derive(Debug)]
enum Total {
    Integer(i32),
    Bigint(i64),
    Double(f64),
}

impl Total {
    /// Adds (`sign` 1) or takes out (`sign` -1) every element of `values`, an array of the
    /// element type.
    fn add(&mut self, values: &dyn Array, sign: i8) {
        match self {
            Total::Integer(total) => {
                for v in values.as_primitive::<Int32Type>().iter().flatten() {
                    *total = if sign > 0 { total.wrapping_add(v) } else { total.wrapping_sub(v) };
                }
            }
            Total::Bigint(total) => {
                for v in values.as_primitive::<Int64Type>().iter().flatten() {
                    *total = if sign > 0 { total.wrapping_add(v) } else { total.wrapping_sub(v) };
                }
            }
            Total::Double(total) => {
                for v in values.as_primitive::<Float64Type>().iter().flatten() {
                    *total += f64::from(sign) * v;
                }
            }
        }
    }

    /// Adds or takes out every element of every array of `lists`.
    fn add_lists(&mut self, lists: &ArrayRef, sign: i8) {
        let lists = lists.as_list::<i32>();
        for row in 0..lists.len() {
            if lists.is_valid(row) {
                self.add(lists.value(row).as_ref(), sign);
            }
        }
    }
}

impl Accumulator for Total {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add_lists(&values[0], 1);
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add_lists(&values[0], -1);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(match self {
            Total::Integer(total) => ScalarValue::Int32(Some(*total)),
            Total::Bigint(total) => ScalarValue::Int64(Some(*total)),
            Total::Double(total) => ScalarValue::Float64(Some(*total)),
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(states[0].as_ref(), 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::ListArray;

    use super::*;

    #[test]
    fn sums_every_element_skipping_nulls_and_takes_arrays_back_out() {
        let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(1)]),
            None,
            Some(vec![Some(100), None, Some(i32::MAX)]),
        ]));
        let mut total = Total::Integer(0);
        total.update_batch(&[lists.clone()]).unwrap();
        assert_eq!(total.evaluate().unwrap(), ScalarValue::Int32(Some(2i32.wrapping_add(100).wrapping_add(i32::MAX))));
        total.retract_batch(&[lists.slice(2, 1)]).unwrap();
        assert_eq!(total.evaluate().unwrap(), ScalarValue::Int32(Some(2)));
        let mut merged = Total::Integer(5);
        merged.merge_batch(&[total.state().unwrap()[0].to_array().unwrap()]).unwrap();
        assert_eq!(merged.evaluate().unwrap(), ScalarValue::Int32(Some(7)));
    }

    #[test]
    fn only_arrays_of_numbers_are_taken() {
        let sum_list = SumList { signature: Signature::any(1, Volatility::Immutable) };
        let doubles = DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true)));
        assert_eq!(sum_list.return_type(&[doubles]).unwrap(), DataType::Float64);
        let strings = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
        assert!(sum_list.return_type(&[strings]).is_err());
        assert!(sum_list.return_type(&[DataType::Int64]).is_err());
    }
}
