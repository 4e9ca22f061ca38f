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
