//! ksqlDB's `CORRELATION(x, y)`: the Pearson correlation coefficient of the group's pairs,
//! from running sums as ksqlDB's single-pass formula keeps them — so a group of one pair, or
//! of pairs with no spread, is NaN as in ksqlDB. A pair with a NULL is skipped; a table's
//! update takes its pair back out.

use std::sync::{Arc, LazyLock};

use arrow::{
    array::{Array, ArrayRef, AsArray},
    datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type},
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
struct Correlation {
    signature: Signature,
}

/// `CORRELATION`.
pub fn function() -> AggregateUDF {
    AggregateUDF::from(Correlation { signature: Signature::any(2, Volatility::Immutable) })
}

/// The sums a correlation is computed from, in state order.
const SUMS: [&str; 5] = ["x_sum", "y_sum", "x_squared_sum", "y_squared_sum", "xy_sum"];

impl AggregateUDFImpl for Correlation {
    fn name(&self) -> &str {
        "correlation"
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            super::documented(
                "General Functions",
                "The Pearson correlation coefficient of the group's (x, y) pairs; pairs with a NULL are skipped.",
                "correlation(x, y)",
                &[("x", "An INTEGER, BIGINT or DOUBLE expression."), ("y", "An expression of the same type.")],
            )
        });
        Some(&DOC)
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.iter().all(|t| t.is_integer() || t.is_floating() || t.is_null()) {
            Ok(DataType::Float64)
        } else {
            plan_err!("Function 'CORRELATION' does not accept parameters ({}, {}): it takes two numbers", arg_types[0], arg_types[1])
        }
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<Sums>::default())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let mut fields: Vec<FieldRef> =
            SUMS.iter().map(|s| Arc::new(Field::new(format_state_name(args.name, s), DataType::Float64, false))).collect();
        fields.push(Arc::new(Field::new(format_state_name(args.name, "count"), DataType::Int64, false)));
        Ok(fields)
    }
}

#[derive(Debug, Default)]
struct Sums {
    /// x, y, x², y² and xy summed, in [`SUMS`]'s order.
    sums: [f64; 5],
    count: i64,
}

impl Sums {
    /// Adds (`sign` 1) or takes out (-1) every pair without a NULL.
    fn apply(&mut self, values: &[ArrayRef], sign: f64) -> Result<()> {
        let x = arrow::compute::cast(&values[0], &DataType::Float64)?;
        let y = arrow::compute::cast(&values[1], &DataType::Float64)?;
        for (x, y) in x.as_primitive::<Float64Type>().iter().zip(y.as_primitive::<Float64Type>()) {
            if let (Some(x), Some(y)) = (x, y) {
                for (sum, term) in self.sums.iter_mut().zip([x, y, x * x, y * y, x * y]) {
                    *sum += sign * term;
                }
                self.count += sign as i64;
            }
        }
        Ok(())
    }
}

impl Accumulator for Sums {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values, 1.0)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.apply(values, -1.0)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let [x, y, xx, yy, xy] = self.sums;
        let n = self.count as f64;
        let numerator = n * xy - x * y;
        let denominator = ((n * xx - x * x) * (n * yy - y * y)).sqrt();
        Ok(ScalarValue::Float64(Some(numerator / denominator)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut state: Vec<ScalarValue> = self.sums.iter().map(|s| ScalarValue::Float64(Some(*s))).collect();
        state.push(ScalarValue::Int64(Some(self.count)));
        Ok(state)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for row in 0..states[0].len() {
            for (sum, state) in self.sums.iter_mut().zip(states) {
                *sum += state.as_primitive::<Float64Type>().value(row);
            }
            self.count += states[5].as_primitive::<Int64Type>().value(row);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Float64Array;

    use super::*;

    fn pairs(x: &[Option<f64>], y: &[Option<f64>]) -> Vec<ArrayRef> {
        vec![Arc::new(Float64Array::from(x.to_vec())), Arc::new(Float64Array::from(y.to_vec()))]
    }

    fn value(sums: &mut Sums) -> f64 {
        let ScalarValue::Float64(Some(v)) = sums.evaluate().unwrap() else { panic!("not a double") };
        v
    }

    #[test]
    fn agrees_with_ksqldb_including_nan_for_one_pair() {
        let mut alice = Sums::default();
        alice.update_batch(&pairs(&[Some(1.5)], &[Some(8.0)])).unwrap();
        assert!(value(&mut alice).is_nan());
        alice.update_batch(&pairs(&[Some(-1.0), Some(-4.5), None], &[Some(-2.0), Some(-1.0), Some(-6.0)])).unwrap();
        assert!((value(&mut alice) - 0.7580764521133173).abs() < 1e-12);
        alice.retract_batch(&pairs(&[Some(-4.5)], &[Some(-1.0)])).unwrap();
        assert!((value(&mut alice) - 1.0).abs() < 1e-12);
    }
}
