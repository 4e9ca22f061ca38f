//! ATTR, ksqlDB's aggregate for a column that should hold one value per group: that value, or
//! NULL once the group holds two different values (NULL counts as a value). Over a table a
//! value taken back out is forgotten, so a group can become valid again.

use std::sync::{Arc, LazyLock};

use arrow::{
    array::{Array, ArrayRef, AsArray, Int64Array},
    datatypes::{DataType, Field, FieldRef},
};
use datafusion::{
    common::{Result, ScalarValue, plan_err},
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        utils::format_state_name,
    },
};

pub fn function() -> AggregateUDF {
    AggregateUDF::from(Attr { signature: Signature::any(1, Volatility::Immutable) })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Attr {
    signature: Signature,
}

impl AggregateUDFImpl for Attr {
    fn name(&self) -> &str {
        "attr"
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            super::documented(
                "General Functions",
                "The one value a group should hold; NULL when it holds more than one different value.",
                "attr(expression)",
                &[("expression", "The column or expression expected to have a single value per group.")],
            )
        });
        Some(&DOC)
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [single] => Ok(single.clone()),
            _ => plan_err!("Function 'ATTR' takes one argument"),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Singular { data_type: args.return_field.data_type().clone(), seen: Vec::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let values = DataType::List(Arc::new(Field::new("item", args.return_field.data_type().clone(), true)));
        let counts = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        Ok(vec![
            Arc::new(Field::new(format_state_name(args.name, "values"), values, true)),
            Arc::new(Field::new(format_state_name(args.name, "counts"), counts, true)),
        ])
    }
}

/// Each different value the group has held, and how many of its rows hold it now.
#[derive(Debug)]
struct Singular {
    data_type: DataType,
    seen: Vec<(ScalarValue, i64)>,
}

impl Singular {
    fn count(&mut self, value: ScalarValue, by: i64) {
        match self.seen.iter_mut().find(|(seen, _)| *seen == value) {
            Some((_, count)) => *count = (*count + by).max(0),
            None if by > 0 => self.seen.push((value, by)),
            None => {}
        }
    }
}

impl Accumulator for Singular {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for row in 0..values[0].len() {
            self.count(ScalarValue::try_from_array(&values[0], row)?, 1);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for row in 0..values[0].len() {
            self.count(ScalarValue::try_from_array(&values[0], row)?, -1);
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let mut held = self.seen.iter().filter(|(_, count)| *count > 0);
        match (held.next(), held.next()) {
            (Some((value, _)), None) => Ok(value.clone()),
            _ => ScalarValue::try_from(&self.data_type),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.seen.iter().map(|(v, _)| v.size() + 8).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let values: Vec<ScalarValue> = self.seen.iter().map(|(v, _)| v.clone()).collect();
        let counts: Vec<ScalarValue> = self.seen.iter().map(|(_, c)| ScalarValue::Int64(Some(*c))).collect();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.data_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::Int64)),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (values, counts) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for row in 0..values.len() {
            if values.is_null(row) || counts.is_null(row) {
                continue;
            }
            let (held, counted) = (values.value(row), counts.value(row));
            let counted = counted.as_any().downcast_ref::<Int64Array>().expect("ATTR's counts are BIGINTs");
            for i in 0..held.len() {
                self.count(ScalarValue::try_from_array(&held, i)?, counted.value(i));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::StringArray;

    use super::*;

    #[test]
    fn one_value_is_the_result_two_are_null_until_one_is_taken_back() {
        let mut attr = Singular { data_type: DataType::Utf8, seen: Vec::new() };
        let rows = |values: Vec<Option<&str>>| -> Vec<ArrayRef> { vec![Arc::new(StringArray::from(values))] };
        attr.update_batch(&rows(vec![Some("a"), Some("a")])).unwrap();
        assert_eq!(attr.evaluate().unwrap(), ScalarValue::Utf8(Some("a".into())));
        attr.update_batch(&rows(vec![None])).unwrap();
        assert_eq!(attr.evaluate().unwrap(), ScalarValue::Utf8(None));
        attr.retract_batch(&rows(vec![None])).unwrap();
        assert_eq!(attr.evaluate().unwrap(), ScalarValue::Utf8(Some("a".into())));
        let state: Vec<ArrayRef> = attr.state().unwrap().iter().map(|s| s.to_array().unwrap()).collect();
        let mut merged = Singular { data_type: DataType::Utf8, seen: Vec::new() };
        merged.merge_batch(&state).unwrap();
        assert_eq!(merged.seen, [(ScalarValue::Utf8(Some("a".into())), 2)]);
    }
}
