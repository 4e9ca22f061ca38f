//! A windowed key on the wire, as Kafka Streams' windowed serializers write it: the key's own
//! bytes, then the window's start (a time window), or its end then its start (a session).

/// The window of one output row, as its key carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowKey {
    pub start: i64,
    pub end: i64,
    pub session: bool,
}

impl WindowKey {
    /// Appends the window to the serialized key, as Kafka Streams' windowed serializers do: the
    /// start for a time window; the end, then the start, for a session.
    pub fn append_to(&self, key: &mut Vec<u8>) {
        if self.session {
            key.extend_from_slice(&self.end.to_be_bytes());
        }
        key.extend_from_slice(&self.start.to_be_bytes());
    }

    /// Splits a windowed key into the key's own bytes and its window; `None` when the bytes are
    /// too short to hold a window. `size_ms` gives a time window its end.
    pub fn split(bytes: &[u8], session: bool, size_ms: i64) -> Option<(&[u8], WindowKey)> {
        let suffix = if session { 16 } else { 8 };
        let cut = bytes.len().checked_sub(suffix)?;
        let (key, window) = bytes.split_at(cut);
        let first = i64::from_be_bytes(window[..8].try_into().ok()?);
        Some(if session {
            let start = i64::from_be_bytes(window[8..].try_into().ok()?);
            (key, WindowKey { start, end: first, session })
        } else {
            (key, WindowKey { start: first, end: first.saturating_add(size_ms), session })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windowed_keys_round_trip_in_kafka_streams_layout() {
        let mut key = b"k".to_vec();
        WindowKey { start: 10, end: 20, session: true }.append_to(&mut key);
        assert_eq!(key.len(), 17);
        assert_eq!(&key[1..9], &20i64.to_be_bytes());
        let (own, window) = WindowKey::split(&key, true, 0).unwrap();
        assert_eq!((own, window.start, window.end), (&b"k"[..], 10, 20));
        let mut key = b"k".to_vec();
        WindowKey { start: 30_000, end: 60_000, session: false }.append_to(&mut key);
        let (_, window) = WindowKey::split(&key, false, 30_000).unwrap();
        assert_eq!((window.start, window.end), (30_000, 60_000));
    }
}
