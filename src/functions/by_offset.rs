//! ksqlDB's `LATEST_BY_OFFSET(col [, n] [, ignoreNulls])` and
//! `EARLIEST_BY_OFFSET(col [, n] [, ignoreNulls])`: the value of the last (or first) row a group
//! received, or with `n` an array of the last (or first) n values in arrival order; NULLs
//! skipped unless `ignoreNulls` is false. `n` and `ignoreNulls` are literals.
//!
//! A value remembers when it arrived (a sequence number increasing across the process, as
//! ksqlDB's own implementation keeps one), so merging two sessions keeps the later (or earlier)
//! of their values.

use std::{
    collections::VecDeque,
    sync::{
        Arc, LazyLock,
        atomic::{AtomicU64, Ordering},
    },
};

use arrow::{
    array::{Array, ArrayRef, AsArray},
    datatypes::{DataType, Field, FieldRef, UInt64Type},
};
use datafusion::{
    common::{Result, ScalarValue, plan_err},
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, TypeSignature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        utils::format_state_name,
    },
    physical_expr::expressions::Literal,
    physical_expr_common::physical_expr::fmt_sql,
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
                signature: Signature::one_of(
                    vec![TypeSignature::Any(1), TypeSignature::Any(2), TypeSignature::Any(3)],
                    Volatility::Immutable,
                ),
            })
        })
        .collect()
}

fn by_offset_doc(which: &str, name: &str) -> Documentation {
    super::documented(
        "General Functions",
        &format!("The value of the {which} row the group received, by offset, or an array of the {which} n values; NULLs skipped unless ignoreNulls is false."),
        &format!("{name}(expression [, n] [, ignoreNulls])"),
        &[
            ("expression", "The column or expression whose value is kept."),
            ("n", "An INTEGER literal: how many values the array keeps."),
            ("ignoreNulls", "A BOOLEAN literal, true unless given: whether NULL values are skipped."),
        ],
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
        let name = self.name.to_uppercase();
        match arg_types {
            [value] | [value, DataType::Boolean] => Ok(value.clone()),
            [value, n] | [value, n, DataType::Boolean] if n.is_integer() => {
                Ok(DataType::List(Arc::new(Field::new("item", value.clone(), true))))
            }
            [_, n] => plan_err!("{name}'s second argument must be n, an INTEGER, or ignoreNulls, a BOOLEAN, not {n}"),
            [_, n, flag] => plan_err!("{name} takes n, an INTEGER, then ignoreNulls, a BOOLEAN, not {n} and {flag}"),
            _ => plan_err!("{name} takes one to three arguments"),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let name = self.name.to_uppercase();
        let literals = args.exprs[1..]
            .iter()
            .enumerate()
            .map(|(i, e)| match e.downcast_ref::<Literal>() {
                Some(literal) => Ok(literal.value().clone()),
                None => plan_err!(
                    "Parameter {} passed to function {name} must be a literal constant, but was expression: '{}'",
                    i + 2,
                    fmt_sql(e.as_ref())
                ),
            })
            .collect::<Result<Vec<ScalarValue>>>()?;
        let ignore_nulls = match literals.last() {
            Some(ScalarValue::Boolean(flag)) => flag.unwrap_or(true),
            _ => true,
        };
        let item = args.expr_fields[0].data_type().clone();
        let n = match literals.first() {
            Some(n) if n.data_type().is_integer() => match n.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(n)) if n > 0 => n as usize,
                other => return plan_err!("{name}'s n must be a positive INTEGER, not {other}"),
            },
            _ => {
                return Ok(Box::new(ByOffsetAccumulator {
                    latest: self.latest,
                    ignore_nulls,
                    value: ScalarValue::try_from(&item)?,
                    sequence: 0,
                }));
            }
        };
        Ok(Box::new(ByOffsetN { latest: self.latest, ignore_nulls, n, item, kept: VecDeque::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let keeps_n = args.input_fields.get(1).is_some_and(|n| n.data_type().is_integer());
        let sequence_type = if keeps_n { DataType::List(Arc::new(Field::new("item", DataType::UInt64, true))) } else { DataType::UInt64 };
        Ok(vec![
            Arc::new(args.return_field.as_ref().clone().with_name(format_state_name(args.name, "value"))),
            Arc::new(Field::new(format_state_name(args.name, "sequence"), sequence_type, false)),
        ])
    }
}

#[derive(Debug)]
struct ByOffsetAccumulator {
    latest: bool,
    ignore_nulls: bool,
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
        let ignore_nulls = self.ignore_nulls;
        offer_each(&values[0], ignore_nulls, |value, sequence| self.offer(value, sequence))
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

/// The last (or first) n values, with when each arrived, oldest first.
#[derive(Debug)]
struct ByOffsetN {
    latest: bool,
    ignore_nulls: bool,
    n: usize,
    item: DataType,
    kept: VecDeque<(u64, ScalarValue)>,
}

impl ByOffsetN {
    /// Keeps `value`, which arrived at `sequence`, if it is among the last (or first) n.
    fn offer(&mut self, value: ScalarValue, sequence: u64) {
        let at = self.kept.partition_point(|(s, _)| *s < sequence);
        self.kept.insert(at, (sequence, value));
        while self.kept.len() > self.n {
            if self.latest {
                self.kept.pop_front();
            } else {
                self.kept.pop_back();
            }
        }
    }

    fn lists(&self) -> (ScalarValue, ScalarValue) {
        let values: Vec<ScalarValue> = self.kept.iter().map(|(_, v)| v.clone()).collect();
        let sequences: Vec<ScalarValue> = self.kept.iter().map(|(s, _)| ScalarValue::UInt64(Some(*s))).collect();
        (
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.item)),
            ScalarValue::List(ScalarValue::new_list_nullable(&sequences, &DataType::UInt64)),
        )
    }
}

impl Accumulator for ByOffsetN {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let ignore_nulls = self.ignore_nulls;
        offer_each(&values[0], ignore_nulls, |value, sequence| self.offer(value, sequence))
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.lists().0)
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.kept.iter().map(|(_, v)| 8 + v.size()).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (values, sequences) = self.lists();
        Ok(vec![values, sequences])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (values, sequences) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..values.len() {
            let (kept, arrived) = (values.value(row), sequences.value(row));
            let arrived = arrived.as_primitive::<UInt64Type>();
            for i in 0..kept.len() {
                self.offer(ScalarValue::try_from_array(&kept, i)?, arrived.value(i));
            }
        }
        Ok(())
    }
}

/// Offers each value of `column` in order, with the next sequence number (NULLs skipped when
/// `ignore_nulls`).
fn offer_each(column: &ArrayRef, ignore_nulls: bool, mut offer: impl FnMut(ScalarValue, u64)) -> Result<()> {
    for row in 0..column.len() {
        if ignore_nulls && column.is_null(row) {
            continue;
        }
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        offer(ScalarValue::try_from_array(column, row)?, sequence);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use arrow::array::Int64Array;

    use super::*;

    fn accumulator(latest: bool) -> ByOffsetAccumulator {
        ByOffsetAccumulator { latest, ignore_nulls: true, value: ScalarValue::Int64(None), sequence: 0 }
    }

    #[test]
    fn latest_skips_nulls_unless_told_not_to_and_earliest_keeps_the_first() {
        let values: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(2), None]));
        let mut latest = accumulator(true);
        latest.update_batch(&[values.clone()]).unwrap();
        assert_eq!(latest.evaluate().unwrap(), ScalarValue::Int64(Some(2)));
        let mut keeping_nulls = accumulator(true);
        keeping_nulls.ignore_nulls = false;
        keeping_nulls.update_batch(&[values.clone()]).unwrap();
        assert_eq!(keeping_nulls.evaluate().unwrap(), ScalarValue::Int64(None));
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

    #[test]
    fn the_last_n_merge_in_arrival_order() {
        let n = |latest| ByOffsetN { latest, ignore_nulls: false, n: 2, item: DataType::Int64, kept: VecDeque::new() };
        let (mut first, mut second) = (n(true), n(true));
        first.update_batch(&[Arc::new(Int64Array::from(vec![1]))]).unwrap();
        second.update_batch(&[Arc::new(Int64Array::from(vec![None]))]).unwrap();
        first.update_batch(&[Arc::new(Int64Array::from(vec![2]))]).unwrap();
        let state: Vec<ArrayRef> = first.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect();
        second.merge_batch(&state).unwrap();
        let kept: Vec<ScalarValue> = second.kept.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(kept, vec![ScalarValue::Int64(None), ScalarValue::Int64(Some(2))]);
        let mut earliest = n(false);
        earliest.update_batch(&[Arc::new(Int64Array::from(vec![4, 5, 6]))]).unwrap();
        assert_eq!(earliest.kept.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(), vec![ScalarValue::Int64(Some(4)), ScalarValue::Int64(Some(5))]);
    }
}
