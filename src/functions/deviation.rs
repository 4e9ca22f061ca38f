//! ksqlDB's sample deviation aggregates: `STDDEV_SAMPLE(col)`, the sample standard deviation,
//! and `STDDEV_SAMP(col)`, which ksqlDB has always answered with the sample *variance* and keeps
//! so for compatibility (its documentation calls both a standard deviation). Both are 0.0 for
//! fewer than two values, as ksqlDB's; NULLs are skipped; a table's update takes its value back
//! out.

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

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Moments { root: self.root, count: 0, mean: 0.0, m2: 0.0 }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "count"), DataType::Int64, false)),
            Arc::new(Field::new(format_state_name(args.name, "mean"), DataType::Float64, false)),
            Arc::new(Field::new(format_state_name(args.name, "m2"), DataType::Float64, false)),
        ])
    }
}

/// Welford's running count, mean and sum of squared distances from the mean.
#[derive(Debug)]
struct Moments {
    root: bool,
    count: i64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn values(values: &ArrayRef) -> Result<ArrayRef> {
        Ok(arrow::compute::cast(values, &DataType::Float64)?)
    }

    /// Combines these moments with another set's.
    fn combine(&mut self, count: i64, mean: f64, m2: f64) {
        let total = self.count + count;
        if total <= 0 {
            (self.count, self.mean, self.m2) = (0, 0.0, 0.0);
            return;
        }
        let delta = mean - self.mean;
        self.mean += delta * count as f64 / total as f64;
        self.m2 += m2 + delta * delta * self.count as f64 * count as f64 / total as f64;
        self.count = total;
    }
}

impl Accumulator for Moments {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for x in Self::values(&values[0])?.as_primitive::<Float64Type>().iter().flatten() {
            self.combine(1, x, 0.0);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for x in Self::values(&values[0])?.as_primitive::<Float64Type>().iter().flatten() {
            let count = self.count - 1;
            if count <= 0 {
                (self.count, self.mean, self.m2) = (0, 0.0, 0.0);
                continue;
            }
            let mean = (self.mean * self.count as f64 - x) / count as f64;
            self.m2 = (self.m2 - (x - mean) * (x - self.mean)).max(0.0);
            (self.count, self.mean) = (count, mean);
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
        Ok(vec![ScalarValue::Int64(Some(self.count)), ScalarValue::Float64(Some(self.mean)), ScalarValue::Float64(Some(self.m2))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (counts, means, m2s) =
            (states[0].as_primitive::<Int64Type>(), states[1].as_primitive::<Float64Type>(), states[2].as_primitive::<Float64Type>());
        for row in 0..counts.len() {
            self.combine(counts.value(row), means.value(row), m2s.value(row));
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
        let mut variance = Moments { root: false, count: 0, mean: 0.0, m2: 0.0 };
        variance.update_batch(&[values.clone()]).unwrap();
        assert!((value(&mut variance) - 32.0 / 7.0).abs() < 1e-12);
        let mut deviation = Moments { root: true, count: 0, mean: 0.0, m2: 0.0 };
        deviation.update_batch(&[Arc::new(Int64Array::from(vec![2, 4, 4, 4]))]).unwrap();
        let state: Vec<ArrayRef> = {
            let mut rest = Moments { root: true, count: 0, mean: 0.0, m2: 0.0 };
            rest.update_batch(&[Arc::new(Int64Array::from(vec![5, 5, 7, 9]))]).unwrap();
            rest.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect()
        };
        deviation.merge_batch(&state).unwrap();
        assert!((value(&mut deviation) - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        variance.retract_batch(&[Arc::new(Int64Array::from(vec![9, 7, 5, 5, 4, 4, 4]))]).unwrap();
        assert_eq!(value(&mut variance), 0.0, "one value left");
    }
}
