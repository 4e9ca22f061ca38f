//! ksqlDB's `LATEST_BY_OFFSET(col [, ignoreNulls])` and `EARLIEST_BY_OFFSET(col [, ignoreNulls])`:
//! the value of the last (or first) row a group received, NULLs skipped unless `ignoreNulls` is
//! false.
//!
//! A value remembers when it arrived (a sequence number increasing across the process, as
//! ksqlDB's own implementation keeps one), so merging two sessions keeps the later (or earlier)
//! of their values.

use std::sync::{
    Arc, LazyLock,
    atomic::{AtomicU64, Ordering},
};

use arrow::{
    array::{Array, ArrayRef, AsArray},
    datatypes::{DataType, Field, FieldRef, UInt64Type},
};
use datafusion::{
    common::{Result, ScalarValue, exec_err},
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, TypeSignature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        utils::format_state_name,
    },
};

/// The order in which values arrived, across every group.
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, PartialEq, Eq, Hash)]
struct ByOffset {
    name: &'static str,
    /// Keep the last value, not the first.
    latest: bool,
    signature: Signature,
}

/// `LATEST_BY_OFFSET` and `EARLIEST_BY_OFFSET`.
pub fn functions() -> Vec<AggregateUDF> {
    [("latest_by_offset", true), ("earliest_by_offset", false)]
        .into_iter()
        .map(|(name, latest)| {
            AggregateUDF::from(ByOffset {
                name,
                latest,
                signature: Signature::one_of(vec![TypeSignature::Any(1), TypeSignature::Any(2)], Volatility::Immutable),
            })
        })
        .collect()
}

fn by_offset_doc(which: &str, name: &str) -> Documentation {
    super::documented(
        "General Functions",
        &format!("The value of the {which} row the group received, by offset; NULLs skipped unless ignoreNulls is false."),
        &format!("{name}(expression [, ignoreNulls])"),
        &[("expression", "The column or expression whose value is kept."), ("ignoreNulls", "A BOOLEAN, true unless given: whether NULL values are skipped.")],
    )
}

impl AggregateUDFImpl for ByOffset {
    fn name(&self) -> &str {
        self.name
    }

    fn documentation(&self) -> Option<&Documentation> {
        static LATEST: LazyLock<Documentation> = LazyLock::new(|| by_offset_doc("last", "latest_by_offset"));
        static EARLIEST: LazyLock<Documentation> = LazyLock::new(|| by_offset_doc("first", "earliest_by_offset"));
        Some(if self.latest { &LATEST } else { &EARLIEST })
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if let Some(flag) = arg_types.get(1).filter(|t| **t != DataType::Boolean) {
            return exec_err!("{}'s second argument, ignoreNulls, must be a BOOLEAN, not {flag}", self.name.to_uppercase());
        }
        Ok(arg_types[0].clone())
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ByOffsetAccumulator {
            latest: self.latest,
            value: ScalarValue::try_from(args.return_field.data_type())?,
            sequence: 0,
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(args.return_field.as_ref().clone().with_name(format_state_name(args.name, "value"))),
            Arc::new(Field::new(format_state_name(args.name, "sequence"), DataType::UInt64, false)),
        ])
    }
}

#[derive(Debug)]
struct ByOffsetAccumulator {
    latest: bool,
    value: ScalarValue,
    /// When `value` arrived; 0 before any value did.
    sequence: u64,
}

impl ByOffsetAccumulator {
    /// Takes `value`, which arrived at `sequence`, if it is later (or earlier) than the one kept.
    fn offer(&mut self, value: ScalarValue, sequence: u64) {
        let replaces = self.sequence == 0 || if self.latest { sequence > self.sequence } else { sequence < self.sequence };
        if replaces {
            self.value = value;
            self.sequence = sequence;
        }
    }
}

impl Accumulator for ByOffsetAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let column = &values[0];
        let ignore_nulls = match values.get(1) {
            Some(flag) if !flag.is_empty() && flag.is_valid(0) => flag.as_boolean().value(0),
            _ => true,
        };
        for row in 0..column.len() {
            if ignore_nulls && column.is_null(row) {
                continue;
            }
            let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            self.offer(ScalarValue::try_from_array(column, row)?, sequence);
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value.clone())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.value.size() - std::mem::size_of_val(&self.value)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value.clone(), ScalarValue::UInt64(Some(self.sequence))])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let sequences = states[1].as_primitive::<UInt64Type>();
        for row in 0..states[0].len() {
            let sequence = sequences.value(row);
            if sequence != 0 {
                self.offer(ScalarValue::try_from_array(&states[0], row)?, sequence);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{BooleanArray, Int64Array};

    use super::*;

    fn accumulator(latest: bool) -> ByOffsetAccumulator {
        ByOffsetAccumulator { latest, value: ScalarValue::Int64(None), sequence: 0 }
    }

    #[test]
    fn latest_skips_nulls_unless_told_not_to_and_earliest_keeps_the_first() {
        let values: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(2), None]));
        let mut latest = accumulator(true);
        latest.update_batch(&[values.clone()]).unwrap();
        assert_eq!(latest.evaluate().unwrap(), ScalarValue::Int64(Some(2)));
        let keep_nulls: ArrayRef = Arc::new(BooleanArray::from(vec![false; 3]));
        latest.update_batch(&[values.clone(), keep_nulls]).unwrap();
        assert_eq!(latest.evaluate().unwrap(), ScalarValue::Int64(None));
        let mut earliest = accumulator(false);
        earliest.update_batch(&[values]).unwrap();
        assert_eq!(earliest.evaluate().unwrap(), ScalarValue::Int64(Some(1)));
    }

    #[test]
    fn merging_keeps_the_value_that_arrived_last() {
        let mut older = accumulator(true);
        older.update_batch(&[Arc::new(Int64Array::from(vec![1]))]).unwrap();
        let mut newer = accumulator(true);
        newer.update_batch(&[Arc::new(Int64Array::from(vec![2]))]).unwrap();
        let state: Vec<ArrayRef> = older.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect();
        newer.merge_batch(&state).unwrap();
        assert_eq!(newer.evaluate().unwrap(), ScalarValue::Int64(Some(2)));
    }
}
