//! Windows as Kafka Streams draws them: which time windows a record falls in, and when a
//! window closes.
//!
//! Tumbling and hopping windows are epoch-aligned `[start, end)`: a record at `ts` is in every
//! window whose start is a multiple of the advance in `(ts − size, ts]` and not negative. A
//! session is `[first, last]` record of a key, both inclusive. A window takes records until
//! stream time (the largest timestamp the query has seen) reaches its end plus the grace
//! period; a session, until stream time passes its end plus its gap plus the grace period.

use crate::{parser::WindowKind, planner::WindowPlan};

/// The starts of the time windows a record at `timestamp` falls in, earliest first
/// (Kafka Streams' `TimeWindows.windowsFor`).
pub fn window_starts(size_ms: i64, advance_ms: i64, timestamp: i64) -> impl Iterator<Item = i64> {
    let first = (timestamp.saturating_sub(size_ms).saturating_add(advance_ms)).max(0) / advance_ms * advance_ms;
    (0..)
        .map(move |i: i64| first + i * advance_ms)
        .take_while(move |start| *start <= timestamp)
}

impl WindowPlan {
    /// The size and advance of a time window; none for sessions.
    pub fn time_window(&self) -> Option<(i64, i64)> {
        match self.kind {
            WindowKind::Tumbling { size_ms } => Some((size_ms, size_ms)),
            WindowKind::Hopping { size_ms, advance_ms } => Some((size_ms, advance_ms)),
            WindowKind::Session { .. } => None,
        }
    }

    /// ksqlDB's name of the window type.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            WindowKind::Tumbling { .. } => "TUMBLING",
            WindowKind::Hopping { .. } => "HOPPING",
            WindowKind::Session { .. } => "SESSION",
        }
    }

    /// How long after its end a window stays open: the grace period, and for a session its gap.
    pub fn open_after_end(&self) -> i64 {
        match self.kind {
            WindowKind::Session { gap_ms } => self.grace_ms.saturating_add(gap_ms),
            _ => self.grace_ms,
        }
    }

    /// Whether a window ending at `end` is closed at `stream_time`: a time window once its
    /// end plus grace is reached, a session (whose end is its last record) once passed.
    pub fn closed(&self, end: i64, stream_time: i64) -> bool {
        let closes = end.saturating_add(self.open_after_end());
        match self.kind {
            WindowKind::Session { .. } => closes < stream_time,
            _ => closes <= stream_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopping_windows_are_aligned_and_never_start_before_the_epoch() {
        assert_eq!(window_starts(30_000, 5_000, 5_000).collect::<Vec<_>>(), vec![0, 5_000]);
        assert_eq!(window_starts(30_000, 5_000, 4_999).collect::<Vec<_>>(), vec![0]);
        assert_eq!(window_starts(5_000, 1_000, 10_345).collect::<Vec<_>>(), vec![6_000, 7_000, 8_000, 9_000, 10_000]);
        assert_eq!(window_starts(1_000, 1_000, 10_345).collect::<Vec<_>>(), vec![10_000]);
    }
}
