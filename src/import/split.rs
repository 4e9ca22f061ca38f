//! Sqoop's `IntegerSplitter`: the split column's `[MIN, MAX]` cut into `--num-mappers` ranges,
//! the last closed. Rows whose split column is NULL go with the last range (Sqoop drops them
//! unless every row's is NULL).

/// The condition of each split over `column` (already quoted).
pub fn integer_ranges(column: &str, min: Option<i64>, max: Option<i64>, splits: u32) -> Vec<String> {
    let (Some(min), Some(max)) = (min, max) else {
        return vec![format!("{column} IS NULL")];
    };
    let points = split_points(i64::from(splits.max(1)), min, max);
    let last = points.len() - 1;
    points
        .windows(2)
        .enumerate()
        .map(|(i, pair)| {
            let (low, high) = (pair[0], pair[1]);
            if i + 1 == last {
                format!("( {column} >= {low} ) AND ( {column} <= {high} ) OR {column} IS NULL")
            } else {
                format!("( {column} >= {low} ) AND ( {column} < {high} )")
            }
        })
        .collect()
}

/// The points between ranges: `splits` steps of `(max - min) / splits`, the remainder spread
/// one by one over the first steps.
fn split_points(splits: i64, min: i64, max: i64) -> Vec<i64> {
    let span = max.saturating_sub(min);
    let (size, remainder) = (span / splits, span % splits);
    let mut points = Vec::new();
    let mut current = min;
    for i in 0..=splits {
        points.push(current);
        if current >= max {
            break;
        }
        current = current.saturating_add(size + i64::from(i < remainder));
    }
    if points.len() == 1 || span <= splits {
        points.push(max);
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_min_to_max_as_sqoops_splitter_cuts_them() {
        assert_eq!(split_points(4, 1, 100), [1, 26, 51, 76, 100]);
        assert_eq!(split_points(3, 0, 10), [0, 4, 7, 10]);
        assert_eq!(split_points(5, 1, 5), [1, 2, 3, 4, 5, 5]);
        assert_eq!(split_points(4, 7, 7), [7, 7]);
    }

    #[test]
    fn the_last_range_is_closed_and_takes_the_nulls() {
        assert_eq!(
            integer_ranges("\"id\"", Some(1), Some(4), 2),
            [
                "( \"id\" >= 1 ) AND ( \"id\" < 3 )",
                "( \"id\" >= 3 ) AND ( \"id\" <= 4 ) OR \"id\" IS NULL",
            ]
        );
        assert_eq!(integer_ranges("\"id\"", None, None, 4), ["\"id\" IS NULL"]);
    }
}
