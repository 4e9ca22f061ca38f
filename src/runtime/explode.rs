//! Rows made by the table functions: each row repeated once per element of the longest of its
//! arrays, with each array's element at that position (NULL past a shorter array's end)
//! appended as a column. A row whose arrays are all NULL or empty makes none. CUBE_EXPLODE's
//! array is first made the array of its combinations.

use std::sync::Arc;

use arrow::{
    array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, UInt32Array},
    buffer::OffsetBuffer,
    compute::take,
    datatypes::{DataType, Field, Schema},
};
use datafusion::physical_expr::PhysicalExpr;

use super::operator::evaluate_rows;
use crate::{
    error::{Result, SluiceError},
    planner::TableFunction,
};

/// ksqlDB's bound on CUBE_EXPLODE's array: 2^20 combinations.
const MAX_CUBE_COLUMNS: usize = 20;

/// What [`explode`] makes: the new batch, each new row's record, and the rows whose arrays
/// failed to compute (by index into the batch given, with why).
pub type Exploded = (RecordBatch, Vec<usize>, Vec<(usize, String)>);

/// The rows `arrays` make of `batch`, whose row `i` came from record `records[i]`.
pub fn explode(arrays: &[(TableFunction, Arc<dyn PhysicalExpr>)], batch: &RecordBatch, records: &[usize]) -> Result<Exploded> {
    let mut errors = Vec::new();
    let mut lists = Vec::with_capacity(arrays.len());
    for (function, array) in arrays {
        let (list, failed) = evaluate_rows(array, batch)?;
        errors.extend(failed);
        lists.push(match function {
            TableFunction::Explode => list,
            TableFunction::Cube => Arc::new(combinations(list.as_list::<i32>(), &mut errors)?),
        });
    }
    let lists: Vec<_> = lists
        .iter()
        .map(|l| match l.data_type() {
            DataType::List(_) => Ok(l.as_list::<i32>()),
            other => Err(SluiceError::Internal(format!("EXPLODE of a {other}, not a list"))),
        })
        .collect::<Result<_>>()?;
    let length = |list: &arrow::array::ListArray, row: usize| if list.is_null(row) { 0 } else { list.value_length(row) as usize };
    let mut repeats: Vec<u32> = Vec::new();
    let mut elements: Vec<Vec<Option<u32>>> = vec![Vec::new(); lists.len()];
    for row in 0..batch.num_rows() {
        let longest = lists.iter().map(|l| length(l, row)).max().unwrap_or(0);
        for position in 0..longest {
            repeats.push(row as u32);
            for (list, taken) in lists.iter().zip(elements.iter_mut()) {
                let start = list.value_offsets()[row] as usize;
                taken.push((position < length(list, row)).then(|| (start + position) as u32));
            }
        }
    }
    let repeats = UInt32Array::from(repeats);
    let mut columns: Vec<ArrayRef> = batch.columns().iter().map(|c| take(c, &repeats, None)).collect::<Result<_, _>>()?;
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    for (n, (list, taken)) in lists.iter().zip(elements).enumerate() {
        let element = take(list.values(), &UInt32Array::from(taken), None)?;
        fields.push(Field::new(crate::planner::explode_column(n), element.data_type().clone(), true));
        columns.push(element);
    }
    let rows = repeats.values().iter().map(|r| records[*r as usize]).collect();
    Ok((RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?, rows, errors))
}

/// For each row's list, the list of its combinations as ksqlDB's CUBE_EXPLODE makes them: one
/// per bit mask over the elements (the first element the highest bit), an element kept where
/// its bit is set and NULL elsewhere; masks that set the bit of a NULL element are skipped, as
/// duplicates. A NULL list has none; a list too long is an error of its row.
fn combinations(list: &ListArray, errors: &mut Vec<(usize, String)>) -> Result<ListArray> {
    let values = list.values();
    let mut indices: Vec<Option<u32>> = Vec::new();
    let mut inner = vec![0i32];
    let mut outer = vec![0i32];
    for row in 0..list.len() {
        let start = list.value_offsets()[row] as usize;
        let length = if list.is_null(row) { 0 } else { list.value_length(row) as usize };
        if length > MAX_CUBE_COLUMNS {
            errors.push((row, format!("cube_explode: too many columns ({length}); max is {MAX_CUBE_COLUMNS}")));
        } else if list.is_valid(row) {
            let bit = |i: usize| 1u32 << (length - 1 - i);
            let present = (0..length).filter(|i| values.is_valid(start + i)).fold(0, |mask, i| mask | bit(i));
            for mask in (0..1u32 << length).filter(|mask| mask & present == *mask) {
                indices.extend((0..length).map(|i| (mask & bit(i) != 0).then_some((start + i) as u32)));
                inner.push(indices.len() as i32);
            }
        }
        outer.push(inner.len() as i32 - 1);
    }
    let DataType::List(element) = list.data_type() else {
        return Err(SluiceError::Internal("CUBE_EXPLODE of a value that is no list".into()));
    };
    let kept = take(values, &UInt32Array::from(indices), None)?;
    let combinations = ListArray::try_new(element.clone(), OffsetBuffer::new(inner.into()), kept, None)?;
    let field = Arc::new(Field::new("item", list.data_type().clone(), true));
    Ok(ListArray::try_new(field, OffsetBuffer::new(outer.into()), Arc::new(combinations), None)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::{
        array::{Array, AsArray, Int32Array, ListArray, RecordBatch},
        datatypes::{DataType, Field, Int32Type, Schema},
    };
    use datafusion::physical_expr::expressions::Column;

    use super::{combinations, explode};
    use crate::planner::TableFunction;

    #[test]
    fn the_longest_array_sets_the_rows_and_shorter_ones_end_in_nulls() {
        let first = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), Some(2)]), None, Some(vec![Some(5)])]);
        let second = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(7)]), None, Some(vec![Some(8), Some(9)])]);
        let ids = Int32Array::from(vec![10, 20, 30]);
        let list = |name: &str| Field::new(name, DataType::List(Arc::new(Field::new("item", DataType::Int32, true))), true);
        let schema = Arc::new(Schema::new(vec![Field::new("ID", DataType::Int32, true), list("A"), list("B")]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(first), Arc::new(second)]).unwrap();
        let arrays: Vec<(TableFunction, Arc<dyn datafusion::physical_expr::PhysicalExpr>)> =
            vec![(TableFunction::Explode, Arc::new(Column::new("A", 1))), (TableFunction::Explode, Arc::new(Column::new("B", 2)))];
        let (exploded, rows, errors) = explode(&arrays, &batch, &[4, 5, 6]).unwrap();
        assert!(errors.is_empty());
        assert_eq!(rows, vec![4, 4, 6, 6]);
        let ids: Vec<i32> = exploded.column(0).as_primitive::<Int32Type>().values().to_vec();
        assert_eq!(ids, vec![10, 10, 30, 30]);
        let a = exploded.column(3).as_primitive::<Int32Type>();
        assert_eq!((0..4).map(|i| a.is_valid(i).then(|| a.value(i))).collect::<Vec<_>>(), vec![Some(1), Some(2), Some(5), None]);
        let b = exploded.column(4).as_primitive::<Int32Type>();
        assert_eq!((0..4).map(|i| b.is_valid(i).then(|| b.value(i))).collect::<Vec<_>>(), vec![Some(7), None, Some(8), Some(9)]);
    }

    #[test]
    fn cube_combinations_vary_the_first_element_slowest_and_skip_null_elements() {
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1), Some(2)]), Some(vec![None, Some(3)]), None]);
        let mut errors = Vec::new();
        let cubes = combinations(&list, &mut errors).unwrap();
        assert!(errors.is_empty());
        let rows: Vec<Vec<Vec<Option<i32>>>> = (0..cubes.len())
            .map(|row| {
                let combos = cubes.value(row);
                let combos = combos.as_list::<i32>();
                (0..combos.len()).map(|c| combos.value(c).as_primitive::<Int32Type>().iter().collect()).collect()
            })
            .collect();
        assert_eq!(rows[0], vec![vec![None, None], vec![None, Some(2)], vec![Some(1), None], vec![Some(1), Some(2)]]);
        assert_eq!(rows[1], vec![vec![None, None], vec![None, Some(3)]]);
        assert!(rows[2].is_empty());
    }
}
