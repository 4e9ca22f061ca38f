//! ksqlDB's `SUM`: DataFusion's, except that the sum of INTEGERs is an INTEGER, wrapping past
//! its range as Java's `int` does (DataFusion's is a BIGINT).

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, AsArray},
    datatypes::{DataType, Field, FieldRef, Int32Type, Int64Type},
};
use datafusion::{
    common::{Result, ScalarValue},
    functions_aggregate::sum::sum_udaf,
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        type_coercion::functions::fields_with_udf,
        utils::format_state_name,
    },
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct Sum {
    signature: Signature,
    /// DataFusion's `SUM`, which sums everything but INTEGERs.
    datafusion: Arc<AggregateUDF>,
}

/// `SUM`, in place of DataFusion's.
pub fn function() -> AggregateUDF {
    AggregateUDF::from(Sum { signature: Signature::user_defined(Volatility::Immutable), datafusion: sum_udaf() })
}

fn integers(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Int8 | DataType::Int16 | DataType::Int32)
}

impl AggregateUDFImpl for Sum {
    fn name(&self) -> &str {
        "sum"
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.datafusion.documentation()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if let [only] = arg_types
            && integers(only)
        {
            return Ok(vec![DataType::Int32]);
        }
        let fields: Vec<FieldRef> = arg_types.iter().map(|t| Arc::new(Field::new("value", t.clone(), true))).collect();
        Ok(fields_with_udf(&fields, self.datafusion.as_ref())?.iter().map(|f| f.data_type().clone()).collect())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::Int32] => Ok(DataType::Int32),
            _ => self.datafusion.return_type(arg_types),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match args.return_field.data_type() {
            DataType::Int32 if !args.is_distinct => Ok(Box::new(IntegerSum::default())),
            _ => self.datafusion.inner().accumulator(args),
        }
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        match args.return_field.data_type() {
            DataType::Int32 if !args.is_distinct => Ok(Box::new(IntegerSum::default())),
            _ => self.datafusion.inner().create_sliding_accumulator(args),
        }
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        match args.return_field.data_type() {
            DataType::Int32 if !args.is_distinct => Ok(vec![
                Arc::new(Field::new(format_state_name(args.name, "sum"), DataType::Int64, true)),
                Arc::new(Field::new(format_state_name(args.name, "count"), DataType::Int64, true)),
            ]),
            _ => self.datafusion.inner().state_fields(args),
        }
    }
}

/// The sum of INTEGERs, kept as a 64-bit total (which wraps to the same 32 bits as Java's
/// `int` arithmetic) and how many values it holds, so that values can be taken back out.
#[derive(Debug, Default)]
struct IntegerSum {
    total: i64,
    count: i64,
}

impl IntegerSum {
    fn add(&mut self, values: &ArrayRef, sign: i64) {
        for value in values.as_primitive::<Int32Type>().iter().flatten() {
            self.total = self.total.wrapping_add(sign * i64::from(value));
            self.count += sign;
        }
    }
}

impl Accumulator for IntegerSum {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], 1);
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], -1);
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int32((self.count > 0).then_some(self.total as i32)))
    }

    fn size(&self) -> usize {
        size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.total)), ScalarValue::Int64(Some(self.count))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (totals, counts) = (states[0].as_primitive::<Int64Type>(), states[1].as_primitive::<Int64Type>());
        for (total, count) in totals.iter().zip(counts.iter()) {
            self.total = self.total.wrapping_add(total.unwrap_or(0));
            self.count += count.unwrap_or(0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int32Array;

    use super::*;

    #[test]
    fn integers_sum_to_an_integer_that_wraps_and_takes_values_back_out() {
        let sum = function();
        assert_eq!(sum.return_type(&[DataType::Int32]).unwrap(), DataType::Int32);
        assert_eq!(sum.return_type(&[DataType::Int64]).unwrap(), DataType::Int64);
        assert_eq!(sum.coerce_types(&[DataType::Int16]).unwrap(), vec![DataType::Int32]);
        assert_eq!(sum.coerce_types(&[DataType::Float32]).unwrap(), vec![DataType::Float64]);
        let mut total = IntegerSum::default();
        assert_eq!(total.evaluate().unwrap(), ScalarValue::Int32(None));
        let values: ArrayRef = Arc::new(Int32Array::from(vec![Some(i32::MAX), None, Some(2)]));
        total.update_batch(&[values]).unwrap();
        assert_eq!(total.evaluate().unwrap(), ScalarValue::Int32(Some(i32::MAX.wrapping_add(2))));
        total.retract_batch(&[Arc::new(Int32Array::from(vec![i32::MAX])) as ArrayRef]).unwrap();
        assert_eq!(total.evaluate().unwrap(), ScalarValue::Int32(Some(2)));
        let mut merged = IntegerSum::default();
        let state: Vec<ArrayRef> = total.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect();
        merged.merge_batch(&state).unwrap();
        assert_eq!(merged.evaluate().unwrap(), ScalarValue::Int32(Some(2)));
    }
}
