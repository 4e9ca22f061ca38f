//! ksqlDB's `HISTOGRAM(col)`: a map from each distinct STRING value of the group to how many
//! times it occurs, up to 1,000 distinct values as ksqlDB's; a table's update takes a value
//! back out, and a value counted down to zero leaves the map.

use std::sync::{Arc, LazyLock};

use arrow::{
    array::{Array, ArrayRef, AsArray, Int64Builder, MapBuilder, MapFieldNames, StringBuilder},
    datatypes::{DataType, Field, FieldRef, Int64Type},
};
use datafusion::{
    common::{Result, ScalarValue, exec_err, plan_err},
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        utils::format_state_name,
    },
};

/// How many distinct values a histogram counts.
const LIMIT: usize = 1000;

#[derive(Debug, PartialEq, Eq, Hash)]
struct Histogram {
    signature: Signature,
}

/// `HISTOGRAM`.
pub fn function() -> AggregateUDF {
    AggregateUDF::from(Histogram { signature: Signature::any(1, Volatility::Immutable) })
}

/// The map type a histogram returns: STRING keys, BIGINT counts.
fn map_type() -> DataType {
    let entries = DataType::Struct(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Int64, true)].into());
    DataType::Map(Arc::new(Field::new("entries", entries, false)), false)
}

impl AggregateUDFImpl for Histogram {
    fn name(&self) -> &str {
        "histogram"
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            super::documented(
                "General Functions",
                "A map of each distinct value of the group to how many times it occurs (at most 1,000 values).",
                "histogram(expression)",
                &[("expression", "A STRING column or expression.")],
            )
        });
        Some(&DOC)
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View] => Ok(map_type()),
            other => plan_err!("Function 'HISTOGRAM' does not accept parameters ({}): it counts STRING values", other[0]),
        }
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<Counts>::default())
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(format_state_name(args.name, "counts"), map_type(), true))])
    }
}

/// Each value's count, in the order values first arrived.
#[derive(Debug, Default)]
struct Counts {
    counts: Vec<(Option<String>, i64)>,
}

impl Counts {
    fn add(&mut self, value: Option<&str>, count: i64) {
        match self.counts.iter().position(|(v, _)| v.as_deref() == value) {
            Some(at) => self.counts[at].1 += count,
            None if self.counts.len() < LIMIT => self.counts.push((value.map(str::to_string), count)),
            None => {}
        }
    }

    fn strings(array: &ArrayRef) -> Result<ArrayRef> {
        Ok(arrow::compute::cast(array, &DataType::Utf8)?)
    }
}

impl Accumulator for Counts {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let strings = Self::strings(&values[0])?;
        for value in strings.as_string::<i32>() {
            self.add(value, 1);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let strings = Self::strings(&values[0])?;
        for value in strings.as_string::<i32>() {
            if let Some(at) = self.counts.iter().position(|(v, _)| v.as_deref() == value) {
                self.counts[at].1 -= 1;
                if self.counts[at].1 < 1 {
                    self.counts.remove(at);
                }
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    /// The map of the counts; a NULL value, which a map key cannot be, is left out.
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let names = MapFieldNames { entry: "entries".into(), key: "key".into(), value: "value".into() };
        let mut builder = MapBuilder::new(Some(names), StringBuilder::new(), Int64Builder::new());
        for (value, count) in &self.counts {
            if let Some(value) = value {
                builder.keys().append_value(value);
                builder.values().append_value(*count);
            }
        }
        builder.append(true)?;
        Ok(ScalarValue::Map(Arc::new(builder.finish())))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.counts.iter().map(|(v, _)| 24 + v.as_ref().map_or(0, String::len)).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(maps) = states[0].as_map_opt() else {
            return exec_err!("a histogram's state is a map");
        };
        for row in 0..maps.len() {
            if maps.is_null(row) {
                continue;
            }
            let entries = maps.value(row);
            let (values, counts) = (entries.column(0).as_string::<i32>(), entries.column(1).as_primitive::<Int64Type>());
            for i in 0..entries.len() {
                self.add(Some(values.value(i)), counts.value(i));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::StringArray;

    use super::*;

    fn counted(accumulator: &mut Counts) -> Vec<(String, i64)> {
        let ScalarValue::Map(map) = accumulator.evaluate().unwrap() else { panic!("not a map") };
        let entries = map.value(0);
        let (values, counts) = (entries.column(0).as_string::<i32>(), entries.column(1).as_primitive::<Int64Type>());
        (0..entries.len()).map(|i| (values.value(i).to_string(), counts.value(i))).collect()
    }

    #[test]
    fn counts_values_takes_them_back_and_merges() {
        let names: ArrayRef = Arc::new(StringArray::from(vec![Some("alice"), Some("bob"), None, Some("alice")]));
        let mut histogram = Counts::default();
        histogram.update_batch(&[names]).unwrap();
        histogram.retract_batch(&[Arc::new(StringArray::from(vec!["bob"]))]).unwrap();
        assert_eq!(counted(&mut histogram), vec![("alice".into(), 2)]);
        let mut other = Counts::default();
        other.update_batch(&[Arc::new(StringArray::from(vec!["carol", "alice"]))]).unwrap();
        let state: Vec<ArrayRef> = other.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect();
        histogram.merge_batch(&state).unwrap();
        assert_eq!(counted(&mut histogram), vec![("alice".into(), 3), ("carol".into(), 1)]);
    }
}
