//! ksqlDB's sample deviation aggregates: `STDDEV_SAMPLE(col)`, the sample standard deviation,
//! and `STDDEV_SAMP(col)`, which ksqlDB has always answered with the sample *variance* and keeps
//! so for compatibility (its documentation calls both a standard deviation). Both are 0.0 for
//! fewer than two values, as ksqlDB's; NULLs are skipped; a table's update takes its value back
//! out. The arithmetic is ksqlDB's, step for step (an INTEGER's or BIGINT's sum and deltas in
//! Java's wrapping integers), so every value is the double ksqlDB writes.

use std::sync::{Arc, LazyLock};

use arrow::{
    array::{ArrayRef, AsArray},
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
struct Deviation {
    name: &'static str,
    /// The square root of the variance, not the variance.
    root: bool,
    signature: Signature,
}

/// `STDDEV_SAMP` and `STDDEV_SAMPLE`.
pub fn functions() -> Vec<AggregateUDF> {
    [("stddev_samp", false), ("stddev_sample", true)]
        .into_iter()
        .map(|(name, root)| AggregateUDF::from(Deviation { name, root, signature: Signature::any(1, Volatility::Immutable) }))
        .collect()
}

impl AggregateUDFImpl for Deviation {
    fn name(&self) -> &str {
        self.name
    }

    fn documentation(&self) -> Option<&Documentation> {
        static VARIANCE: LazyLock<Documentation> = LazyLock::new(|| {
            super::documented(
                "General Functions",
                "ksqlDB's sample standard deviation as ksqlDB computes it: the sample variance; 0.0 for fewer than two values.",
                "stddev_samp(expression)",
                &[("expression", "An INTEGER, BIGINT or DOUBLE expression.")],
            )
        });
        static ROOT: LazyLock<Documentation> = LazyLock::new(|| {
            super::documented(
                "General Functions",
                "The sample standard deviation; 0.0 for fewer than two values.",
                "stddev_sample(expression)",
                &[("expression", "An INTEGER, BIGINT or DOUBLE expression.")],
            )
        });
        Some(if self.root { &ROOT } else { &VARIANCE })
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match &arg_types[0] {
            t if t.is_integer() || t.is_floating() || t.is_null() => Ok(DataType::Float64),
            other => plan_err!("Function '{}' does not accept parameters ({other}): it takes a number", self.name.to_uppercase()),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let sum = match args.expr_fields.first().map(|f| f.data_type()) {
            Some(DataType::Int8 | DataType::Int16 | DataType::Int32) => Sum::Int(0),
            Some(t) if t.is_integer() => Sum::Long(0),
            _ => Sum::Double(0.0),
        };
        Ok(Box::new(Moments { root: self.root, sum, count: 0, m2: 0.0 }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "sum"), DataType::Float64, false)),
            Arc::new(Field::new(format_state_name(args.name, "count"), DataType::Int64, false)),
            Arc::new(Field::new(format_state_name(args.name, "m2"), DataType::Float64, false)),
        ])
    }
}

/// The running sum, in the input's Java type: ksqlDB's arithmetic is that type's.
#[derive(Debug, Clone, Copy)]
enum Sum {
    Int(i32),
    Long(i64),
    Double(f64),
}

impl Sum {
    fn plus(self, x: f64) -> Sum {
        match self {
            Sum::Int(sum) => Sum::Int(sum.wrapping_add(x as i32)),
            Sum::Long(sum) => Sum::Long(sum.wrapping_add(x as i64)),
            Sum::Double(sum) => Sum::Double(sum + x),
        }
    }

    fn minus(self, x: f64) -> Sum {
        match self {
            Sum::Int(sum) => Sum::Int(sum.wrapping_sub(x as i32)),
            Sum::Long(sum) => Sum::Long(sum.wrapping_sub(x as i64)),
            Sum::Double(sum) => Sum::Double(sum - x),
        }
    }

    /// ksqlDB's delta of a value `x` against `count` values summing to this:
    /// `x × (count + 1) − (sum + x)`, in the input type's arithmetic.
    fn delta(self, x: f64, count: i64) -> f64 {
        match self {
            Sum::Int(sum) => (x as i32 as i64).wrapping_mul(count + 1).wrapping_sub(sum.wrapping_add(x as i32) as i64) as f64,
            Sum::Long(sum) => (x as i64).wrapping_mul(count + 1).wrapping_sub(sum.wrapping_add(x as i64)) as f64,
            Sum::Double(sum) => x * (count + 1) as f64 - (sum + x),
        }
    }

    /// The mean of `count` values summing to this, divided as the input type divides.
    fn mean(self, count: i64) -> f64 {
        match self {
            Sum::Int(sum) => (sum as i64 / count) as f64,
            Sum::Long(sum) => sum.wrapping_div(count) as f64,
            Sum::Double(sum) => sum / count as f64,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Sum::Int(sum) => sum as f64,
            Sum::Long(sum) => sum as f64,
            Sum::Double(sum) => sum,
        }
    }
}

/// ksqlDB's Youngs-Cramer running sum, count and sum of squared distances from the mean,
/// computed as its `StandardDeviationSamp(le)Udaf` computes them, so values agree to the bit.
#[derive(Debug)]
struct Moments {
    root: bool,
    sum: Sum,
    count: i64,
    m2: f64,
}

impl Moments {
    fn values(values: &ArrayRef) -> Result<ArrayRef> {
        Ok(arrow::compute::cast(values, &DataType::Float64)?)
    }

    fn add(&mut self, x: f64) {
        let count = self.count + 1;
        if count > 1 {
            let delta = self.sum.delta(x, self.count);
            self.m2 += delta * delta / count.wrapping_mul(count - 1) as f64;
        }
        self.sum = self.sum.plus(x);
        self.count = count;
    }

    fn undo(&mut self, x: f64) {
        let count = self.count - 1;
        let removed = if count > 0 {
            let delta = self.sum.delta(x, self.count);
            delta * delta / count.wrapping_mul(count + 1) as f64
        } else {
            0.0
        };
        self.sum = self.sum.minus(x);
        self.count = count;
        self.m2 -= removed;
    }

    fn merge(&mut self, sum: Sum, count: i64, m2: f64) {
        let total = self.count + count;
        if self.count == 0 || count == 0 {
            self.m2 += m2;
        } else {
            let inner = self.sum.mean(self.count) - sum.mean(count);
            self.m2 += m2 + (self.count.wrapping_mul(count)) as f64 * inner * inner / total as f64;
        }
        self.sum = self.sum.plus(sum.as_f64());
        self.count = total;
    }
}

impl Accumulator for Moments {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for x in Self::values(&values[0])?.as_primitive::<Float64Type>().iter().flatten() {
            self.add(x);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for x in Self::values(&values[0])?.as_primitive::<Float64Type>().iter().flatten() {
            self.undo(x);
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let value = if self.count < 2 { 0.0 } else { self.m2 / (self.count - 1) as f64 };
        Ok(ScalarValue::Float64(Some(if self.root { value.sqrt() } else { value })))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(Some(self.sum.as_f64())),
            ScalarValue::Int64(Some(self.count)),
            ScalarValue::Float64(Some(self.m2)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (sums, counts, m2s) =
            (states[0].as_primitive::<Float64Type>(), states[1].as_primitive::<Int64Type>(), states[2].as_primitive::<Float64Type>());
        for row in 0..counts.len() {
            let sum = match self.sum {
                Sum::Int(_) => Sum::Int(sums.value(row) as i32),
                Sum::Long(_) => Sum::Long(sums.value(row) as i64),
                Sum::Double(_) => Sum::Double(sums.value(row)),
            };
            self.merge(sum, counts.value(row), m2s.value(row));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;

    use super::*;

    fn value(moments: &mut Moments) -> f64 {
        let ScalarValue::Float64(Some(v)) = moments.evaluate().unwrap() else { panic!("not a double") };
        v
    }

    #[test]
    fn variance_and_deviation_with_retraction_and_merge() {
        let values: ArrayRef = Arc::new(Int64Array::from(vec![Some(2), Some(4), None, Some(4), Some(4), Some(5), Some(5), Some(7), Some(9)]));
        let mut variance = Moments { root: false, sum: Sum::Long(0), count: 0, m2: 0.0 };
        variance.update_batch(&[values.clone()]).unwrap();
        assert!((value(&mut variance) - 32.0 / 7.0).abs() < 1e-12);
        let mut deviation = Moments { root: true, sum: Sum::Long(0), count: 0, m2: 0.0 };
        deviation.update_batch(&[Arc::new(Int64Array::from(vec![2, 4, 4, 4]))]).unwrap();
        let state: Vec<ArrayRef> = {
            let mut rest = Moments { root: true, sum: Sum::Long(0), count: 0, m2: 0.0 };
            rest.update_batch(&[Arc::new(Int64Array::from(vec![5, 5, 7, 9]))]).unwrap();
            rest.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect()
        };
        deviation.merge_batch(&state).unwrap();
        assert!((value(&mut deviation) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        variance.retract_batch(&[Arc::new(Int64Array::from(vec![9, 7, 5, 5, 4, 4, 4]))]).unwrap();
        assert_eq!(value(&mut variance), 0.0, "one value left");
    }

    #[test]
    fn every_value_is_the_double_ksqldb_computes() {
        let mut variance = Moments { root: false, sum: Sum::Double(0.0), count: 0, m2: 0.0 };
        let mut seen = Vec::new();
        for x in [10.0, 12.0, 13.0, 14.0, 16.0] {
            variance.update_batch(&[Arc::new(arrow::array::Float64Array::from(vec![x]))]).unwrap();
            seen.push(value(&mut variance));
        }
        assert_eq!(seen, vec![0.0, 2.0, 2.333333333333333, 2.9166666666666665, 5.0], "ksqlDB's stddev-samp double-map case");
    }
}
