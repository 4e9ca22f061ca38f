//! ksqlDB's aggregates that gather values into an array: `COLLECT_LIST(col)`,
//! `COLLECT_SET(col)`, `TOPK(col [, other…], k)` and `TOPKDISTINCT(col, k)`.
//!
//! As ksqlDB's: a list keeps every value in arrival order, NULLs included, and a set each value
//! once, each up to its limit ([`CollectLimits`]); TOPK keeps the
//! k largest non-NULL values, largest first and ties in arrival order, as structs
//! `{sort_col, col0, col1, …}` when other columns are given; TOPKDISTINCT the k largest
//! distinct values. Only a list can take a value back out (a table's update), as only ksqlDB's
//! `COLLECT_LIST` is a table aggregate.

use std::{
    collections::BTreeMap,
    sync::{Arc, LazyLock},
};

use arrow::{
    array::{Array, ArrayRef, AsArray},
    datatypes::{DataType, Field, FieldRef, Fields},
};
use datafusion::{
    common::{Result, ScalarValue, exec_err, plan_err, scalar::ScalarStructBuilder},
    logical_expr::{
        Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
        function::{AccumulatorArgs, StateFieldsArgs},
        utils::format_state_name,
    },
    physical_expr::expressions::Literal,
};

use crate::{
    error::SluiceError,
    properties::{COLLECT_LIST_LIMIT, COLLECT_SET_LIMIT},
};

/// How many values `COLLECT_LIST` and `COLLECT_SET` keep, beyond which further values are
/// ignored: `ksql.functions.collect_list.limit` and `ksql.functions.collect_set.limit`. Both
/// are 1,000 unless set (Confluent Cloud's fixed setting; self-managed ksqlDB keeps every value
/// unless told, and lets state grow without bound); a negative limit keeps every value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CollectLimits {
    pub list: usize,
    pub set: usize,
}

impl Default for CollectLimits {
    fn default() -> Self {
        Self { list: 1000, set: 1000 }
    }
}

impl CollectLimits {
    /// The limits `properties` set, the defaults for those they leave out.
    pub fn from_properties(properties: &BTreeMap<String, String>) -> crate::error::Result<Self> {
        let limit = |name: &str, default: usize| match properties.get(name) {
            None => Ok(default),
            Some(value) => match value.trim().parse::<i32>() {
                Ok(n) if n < 0 => Ok(usize::MAX),
                Ok(n) => Ok(n as usize),
                Err(_) => Err(SluiceError::Plan(format!("Invalid value {value} for configuration {name}: Not a number of type INT"))),
            },
        };
        let defaults = Self::default();
        Ok(Self { list: limit(COLLECT_LIST_LIMIT, defaults.list)?, set: limit(COLLECT_SET_LIMIT, defaults.set)? })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    List,
    Set,
    TopK,
    TopKDistinct,
}

impl Kind {
    /// The `k` argument comes last.
    fn ranked(self) -> bool {
        matches!(self, Kind::TopK | Kind::TopKDistinct)
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Gather {
    name: &'static str,
    kind: Kind,
    signature: Signature,
    /// How many values a list or set keeps.
    limit: usize,
}

/// `COLLECT_LIST` and `COLLECT_SET` keeping up to `limits`, `TOPK` and `TOPKDISTINCT`.
pub fn functions(limits: CollectLimits) -> Vec<AggregateUDF> {
    [("collect_list", Kind::List), ("collect_set", Kind::Set), ("topk", Kind::TopK), ("topkdistinct", Kind::TopKDistinct)]
        .into_iter()
        .map(|(name, kind)| {
            let limit = match kind {
                Kind::Set => limits.set,
                _ => limits.list,
            };
            AggregateUDF::from(Gather { name, kind, signature: Signature::variadic_any(Volatility::Immutable), limit })
        })
        .collect()
}

fn documentation(kind: Kind) -> &'static Documentation {
    static DOCS: LazyLock<[Documentation; 4]> = LazyLock::new(|| {
        let value = ("expression", "The column or expression whose values are gathered.");
        let k = ("k", "An INTEGER literal: how many values are kept.");
        [
            super::documented("General Functions", "An array of every value of the group, NULLs included, in arrival order (at most ksql.functions.collect_list.limit: 1,000 unless set).", "collect_list(expression)", &[value]),
            super::documented("General Functions", "An array of the distinct values of the group, in arrival order (at most ksql.functions.collect_set.limit: 1,000 unless set).", "collect_set(expression)", &[value]),
            super::documented(
                "General Functions",
                "The k largest values of the group, largest first; with other columns, structs {sort_col, col0, …} of each value and the other columns of its row.",
                "topk(expression [, other, …], k)",
                &[value, ("other", "Columns carried with each value."), k],
            ),
            super::documented("General Functions", "The k largest distinct values of the group, largest first.", "topkdistinct(expression, k)", &[value, k]),
        ]
    });
    &DOCS[kind as usize]
}

impl AggregateUDFImpl for Gather {
    fn name(&self) -> &str {
        self.name
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(documentation(self.kind))
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let upper = self.name.to_uppercase();
        let values = match (self.kind, arg_types) {
            (Kind::List | Kind::Set, [_]) | (Kind::TopKDistinct, [_, _]) => 1,
            (Kind::TopK, [_, .., _]) => arg_types.len() - 1,
            _ => return plan_err!("Function '{upper}' does not accept parameters ({})", type_list(arg_types)),
        };
        if self.kind.ranked() && !arg_types[values].is_integer() {
            return plan_err!("{upper}'s last argument, k, must be an INTEGER literal, not {}", arg_types[values]);
        }
        let item = match &arg_types[..values] {
            [single] => single.clone(),
            [sorted, others @ ..] => DataType::Struct(
                std::iter::once(Field::new("sort_col", sorted.clone(), true))
                    .chain(others.iter().enumerate().map(|(i, t)| Field::new(format!("col{i}"), t.clone(), true)))
                    .collect::<Fields>(),
            ),
            [] => unreachable!("at least one value argument was matched"),
        };
        Ok(DataType::List(Arc::new(Field::new("item", item, true))))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let DataType::List(item) = args.return_field.data_type() else {
            return exec_err!("{} returns an array", self.name.to_uppercase());
        };
        let keep = if self.kind.ranked() {
            let k = args.exprs.last().and_then(|e| e.downcast_ref::<Literal>()).map(|l| l.value().clone());
            match k.as_ref().and_then(|k| k.cast_to(&DataType::Int64).ok()) {
                Some(ScalarValue::Int64(Some(k))) if k > 0 => k as usize,
                _ => return plan_err!("{}'s last argument, k, must be a positive INTEGER literal", self.name.to_uppercase()),
            }
        } else {
            self.limit
        };
        Ok(Box::new(Gathered { kind: self.kind, item: item.data_type().clone(), keep, items: Vec::new() }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(args.return_field.as_ref().clone().with_name(format_state_name(args.name, "items")))])
    }
}

fn type_list(types: &[DataType]) -> String {
    types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// One kept value and the value it is ranked by (itself, or a struct's `sort_col`).
#[derive(Debug)]
struct Item {
    rank: ScalarValue,
    value: ScalarValue,
}

#[derive(Debug)]
struct Gathered {
    kind: Kind,
    /// The type of the array's elements.
    item: DataType,
    /// How many values are kept: the list limit, or k.
    keep: usize,
    items: Vec<Item>,
}

impl Gathered {
    fn offer(&mut self, item: Item) {
        match self.kind {
            Kind::List => {
                if self.items.len() < self.keep {
                    self.items.push(item);
                }
            }
            Kind::Set => {
                if self.items.len() < self.keep && !self.items.iter().any(|i| i.value == item.value) {
                    self.items.push(item);
                }
            }
            Kind::TopK | Kind::TopKDistinct => {
                if item.rank.is_null() {
                    return;
                }
                let full = self.items.len() == self.keep;
                if full && self.items.last().is_some_and(|last| item.rank <= last.rank) {
                    return;
                }
                if self.kind == Kind::TopKDistinct && self.items.iter().any(|i| i.rank == item.rank) {
                    return;
                }
                if full {
                    self.items.pop();
                }
                // After every value at least as large: ties stay in arrival order.
                let at = self.items.iter().position(|i| i.rank < item.rank).unwrap_or(self.items.len());
                self.items.insert(at, item);
            }
        }
    }

    /// The item of `value`: a struct is ranked by its first field.
    fn item(&self, value: ScalarValue) -> Result<Item> {
        let rank = match (&self.item, &value) {
            (DataType::Struct(_), ScalarValue::Struct(fields)) if self.kind.ranked() => {
                ScalarValue::try_from_array(fields.column(0), 0)?
            }
            _ => value.clone(),
        };
        Ok(Item { rank, value })
    }

    fn array(&self) -> ScalarValue {
        let values: Vec<ScalarValue> = self.items.iter().map(|i| i.value.clone()).collect();
        ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.item))
    }
}

impl Accumulator for Gathered {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let columns = if self.kind.ranked() { &values[..values.len() - 1] } else { values };
        let fields: Option<Fields> = match &self.item {
            DataType::Struct(fields) if columns.len() > 1 => Some(fields.clone()),
            _ => None,
        };
        for row in 0..columns[0].len() {
            let value = match &fields {
                Some(fields) => {
                    let mut builder = ScalarStructBuilder::new();
                    for (field, column) in fields.iter().zip(columns) {
                        builder = builder.with_scalar(field.as_ref().clone(), ScalarValue::try_from_array(column, row)?);
                    }
                    builder.build()?
                }
                None => ScalarValue::try_from_array(&columns[0], row)?,
            };
            let item = self.item(value)?;
            self.offer(item);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        if self.kind != Kind::List {
            return exec_err!("only COLLECT_LIST can take a value back out");
        }
        for row in 0..values[0].len() {
            let value = ScalarValue::try_from_array(&values[0], row)?;
            if let Some(at) = self.items.iter().rposition(|i| i.value == value) {
                self.items.remove(at);
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        self.kind == Kind::List
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.array())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.items.iter().map(|i| i.rank.size() + i.value.size()).sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.array()])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for row in 0..lists.len() {
            if lists.is_null(row) {
                continue;
            }
            let values = lists.value(row);
            for i in 0..values.len() {
                let item = self.item(ScalarValue::try_from_array(&values, i)?)?;
                self.offer(item);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;

    fn gathered(kind: Kind, item: DataType, keep: usize) -> Gathered {
        Gathered { kind, item, keep, items: Vec::new() }
    }

    fn ints(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    fn list(accumulator: &mut Gathered) -> Vec<ScalarValue> {
        let ScalarValue::List(list) = accumulator.evaluate().unwrap() else { panic!("not a list") };
        let values = list.value(0);
        (0..values.len()).map(|i| ScalarValue::try_from_array(&values, i).unwrap()).collect()
    }

    fn int(v: Option<i64>) -> ScalarValue {
        ScalarValue::Int64(v)
    }

    #[test]
    fn a_list_keeps_nulls_and_takes_back_the_last_equal_value() {
        let mut collected = gathered(Kind::List, DataType::Int64, 1000);
        collected.update_batch(&[ints(&[Some(1), None, Some(2), Some(1)])]).unwrap();
        collected.retract_batch(&[ints(&[Some(1)])]).unwrap();
        assert_eq!(list(&mut collected), vec![int(Some(1)), int(None), int(Some(2))]);
    }

    #[test]
    fn a_set_keeps_each_value_once_in_arrival_order_and_cannot_retract() {
        let mut collected = gathered(Kind::Set, DataType::Int64, 1000);
        collected.update_batch(&[ints(&[Some(3), Some(1), Some(3), None, None])]).unwrap();
        assert_eq!(list(&mut collected), vec![int(Some(3)), int(Some(1)), int(None)]);
        assert!(collected.retract_batch(&[ints(&[Some(3)])]).is_err());
    }

    #[test]
    fn topk_keeps_the_largest_ties_in_arrival_order_and_merges() {
        let fields: Fields = vec![Field::new("sort_col", DataType::Int64, true), Field::new("col0", DataType::Utf8, true)].into();
        let mut top = gathered(Kind::TopK, DataType::Struct(fields), 3);
        let names: ArrayRef = Arc::new(StringArray::from(vec![Some("zero"), Some("one"), Some("two"), Some("three"), None]));
        let k = ints(&[Some(3); 5]);
        top.update_batch(&[ints(&[Some(0), Some(100), Some(99), None, Some(100)]), names, k]).unwrap();
        let ranks: Vec<ScalarValue> = top.items.iter().map(|i| i.rank.clone()).collect();
        assert_eq!(ranks, vec![int(Some(100)), int(Some(100)), int(Some(99))]);
        let first = &top.items[0].value;
        let ScalarValue::Struct(first) = first else { panic!("not a struct") };
        assert_eq!(first.column(1).as_string::<i32>().value(0), "one");

        let mut distinct = gathered(Kind::TopKDistinct, DataType::Int64, 2);
        distinct.update_batch(&[ints(&[Some(5), Some(5), Some(7), Some(1)]), ints(&[Some(2); 4])]).unwrap();
        let mut other = gathered(Kind::TopKDistinct, DataType::Int64, 2);
        other.update_batch(&[ints(&[Some(6)]), ints(&[Some(2)])]).unwrap();
        let state: Vec<ArrayRef> = other.state().unwrap().iter().map(|v| v.to_array().unwrap()).collect();
        distinct.merge_batch(&state).unwrap();
        assert_eq!(list(&mut distinct), vec![int(Some(7)), int(Some(6))]);
    }

    #[test]
    fn limits_come_from_the_properties_and_a_negative_one_keeps_everything() {
        let mut properties = BTreeMap::new();
        assert_eq!(CollectLimits::from_properties(&properties).unwrap(), CollectLimits { list: 1000, set: 1000 });
        properties.insert(COLLECT_LIST_LIMIT.to_string(), "1".to_string());
        properties.insert(COLLECT_SET_LIMIT.to_string(), "-1".to_string());
        assert_eq!(CollectLimits::from_properties(&properties).unwrap(), CollectLimits { list: 1, set: usize::MAX });
        properties.insert(COLLECT_SET_LIMIT.to_string(), "many".to_string());
        let error = CollectLimits::from_properties(&properties).unwrap_err().to_string();
        assert!(error.contains("Invalid value many for configuration ksql.functions.collect_set.limit"), "{error}");
    }
}
