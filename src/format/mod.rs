//! Record formats: Kafka records ⇄ Arrow batches, by a stream's declared schema.

pub mod decode;
pub mod encode;
mod window_key;
#[cfg(test)]
pub(crate) mod roundtrip;

pub use decode::{DecodedBatch, RecordDecoder};
pub use encode::{ColumnWriter, encode_kafka_value, encode_key, encode_keys, encode_row, encode_value};
pub use window_key::WindowKey;

/// A Kafka record as read, borrowed from the consumer's buffers.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The record's headers, read where the record is held; `None` when it has none to read.
    pub headers: Option<&'a dyn RecordHeaders>,
}

/// A record's headers, in the order the record carries them.
pub trait RecordHeaders: std::fmt::Debug + Sync {
    /// The `index`-th header's name and value (`None`: a NULL value); `None` past the last.
    fn header(&self, index: usize) -> Option<(&std::ffi::CStr, Option<&[u8]>)>;
}

/// The headers of a record, in order.
pub struct HeaderIter<'a> {
    headers: &'a dyn RecordHeaders,
    next: usize,
}

impl<'a> HeaderIter<'a> {
    pub fn of(headers: &'a dyn RecordHeaders) -> Self {
        Self { headers, next: 0 }
    }
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = (&'a std::ffi::CStr, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        let header = self.headers.header(self.next)?;
        self.next += 1;
        Some(header)
    }
}
