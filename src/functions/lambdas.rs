//! ksqlDB's lambda functions TRANSFORM, FILTER and REDUCE over arrays and maps, as DataFusion
//! higher-order functions: a lambda is evaluated once over the elements of all rows together.
//!
//! As in ksqlDB, a call whose lambda fails on one element is NULL for its whole row, and so is a
//! map TRANSFORM or FILTER that would hold a NULL value or (TRANSFORM) the same key twice.

use std::{collections::HashSet, sync::{Arc, LazyLock}};

use arrow::{
    array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, MapArray, StructArray, UInt32Array},
    buffer::{NullBuffer, OffsetBuffer},
    compute::{cast, filter, interleave, prep_null_mask_filter, take},
    datatypes::{DataType, Field, FieldRef, Fields},
};
use datafusion::{
    common::{Result, exec_err, plan_err},
    logical_expr::{
        ColumnarValue, Documentation, HigherOrderFunctionArgs, HigherOrderReturnFieldArgs, HigherOrderSignature,
        HigherOrderUDF, HigherOrderUDFImpl, LambdaArgument, LambdaParametersProgress, ValueOrLambda, Volatility,
    },
};

use super::{collect_row_errors, documented, maps::map_type, report_row_error};

const SECTION: &str = "Lambda Functions";

pub fn functions() -> Vec<HigherOrderUDF> {
    [Lambda::Transform, Lambda::Filter, Lambda::Reduce]
        .into_iter()
        .map(|kind| HigherOrderUDF::new_from_impl(LambdaFunction { kind, signature: HigherOrderSignature::variadic_any(Volatility::Immutable) }))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Lambda {
    Transform,
    Filter,
    Reduce,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LambdaFunction {
    kind: Lambda,
    signature: HigherOrderSignature,
}

/// Whether a call reads an array or a map, as its first argument says.
#[derive(Clone, Copy, PartialEq)]
enum Collection {
    Array,
    Map,
}

impl LambdaFunction {
    fn upper_name(&self) -> &'static str {
        match self.kind {
            Lambda::Transform => "TRANSFORM",
            Lambda::Filter => "FILTER",
            Lambda::Reduce => "REDUCE",
        }
    }

    /// The collection the call reads, checking the arguments' shape against ksqlDB's overloads.
    fn collection<V, L>(&self, args: &[ValueOrLambda<V, L>], first: Option<&DataType>) -> Result<Collection> {
        let collection = match first {
            Some(DataType::List(_)) => Collection::Array,
            Some(DataType::Map(_, _)) => Collection::Map,
            Some(other) => return plan_err!("{} takes an ARRAY or a MAP, not {other}", self.upper_name()),
            None => return plan_err!("{} takes an ARRAY or a MAP", self.upper_name()),
        };
        let shape: Vec<bool> = args.iter().map(|a| matches!(a, ValueOrLambda::Lambda(_))).collect();
        let expected: &[bool] = match (self.kind, collection) {
            (Lambda::Transform, Collection::Map) => &[false, true, true],
            (Lambda::Transform | Lambda::Filter, _) => &[false, true],
            (Lambda::Reduce, _) => &[false, false, true],
        };
        if shape != expected {
            let form = match (self.kind, collection) {
                (Lambda::Transform, Collection::Array) => "TRANSFORM(array, x => expression)",
                (Lambda::Transform, Collection::Map) => "TRANSFORM(map, (k, v) => key expression, (k, v) => value expression)",
                (Lambda::Filter, Collection::Array) => "FILTER(array, x => condition)",
                (Lambda::Filter, Collection::Map) => "FILTER(map, (k, v) => condition)",
                (Lambda::Reduce, Collection::Array) => "REDUCE(array, initial state, (s, x) => expression)",
                (Lambda::Reduce, Collection::Map) => "REDUCE(map, initial state, (s, k, v) => expression)",
            };
            return plan_err!("{} is called as {form}", self.upper_name());
        }
        Ok(collection)
    }
}

fn value_type<L>(arg: Option<&ValueOrLambda<FieldRef, L>>) -> Option<&DataType> {
    match arg {
        Some(ValueOrLambda::Value(field)) => Some(field.data_type()),
        _ => None,
    }
}

fn element_field(list: &DataType) -> Option<FieldRef> {
    match list {
        DataType::List(field) => Some(field.clone()),
        _ => None,
    }
}

/// The key and value fields of a map's entries.
fn entry_fields(map: &DataType) -> Option<(FieldRef, FieldRef)> {
    match map {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => Some((fields[0].clone(), fields[1].clone())),
            _ => None,
        },
        _ => None,
    }
}

fn nullable(field: &FieldRef) -> FieldRef {
    Arc::new(field.as_ref().clone().with_nullable(true))
}

impl HigherOrderUDFImpl for LambdaFunction {
    fn name(&self) -> &str {
        match self.kind {
            Lambda::Transform => "transform",
            Lambda::Filter => "filter",
            Lambda::Reduce => "reduce",
        }
    }

    fn signature(&self) -> &HigherOrderSignature {
        &self.signature
    }

    fn lambda_parameters(&self, _step: usize, fields: &[ValueOrLambda<FieldRef, Option<FieldRef>>]) -> Result<LambdaParametersProgress> {
        let first = value_type(fields.first());
        let collection = self.collection(fields, first)?;
        let first = first.expect("checked by collection");
        let params = match collection {
            Collection::Array => vec![nullable(&element_field(first).expect("an array"))],
            Collection::Map => {
                let (key, value) = entry_fields(first).expect("a map");
                vec![nullable(&key), nullable(&value)]
            }
        };
        Ok(LambdaParametersProgress::Complete(match self.kind {
            Lambda::Transform if collection == Collection::Map => vec![params.clone(), params],
            Lambda::Transform | Lambda::Filter => vec![params],
            Lambda::Reduce => {
                let Some(ValueOrLambda::Value(state)) = fields.get(1) else {
                    return plan_err!("REDUCE needs an initial state");
                };
                vec![std::iter::once(nullable(state)).chain(params).collect()]
            }
        }))
    }

    fn return_field_from_args(&self, args: HigherOrderReturnFieldArgs) -> Result<FieldRef> {
        let fields = args.arg_fields;
        let first = value_type(fields.first());
        let collection = self.collection(fields, first)?;
        let first = first.expect("checked by collection");
        let lambda = |n: usize| match fields.get(n) {
            Some(ValueOrLambda::Lambda(field)) => field.data_type().clone(),
            _ => DataType::Null,
        };
        let data_type = match (self.kind, collection) {
            (Lambda::Filter, _) => first.clone(),
            (Lambda::Transform, Collection::Array) => DataType::List(Arc::new(Field::new("item", lambda(1), true))),
            (Lambda::Transform, Collection::Map) => map_type(&lambda(2)),
            (Lambda::Reduce, _) => value_type(fields.get(1)).cloned().unwrap_or(DataType::Null),
        };
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }

    fn invoke_with_args(&self, args: HigherOrderFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let mut values = Vec::new();
        let mut lambdas = Vec::new();
        for arg in &args.args {
            match arg {
                ValueOrLambda::Value(value) => values.push(value.to_array(rows)?),
                ValueOrLambda::Lambda(lambda) => lambdas.push(lambda),
            }
        }
        let collection = self.collection(&args.args, values.first().map(|v| v.data_type()))?;
        let return_type = args.return_type();
        let result = match (self.kind, collection) {
            (Lambda::Transform, Collection::Array) => transform_array(values[0].as_list(), lambdas[0], return_type)?,
            (Lambda::Transform, Collection::Map) => transform_map(values[0].as_map(), lambdas[0], lambdas[1], return_type)?,
            (Lambda::Filter, Collection::Array) => filter_array(values[0].as_list(), lambdas[0])?,
            (Lambda::Filter, Collection::Map) => filter_map(values[0].as_map(), lambdas[0])?,
            (Lambda::Reduce, collection) => reduce(&values[0], collection, &values[1], lambdas[0], return_type)?,
        };
        Ok(ColumnarValue::Array(result))
    }

    fn documentation(&self) -> Option<&Documentation> {
        static TRANSFORM: LazyLock<Documentation> = LazyLock::new(|| {
            documented(
                SECTION,
                "An ARRAY with a lambda applied to each element, or a MAP with one lambda applied to each entry for its new key and another for its new value.",
                "transform(array, x => expression) | transform(map, (k, v) => key expression, (k, v) => value expression)",
                &[("collection", "An ARRAY or a MAP."), ("lambda", "What each element (x) or entry (k, v) becomes.")],
            )
        });
        static FILTER: LazyLock<Documentation> = LazyLock::new(|| {
            documented(
                SECTION,
                "The elements of an ARRAY, or the entries of a MAP, for which a lambda is true.",
                "filter(array, x => condition) | filter(map, (k, v) => condition)",
                &[("collection", "An ARRAY or a MAP."), ("lambda", "A BOOLEAN condition on each element (x) or entry (k, v).")],
            )
        });
        static REDUCE: LazyLock<Documentation> = LazyLock::new(|| {
            documented(
                SECTION,
                "A state folded over the elements of an ARRAY or the entries of a MAP: the lambda gives the next state from the current one and each element or entry. NULL when the initial state is NULL; the initial state when the collection is NULL.",
                "reduce(array, initial state, (s, x) => expression) | reduce(map, initial state, (s, k, v) => expression)",
                &[
                    ("collection", "An ARRAY or a MAP."),
                    ("initial state", "The state before the first element."),
                    ("lambda", "The next state, from the state (s) and an element (x) or entry (k, v)."),
                ],
            )
        });
        Some(match self.kind {
            Lambda::Transform => &TRANSFORM,
            Lambda::Filter => &FILTER,
            Lambda::Reduce => &REDUCE,
        })
    }
}

/// The elements of a list's or map's valid rows, and the row each came from.
struct Elements {
    /// Where each row's elements start and end among `values`; a null row has none.
    offsets: Vec<i32>,
    values: ArrayRef,
    rows: UInt32Array,
}

impl Elements {
    /// `order` gives, for one row's positions in `values`, the order its elements are read in.
    fn of(offsets: &OffsetBuffer<i32>, nulls: Option<&NullBuffer>, values: &ArrayRef, order: impl Fn(usize, usize) -> Vec<u32>) -> Result<Self> {
        let mut positions = Vec::new();
        let mut rows = Vec::new();
        let mut grouped = Vec::with_capacity(offsets.len());
        grouped.push(0);
        for row in 0..offsets.len() - 1 {
            if nulls.is_none_or(|n| n.is_valid(row)) {
                let read = order(offsets[row] as usize, offsets[row + 1] as usize);
                rows.extend(std::iter::repeat_n(row as u32, read.len()));
                positions.extend(read);
            }
            grouped.push(positions.len() as i32);
        }
        let values = take(values.as_ref(), &UInt32Array::from(positions), None)?;
        Ok(Self { offsets: grouped, values, rows: UInt32Array::from(rows) })
    }

    fn in_order(start: usize, end: usize) -> Vec<u32> {
        (start as u32..end as u32).collect()
    }

    fn of_list(list: &ListArray) -> Result<Self> {
        Self::of(list.offsets(), list.nulls(), list.values(), Self::in_order)
    }

    fn of_map(map: &MapArray) -> Result<Self> {
        let entries: ArrayRef = Arc::new(map.entries().clone());
        Self::of(map.offsets(), map.nulls(), &entries, Self::in_order)
    }

    fn row_count(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Regroups the elements `keep` marks (all when None) by row: the offsets, and the mask
    /// of kept elements. Rows in `failed` lose their elements.
    fn regroup(&self, keep: Option<&BooleanArray>, failed: &HashSet<usize>) -> (OffsetBuffer<i32>, BooleanArray) {
        let mut mask = Vec::with_capacity(self.values.len());
        let mut offsets = Vec::with_capacity(self.offsets.len());
        offsets.push(0i32);
        for row in 0..self.row_count() {
            let row_failed = failed.contains(&row);
            for element in self.offsets[row] as usize..self.offsets[row + 1] as usize {
                mask.push(!row_failed && keep.is_none_or(|k| k.is_valid(element) && k.value(element)));
            }
            offsets.push(offsets[row] + mask[self.offsets[row] as usize..].iter().filter(|k| **k).count() as i32);
        }
        (OffsetBuffer::new(offsets.into()), BooleanArray::from(mask))
    }
}

/// Evaluates `lambda` over element-aligned parameters, spreading the columns it captures to the
/// elements by `rows`. Rows whose element failed inside the lambda are returned with the error.
fn apply(lambda: &LambdaArgument, params: &[ArrayRef], rows: &UInt32Array) -> Result<(ArrayRef, Vec<(usize, String)>)> {
    let closures: Vec<Box<dyn Fn() -> Result<ArrayRef>>> = params
        .iter()
        .map(|param| {
            let param = param.clone();
            Box::new(move || Ok(param.clone())) as Box<dyn Fn() -> Result<ArrayRef>>
        })
        .collect();
    let closures: Vec<&dyn Fn() -> Result<ArrayRef>> = closures.iter().map(|c| c.as_ref()).collect();
    let (value, errors) = collect_row_errors(|| {
        lambda.evaluate(&closures, |captures| captures.iter().map(|c| Ok(take(c.as_ref(), rows, None)?)).collect())
    });
    let array = value?.into_array(rows.len())?;
    let failed = errors.into_iter().map(|(element, message)| (rows.value(element) as usize, message)).collect();
    Ok((array, failed))
}

/// The rows that failed, reported as the call's own failures so the query counts them.
fn failed_rows(failures: impl IntoIterator<Item = (usize, String)>) -> HashSet<usize> {
    let mut failed = HashSet::new();
    for (row, message) in failures {
        if failed.insert(row) {
            report_row_error(row, || message);
        }
    }
    failed
}

/// The input rows' validity with the failed rows made null too.
fn validity(nulls: Option<&NullBuffer>, rows: usize, failed: &HashSet<usize>) -> Option<NullBuffer> {
    if failed.is_empty() {
        return nulls.cloned();
    }
    Some(NullBuffer::from((0..rows).map(|r| nulls.is_none_or(|n| n.is_valid(r)) && !failed.contains(&r)).collect::<Vec<_>>()))
}

fn cast_to(array: &ArrayRef, data_type: &DataType) -> Result<ArrayRef> {
    match array.data_type() == data_type {
        true => Ok(array.clone()),
        false => Ok(cast(array, data_type)?),
    }
}

fn transform_array(list: &ListArray, lambda: &LambdaArgument, return_type: &DataType) -> Result<ArrayRef> {
    let elements = Elements::of_list(list)?;
    let (mapped, failures) = apply(lambda, std::slice::from_ref(&elements.values), &elements.rows)?;
    let failed = failed_rows(failures);
    let Some(field) = element_field(return_type) else { return exec_err!("TRANSFORM returns an ARRAY, not {return_type}") };
    let (offsets, kept) = elements.regroup(None, &failed);
    let mapped = filter(cast_to(&mapped, field.data_type())?.as_ref(), &kept)?;
    Ok(Arc::new(ListArray::try_new(field, offsets, mapped, validity(list.nulls(), list.len(), &failed))?))
}

fn filter_array(list: &ListArray, lambda: &LambdaArgument) -> Result<ArrayRef> {
    let elements = Elements::of_list(list)?;
    let (condition, failures) = apply(lambda, std::slice::from_ref(&elements.values), &elements.rows)?;
    let failed = failed_rows(failures);
    let condition = as_condition(&condition)?;
    let (offsets, kept) = elements.regroup(Some(&condition), &failed);
    let values = filter(elements.values.as_ref(), &kept)?;
    let DataType::List(field) = list.data_type() else { return exec_err!("FILTER reads an ARRAY") };
    Ok(Arc::new(ListArray::try_new(field.clone(), offsets, values, validity(list.nulls(), list.len(), &failed))?))
}

/// A lambda's BOOLEAN result, NULL read as false as ksqlDB's comparisons give it.
fn as_condition(condition: &ArrayRef) -> Result<BooleanArray> {
    let DataType::Boolean = condition.data_type() else {
        return exec_err!("FILTER's lambda must be a BOOLEAN condition, not {}", condition.data_type());
    };
    let condition = condition.as_boolean();
    Ok(match condition.null_count() {
        0 => condition.clone(),
        _ => prep_null_mask_filter(condition),
    })
}

fn filter_map(map: &MapArray, lambda: &LambdaArgument) -> Result<ArrayRef> {
    let elements = Elements::of_map(map)?;
    let entries = elements.values.as_struct();
    let params = [entries.column(0).clone(), entries.column(1).clone()];
    let (condition, failures) = apply(lambda, &params, &elements.rows)?;
    let condition = as_condition(&condition)?;
    let null_values = (0..condition.len())
        .filter(|e| condition.value(*e) && params[1].is_null(*e))
        .map(|e| (elements.rows.value(e) as usize, "FILTER cannot keep a map entry with a NULL value".to_string()));
    let failed = failed_rows(failures.into_iter().chain(null_values));
    let (offsets, kept) = elements.regroup(Some(&condition), &failed);
    let kept = filter(entries, &kept)?;
    let DataType::Map(field, sorted) = map.data_type() else { return exec_err!("FILTER reads a MAP") };
    Ok(Arc::new(MapArray::try_new(field.clone(), offsets, kept.as_struct().clone(), validity(map.nulls(), map.len(), &failed), *sorted)?))
}

fn transform_map(map: &MapArray, key_lambda: &LambdaArgument, value_lambda: &LambdaArgument, return_type: &DataType) -> Result<ArrayRef> {
    let elements = Elements::of_map(map)?;
    let entries = elements.values.as_struct();
    let params = [entries.column(0).clone(), entries.column(1).clone()];
    let (keys, key_failures) = apply(key_lambda, &params, &elements.rows)?;
    let (values, value_failures) = apply(value_lambda, &params, &elements.rows)?;
    let DataType::Map(entries_field, sorted) = return_type else { return exec_err!("TRANSFORM returns a MAP, not {return_type}") };
    let Some((key_field, value_field)) = entry_fields(return_type) else { return exec_err!("TRANSFORM returns a MAP") };
    let keys = cast_to(&keys, key_field.data_type())?;
    let values = cast_to(&values, value_field.data_type())?;
    let mut bad_entries = Vec::new();
    for row in 0..elements.row_count() {
        let mut seen = HashSet::new();
        for e in elements.offsets[row] as usize..elements.offsets[row + 1] as usize {
            let problem = if keys.is_null(e) {
                Some("TRANSFORM cannot give a map entry a NULL key".to_string())
            } else if values.is_null(e) {
                Some("TRANSFORM cannot give a map entry a NULL value".to_string())
            } else if !seen.insert(keys.as_string::<i32>().value(e)) {
                Some(format!("TRANSFORM gave two map entries the key '{}'", keys.as_string::<i32>().value(e)))
            } else {
                None
            };
            if let Some(problem) = problem {
                bad_entries.push((row, problem));
                break;
            }
        }
    }
    let failed = failed_rows(key_failures.into_iter().chain(value_failures).chain(bad_entries));
    let (offsets, kept) = elements.regroup(None, &failed);
    let fields = Fields::from(vec![key_field, value_field]);
    let entries = StructArray::try_new(fields, vec![filter(keys.as_ref(), &kept)?, filter(values.as_ref(), &kept)?], None)?;
    Ok(Arc::new(MapArray::try_new(entries_field.clone(), offsets, entries, validity(map.nulls(), map.len(), &failed), *sorted)?))
}

/// REDUCE: the state of every row is folded over its elements one position at a time, the
/// lambda evaluated over the rows that still have an element at that position.
fn reduce(collection: &ArrayRef, kind: Collection, initial: &ArrayRef, lambda: &LambdaArgument, return_type: &DataType) -> Result<ArrayRef> {
    let elements = match kind {
        Collection::Array => Elements::of_list(collection.as_list())?,
        Collection::Map => {
            let map = collection.as_map();
            let entries: ArrayRef = Arc::new(map.entries().clone());
            let keys = map.keys().as_string_opt::<i32>();
            Elements::of(map.offsets(), map.nulls(), &entries, |start, end| match keys {
                Some(keys) => java_hash_map_order(keys, start, end),
                None => Elements::in_order(start, end),
            })?
        }
    };
    let params: Vec<ArrayRef> = match kind {
        Collection::Array => vec![elements.values.clone()],
        Collection::Map => elements.values.as_struct().columns().to_vec(),
    };
    let mut state = cast_to(initial, return_type)?;
    let mut failed = HashSet::new();
    for position in 0.. {
        let (rows, at): (Vec<u32>, Vec<u32>) = (0..elements.row_count())
            .filter(|row| !initial.is_null(*row) && !failed.contains(row))
            .filter_map(|row| {
                let element = elements.offsets[row] as usize + position;
                (element < elements.offsets[row + 1] as usize).then_some((row as u32, element as u32))
            })
            .unzip();
        if rows.is_empty() {
            break;
        }
        let (rows, at) = (UInt32Array::from(rows), UInt32Array::from(at));
        let mut arguments = vec![take(state.as_ref(), &rows, None)?];
        for param in &params {
            arguments.push(take(param.as_ref(), &at, None)?);
        }
        let (next, failures) = apply(lambda, &arguments, &rows)?;
        failed.extend(failed_rows(failures));
        let next = cast_to(&next, return_type)?;
        let mut from: Vec<(usize, usize)> = (0..state.len()).map(|row| (0, row)).collect();
        for (i, row) in rows.values().iter().enumerate() {
            from[*row as usize] = (1, i);
        }
        state = interleave(&[state.as_ref(), next.as_ref()], &from)?;
    }
    if failed.is_empty() {
        return Ok(state);
    }
    let mut from: Vec<(usize, usize)> = (0..state.len()).map(|row| (0, row)).collect();
    for row in &failed {
        from[*row] = (1, 0);
    }
    let null = arrow::array::new_null_array(return_type, 1);
    Ok(interleave(&[state.as_ref(), null.as_ref()], &from)?)
}

/// The order Java's `HashMap` iterates a map of STRING keys that ksqlDB built with
/// `new HashMap<>(size)` and filled in the record's order: by bucket, then by insertion.
fn java_hash_map_order(keys: &arrow::array::StringArray, start: usize, end: usize) -> Vec<u32> {
    let size = end - start;
    let mut capacity = size.max(1).next_power_of_two();
    while size * 4 > capacity * 3 {
        capacity *= 2;
    }
    let bucket = |position: usize| {
        let hash = keys.value(position).encode_utf16().fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(unit as i32)) as u32;
        (hash ^ (hash >> 16)) as usize & (capacity - 1)
    };
    let mut order: Vec<u32> = (start as u32..end as u32).collect();
    order.sort_by_key(|position| bucket(*position as usize));
    order
}

#[cfg(test)]
mod tests {
    use arrow::array::StringArray;

    use super::*;

    #[test]
    fn map_entries_are_read_in_java_hash_map_order() {
        let keys = StringArray::from(vec!["yes, thanks", "nope", "sure, yeah"]);
        // Capacity 4: "yes, thanks" and "sure, yeah" share bucket 0, "nope" is in bucket 1.
        assert_eq!(java_hash_map_order(&keys, 0, 3), vec![0, 2, 1]);
        let keys = StringArray::from(vec!["b", "a"]);
        assert_eq!(java_hash_map_order(&keys, 0, 2), vec![1, 0], "'a' (97) hashes below 'b' (98)");
    }

    #[test]
    fn rows_are_regrouped_without_their_failed_or_filtered_elements() {
        let values: ArrayRef = Arc::new(StringArray::from(vec!["a", "b", "c", "d"]));
        let elements = Elements { offsets: vec![0, 2, 2, 4], values, rows: UInt32Array::from(vec![0, 0, 2, 2]) };
        let keep = BooleanArray::from(vec![true, false, true, true]);
        let (offsets, mask) = elements.regroup(Some(&keep), &HashSet::from([2]));
        assert_eq!(offsets.as_ref(), &[0, 1, 1, 1]);
        assert_eq!(mask, BooleanArray::from(vec![true, false, false, false]));
    }
}
