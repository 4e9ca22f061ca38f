//! ksqlDB's date and time functions that DataFusion lacks or names differently:
//! TIMESTAMPTOSTRING, STRINGTOTIMESTAMP, FORMAT_TIMESTAMP, PARSE_TIMESTAMP, STRINGTODATE,
//! DATETOSTRING, FORMAT_DATE, PARSE_DATE, FORMAT_TIME, PARSE_TIME, UNIX_TIMESTAMP, UNIX_DATE,
//! FROM_DAYS, FROM_UNIXTIME (milliseconds, as ksqlDB's), CONVERT_TZ, and DATEADD, DATESUB,
//! TIMEADD, TIMESUB, TIMESTAMPADD and TIMESTAMPSUB, whose time unit the planner passes as its
//! name (`DATEADD(DAYS, 10, d)` is `dateadd('DAYS', 10, d)` here).
//!
//! Patterns are Java's `DateTimeFormatter` patterns ([`crate::java_time`]); a zone left out is
//! UTC (ksqlDB's servers' default zone is the JVM's, UTC on its images). A text that does not
//! match its pattern gives NULL and a processing error.

use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use datafusion::{
    common::{ScalarValue, plan_err},
    logical_expr::{ScalarUDF, Signature, TypeSignature, Volatility},
};

use crate::java_time::{Pattern, Zone};

use super::row_function::{Doc, RowFunction, integer, one_of, refuse_parameters, text};

const SECTION: &str = "Date and Time Functions";
const TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);
const TIME: DataType = DataType::Time32(TimeUnit::Millisecond);
const MILLIS_PER_DAY: i64 = 86_400_000;

pub fn functions() -> Vec<ScalarUDF> {
    use DataType::{Date32, Int32, Int64, Utf8};
    let patterned = |value: DataType| one_of(vec![vec![value.clone(), Utf8], vec![value, Utf8, Utf8]], Volatility::Immutable);
    let mut functions = vec![
        RowFunction::new("timestamptostring", patterned(Int64), |_| Ok(Utf8), format_millis, Doc {
            section: SECTION,
            description: "Epoch milliseconds as a STRING in a Java DateTimeFormatter pattern, in a time zone (UTC if none).",
            syntax: "timestamptostring(epoch_millis, pattern [, time_zone])",
            arguments: &[MILLIS, PATTERN, ZONE],
        })
        .udf(),
        RowFunction::new("format_timestamp", patterned(TIMESTAMP), |_| Ok(Utf8), format_millis, Doc {
            section: SECTION,
            description: "A TIMESTAMP as a STRING in a Java DateTimeFormatter pattern, in a time zone (UTC if none).",
            syntax: "format_timestamp(timestamp, pattern [, time_zone])",
            arguments: &[("timestamp", "A TIMESTAMP."), PATTERN, ZONE],
        })
        .udf(),
        RowFunction::new("stringtotimestamp", patterned(Utf8), |_| Ok(Int64), parse_millis, Doc {
            section: SECTION,
            description: "Epoch milliseconds of a STRING read in a Java DateTimeFormatter pattern, in a time zone (UTC if none).",
            syntax: "stringtotimestamp(text, pattern [, time_zone])",
            arguments: &[TEXT, PATTERN, ZONE],
        })
        .udf(),
        RowFunction::new("parse_timestamp", patterned(Utf8), |_| Ok(TIMESTAMP), parse_millis, Doc {
            section: SECTION,
            description: "The TIMESTAMP a STRING names in a Java DateTimeFormatter pattern, in a time zone (UTC if none).",
            syntax: "parse_timestamp(text, pattern [, time_zone])",
            arguments: &[TEXT, PATTERN, ZONE],
        })
        .udf(),
        RowFunction::new("datetostring", one_of(vec![vec![Int64, Utf8]], Volatility::Immutable), |_| Ok(Utf8), format_days, Doc {
            section: SECTION,
            description: "Days since the epoch as a STRING in a Java DateTimeFormatter pattern.",
            syntax: "datetostring(epoch_days, pattern)",
            arguments: &[("epoch_days", "An INTEGER: days since 1970-01-01."), PATTERN],
        })
        .udf(),
        RowFunction::new("format_date", one_of(vec![vec![Date32, Utf8]], Volatility::Immutable), |_| Ok(Utf8), format_days, Doc {
            section: SECTION,
            description: "A DATE as a STRING in a Java DateTimeFormatter pattern.",
            syntax: "format_date(date, pattern)",
            arguments: &[("date", "A DATE."), PATTERN],
        })
        .udf(),
        RowFunction::new("stringtodate", one_of(vec![vec![Utf8, Utf8]], Volatility::Immutable), |_| Ok(Int32), parse_days, Doc {
            section: SECTION,
            description: "Days since the epoch of a STRING read in a Java DateTimeFormatter pattern.",
            syntax: "stringtodate(text, pattern)",
            arguments: &[TEXT, PATTERN],
        })
        .udf(),
        RowFunction::new("parse_date", one_of(vec![vec![Utf8, Utf8]], Volatility::Immutable), |_| Ok(Date32), parse_days, Doc {
            section: SECTION,
            description: "The DATE a STRING names in a Java DateTimeFormatter pattern.",
            syntax: "parse_date(text, pattern)",
            arguments: &[TEXT, PATTERN],
        })
        .udf(),
        RowFunction::new("format_time", one_of(vec![vec![TIME, Utf8]], Volatility::Immutable), |_| Ok(Utf8), format_time, Doc {
            section: SECTION,
            description: "A TIME as a STRING in a Java DateTimeFormatter pattern.",
            syntax: "format_time(time, pattern)",
            arguments: &[("time", "A TIME."), PATTERN],
        })
        .udf(),
        RowFunction::new("parse_time", one_of(vec![vec![Utf8, Utf8]], Volatility::Immutable), |_| Ok(TIME), parse_time, Doc {
            section: SECTION,
            description: "The TIME a STRING names in a Java DateTimeFormatter pattern.",
            syntax: "parse_time(text, pattern)",
            arguments: &[TEXT, PATTERN],
        })
        .udf(),
        RowFunction::new("unix_timestamp", one_of(vec![vec![], vec![TIMESTAMP]], Volatility::Volatile), |_| Ok(Int64), unix_timestamp, Doc {
            section: SECTION,
            description: "Epoch milliseconds of a TIMESTAMP, or of now when called without one.",
            syntax: "unix_timestamp([timestamp])",
            arguments: &[("timestamp", "A TIMESTAMP (optional).")],
        })
        .udf(),
        RowFunction::new("unix_date", one_of(vec![vec![], vec![Date32]], Volatility::Volatile), |_| Ok(Int32), unix_date, Doc {
            section: SECTION,
            description: "Days since the epoch of a DATE, or of today (UTC) when called without one.",
            syntax: "unix_date([date])",
            arguments: &[("date", "A DATE (optional).")],
        })
        .udf(),
        RowFunction::new("from_days", one_of(vec![vec![Int32], vec![Int64]], Volatility::Immutable), |_| Ok(Date32), from_days, Doc {
            section: SECTION,
            description: "The DATE a number of days after 1970-01-01.",
            syntax: "from_days(days)",
            arguments: &[("days", "An INTEGER: days since the epoch.")],
        })
        .udf(),
        RowFunction::new("from_unixtime", one_of(vec![vec![Int64], vec![Int32]], Volatility::Immutable), |_| Ok(TIMESTAMP), from_unixtime, Doc {
            section: SECTION,
            description: "The TIMESTAMP of epoch milliseconds.",
            syntax: "from_unixtime(epoch_millis)",
            arguments: &[MILLIS],
        })
        .udf(),
        RowFunction::new("convert_tz", one_of(vec![vec![TIMESTAMP, Utf8, Utf8]], Volatility::Immutable), convert_tz_type, convert_tz, Doc {
            section: SECTION,
            description: "A TIMESTAMP read as local time in one zone, as the same instant's local time in another.",
            syntax: "convert_tz(timestamp, from_zone, to_zone)",
            arguments: &[("timestamp", "A TIMESTAMP."), ("from_zone", "A Java time-zone name."), ("to_zone", "A Java time-zone name.")],
        })
        .udf(),
    ];
    functions.extend(shifts());
    functions
}

/// DATEADD, DATESUB, TIMEADD, TIMESUB, TIMESTAMPADD and TIMESTAMPSUB.
fn shifts() -> Vec<ScalarUDF> {
    let any = || Signature::new(TypeSignature::VariadicAny, Volatility::Immutable);
    let doc = |description: &'static str, syntax: &'static str| Doc { section: SECTION, description, syntax, arguments: &[UNIT, INTERVAL, ("value", "The DATE, TIME or TIMESTAMP to shift.")] };
    vec![
        RowFunction::new("dateadd", any(), |t| shifted_type("dateadd", t, DataType::Date32), |a| shift(a, 1), doc("A DATE moved forward by an interval (whole days of it).", "dateadd(unit, interval, date)")).udf(),
        RowFunction::new("datesub", any(), |t| shifted_type("datesub", t, DataType::Date32), |a| shift(a, -1), doc("A DATE moved back by an interval (whole days of it).", "datesub(unit, interval, date)")).udf(),
        RowFunction::new("timeadd", any(), |t| shifted_type("timeadd", t, TIME), |a| shift(a, 1), doc("A TIME moved forward by an interval, wrapping at midnight.", "timeadd(unit, interval, time)")).udf(),
        RowFunction::new("timesub", any(), |t| shifted_type("timesub", t, TIME), |a| shift(a, -1), doc("A TIME moved back by an interval, wrapping at midnight.", "timesub(unit, interval, time)")).udf(),
        RowFunction::new("timestampadd", any(), |t| shifted_type("timestampadd", t, TIMESTAMP), |a| shift(a, 1), doc("A TIMESTAMP moved forward by an interval.", "timestampadd(unit, interval, timestamp)")).udf(),
        RowFunction::new("timestampsub", any(), |t| shifted_type("timestampsub", t, TIMESTAMP), |a| shift(a, -1), doc("A TIMESTAMP moved back by an interval.", "timestampsub(unit, interval, timestamp)")).udf(),
    ]
}

const UNIT: (&str, &str) = ("unit", "MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS.");
const INTERVAL: (&str, &str) = ("interval", "An INTEGER or BIGINT: how many units.");

/// The type a shift returns: its value's, when it is given a unit, an integer and a value of
/// type `value`; otherwise ksqlDB's refusal.
fn shifted_type(name: &str, types: &[DataType], value: DataType) -> datafusion::common::Result<DataType> {
    match types {
        [DataType::Utf8, interval, given] if interval.is_integer() && *given == value => Ok(value),
        [_, _, given] if given.is_null() => Ok(value),
        _ => refuse_parameters(name, types),
    }
}

/// A value shifted by `direction` times an interval: days for a DATE (the interval cut to whole
/// days, as Java's `TimeUnit.toDays`), milliseconds for a TIME (wrapping) or TIMESTAMP.
fn shift(args: &[ScalarValue], direction: i64) -> Result<ScalarValue, String> {
    let unit = text(&args[0]).ok_or("the time unit is not a name")?;
    let millis_per_unit: i64 = match unit.trim_end_matches('S') {
        "MILLISECOND" => 1,
        "SECOND" => 1000,
        "MINUTE" => 60_000,
        "HOUR" => 3_600_000,
        "DAY" => MILLIS_PER_DAY,
        other => return Err(format!("unknown time unit {other}")),
    };
    let interval = integer(&args[1]).ok_or("the interval is not an integer")?;
    let millis = interval.checked_mul(millis_per_unit).and_then(|m| m.checked_mul(direction)).ok_or("the interval is out of range")?;
    Ok(match &args[2] {
        ScalarValue::Date32(Some(days)) => ScalarValue::Date32(Some((*days as i64 + millis / MILLIS_PER_DAY) as i32)),
        ScalarValue::Time32Millisecond(Some(ms)) => {
            ScalarValue::Time32Millisecond(Some((*ms as i64 + millis).rem_euclid(MILLIS_PER_DAY) as i32))
        }
        ScalarValue::TimestampMillisecond(Some(ms), zone) => {
            ScalarValue::TimestampMillisecond(Some(ms.checked_add(millis).ok_or("the timestamp is out of range")?), zone.clone())
        }
        other => return Err(format!("cannot shift {other}")),
    })
}

const MILLIS: (&str, &str) = ("epoch_millis", "A BIGINT: milliseconds since 1970-01-01T00:00:00Z.");
const PATTERN: (&str, &str) = ("pattern", "A Java DateTimeFormatter pattern, such as 'yyyy-MM-dd HH:mm:ss.SSS'.");
const ZONE: (&str, &str) = ("time_zone", "A Java time-zone name, such as 'UTC' or 'America/Los_Angeles' (optional).");
const TEXT: (&str, &str) = ("text", "A STRING written in the pattern.");

fn convert_tz_type(types: &[DataType]) -> datafusion::common::Result<DataType> {
    match types.first() {
        Some(DataType::Timestamp(_, _)) => Ok(TIMESTAMP),
        _ => plan_err!("CONVERT_TZ takes a TIMESTAMP and two time-zone names"),
    }
}

/// The milliseconds in a BIGINT or TIMESTAMP argument.
fn millis(value: &ScalarValue) -> Result<i64, String> {
    match value {
        ScalarValue::TimestampMillisecond(Some(ms), _) => Ok(*ms),
        ScalarValue::TimestampSecond(Some(s), _) => Ok(s * 1000),
        ScalarValue::TimestampMicrosecond(Some(us), _) => Ok(us.div_euclid(1000)),
        ScalarValue::TimestampNanosecond(Some(ns), _) => Ok(ns.div_euclid(1_000_000)),
        other => integer(other).ok_or_else(|| format!("expected milliseconds, got {other}")),
    }
}

fn instant(ms: i64) -> Result<NaiveDateTime, String> {
    DateTime::from_timestamp_millis(ms).map(|t| t.naive_utc()).ok_or_else(|| format!("{ms} ms is out of range"))
}

fn pattern(value: &ScalarValue) -> Result<Pattern, String> {
    Pattern::parse(text(value).ok_or("the pattern is not a STRING")?)
}

fn zone(args: &[ScalarValue], at: usize) -> Result<Zone, String> {
    match args.get(at) {
        None => Ok(Zone::UTC),
        Some(name) => Zone::named(text(name).ok_or("the time zone is not a STRING")?),
    }
}

fn format_millis(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let text = pattern(&args[1])?.format(&instant(millis(&args[0])?)?, &zone(args, 2)?)?;
    Ok(ScalarValue::Utf8(Some(text)))
}

fn parse_millis(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let parsed = pattern(&args[1])?.parse_instant(text(&args[0]).ok_or("not a STRING")?, &zone(args, 2)?)?;
    Ok(ScalarValue::Int64(Some(parsed.timestamp_millis())))
}

/// The days in an INTEGER or DATE argument.
fn days(value: &ScalarValue) -> Result<i64, String> {
    match value {
        ScalarValue::Date32(Some(days)) => Ok(*days as i64),
        ScalarValue::Date64(Some(ms)) => Ok(ms.div_euclid(MILLIS_PER_DAY)),
        other => integer(other).ok_or_else(|| format!("expected days, got {other}")),
    }
}

fn format_days(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let at = instant(days(&args[0])?.checked_mul(MILLIS_PER_DAY).ok_or("the date is out of range")?)?;
    Ok(ScalarValue::Utf8(Some(pattern(&args[1])?.format(&at, &Zone::UTC)?)))
}

fn parse_days(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let (local, _) = pattern(&args[1])?.parse_local(text(&args[0]).ok_or("not a STRING")?)?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date");
    Ok(ScalarValue::Int32(Some((local.date() - epoch).num_days() as i32)))
}

fn format_time(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let ms = match &args[0] {
        ScalarValue::Time32Millisecond(Some(ms)) => *ms as i64,
        ScalarValue::Time32Second(Some(s)) => *s as i64 * 1000,
        ScalarValue::Time64Microsecond(Some(us)) => us / 1000,
        ScalarValue::Time64Nanosecond(Some(ns)) => ns / 1_000_000,
        other => return Err(format!("expected a TIME, got {other}")),
    };
    Ok(ScalarValue::Utf8(Some(pattern(&args[1])?.format(&instant(ms)?, &Zone::UTC)?)))
}

fn parse_time(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let (local, _) = pattern(&args[1])?.parse_local(text(&args[0]).ok_or("not a STRING")?)?;
    let time: NaiveTime = local.time();
    Ok(ScalarValue::Time32Millisecond(Some((time.num_seconds_from_midnight() * 1000 + time.nanosecond() / 1_000_000) as i32)))
}

fn unix_timestamp(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let ms = match args.first() {
        Some(value) => millis(value)?,
        None => Utc::now().timestamp_millis(),
    };
    Ok(ScalarValue::Int64(Some(ms)))
}

fn unix_date(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let days = match args.first() {
        Some(value) => days(value)?,
        None => Utc::now().timestamp_millis().div_euclid(MILLIS_PER_DAY),
    };
    Ok(ScalarValue::Int32(Some(days as i32)))
}

fn from_days(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let days = i32::try_from(days(&args[0])?).map_err(|_| "the date is out of range".to_string())?;
    Ok(ScalarValue::Date32(Some(days)))
}

fn from_unixtime(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    Ok(ScalarValue::TimestampMillisecond(Some(millis(&args[0])?), None))
}

fn convert_tz(args: &[ScalarValue]) -> Result<ScalarValue, String> {
    let local = instant(millis(&args[0])?)?;
    let from = Zone::named(text(&args[1]).ok_or("the zone is not a STRING")?)?;
    let to = Zone::named(text(&args[2]).ok_or("the zone is not a STRING")?)?;
    let converted = to.local(&from.instant(&local).naive_utc());
    Ok(ScalarValue::TimestampMillisecond(Some(converted.and_utc().timestamp_millis()), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf8(s: &str) -> ScalarValue {
        ScalarValue::Utf8(Some(s.to_string()))
    }

    #[test]
    fn dates_and_timestamps_round_trip_through_their_patterns() {
        let text = format_millis(&[ScalarValue::Int64(Some(1526075913000)), utf8("yyyy-MM-dd HH:mm:ss")]).unwrap();
        assert_eq!(text, utf8("2018-05-11 21:58:33"));
        assert_eq!(parse_millis(&[text, utf8("yyyy-MM-dd HH:mm:ss")]).unwrap(), ScalarValue::Int64(Some(1526075913000)));
        assert_eq!(format_days(&[ScalarValue::Int32(Some(18993)), utf8("dd-MMM-yyyy")]).unwrap(), utf8("01-Jan-2022"));
        assert_eq!(parse_days(&[utf8("2018-05-11Lit"), utf8("yyyy-MM-dd'Lit'")]).unwrap(), ScalarValue::Int32(Some(17662)));
        assert_eq!(parse_time(&[utf8("10:15:30.250"), utf8("HH:mm:ss.SSS")]).unwrap(), ScalarValue::Time32Millisecond(Some(36_930_250)));
    }

    #[test]
    fn shifts_move_dates_times_and_timestamps_by_units() {
        let days = |n| ScalarValue::Date32(Some(n));
        assert_eq!(shift(&[utf8("DAYS"), ScalarValue::Int32(Some(10)), days(10)], 1).unwrap(), days(20));
        assert_eq!(shift(&[utf8("MILLISECONDS"), ScalarValue::Int32(Some(5)), days(10)], 1).unwrap(), days(10), "less than a day moves no date");
        let time = ScalarValue::Time32Millisecond(Some(2));
        assert_eq!(shift(&[utf8("MILLISECONDS"), ScalarValue::Int32(Some(5)), time], -1).unwrap(), ScalarValue::Time32Millisecond(Some(86_399_997)));
        let refused = shifted_type("dateadd", &[DataType::Date32, DataType::Int32, DataType::Date32], DataType::Date32).unwrap_err().to_string();
        assert!(refused.contains("Function 'dateadd' does not accept parameters (DATE, INTEGER, DATE)."), "{refused}");
    }

    #[test]
    fn convert_tz_moves_local_time_between_zones() {
        let noon_utc = ScalarValue::TimestampMillisecond(Some(1526040000000), None);
        let converted = convert_tz(&[noon_utc, utf8("UTC"), utf8("America/Los_Angeles")]).unwrap();
        assert_eq!(converted, ScalarValue::TimestampMillisecond(Some(1526040000000 - 7 * 3_600_000), None));
    }
}
