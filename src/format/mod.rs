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
}
