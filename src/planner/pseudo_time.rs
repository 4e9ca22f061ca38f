//! ksqlDB's reading of a STRING compared with `ROWTIME`, `WINDOWSTART` or `WINDOWEND`
//! (`WHERE ROWTIME > '2018-01-01T00:00:00.001'`): the text is an ISO timestamp, as much of it as
//! is written (`'2018'` is the year's first instant), in UTC unless it names its offset; it
//! becomes the milliseconds the column holds.

use std::sync::LazyLock;

use chrono::{FixedOffset, NaiveDate, TimeZone};
use regex::Regex;
use sqlparser::ast::{BinaryOperator, Expr, Ident, Value};

use crate::{
    catalog::source::{ROWTIME, WINDOWEND, WINDOWSTART},
    error::{Result, SluiceError},
    parser::normalize_ident,
};

static PARTIAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?)?)?)?(Z|[+-]\d{2}:?\d{2})?$")
        .expect("a valid pattern")
});

/// In a comparison or `BETWEEN` of `ROWTIME`, `WINDOWSTART` or `WINDOWEND` with string
/// literals, each literal becomes its instant in milliseconds.
pub fn compared_with_text(expr: &mut Expr) -> Result<()> {
    match expr {
        Expr::BinaryOp { left, op, right } if is_comparison(op) => {
            if is_time_column(left) {
                to_millis(right)?;
            } else if is_time_column(right) {
                to_millis(left)?;
            }
        }
        Expr::Between { expr, low, high, .. } if is_time_column(expr) => {
            to_millis(low)?;
            to_millis(high)?;
        }
        _ => {}
    }
    Ok(())
}

fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq | BinaryOperator::NotEq | BinaryOperator::Lt | BinaryOperator::LtEq | BinaryOperator::Gt | BinaryOperator::GtEq
    )
}

fn is_time_column(expr: &Expr) -> bool {
    let ident: Option<&Ident> = match expr {
        Expr::Identifier(ident) => Some(ident),
        Expr::CompoundIdentifier(parts) => parts.last(),
        _ => None,
    };
    ident.is_some_and(|i| [ROWTIME, WINDOWSTART, WINDOWEND].contains(&normalize_ident(i).as_str()))
}

/// A string literal becomes its instant's milliseconds; anything else stays.
fn to_millis(expr: &mut Expr) -> Result<()> {
    let Expr::Value(literal) = expr else { return Ok(()) };
    let Value::SingleQuotedString(text) = &literal.value else { return Ok(()) };
    let millis = parse(text).ok_or_else(|| {
        SluiceError::Plan(format!(
            "Failed to parse timestamp '{text}': it is not an ISO timestamp such as 2018-01-01T00:00:00.000, with as many of its fields as needed and an optional offset"
        ))
    })?;
    *expr = Expr::value(Value::Number(millis.to_string(), false));
    Ok(())
}

/// The instant `text` names, missing fields at their least, in UTC unless an offset is given.
fn parse(text: &str) -> Option<i64> {
    let parts = PARTIAL.captures(text.trim())?;
    let field = |i: usize, default: u32| parts.get(i).map_or(Some(default), |m| m.as_str().parse().ok());
    let year: i32 = parts.get(1)?.as_str().parse().ok()?;
    let millis = match parts.get(7) {
        Some(m) => format!("{:0<3}", m.as_str()).parse().ok()?,
        None => 0,
    };
    let local = NaiveDate::from_ymd_opt(year, field(2, 1)?, field(3, 1)?)?.and_hms_milli_opt(field(4, 0)?, field(5, 0)?, field(6, 0)?, millis)?;
    let offset = match parts.get(8).map(|m| m.as_str().replace(':', "")) {
        None => 0,
        Some(zone) if zone == "Z" => 0,
        Some(zone) => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let hours: i32 = zone[1..3].parse().ok()?;
            let minutes: i32 = zone[3..5].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let instant = FixedOffset::east_opt(offset)?.from_local_datetime(&local).single()?;
    Some(instant.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn partial_timestamps_fill_their_least_fields() {
        assert_eq!(parse("2018"), Some(1_514_764_800_000));
        assert_eq!(parse("2018-01-01T00:00:00.001"), Some(1_514_764_800_001));
        assert_eq!(parse("2018-01-01T00:00:01"), Some(1_514_764_801_000));
        assert_eq!(parse("2020-02-10T08:31:44.001+0000"), Some(1_581_323_504_001));
        assert_eq!(parse("2019-01-01T00:00:00+0445"), Some(1_546_300_800_000 - (4 * 3600 + 45 * 60) * 1000));
        assert_eq!(parse("2018-13"), None);
        assert_eq!(parse("yesterday"), None);
    }
}
