//! Decoding the records of two streams or tables read as one source (a stream-stream or
//! table-table join): each record by its own source's decoder, into one batch whose rows hold
//! the left source's columns, then the right's, NULL in the columns of the source a record is
//! not from.

use arrow::{
    array::{ArrayRef, RecordBatch, UInt32Array},
    compute::take,
    datatypes::SchemaRef,
};

use crate::{
    catalog::SourceDef,
    connectors::source::topic_partition,
    error::Result,
    format::{DecodedBatch, RawRecord, RecordDecoder},
};

/// Decodes the records of a source over two topics: the left source's, then the right's.
pub struct TwoSources {
    left: RecordDecoder,
    right: RecordDecoder,
    schema: SchemaRef,
    topics: [String; 2],
}

/// Whether a source partition is the right source's.
pub fn is_right(partition: i32) -> bool {
    topic_partition(partition).0 == 1
}

impl TwoSources {
    /// Decodes `left`'s and `right`'s records into rows of `schema`: both sources' row schemas,
    /// one after the other.
    pub fn new(left: &SourceDef, right: &SourceDef, schema: SchemaRef) -> Result<Self> {
        Ok(Self {
            left: RecordDecoder::new(left)?,
            right: RecordDecoder::new(right)?,
            schema,
            topics: [left.topic.clone(), right.topic.clone()],
        })
    }

    /// The topic a record was read from, and the record with its partition there.
    pub fn locate<'r>(&self, record: &RawRecord<'r>) -> (&str, RawRecord<'r>) {
        let (topic, partition) = topic_partition(record.partition);
        (&self.topics[topic.min(1)], RawRecord { partition, ..*record })
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The records' rows in the order of the records; each record's own partition number (not
    /// the source's) in its `ROWPARTITION`.
    pub fn decode(&self, records: &[RawRecord<'_>]) -> Result<DecodedBatch> {
        let mut sides: [(Vec<RawRecord<'_>>, Vec<usize>); 2] = Default::default();
        for (index, record) in records.iter().enumerate() {
            let (topic, partition) = topic_partition(record.partition);
            let side = &mut sides[usize::from(topic == 1)];
            side.0.push(RawRecord { partition, ..*record });
            side.1.push(index);
        }
        let decoded = [self.left.decode(&sides[0].0)?, self.right.decode(&sides[1].0)?];
        // Each decoded row, by its record's place in the batch.
        let mut order: Vec<(usize, usize, usize)> = Vec::with_capacity(records.len());
        for (side, batch) in decoded.iter().enumerate() {
            order.extend(batch.rows.iter().enumerate().map(|(row, record)| (sides[side].1[*record], side, row)));
        }
        order.sort_unstable();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for (side, batch) in decoded.iter().enumerate() {
            let picks: UInt32Array = order.iter().map(|(_, s, row)| (*s == side).then_some(*row as u32)).collect();
            for column in batch.batch.columns() {
                columns.push(take(column.as_ref(), &picks, None)?);
            }
        }
        let any_without_value = decoded.iter().any(|d| !d.no_value.is_empty());
        Ok(DecodedBatch {
            batch: RecordBatch::try_new(self.schema.clone(), columns)?,
            rows: order.iter().map(|(record, _, _)| *record).collect(),
            errors: decoded
                .iter()
                .enumerate()
                .flat_map(|(side, d)| d.errors.iter().map(move |(record, message)| (side, *record, message.clone())))
                .map(|(side, record, message)| (sides[side].1[record], message))
                .collect(),
            no_value: if any_without_value {
                order.iter().map(|(_, side, row)| decoded[*side].no_value.get(*row).copied().unwrap_or(false)).collect()
            } else {
                Vec::new()
            },
            canonical: false,
        })
    }
}
