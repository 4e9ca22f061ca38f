//! One table's (or the query's) reads: the SELECT each poll runs for the connector's mode, with
//! the offset columns appended, and the offset — Connect's `{"incrementing": …}`,
//! `{"timestamp": …, "timestamp_nanos": …}` — of the last row read.

use chrono::DateTime;
use serde_json::{Map, Value, json};

use super::config::Mode;
use crate::{
    connectors::postgres::quote_identifier,
    error::{Result, SluiceError},
};

/// Where a table's reading has got to: the largest timestamp (microseconds since the epoch)
/// and incrementing value read so far, as the mode keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub timestamp: Option<i64>,
    pub incrementing: Option<i64>,
}

impl Position {
    /// Connect's offset map.
    pub fn to_offset(self) -> Map<String, Value> {
        let mut offset = Map::new();
        if let Some(incrementing) = self.incrementing {
            offset.insert("incrementing".into(), json!(incrementing));
        }
        if let Some(micros) = self.timestamp {
            offset.insert("timestamp".into(), json!(micros.div_euclid(1000)));
            offset.insert("timestamp_nanos".into(), json!(micros.rem_euclid(1_000_000) * 1000));
        }
        offset
    }

    pub fn from_offset(offset: &Map<String, Value>) -> Position {
        let timestamp = offset.get("timestamp").and_then(Value::as_i64).map(|ms| {
            let nanos = offset.get("timestamp_nanos").and_then(Value::as_i64).unwrap_or(0);
            ms.div_euclid(1000) * 1_000_000 + nanos / 1000
        });
        Position { timestamp, incrementing: offset.get("incrementing").and_then(Value::as_i64) }
    }
}

/// The reads of one table or of the custom query.
#[derive(Debug, Clone)]
pub struct Querier {
    /// `"schema"."table"` or the parenthesised query.
    from: String,
    mode: Mode,
    /// Microseconds since the epoch where timestamp modes start.
    initial_timestamp: i64,
    delay_ms: u128,
}

impl Querier {
    pub fn new(from: String, mode: Mode, initial_ms: Option<i64>, delay_ms: u128) -> Querier {
        let initial_timestamp = match initial_ms {
            Some(-1) => chrono::Utc::now().timestamp_micros(),
            Some(ms) => ms * 1000,
            None => 0,
        };
        Querier { from, mode, initial_timestamp, delay_ms }
    }

    /// The rows of the table alone, to describe its columns.
    pub fn describe_statement(&self) -> String {
        format!("SELECT * FROM {} AS q", self.from)
    }

    /// How many offset columns `statement` appends after the table's own.
    pub fn offset_columns(&self) -> usize {
        match &self.mode {
            Mode::Bulk => 0,
            Mode::Incrementing { .. } | Mode::Timestamp { .. } => 1,
            Mode::TimestampIncrementing { .. } => 2,
        }
    }

    /// The `COPY (SELECT …) TO STDOUT` of the rows after `position`, in offset order; the
    /// offset columns follow the table's (timestamp in UTC, then incrementing).
    pub fn statement(&self, position: Position) -> String {
        let from = &self.from;
        let select = match &self.mode {
            Mode::Bulk => format!("SELECT q.* FROM {from} AS q"),
            Mode::Incrementing { column } => {
                let inc = format!("q.{}", quote_identifier(column));
                let after = position.incrementing.unwrap_or(-1);
                format!("SELECT q.*, {inc}::int8 FROM {from} AS q WHERE {inc} > {after} ORDER BY {inc} ASC")
            }
            Mode::Timestamp { columns } => {
                let ts = self.timestamp_expression(columns);
                let after = self.timestamp_literal(position.timestamp);
                format!(
                    "SELECT q.*, {ts} FROM {from} AS q WHERE {ts} > {after} AND {ts} < {} ORDER BY {ts} ASC",
                    self.upper_bound()
                )
            }
            Mode::TimestampIncrementing { columns, incrementing } => {
                let ts = self.timestamp_expression(columns);
                let inc = format!("q.{}", quote_identifier(incrementing));
                let after_ts = self.timestamp_literal(position.timestamp);
                let after_inc = position.incrementing.unwrap_or(-1);
                format!(
                    "SELECT q.*, {ts}, {inc}::int8 FROM {from} AS q WHERE {ts} < {} AND \
                     (({ts} = {after_ts} AND {inc} > {after_inc}) OR {ts} > {after_ts}) ORDER BY {ts}, {inc} ASC",
                    self.upper_bound()
                )
            }
        };
        format!("COPY ({select}) TO STDOUT")
    }

    /// The position of a row from its offset columns' text.
    pub fn position_of(&self, offsets: &[Option<&str>]) -> Result<Position> {
        let unreadable = |what: &str| SluiceError::Execution(format!("a row's {what} column could not be read"));
        let incrementing = |text: Option<&str>| -> Result<i64> {
            text.and_then(|t| t.parse().ok()).ok_or_else(|| unreadable("incrementing"))
        };
        let timestamp = |text: Option<&str>| -> Result<i64> {
            text.and_then(crate::connectors::postgres::timestamp_micros).ok_or_else(|| unreadable("timestamp"))
        };
        Ok(match (&self.mode, offsets) {
            (Mode::Incrementing { .. }, [inc]) => Position { timestamp: None, incrementing: Some(incrementing(*inc)?) },
            (Mode::Timestamp { .. }, [ts]) => Position { timestamp: Some(timestamp(*ts)?), incrementing: None },
            (Mode::TimestampIncrementing { .. }, [ts, inc]) => {
                Position { timestamp: Some(timestamp(*ts)?), incrementing: Some(incrementing(*inc)?) }
            }
            _ => Position::default(),
        })
    }

    /// Connect's COALESCE over the timestamp columns, as `timestamp` in UTC.
    fn timestamp_expression(&self, columns: &[String]) -> String {
        let quoted: Vec<String> = columns.iter().map(|c| format!("q.{}", quote_identifier(c))).collect();
        if quoted.len() == 1 {
            quoted[0].clone()
        } else {
            format!("COALESCE({})", quoted.join(", "))
        }
    }

    fn timestamp_literal(&self, micros: Option<i64>) -> String {
        let micros = micros.unwrap_or(self.initial_timestamp);
        let text = DateTime::from_timestamp_micros(micros)
            .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string())
            .unwrap_or_else(|| "1970-01-01 00:00:00".to_string());
        format!("'{text}'::timestamp")
    }

    /// The database's time less `timestamp.delay.interval.ms`: rows younger may still change.
    fn upper_bound(&self) -> String {
        format!("(now() AT TIME ZONE 'UTC' - interval '{} milliseconds')", self.delay_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_follow_the_connectors_where_clauses() {
        let incrementing = Querier::new("\"telemetry\"".into(), Mode::Incrementing { column: "id".into() }, None, 0);
        assert_eq!(
            incrementing.statement(Position { timestamp: None, incrementing: Some(4) }),
            "COPY (SELECT q.*, q.\"id\"::int8 FROM \"telemetry\" AS q WHERE q.\"id\" > 4 ORDER BY q.\"id\" ASC) TO STDOUT"
        );
        let both = Querier::new(
            "\"t\"".into(),
            Mode::TimestampIncrementing { columns: vec!["m".into(), "c".into()], incrementing: "id".into() },
            None,
            500,
        );
        let statement = both.statement(Position { timestamp: Some(1_500_000), incrementing: Some(7) });
        assert!(statement.contains("COALESCE(q.\"m\", q.\"c\") = '1970-01-01 00:00:01.500000'::timestamp AND q.\"id\" > 7"), "{statement}");
        assert!(statement.contains("interval '500 milliseconds'"), "{statement}");
    }

    #[test]
    fn positions_round_trip_through_connects_offset_map() {
        let position = Position { timestamp: Some(1_700_000_000_123_456), incrementing: Some(42) };
        let offset = position.to_offset();
        assert_eq!(offset["timestamp"], json!(1_700_000_000_123_i64));
        assert_eq!(offset["timestamp_nanos"], json!(123_456_000));
        assert_eq!(Position::from_offset(&offset), position);
    }
}
