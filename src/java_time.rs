//! Java's `DateTimeFormatter` patterns, which ksqlDB's date and time functions take
//! (`'yyyy-MM-dd''T''HH:mm:ss.SSSX'`), and Java's time-zone names: formatting and parsing them
//! with chrono.
//!
//! A pattern is read once into [`Pattern`]. Formatting renders each letter run as Java does;
//! parsing reads the text with chrono, case-insensitively as ksqlDB's parsers do, and fills
//! what the pattern leaves out with ksqlDB's defaults (1970-01-01, midnight, the given zone).

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc,
    format::{Parsed, StrftimeItems},
};
use chrono_tz::Tz;

/// One part of a pattern: text kept as written, or a run of one pattern letter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Field(char, usize),
}

/// A parsed `DateTimeFormatter` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    parts: Vec<Part>,
}

/// A time zone as Java names it: a region (`America/Los_Angeles`), `UTC`, a fixed offset
/// (`+02:00`, `UTC+2`) or one of Java's short ids (`PST`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Region(Tz),
    Fixed(FixedOffset),
}

/// Java's `ZoneId.SHORT_IDS`: the three-letter names `ZoneId.of` and `z` accept.
const SHORT_IDS: [(&str, &str); 28] = [
    ("ACT", "Australia/Darwin"),
    ("AET", "Australia/Sydney"),
    ("AGT", "America/Argentina/Buenos_Aires"),
    ("ART", "Africa/Cairo"),
    ("AST", "America/Anchorage"),
    ("BET", "America/Sao_Paulo"),
    ("BST", "Asia/Dhaka"),
    ("CAT", "Africa/Harare"),
    ("CNT", "America/St_Johns"),
    ("CST", "America/Chicago"),
    ("CTT", "Asia/Shanghai"),
    ("EAT", "Africa/Addis_Ababa"),
    ("ECT", "Europe/Paris"),
    ("EST", "-05:00"),
    ("HST", "-10:00"),
    ("IET", "America/Indiana/Indianapolis"),
    ("IST", "Asia/Kolkata"),
    ("JST", "Asia/Tokyo"),
    ("MIT", "Pacific/Apia"),
    ("MST", "-07:00"),
    ("NET", "Asia/Yerevan"),
    ("NST", "Pacific/Auckland"),
    ("PLT", "Asia/Karachi"),
    ("PNT", "America/Phoenix"),
    ("PRT", "America/Puerto_Rico"),
    ("PST", "America/Los_Angeles"),
    ("SST", "Pacific/Guadalcanal"),
    ("VST", "Asia/Ho_Chi_Minh"),
];

/// Daylight-saving names a parsed `z` also accepts, by the zone they belong to.
const DAYLIGHT_NAMES: [(&str, &str); 5] = [
    ("PDT", "America/Los_Angeles"),
    ("MDT", "America/Denver"),
    ("CDT", "America/Chicago"),
    ("EDT", "America/New_York"),
    ("CEST", "Europe/Paris"),
];

impl Zone {
    pub const UTC: Zone = Zone::Fixed(FixedOffset::east_opt(0).expect("zero is a valid offset"));

    /// The zone Java's `ZoneId.of(name)` gives, or why there is none.
    pub fn named(name: &str) -> Result<Zone, String> {
        let name = name.trim();
        if let Some(offset) = fixed_offset(name) {
            return Ok(Zone::Fixed(offset));
        }
        for prefix in ["UTC", "GMT", "UT"] {
            if let Some(rest) = name.strip_prefix(prefix)
                && (rest.starts_with('+') || rest.starts_with('-'))
                && let Some(offset) = fixed_offset(rest)
            {
                return Ok(Zone::Fixed(offset));
            }
        }
        let short = SHORT_IDS.iter().chain(&DAYLIGHT_NAMES).find(|(id, _)| id.eq_ignore_ascii_case(name)).map(|(_, zone)| *zone);
        match short {
            Some(zone) => Zone::named(zone),
            None => name.parse::<Tz>().map(Zone::Region).map_err(|_| format!("Unknown time-zone ID: {name}")),
        }
    }

    /// The local time in this zone at instant `utc`.
    pub fn local(&self, utc: &NaiveDateTime) -> NaiveDateTime {
        *utc + self.offset_at(utc)
    }

    /// The offset from UTC at instant `utc`.
    fn offset_at(&self, utc: &NaiveDateTime) -> FixedOffset {
        match self {
            Zone::Region(tz) => tz.offset_from_utc_datetime(utc).fix(),
            Zone::Fixed(offset) => *offset,
        }
    }

    /// The instant of local time `local` in this zone (the earlier one when clocks go back;
    /// in a gap when they go forward, as if the clocks had not moved yet).
    pub fn instant(&self, local: &NaiveDateTime) -> DateTime<Utc> {
        match self {
            Zone::Fixed(offset) => offset.from_utc_datetime(&(*local - *offset)).with_timezone(&Utc),
            Zone::Region(tz) => match tz.from_local_datetime(local).earliest() {
                Some(time) => time.with_timezone(&Utc),
                None => {
                    let before = tz.offset_from_utc_datetime(&(*local - chrono::Duration::hours(3))).fix();
                    Utc.from_utc_datetime(&(*local - before))
                }
            },
        }
    }

    /// The zone's short name at `utc`, as Java's `z` shows it: `PDT`, `UTC`, `+02:00`.
    fn short_name(&self, utc: &NaiveDateTime) -> String {
        match self {
            Zone::Region(tz) => {
                let name = tz.offset_from_utc_datetime(utc).to_string();
                if name == "GMT" && tz.name().starts_with("Etc/U") { "UTC".to_string() } else { name }
            }
            Zone::Fixed(offset) if offset.local_minus_utc() == 0 => "Z".to_string(),
            Zone::Fixed(offset) => offset.to_string(),
        }
    }

    fn id(&self) -> String {
        match self {
            Zone::Region(tz) => tz.name().to_string(),
            Zone::Fixed(offset) if offset.local_minus_utc() == 0 => "Z".to_string(),
            Zone::Fixed(offset) => offset.to_string(),
        }
    }
}

/// `+hh`, `+hh:mm`, `+hhmm` or `Z`.
fn fixed_offset(text: &str) -> Option<FixedOffset> {
    if text == "Z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| digits.get(range).map_or(Some(0), |d| d.parse::<i32>().ok());
    let (hours, minutes, seconds) = match digits.len() {
        1 | 2 => (digits.parse().ok()?, 0, 0),
        4 => (number(0..2)?, number(2..4)?, 0),
        6 => (number(0..2)?, number(2..4)?, number(4..6)?),
        _ => return None,
    };
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60 + seconds))
}

impl Pattern {
    /// Reads `pattern`, or says what in it Java would refuse.
    pub fn parse(pattern: &str) -> Result<Pattern, String> {
        let mut parts = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            text.push('\'');
                        }
                        Some('\'') => break,
                        Some(c) => text.push(c),
                        None => return Err(format!("Pattern ends an unclosed quote: {pattern}")),
                    }
                }
                // `''` outside text is one quote.
                parts.push(Part::Literal(if text.is_empty() { "'".to_string() } else { text }));
            } else if c.is_ascii_alphabetic() {
                let mut count = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    count += 1;
                }
                if !"GuyDMLdQqYwWEecFaBhKkHmsSAnNVvzOXxZ".contains(c) {
                    return Err(format!("Unknown pattern letter: {c}"));
                }
                if c == 'B' || c == 'v' {
                    return Err(format!("Pattern letter {c} is not supported"));
                }
                parts.push(Part::Field(c, count));
            } else if "[]{}#".contains(c) {
                return Err(format!("Pattern character '{c}' is not supported"));
            } else {
                match parts.last_mut() {
                    Some(Part::Literal(text)) => text.push(c),
                    _ => parts.push(Part::Literal(c.to_string())),
                }
            }
        }
        Ok(Pattern { parts })
    }

    /// Instant `utc` as local time in `zone`, written in this pattern.
    pub fn format(&self, utc: &NaiveDateTime, zone: &Zone) -> Result<String, String> {
        let offset = zone.offset_at(utc);
        let local = zone.local(utc);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(letter, count) => write_field(&mut out, *letter, *count, &local, offset, zone, utc)?,
            }
        }
        Ok(out)
    }

    /// The instant `text` names in this pattern, reading it in `zone` unless it names its own
    /// zone or offset.
    pub fn parse_instant(&self, text: &str, zone: &Zone) -> Result<DateTime<Utc>, String> {
        let (local, named) = self.parse_local(text)?;
        Ok(named.unwrap_or(*zone).instant(&local))
    }

    /// The local date and time `text` names in this pattern (fields it leaves out defaulted),
    /// and the zone it names, if any.
    pub fn parse_local(&self, text: &str) -> Result<(NaiveDateTime, Option<Zone>), String> {
        let mut format = String::new();
        let mut zone_at = None;
        for part in &self.parts {
            match part {
                Part::Literal(literal) => format.push_str(&literal.replace('%', "%%")),
                Part::Field('z', _) | Part::Field('V', _) => {
                    if zone_at.is_some() {
                        return Err("the pattern names the zone twice".into());
                    }
                    zone_at = Some(format.len());
                    format.push('\u{1}');
                }
                // A fraction after a dot, of any width, is read as chrono reads `%.f`.
                Part::Field('S', count) if !matches!(count, 3 | 6 | 9) && format.ends_with('.') => {
                    format.pop();
                    format.push_str("%.f");
                }
                Part::Field(letter, count) => format.push_str(parse_item(*letter, *count)?),
            }
        }
        // chrono reads no zone names: the name is cut out of the text, then read here.
        let (text, zone) = match zone_at {
            None => (text.to_string(), None),
            Some(at) => {
                let (before, after) = format.split_at(at);
                let after = after.trim_start_matches('\u{1}');
                let start = literal_prefix_len(before, text)?;
                let rest = &text[start..];
                let end = rest
                    .char_indices()
                    .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '+' | '-' | ':')))
                    .map_or(rest.len(), |(i, _)| i);
                let zone = Zone::named(&rest[..end])?;
                format = format!("{before}{after}");
                (format!("{}{}", &text[..start], &rest[end..]), Some(zone))
            }
        };
        let read = |text: &str| -> Result<Parsed, chrono::ParseError> {
            let mut parsed = Parsed::new();
            chrono::format::parse(&mut parsed, text, StrftimeItems::new(&format))?;
            Ok(parsed)
        };
        let parsed = read(&text)
            .or_else(|_| read(&text.to_uppercase()))
            .map_err(|e| format!("Text '{text}' could not be parsed: {e}"))?;
        let offset = parsed.offset.and_then(FixedOffset::east_opt).map(Zone::Fixed);
        Ok((local_of(&parsed)?, offset.or(zone)))
    }
}

/// How many bytes of `text` the format `prefix` (fields and literals) covers: the text
/// before a zone name. Reads `prefix` with chrono, trying each end.
fn literal_prefix_len(prefix: &str, text: &str) -> Result<usize, String> {
    let boundaries: Vec<usize> = (0..=text.len()).filter(|i| text.is_char_boundary(*i)).collect();
    for end in boundaries.into_iter().rev() {
        let mut parsed = Parsed::new();
        if chrono::format::parse(&mut parsed, &text[..end], StrftimeItems::new(prefix)).is_ok() {
            return Ok(end);
        }
    }
    Err(format!("Text '{text}' could not be parsed before its zone name"))
}

/// The local date and time of what was parsed, ksqlDB's defaults for what was not.
fn local_of(parsed: &Parsed) -> Result<NaiveDateTime, String> {
    let date = if parsed.year.is_some() || parsed.month.is_some() || parsed.day.is_some() || parsed.ordinal.is_some() {
        let mut filled = parsed.clone();
        if filled.year.is_none() && filled.year_div_100.is_none() {
            match filled.year_mod_100 {
                // Java reads a two-digit year (`yy`) as one of 2000 to 2099.
                Some(_) => filled.set_year_div_100(20).map_err(|e| e.to_string())?,
                None => filled.set_year(1970).map_err(|e| e.to_string())?,
            }
        }
        if filled.ordinal.is_none() {
            if filled.month.is_none() {
                filled.set_month(1).map_err(|e| e.to_string())?;
            }
            if filled.day.is_none() {
                filled.set_day(1).map_err(|e| e.to_string())?;
            }
        }
        filled.to_naive_date().map_err(|e| format!("invalid date: {e}"))?
    } else {
        NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch is a date")
    };
    let hour = match (parsed.hour_div_12, parsed.hour_mod_12) {
        (Some(div), Some(rem)) => div * 12 + rem,
        (None, Some(rem)) => rem,
        _ => 0,
    };
    let time = NaiveTime::from_hms_nano_opt(hour, parsed.minute.unwrap_or(0), parsed.second.unwrap_or(0), parsed.nanosecond.unwrap_or(0))
        .ok_or_else(|| "invalid time of day".to_string())?;
    Ok(date.and_time(time))
}

/// The chrono item that reads a run of `letter`.
fn parse_item(letter: char, count: usize) -> Result<&'static str, String> {
    Ok(match (letter, count) {
        ('y' | 'u' | 'Y', 2) => "%y",
        ('y' | 'u' | 'Y', _) => "%Y",
        ('M' | 'L', 1 | 2) => "%m",
        ('M' | 'L', 3) => "%b",
        ('M' | 'L', _) => "%B",
        ('d', _) => "%d",
        ('D', _) => "%j",
        ('H' | 'k', _) => "%H",
        ('h' | 'K', _) => "%I",
        ('m', _) => "%M",
        ('s', _) => "%S",
        ('S', 3) => "%3f",
        ('S', 6) => "%6f",
        ('S', 9) => "%9f",
        ('a', _) => "%p",
        ('E', 1..=3) => "%a",
        ('E', _) => "%A",
        ('X' | 'x' | 'Z' | 'O', _) => "%#z",
        _ => return Err(format!("Pattern letter {} ({count} times) cannot be parsed", letter)),
    })
}

const MONTHS: [&str; 12] =
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

fn padded(out: &mut String, value: i64, width: usize) {
    if value < 0 {
        out.push('-');
    }
    out.push_str(&format!("{:0width$}", value.unsigned_abs()));
}

/// Writes the run of `count` `letter`s for local time `local`.
fn write_field(
    out: &mut String,
    letter: char,
    count: usize,
    local: &NaiveDateTime,
    offset: FixedOffset,
    zone: &Zone,
    utc: &NaiveDateTime,
) -> Result<(), String> {
    let numeric = |out: &mut String, value: u32| padded(out, value as i64, count);
    match letter {
        'y' | 'u' | 'Y' => {
            let year = local.year() as i64;
            if count == 2 {
                padded(out, year.rem_euclid(100), 2)
            } else {
                padded(out, year, count)
            }
        }
        'M' | 'L' => match count {
            1 | 2 => numeric(out, local.month()),
            3 => out.push_str(&MONTHS[local.month0() as usize][..3]),
            _ => out.push_str(MONTHS[local.month0() as usize]),
        },
        'd' => numeric(out, local.day()),
        'D' => numeric(out, local.ordinal()),
        'H' => numeric(out, local.hour()),
        'k' => numeric(out, if local.hour() == 0 { 24 } else { local.hour() }),
        'h' => numeric(out, if local.hour().is_multiple_of(12) { 12 } else { local.hour() % 12 }),
        'K' => numeric(out, local.hour() % 12),
        'm' => numeric(out, local.minute()),
        's' => numeric(out, local.second()),
        'S' => {
            let nanos = format!("{:09}", local.nanosecond() % 1_000_000_000);
            out.push_str(&nanos[..count.min(9)]);
            out.extend(std::iter::repeat_n('0', count.saturating_sub(9)));
        }
        'n' => numeric(out, local.nanosecond()),
        'A' => padded(out, local.num_seconds_from_midnight() as i64 * 1000 + local.nanosecond() as i64 / 1_000_000, count),
        'N' => padded(out, local.num_seconds_from_midnight() as i64 * 1_000_000_000 + local.nanosecond() as i64, count),
        'a' => out.push_str(if local.hour() < 12 { "AM" } else { "PM" }),
        'E' | 'e' | 'c' if count >= 3 || letter == 'E' => {
            let day = DAYS[local.weekday().num_days_from_monday() as usize];
            out.push_str(if count >= 4 { day } else { &day[..3] });
        }
        'e' | 'c' => numeric(out, local.weekday().num_days_from_sunday() + 1),
        'G' => out.push_str(if count >= 4 { "Anno Domini" } else { "AD" }),
        'Q' | 'q' => numeric(out, local.month0() / 3 + 1),
        'w' => numeric(out, local.iso_week().week()),
        'z' => out.push_str(&if count >= 4 { zone.id() } else { zone.short_name(utc) }),
        'V' => out.push_str(&zone.id()),
        'O' => out.push_str(&gmt_offset(offset, count >= 4)),
        'X' | 'x' | 'Z' => out.push_str(&offset_text(letter, count, offset)),
        other => return Err(format!("Pattern letter {other} is not supported")),
    }
    Ok(())
}

/// `GMT+8` or, long, `GMT+08:00`; `GMT` at zero.
fn gmt_offset(offset: FixedOffset, long: bool) -> String {
    let seconds = offset.local_minus_utc();
    if seconds == 0 {
        return "GMT".into();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let (hours, minutes) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    if long || minutes != 0 { format!("GMT{sign}{hours:02}:{minutes:02}") } else { format!("GMT{sign}{hours}") }
}

/// An offset as `X`, `x` and `Z` runs write it.
fn offset_text(letter: char, count: usize, offset: FixedOffset) -> String {
    let seconds = offset.local_minus_utc();
    if seconds == 0 && letter == 'X' {
        return "Z".into();
    }
    let sign = if seconds < 0 { '-' } else { '+' };
    let (hours, minutes) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    match (letter, count) {
        ('Z', 4) => gmt_offset(offset, true),
        ('Z', 5) | ('X' | 'x', 3) | ('X' | 'x', 5) => format!("{sign}{hours:02}:{minutes:02}"),
        ('X' | 'x', 1) if minutes == 0 => format!("{sign}{hours:02}"),
        _ => format!("{sign}{hours:02}{minutes:02}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(millis: i64) -> NaiveDateTime {
        DateTime::from_timestamp_millis(millis).unwrap().naive_utc()
    }

    #[test]
    fn formats_as_java_does() {
        let at = utc(1526075913000);
        let la = Zone::named("America/Los_Angeles").unwrap();
        assert_eq!(Pattern::parse("yyyy-MM-dd HH:mm:ss zzz").unwrap().format(&at, &la).unwrap(), "2018-05-11 14:58:33 PDT");
        let pattern = Pattern::parse("dd-MMM-yyyy'T'hh:mm:ss.SSS a X EEE").unwrap();
        assert_eq!(pattern.format(&at, &Zone::UTC).unwrap(), "11-May-2018T09:58:33.000 PM Z Fri");
        assert_eq!(Pattern::parse("dd-MM-yyyy'Sophia'").unwrap().format(&utc(-86_400_000), &Zone::UTC).unwrap(), "31-12-1969Sophia");
        assert_eq!(Pattern::parse("''yy''").unwrap().format(&at, &Zone::UTC).unwrap(), "'18'");
    }

    #[test]
    fn parses_case_insensitively_with_defaults_and_zone_names() {
        let iso = Pattern::parse("yyyy-MM-dd'T'HH:mm:ssX").unwrap();
        assert_eq!(iso.parse_instant("2018-05-11T21:58:33Z", &Zone::UTC).unwrap().timestamp_millis(), 1526075913000);
        assert_eq!(iso.parse_instant("2020-05-11T21:58:33z", &Zone::UTC).unwrap().timestamp_millis(), 1589234313000);
        let short_year = Pattern::parse("yy-MM-dd HH:mm:ssX").unwrap();
        assert_eq!(short_year.parse_instant("10-04-19 12:00:17Z", &Zone::UTC).unwrap().timestamp_millis(), 1271678417000);
        let named = Pattern::parse("yyyy-MM-dd'T'HH:mm:ss zzz").unwrap();
        assert_eq!(named.parse_instant("2018-05-11T21:58:33 PST", &Zone::UTC).unwrap().timestamp_millis(), 1526101113000);
        let tenths = Pattern::parse("yyyy-MM-dd'T'HH:mm:ss.SX").unwrap();
        assert_eq!(tenths.parse_instant("2019-08-27T13:31:09.2+0000", &Zone::UTC).unwrap().timestamp_millis(), 1566912669200);
        let date = Pattern::parse("dd-MMM-yyyy").unwrap();
        assert_eq!(date.parse_local("01-Jan-2022").unwrap().0.date(), NaiveDate::from_ymd_opt(2022, 1, 1).unwrap());
        let time = Pattern::parse("HH:mm").unwrap();
        assert_eq!(time.parse_local("10:15").unwrap().0, NaiveDate::from_ymd_opt(1970, 1, 1).unwrap().and_hms_opt(10, 15, 0).unwrap());
        assert!(Pattern::parse("yyyy-MM-dd").unwrap().parse_local("2018-13-01").is_err());
    }

    #[test]
    fn zones_are_named_as_java_names_them() {
        assert_eq!(Zone::named("+02:00").unwrap(), Zone::Fixed(FixedOffset::east_opt(7200).unwrap()));
        assert_eq!(Zone::named("UTC-3").unwrap(), Zone::Fixed(FixedOffset::west_opt(3 * 3600).unwrap()));
        assert_eq!(Zone::named("EST").unwrap(), Zone::Fixed(FixedOffset::west_opt(5 * 3600).unwrap()));
        assert!(matches!(Zone::named("Europe/London").unwrap(), Zone::Region(_)));
        assert!(Zone::named("Mars/Olympus").unwrap_err().contains("Unknown time-zone ID"));
    }
}
