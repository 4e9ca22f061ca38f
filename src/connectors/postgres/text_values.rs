//! PostgreSQL's text forms of values (as COPY and logical decoding write them, in a UTC, ISO
//! session) read into the numbers Connect's types hold.

use chrono::{NaiveDate, NaiveDateTime};

/// A date's text as days since 1970-01-01.
pub fn days_since_epoch(text: &str) -> Option<i64> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days())
}

/// A timestamp's text (UTC session; `+00` on a `timestamptz`) as microseconds since the epoch.
pub fn timestamp_micros(text: &str) -> Option<i64> {
    let local = text.strip_suffix("+00").unwrap_or(text);
    let parsed = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Some(parsed.and_utc().timestamp_micros())
}

/// A decimal's unscaled value at `scale`, as the big-endian two's-complement bytes Connect's
/// `Decimal` holds (the fewest that carry the sign).
pub fn unscaled_bytes(text: &str, scale: u32) -> Option<Vec<u8>> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.len() > scale as usize {
        return None;
    }
    let padded = format!("{whole}{fraction:0<width$}", width = scale as usize);
    let magnitude: i128 = padded.parse().ok()?;
    let value = if negative { -magnitude } else { magnitude };
    let bytes = value.to_be_bytes();
    let mut start = 0;
    while start < bytes.len() - 1 {
        let (this, next) = (bytes[start], bytes[start + 1]);
        let redundant = (this == 0x00 && next & 0x80 == 0) || (this == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    Some(bytes[start..].to_vec())
}

/// A `bytea`'s hex text (`\x0aff`) as its bytes.
pub fn bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

/// Debezium's average month, in days (`MicroDuration.DAYS_PER_MONTH_AVG`).
const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// An `interval`'s text (`IntervalStyle` postgres: `1 year 2 mons -3 days 04:05:06.5`) as
/// Debezium's `MicroDuration`: microseconds, a month counted as 30.4375 days, computed in
/// doubles and truncated as Debezium does.
pub fn interval_micros(text: &str) -> Option<i64> {
    let (mut months, mut days, mut hours, mut minutes, mut seconds) = (0f64, 0f64, 0f64, 0f64, 0f64);
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        if word.contains(':') {
            let (sign, clock) = match word.strip_prefix('-') {
                Some(rest) => (-1.0, rest),
                None => (1.0, word.strip_prefix('+').unwrap_or(word)),
            };
            let mut parts = clock.split(':');
            hours += sign * parts.next()?.parse::<f64>().ok()?;
            minutes += sign * parts.next()?.parse::<f64>().ok()?;
            seconds += sign * parts.next().map_or(Some(0.0), |s| s.parse::<f64>().ok())?;
            continue;
        }
        let amount: f64 = word.parse().ok()?;
        match words.next()?.trim_end_matches('s') {
            "year" => months += amount * 12.0,
            "mon" => months += amount,
            "day" => days += amount,
            _ => return None,
        }
    }
    let total_days = months * DAYS_PER_MONTH + days;
    let total_seconds = ((total_days * 24.0 + hours) * 60.0 + minutes) * 60.0 + seconds;
    Some((total_seconds * 1_000_000.0) as i64)
}

/// The elements of a one-dimensional array's text (`{1,NULL,"a b","q\"d"}`): each element's
/// text, `None` for NULL. `None` for anything else (several dimensions, bounds, bad quoting).
pub fn array_elements(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.strip_prefix('{')?.strip_suffix('}')?;
    let mut elements = Vec::new();
    if inner.is_empty() {
        return Some(elements);
    }
    let mut chars = inner.chars().peekable();
    loop {
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut element = String::new();
            loop {
                match chars.next()? {
                    '\\' => element.push(chars.next()?),
                    '"' => break,
                    c => element.push(c),
                }
            }
            elements.push(Some(element));
        } else {
            let mut element = String::new();
            while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                if matches!(c, '{' | '"' | '\\') {
                    return None;
                }
                element.push(c);
                chars.next();
            }
            elements.push((!element.eq_ignore_ascii_case("NULL")).then_some(element));
        }
        match chars.next() {
            None => return Some(elements),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_debeziums_micro_durations() {
        // Debezium's own figure for `1 year 2 mons 3 days 04:05:00`.
        let days = 14.0 * DAYS_PER_MONTH + 3.0;
        let expected = ((((days * 24.0 + 4.0) * 60.0 + 5.0) * 60.0) * 1_000_000.0) as i64;
        assert_eq!(interval_micros("1 year 2 mons 3 days 04:05:00"), Some(expected));
        assert_eq!(interval_micros("00:00:01.5"), Some(1_500_000));
        assert_eq!(interval_micros("-1 days +02:00:00"), Some(-22 * 3_600_000_000));
        assert_eq!(interval_micros("-00:00:02"), Some(-2_000_000));
        assert_eq!(interval_micros("00:00:00"), Some(0));
        assert_eq!(interval_micros("3 fortnights"), None);
    }

    #[test]
    fn arrays_split_into_their_elements() {
        let some = |v: &str| Some(v.to_string());
        assert_eq!(array_elements("{1,2,NULL}"), Some(vec![some("1"), some("2"), None]));
        assert_eq!(array_elements(r#"{a,"b c","q\"d","NULL",""}"#), Some(vec![some("a"), some("b c"), some("q\"d"), some("NULL"), some("")]));
        assert_eq!(array_elements("{}"), Some(Vec::new()));
        assert_eq!(array_elements("{{1,2},{3,4}}"), None);
        assert_eq!(array_elements("[0:1]={1,2}"), None);
    }
}
