//! The `WINDOW` clause of an aggregation, and the durations it and `WINDOW_SIZE` are written in.
//!
//! ```text
//! WINDOW TUMBLING (SIZE duration [, RETENTION duration] [, GRACE PERIOD duration])
//! WINDOW HOPPING (SIZE duration, ADVANCE BY duration [, RETENTION duration] [, GRACE PERIOD duration])
//! WINDOW SESSION (duration [, RETENTION duration] [, GRACE PERIOD duration])
//! duration: number (MILLISECOND[S] | SECOND[S] | MINUTE[S] | HOUR[S] | DAY[S])
//! ```

use std::fmt;

use sqlparser::tokenizer::Token;

use super::Cursor;
use crate::error::{Result, SluiceError};

/// How records are assigned to windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed-size, epoch-aligned, non-overlapping windows.
    Tumbling { size_ms: i64 },
    /// Fixed-size, epoch-aligned windows starting every `advance_ms`.
    Hopping { size_ms: i64, advance_ms: i64 },
    /// Records of one key closer than `gap_ms` share a window.
    Session { gap_ms: i64 },
}

/// A `WINDOW` clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub kind: WindowKind,
    pub retention_ms: Option<i64>,
    pub grace_ms: Option<i64>,
}

const UNITS: [(&str, i64); 5] = [
    ("MILLISECOND", 1),
    ("SECOND", 1_000),
    ("MINUTE", 60_000),
    ("HOUR", 3_600_000),
    ("DAY", 86_400_000),
];

/// The milliseconds in one `unit` (singular or plural, any case).
pub fn unit_millis(unit: &str) -> Option<i64> {
    let unit = unit.to_ascii_uppercase();
    let singular = unit.strip_suffix('S').unwrap_or(&unit);
    UNITS.iter().find(|(name, _)| *name == singular).map(|(_, ms)| *ms)
}

/// A duration written `number unit`, as `WINDOW_SIZE = '30 SECONDS'` holds it.
pub fn parse_duration_text(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let amount: i64 = parts.next()?.parse().ok()?;
    let millis = unit_millis(parts.next()?)?;
    parts.next().is_none().then_some(amount.checked_mul(millis)?)
}

/// `duration` in the largest unit that divides it, as ksqlDB prints windows.
pub fn format_duration(ms: i64) -> String {
    let (unit, size) = UNITS
        .iter()
        .rev()
        .find(|(_, size)| ms % size == 0 && ms != 0)
        .copied()
        .unwrap_or(UNITS[0]);
    format!("{} {unit}S", ms / size)
}

pub(super) fn duration(cursor: &mut Cursor) -> Result<i64> {
    let amount = cursor.number("a duration, such as 30 SECONDS")?;
    let unit = cursor.peek_word();
    let millis = unit
        .as_deref()
        .and_then(unit_millis)
        .ok_or_else(|| cursor.error("a time unit: MILLISECONDS, SECONDS, MINUTES, HOURS or DAYS"))?;
    cursor.advance();
    i64::try_from(amount)
        .ok()
        .and_then(|a| a.checked_mul(millis))
        .ok_or_else(|| SluiceError::Plan(format!("the duration {amount} {} is too long", unit.unwrap_or_default())))
}

/// Parses the clause after the word `WINDOW`: the kind and its parenthesised settings.
pub(super) fn parse_window(cursor: &mut Cursor) -> Result<WindowSpec> {
    let kind_word = cursor.peek_word();
    let kind_word = match kind_word.as_deref() {
        Some(word @ ("TUMBLING" | "HOPPING" | "SESSION")) => word.to_string(),
        _ => return Err(cursor.error("TUMBLING, HOPPING or SESSION after WINDOW")),
    };
    cursor.advance();
    cursor.expect(&Token::LParen, "'(' after the window type")?;
    let kind = match kind_word.as_str() {
        "SESSION" => WindowKind::Session { gap_ms: duration(cursor)? },
        "TUMBLING" => {
            cursor.expect_word("SIZE")?;
            WindowKind::Tumbling { size_ms: duration(cursor)? }
        }
        _ => {
            cursor.expect_word("SIZE")?;
            let size_ms = duration(cursor)?;
            cursor.expect(&Token::Comma, "',' and ADVANCE BY after the size of a hopping window")?;
            if !cursor.eat_words(&["ADVANCE", "BY"]) {
                return Err(cursor.error("ADVANCE BY"));
            }
            WindowKind::Hopping { size_ms, advance_ms: duration(cursor)? }
        }
    };
    let mut spec = WindowSpec { kind, retention_ms: None, grace_ms: None };
    while cursor.eat(&Token::Comma) {
        if cursor.eat_word("RETENTION") && spec.retention_ms.is_none() {
            spec.retention_ms = Some(duration(cursor)?);
        } else if cursor.eat_words(&["GRACE", "PERIOD"]) && spec.grace_ms.is_none() {
            spec.grace_ms = Some(duration(cursor)?);
        } else {
            return Err(cursor.error("RETENTION or GRACE PERIOD, each at most once"));
        }
    }
    cursor.expect(&Token::RParen, "',' or ')' to close the window")?;
    if !cursor.at_end() {
        return Err(cursor.error("WHERE, GROUP BY or the end of the window clause"));
    }
    spec.check()?;
    Ok(spec)
}

impl WindowSpec {
    /// ksqlDB's limits on sizes: positive, and a hop no longer than the window.
    fn check(&self) -> Result<()> {
        let positive = |what: &str, ms: i64| {
            if ms > 0 { Ok(()) } else { Err(SluiceError::Plan(format!("{what} must be greater than zero"))) }
        };
        match self.kind {
            WindowKind::Tumbling { size_ms } => positive("Window size", size_ms)?,
            WindowKind::Hopping { size_ms, advance_ms } => {
                positive("Window size", size_ms)?;
                positive("Window advance", advance_ms)?;
                if advance_ms > size_ms {
                    return Err(SluiceError::Plan(format!(
                        "Window advance interval should be less than or equal to window size. Got advance: {} and size: {}",
                        format_duration(advance_ms),
                        format_duration(size_ms)
                    )));
                }
            }
            WindowKind::Session { gap_ms } => positive("Session gap", gap_ms)?,
        }
        Ok(())
    }

    /// ksqlDB's name of the window type: `TUMBLING`, `HOPPING` or `SESSION`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            WindowKind::Tumbling { .. } => "TUMBLING",
            WindowKind::Hopping { .. } => "HOPPING",
            WindowKind::Session { .. } => "SESSION",
        }
    }

    /// The size of each window; none for sessions.
    pub fn size_ms(&self) -> Option<i64> {
        match self.kind {
            WindowKind::Tumbling { size_ms } | WindowKind::Hopping { size_ms, .. } => Some(size_ms),
            WindowKind::Session { .. } => None,
        }
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WindowKind::Tumbling { size_ms } => write!(f, "WINDOW TUMBLING (SIZE {}", format_duration(size_ms))?,
            WindowKind::Hopping { size_ms, advance_ms } => write!(
                f,
                "WINDOW HOPPING (SIZE {}, ADVANCE BY {}",
                format_duration(size_ms),
                format_duration(advance_ms)
            )?,
            WindowKind::Session { gap_ms } => write!(f, "WINDOW SESSION ({}", format_duration(gap_ms))?,
        }
        if let Some(retention) = self.retention_ms {
            write!(f, ", RETENTION {}", format_duration(retention))?;
        }
        if let Some(grace) = self.grace_ms {
            write!(f, ", GRACE PERIOD {}", format_duration(grace))?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_any_unit_and_print_in_the_largest() {
        assert_eq!(parse_duration_text("30 seconds"), Some(30_000));
        assert_eq!(parse_duration_text("1 DAY"), Some(86_400_000));
        assert_eq!(parse_duration_text("5 fortnights"), None);
        assert_eq!(format_duration(90_000), "90 SECONDS");
        assert_eq!(format_duration(3_600_000), "1 HOURS");
        assert_eq!(format_duration(1), "1 MILLISECONDS");
    }
}
