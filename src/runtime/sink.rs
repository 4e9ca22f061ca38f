//! Where a query's rows go: a Kafka topic in the sink stream's format, or a push query's client.

use std::sync::Arc;

use arrow::array::ArrayRef;
use tokio::sync::mpsc;

use crate::{
    catalog::Format,
    connectors::kafka::delivery::{BatchDeliveries, OutputRecord, OutputTopic},
    error::{Result, SluiceError},
    format::{ColumnWriter, RawRecord, encode_row},
};

/// An output row ready to encode: where it came from and its projected values.
pub struct OutputRow<'a> {
    pub record: &'a RawRecord<'a>,
    /// Row index into the projected columns.
    pub row: usize,
}

pub enum QuerySink {
    /// Records into a topic.
    Topic {
        name: String,
        topic: OutputTopic,
        partitions: i32,
        format: Format,
        delimiter: u8,
        names: Vec<String>,
    },
    /// JSON arrays of column values, one per row, to a push query's response.
    Rows(mpsc::Sender<Vec<u8>>),
}

impl QuerySink {
    /// The topic the query writes to, if it writes to one.
    pub fn topic_name(&self) -> Option<&str> {
        match self {
            QuerySink::Topic { name, .. } => Some(name),
            QuerySink::Rows(_) => None,
        }
    }

    /// Writes the rows of one batch; records sent to a topic count in `batch`, which settles
    /// once Kafka has them all. A row that cannot be encoded is skipped and returned with its
    /// message (its index in `rows`); an `Err` is a failure of the whole batch.
    pub fn write(
        &self,
        rows: &[OutputRow<'_>],
        columns: &[ArrayRef],
        keys: Option<&ArrayRef>,
        forward_value: bool,
        origin: Option<&str>,
        batch: &Arc<BatchDeliveries>,
    ) -> Result<Vec<(usize, String)>> {
        let writers: Vec<ColumnWriter> = columns.iter().map(ColumnWriter::new).collect();
        let key_writer = keys.map(ColumnWriter::new);
        match self {
            QuerySink::Topic {
                topic,
                partitions,
                name: _,
                format,
                delimiter,
                names,
            } => {
                let mut value = Vec::with_capacity(256);
                let mut key = Vec::new();
                let mut header = Vec::new();
                let mut failed = Vec::new();
                for (index, out) in rows.iter().enumerate() {
                    value.clear();
                    let payload: Option<&[u8]> = if forward_value {
                        out.record.value
                    } else if let Err(e) = encode_row(*format, *delimiter, names, &writers, out.row, &mut value) {
                        failed.push((index, format!("Error serializing row: {e}")));
                        continue;
                    } else {
                        Some(&value)
                    };
                    let key_bytes: Option<&[u8]> = match &key_writer {
                        Some(w) if !w.is_null(out.row) => {
                            key.clear();
                            w.write_text(out.row, &mut key);
                            Some(&key)
                        }
                        Some(_) => None,
                        None => out.record.key,
                    };
                    if let Some(query) = origin {
                        header.clear();
                        super::origin::encode(query, out.record.partition, out.record.offset, &mut header);
                    }
                    let record = OutputRecord {
                        origin: origin.map(|_| header.as_slice()),
                        partition: (key_writer.is_none() && out.record.partition < *partitions).then_some(out.record.partition),
                        key: key_bytes,
                        value: payload,
                        timestamp: out.record.timestamp,
                    };
                    topic.send(batch, &record)?;
                }
                Ok(failed)
            }
            QuerySink::Rows(sender) => {
                for out in rows {
                    let mut row = Vec::with_capacity(128);
                    row.push(b'[');
                    for (i, w) in writers.iter().enumerate() {
                        if i > 0 {
                            row.push(b',');
                        }
                        w.write_json(out.row, &mut row);
                    }
                    row.push(b']');
                    if sender.blocking_send(row).is_err() {
                        return Err(SluiceError::Execution("the push query's client went away".into()));
                    }
                }
                Ok(Vec::new())
            }
        }
    }
}
