//! Pull queries over materialized tables: the query evaluated once over the table's rows as
//! they are, never by reading the topic again.

use std::sync::Arc;

use super::{
    operator,
    sink::QuerySink,
    table_state::TableState,
};
use crate::{
    connectors::kafka::delivery::BatchDeliveries,
    error::Result,
    format::{RawRecord, RecordDecoder},
    planner::ContinuousPlan,
};

/// Rows decoded and evaluated at a time.
const CHUNK: usize = 8192;

/// Evaluates `plan` (its filter and projection) over every row of `table`, in the order keys
/// first appeared, and writes what passes to `sink`. Blocking.
pub fn run(table: &TableState, mut plan: ContinuousPlan, mut sink: QuerySink) -> Result<()> {
    plan.changelog = false;
    plan.forwards_value = false;
    let decoder = RecordDecoder::new(&plan.source)?;
    let deliveries = Arc::new(BatchDeliveries::default());
    let mut emitted = 0u64;
    for chunk in table.rows().chunks(CHUNK) {
        let records: Vec<RawRecord> = chunk
            .iter()
            .map(|r| RawRecord {
                partition: r.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: Some(&r.key),
                value: Some(&r.value),
            })
            .collect();
        let decoded = decoder.decode(&records)?;
        let evaluated = operator::evaluate(&plan, None, &decoded.batch, None, None, None)?;
        let mut rows = evaluated.output_rows(&records, &decoded.rows);
        if let Some(limit) = plan.limit {
            rows.truncate(limit.saturating_sub(emitted) as usize);
        }
        emitted += rows.len() as u64;
        sink.write(&rows, &evaluated.columns, (&[], &[]), false, None, &deliveries)?;
        if plan.limit.is_some_and(|limit| emitted >= limit) {
            break;
        }
    }
    Ok(())
}
