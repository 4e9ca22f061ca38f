//! `--as-parquetfile`: rows in Parquet with Sqoop's Avro types — integers and floats as such,
//! booleans, dates and times as epoch milliseconds, decimals as strings, `bytea` as bytes.

use std::sync::Arc;

use arrow::{
    array::{ArrayRef, BinaryBuilder, StringBuilder},
    compute::cast,
    datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit},
    record_batch::RecordBatch,
};
use parquet::{
    arrow::ArrowWriter,
    basic::Compression,
    file::properties::WriterProperties,
};

use crate::{
    connectors::postgres::{Column, ColumnKind, CopyRow},
    error::Result,
};

/// Rows gathered before they are written as a row group.
const ROWS_PER_BATCH: usize = 64 * 1024;

/// One part file being written.
pub struct PartWriter {
    kinds: Vec<ColumnKind>,
    schema: SchemaRef,
    columns: Vec<ColumnBuilder>,
    rows: usize,
    writer: ArrowWriter<Vec<u8>>,
}

enum ColumnBuilder {
    Text(StringBuilder),
    Binary(BinaryBuilder),
}

impl PartWriter {
    pub fn new(columns: &[Column]) -> Result<PartWriter> {
        let fields: Vec<Field> =
            columns.iter().map(|c| Field::new(&c.name, parquet_type(c.kind), true)).collect();
        let schema = Arc::new(Schema::new(fields));
        let properties = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties))?;
        Ok(PartWriter {
            kinds: columns.iter().map(|c| c.kind).collect(),
            schema,
            columns: columns.iter().map(|c| ColumnBuilder::new(c.kind)).collect(),
            rows: 0,
            writer,
        })
    }

    pub fn push(&mut self, row: &CopyRow<'_>) -> Result<()> {
        row.expect_fields(self.columns.len())?;
        for (index, (column, kind)) in self.columns.iter_mut().zip(&self.kinds).enumerate() {
            column.append(*kind, row.field(index)?);
        }
        self.rows += 1;
        if self.rows >= ROWS_PER_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Moves the bytes of finished row groups to `out`.
    pub fn take_ready_bytes(&mut self, out: &mut Vec<u8>) -> Result<()> {
        out.append(self.writer.inner_mut());
        Ok(())
    }

    /// Writes the last rows and the footer to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<()> {
        self.flush()?;
        out.append(&mut self.writer.into_inner()?);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays = self
            .columns
            .iter_mut()
            .zip(&self.kinds)
            .map(|(column, kind)| column.finish(*kind))
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.writer.write(&batch)?;
        self.writer.flush()?;
        self.rows = 0;
        Ok(())
    }
}

/// The Parquet column type of a PostgreSQL column, as Sqoop's Avro schema maps its JDBC type.
fn parquet_type(kind: ColumnKind) -> DataType {
    match kind {
        ColumnKind::Boolean => DataType::Boolean,
        ColumnKind::Int16 | ColumnKind::Int32 => DataType::Int32,
        ColumnKind::Int64 | ColumnKind::Date | ColumnKind::Time => DataType::Int64,
        ColumnKind::Timestamp | ColumnKind::TimestampTz => DataType::Int64,
        ColumnKind::Float32 => DataType::Float32,
        ColumnKind::Float64 => DataType::Float64,
        ColumnKind::Bytes => DataType::Binary,
        ColumnKind::Numeric | ColumnKind::Text | ColumnKind::Other => DataType::Utf8,
    }
}

impl ColumnBuilder {
    fn new(kind: ColumnKind) -> ColumnBuilder {
        match kind {
            ColumnKind::Bytes => ColumnBuilder::Binary(BinaryBuilder::new()),
            _ => ColumnBuilder::Text(StringBuilder::new()),
        }
    }

    fn append(&mut self, kind: ColumnKind, value: Option<&str>) {
        match self {
            ColumnBuilder::Binary(builder) => match value.and_then(decode_bytea) {
                Some(bytes) => builder.append_value(bytes),
                None => builder.append_null(),
            },
            ColumnBuilder::Text(builder) => match value {
                Some(v) if kind == ColumnKind::TimestampTz => builder.append_value(v.strip_suffix("+00").unwrap_or(v)),
                Some(v) => builder.append_value(v),
                None => builder.append_null(),
            },
        }
    }

    /// The column's values so far, in its Parquet type.
    fn finish(&mut self, kind: ColumnKind) -> Result<ArrayRef> {
        let array: ArrayRef = match self {
            ColumnBuilder::Binary(builder) => return Ok(Arc::new(builder.finish())),
            ColumnBuilder::Text(builder) => Arc::new(builder.finish()),
        };
        let millis = match kind {
            ColumnKind::Date => cast(&cast(&array, &DataType::Date32)?, &DataType::Date64)?,
            ColumnKind::Timestamp | ColumnKind::TimestampTz => {
                cast(&array, &DataType::Timestamp(TimeUnit::Millisecond, None))?
            }
            ColumnKind::Time => cast(&cast(&array, &DataType::Time64(TimeUnit::Microsecond))?, &DataType::Time32(TimeUnit::Millisecond))?,
            other => return Ok(cast(&array, &parquet_type(other))?),
        };
        Ok(cast(&millis, &DataType::Int64)?)
    }
}

/// `bytea`'s hex text (`\x0a1b`) as bytes.
fn decode_bytea(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float64Type, Int32Type, Int64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::connectors::postgres::CopyTextRows;

    fn column(name: &str, kind: ColumnKind) -> Column {
        Column { name: name.to_string(), kind, modifier: -1, nullable: true }
    }

    #[test]
    fn copy_text_becomes_parquet_in_sqoops_types() {
        let columns = [
            column("id", ColumnKind::Int32),
            column("ok", ColumnKind::Boolean),
            column("w", ColumnKind::Float64),
            column("at", ColumnKind::Timestamp),
            column("day", ColumnKind::Date),
            column("raw", ColumnKind::Bytes),
            column("name", ColumnKind::Text),
        ];
        let mut writer = PartWriter::new(&columns).unwrap();
        let mut rows = CopyTextRows::default();
        rows.push(
            b"1\tt\t1.5\t1970-01-01 00:00:01.5\t1970-01-02\t\\\\x0aff\tNode1\n2\tf\t\\N\t\\N\t\\N\t\\N\t\\N\n",
            |row| writer.push(row),
        )
        .unwrap();
        let mut file = Vec::new();
        writer.finish(&mut file).unwrap();
        let batch = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file))
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(batch.column(0).as_primitive::<Int32Type>().values(), &[1, 2]);
        assert!(batch.column(1).as_boolean().value(0) && !batch.column(1).as_boolean().value(1));
        assert_eq!(batch.column(2).as_primitive::<Float64Type>().value(0), 1.5);
        assert!(batch.column(2).is_null(1));
        assert_eq!(batch.column(3).as_primitive::<Int64Type>().value(0), 1500);
        assert_eq!(batch.column(4).as_primitive::<Int64Type>().value(0), 86_400_000);
        assert_eq!(batch.column(5).as_binary::<i32>().value(0), [0x0a, 0xff]);
        assert_eq!(batch.column(6).as_string::<i32>().value(0), "Node1");
        assert!(batch.column(6).is_null(1));
    }
}
