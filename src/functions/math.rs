//! ksqlDB's ROUND, TRUNC, SQRT and LOG where DataFusion's differ: ROUND and TRUNC of a whole
//! number or a DOUBLE give a BIGINT, with decimal places they work on the DOUBLE's decimal digits
//! as Java's `BigDecimal` does (ROUND's ties going up, towards positive infinity) and a DECIMAL
//! keeps its type; SQRT of a negative number is NaN, not an error; LOG is the natural logarithm,
//! LOG(base, value) NaN for a base that is not positive or is 1.

use arrow::datatypes::DataType;
use datafusion::{
    common::{Result, ScalarValue, plan_err},
    logical_expr::{Signature, TypeSignature, Volatility},
};

use super::row_function::{Doc, RowFunction, integer};

const SECTION: &str = "Math Functions";

pub fn functions() -> Vec<datafusion::logical_expr::ScalarUDF> {
    let any = |n: usize| TypeSignature::Any(n);
    let one_or_two = || Signature::one_of(vec![any(1), any(2)], Volatility::Immutable);
    vec![
        RowFunction::new("round", one_or_two(), rounded_type, |args| to_places(args, Rounding::HalfUp), Doc {
            section: SECTION,
            description: "A number rounded to a number of decimal places (0 by default, negative to the left of the point), ties towards positive infinity; a BIGINT without places unless the number is a DECIMAL, which keeps its type.",
            syntax: "round(number [, places])",
            arguments: &[("number", "An INTEGER, BIGINT, DOUBLE or DECIMAL."), ("places", "The INTEGER number of decimal places to keep.")],
        })
        .udf(),
        RowFunction::new("trunc", one_or_two(), rounded_type, |args| to_places(args, Rounding::Down), Doc {
            section: SECTION,
            description: "A number truncated to a number of decimal places (0 by default, negative to the left of the point); a BIGINT without places unless the number is a DECIMAL, which keeps its type.",
            syntax: "trunc(number [, places])",
            arguments: &[("number", "An INTEGER, BIGINT, DOUBLE or DECIMAL."), ("places", "The INTEGER number of decimal places to keep.")],
        })
        .udf(),
        RowFunction::new("sqrt", Signature::new(any(1), Volatility::Immutable), double_type, sqrt, Doc {
            section: SECTION,
            description: "The square root of a number, as a DOUBLE; NaN for a negative number.",
            syntax: "sqrt(number)",
            arguments: &[("number", "An INTEGER, BIGINT, DOUBLE or DECIMAL.")],
        })
        .udf(),
        RowFunction::new("log", one_or_two(), double_type, log, Doc {
            section: SECTION,
            description: "The natural logarithm of a number, or its logarithm in a base (NaN when the base is not positive or is 1), as a DOUBLE.",
            syntax: "log([base,] number)",
            arguments: &[("base", "The base of the logarithm."), ("number", "An INTEGER, BIGINT, DOUBLE or DECIMAL.")],
        })
        .udf(),
    ]
}

fn numeric(data_type: &DataType) -> bool {
    data_type.is_numeric() || *data_type == DataType::Null
}

fn rounded_type(types: &[DataType]) -> Result<DataType> {
    match types {
        [value] if value.is_integer() || value.is_floating() || *value == DataType::Null => Ok(DataType::Int64),
        [DataType::Decimal128(precision, scale)] => Ok(DataType::Decimal128(whole_digits(*precision, *scale), 0)),
        [decimal @ DataType::Decimal128(..), places] if places.is_integer() || *places == DataType::Null => Ok(decimal.clone()),
        [value, places] if numeric(value) && (places.is_integer() || *places == DataType::Null) => Ok(DataType::Float64),
        _ => plan_err!("takes a number and an optional INTEGER number of places, not ({})", listed(types)),
    }
}

/// The digits left of the point of a `DECIMAL(precision, scale)`: ROUND's and TRUNC's precision
/// without places (at least 1).
fn whole_digits(precision: u8, scale: i8) -> u8 {
    (i16::from(precision) - i16::from(scale.max(0))).max(1) as u8
}

fn double_type(types: &[DataType]) -> Result<DataType> {
    if types.iter().all(numeric) { Ok(DataType::Float64) } else { plan_err!("takes numbers, not ({})", listed(types)) }
}

fn listed(types: &[DataType]) -> String {
    types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// How digits past the places kept are dropped.
#[derive(Clone, Copy)]
enum Rounding {
    /// ksqlDB's ROUND: half up for a positive value, half down otherwise (ties towards +∞).
    HalfUp,
    /// TRUNC: towards zero.
    Down,
}

impl Rounding {
    /// `unscaled` with its last `dropped` decimal digits removed.
    fn drop_digits(self, unscaled: i128, dropped: u32) -> i128 {
        let Some(divisor) = 10i128.checked_pow(dropped) else { return 0 };
        let (quotient, remainder) = (unscaled / divisor, (unscaled % divisor).abs());
        match self {
            Rounding::Down => quotient,
            Rounding::HalfUp if unscaled > 0 && remainder >= divisor - remainder => quotient + 1,
            Rounding::HalfUp if unscaled < 0 && remainder > divisor - remainder => quotient - 1,
            Rounding::HalfUp => quotient,
        }
    }

    /// `unscaled × 10^-scale` to `places` decimal places, still at `scale`.
    fn to_places(self, unscaled: i128, scale: i32, places: i32) -> Option<i128> {
        if places >= scale {
            return Some(unscaled);
        }
        let dropped = u32::try_from(i64::from(scale) - i64::from(places)).ok()?;
        let kept = self.drop_digits(unscaled, dropped);
        if kept == 0 { Some(0) } else { kept.checked_mul(10i128.checked_pow(dropped)?) }
    }
}

fn to_places(args: &[ScalarValue], rounding: Rounding) -> std::result::Result<ScalarValue, String> {
    let places = match args.get(1) {
        None => None,
        Some(places) => Some(integer(places).and_then(|p| i32::try_from(p).ok()).ok_or("the number of places is not an INTEGER")?),
    };
    match (&args[0], places) {
        (ScalarValue::Decimal128(value, precision, scale), None) => {
            let Some(unscaled) = value else { return Ok(ScalarValue::Null) };
            let kept = rounding.drop_digits(*unscaled, u32::try_from(*scale).unwrap_or(0));
            Ok(ScalarValue::Decimal128(Some(kept), whole_digits(*precision, *scale), 0))
        }
        (ScalarValue::Decimal128(value, precision, scale), Some(places)) => {
            let Some(unscaled) = value else { return Ok(ScalarValue::Null) };
            let kept = rounding.to_places(*unscaled, i32::from(*scale), places).ok_or("the value no longer fits its DECIMAL")?;
            Ok(ScalarValue::Decimal128(Some(kept), *precision, *scale))
        }
        (value, None) if value.data_type().is_integer() => Ok(ScalarValue::Int64(integer(value))),
        (value, None) => {
            let double = double(value).ok_or("not a number")?;
            Ok(ScalarValue::Int64(Some(match rounding {
                Rounding::Down => double as i64,
                Rounding::HalfUp => java_math_round(double),
            })))
        }
        (value, Some(places)) => {
            let double = double(value).ok_or("not a number")?;
            double_to_places(double, places, rounding).map(|rounded| ScalarValue::Float64(Some(rounded)))
        }
    }
}

/// Java's `Math.round`: the closest whole number, ties towards positive infinity, NaN as 0 and
/// the infinities as the ends of BIGINT.
fn java_math_round(value: f64) -> i64 {
    let floor = value.floor();
    (if value - floor >= 0.5 { floor + 1.0 } else { floor }) as i64
}

/// A DOUBLE to `places` decimal places of the digits Java prints it with (`BigDecimal.valueOf`).
fn double_to_places(value: f64, places: i32, rounding: Rounding) -> std::result::Result<f64, String> {
    if !value.is_finite() {
        return Err(format!("{value} has no decimal digits"));
    }
    let printed = format!("{value:e}");
    let (mantissa, exponent) = printed.split_once('e').ok_or("a DOUBLE printed without an exponent")?;
    let exponent: i32 = exponent.parse().map_err(|_| "a DOUBLE printed with a bad exponent")?;
    let fraction = mantissa.split_once('.').map_or(0, |(_, fraction)| fraction.len() as i32);
    let unscaled: i128 = mantissa.replace('.', "").parse().map_err(|_| "a DOUBLE printed with bad digits")?;
    let scale = fraction - exponent;
    if places >= scale {
        return Ok(value);
    }
    let dropped = u32::try_from(i64::from(scale) - i64::from(places)).map_err(|_| "too many places")?;
    let kept = rounding.drop_digits(unscaled, dropped);
    format!("{kept}e{}", -i64::from(places)).parse().map_err(|_| "a rounded DOUBLE that does not read back".into())
}

fn double(value: &ScalarValue) -> Option<f64> {
    match value {
        ScalarValue::Float64(v) => *v,
        ScalarValue::Float32(v) => v.map(f64::from),
        ScalarValue::Decimal128(Some(unscaled), _, scale) => Some(*unscaled as f64 / 10f64.powi(i32::from(*scale))),
        other => integer(other).map(|v| v as f64),
    }
}

fn sqrt(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    Ok(ScalarValue::Float64(double(&args[0]).map(f64::sqrt)))
}

fn log(args: &[ScalarValue]) -> std::result::Result<ScalarValue, String> {
    let logarithm = match args {
        [value] => double(value).map(f64::ln),
        [base, value] => match (double(base), double(value)) {
            (Some(base), Some(_)) if base <= 0.0 || base == 1.0 => Some(f64::NAN),
            (Some(base), Some(value)) => Some(value.ln() / base.ln()),
            _ => None,
        },
        _ => return Err("LOG takes a number, or a base and a number".into()),
    };
    Ok(ScalarValue::Float64(logarithm))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doubles(places: i32, rounding: Rounding) -> Vec<f64> {
        [1.5, -1.5, -1.7, 12345.678, -12345.678, 1.234567].iter().map(|v| double_to_places(*v, places, rounding).unwrap()).collect()
    }

    #[test]
    fn doubles_round_ties_up_and_truncate_towards_zero_on_their_printed_digits() {
        assert_eq!(doubles(0, Rounding::HalfUp), vec![2.0, -1.0, -2.0, 12346.0, -12346.0, 1.0]);
        assert_eq!(doubles(2, Rounding::HalfUp), vec![1.5, -1.5, -1.7, 12345.68, -12345.68, 1.23]);
        assert_eq!(doubles(-2, Rounding::HalfUp), vec![0.0, 0.0, 0.0, 12300.0, -12300.0, 0.0]);
        assert_eq!(doubles(1, Rounding::Down), vec![1.5, -1.5, -1.7, 12345.6, -12345.6, 1.2]);
        assert_eq!(doubles(-1, Rounding::Down), vec![0.0, 0.0, 0.0, 12340.0, -12340.0, 0.0]);
        assert_eq!([1.5, -1.5, -1.7, 2.5].map(java_math_round), [2, -1, -2, 3]);
        assert_eq!(to_places(&[ScalarValue::Float64(Some(-1.7))], Rounding::Down).unwrap(), ScalarValue::Int64(Some(-1)));
    }

    #[test]
    fn decimals_keep_their_scale_with_places_and_lose_it_without() {
        let decimal = |unscaled| ScalarValue::Decimal128(Some(unscaled), 33, 16);
        let value = decimal(123_456_789_876_543_212_345_678_987_654_321);
        let places = |p| ScalarValue::Int32(Some(p));
        assert_eq!(to_places(&[value.clone()], Rounding::HalfUp).unwrap(), ScalarValue::Decimal128(Some(12_345_678_987_654_321), 17, 0));
        assert_eq!(to_places(&[value.clone(), places(1)], Rounding::HalfUp).unwrap(), decimal(123_456_789_876_543_212_000_000_000_000_000));
        assert_eq!(to_places(&[value.clone(), places(-1)], Rounding::HalfUp).unwrap(), decimal(123_456_789_876_543_200_000_000_000_000_000));
        assert_eq!(to_places(&[value, places(-60)], Rounding::HalfUp).unwrap(), decimal(0));
        let negative = ScalarValue::Decimal128(Some(-15), 2, 1);
        assert_eq!(to_places(&[negative.clone()], Rounding::HalfUp).unwrap(), ScalarValue::Decimal128(Some(-1), 1, 0));
        assert_eq!(to_places(&[negative], Rounding::Down).unwrap(), ScalarValue::Decimal128(Some(-1), 1, 0));
    }

    #[test]
    fn sqrt_and_log_give_nan_where_java_does() {
        let int = |v| ScalarValue::Int32(Some(v));
        assert!(matches!(sqrt(&[int(-1)]).unwrap(), ScalarValue::Float64(Some(v)) if v.is_nan()));
        assert_eq!(log(&[int(13)]).unwrap(), ScalarValue::Float64(Some(13f64.ln())));
        assert!(matches!(log(&[int(1), int(13)]).unwrap(), ScalarValue::Float64(Some(v)) if v.is_nan()));
        assert_eq!(log(&[int(15), int(1)]).unwrap(), ScalarValue::Float64(Some(0.0)));
        assert_eq!(rounded_type(&[DataType::Decimal128(12, 7)]).unwrap(), DataType::Decimal128(5, 0));
        assert_eq!(rounded_type(&[DataType::Float64, DataType::Int32]).unwrap(), DataType::Float64);
        assert_eq!(rounded_type(&[DataType::Int32]).unwrap(), DataType::Int64);
    }
}
