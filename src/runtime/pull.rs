//! Pull queries over materialized tables: the query evaluated once over the table's rows as
//! they are, never by reading the topic again; a query that pins the key (`K = 'a'`,
//! `K IN ('a', 'b')`) reads only those keys' rows.

use std::{collections::HashSet, sync::Arc};

use arrow::datatypes::DataType;
use datafusion::{
    logical_expr::Operator,
    physical_expr::{
        PhysicalExpr,
        expressions::{BinaryExpr, CastExpr, Column, InListExpr, Literal, TryCastExpr},
    },
    scalar::ScalarValue,
};

use super::{
    operator,
    sink::QuerySink,
    table_state::TableState,
};
use crate::{
    catalog::Format,
    connectors::kafka::delivery::BatchDeliveries,
    error::Result,
    format::{ColumnWriter, RawRecord, RecordDecoder, encode_key},
    planner::ContinuousPlan,
};

/// Rows decoded and evaluated at a time.
const CHUNK: usize = 8192;

/// Evaluates `plan` (its filter and projection) over the rows of `table` it may pass (those of
/// the keys it pins, else every row, in the order of their key bytes), and writes what passes
/// to `sink`. Blocking.
pub fn run(table: &TableState, mut plan: ContinuousPlan, mut sink: QuerySink) -> Result<()> {
    plan.changelog = false;
    plan.forwards_value = false;
    let decoder = RecordDecoder::new(&plan.source)?;
    let deliveries = Arc::new(BatchDeliveries::default());
    let mut emitted = 0u64;
    let rows = match pinned_keys(&plan)? {
        Some(keys) => keys.iter().filter_map(|key| table.get(key)).collect(),
        None => table.rows(),
    };
    for chunk in rows.chunks(CHUNK) {
        let records: Vec<RawRecord> = chunk
            .iter()
            .map(|r| RawRecord {
                partition: r.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: Some(&r.key),
                value: Some(&r.value),
                headers: None,
            })
            .collect();
        let decoded = decoder.decode(&records)?;
        let evaluated = operator::evaluate(&plan, None, &decoded.batch, None, None, None, false)?;
        let mut rows = evaluated.output_rows(&records, &decoded.rows);
        if let Some(limit) = plan.limit {
            rows.truncate(limit.saturating_sub(emitted) as usize);
        }
        emitted += rows.len() as u64;
        sink.write(&rows, &evaluated.columns, (&[], &[], false), false, None, &deliveries)?;
        if plan.limit.is_some_and(|limit| emitted >= limit) {
            break;
        }
    }
    Ok(())
}

/// The keys `plan`'s filter pins its table's key column to, as the table's records hold them:
/// `K = literal` (either way round) or `K IN (literal, …)`, alone, under `AND`, or `OR`ed with
/// another such pin. The rows found still pass through the filter. None when it pins none, or
/// when the table's key bytes may differ from Sluice's encoding of the same value: a windowed
/// key, several key columns, or a key format other producers may write in another form than
/// Sluice would (JSON's spacing, DELIMITED's quoting); the KAFKA format has one form.
pub fn pinned_keys(plan: &ContinuousPlan) -> Result<Option<Vec<Vec<u8>>>> {
    let source = &plan.source;
    let mut keys = source.key_columns();
    let (Some(key), None, None, Format::Kafka) = (keys.next(), keys.next(), &source.window, source.key_format) else {
        return Ok(None);
    };
    let key_type = key.data_type.to_arrow();
    let key_column = KeyColumn { name: &key.name, data_type: &key_type };
    let Some(literals) = plan.filter.as_ref().and_then(|filter| pinned_values(filter.as_ref(), &key_column)) else {
        return Ok(None);
    };
    let mut seen = HashSet::new();
    let mut encoded = Vec::with_capacity(literals.len());
    for literal in literals {
        // A NULL key matches no row; a value the key's type cannot hold, none either.
        let Ok(value) = literal.cast_to(&key_type) else { continue };
        if value.is_null() {
            continue;
        }
        let array = value.to_array()?;
        let mut bytes = Vec::new();
        encode_key(Format::Kafka, b',', &ColumnWriter::new(&array), 0, &mut bytes)?;
        if seen.insert(bytes.clone()) {
            encoded.push(bytes);
        }
    }
    Ok(Some(encoded))
}

/// The key column a filter is read for.
struct KeyColumn<'a> {
    name: &'a str,
    data_type: &'a DataType,
}

/// The literal values `filter` requires the column `key` to hold one of.
fn pinned_values(filter: &dyn PhysicalExpr, key: &KeyColumn) -> Option<Vec<ScalarValue>> {
    if let Some(binary) = filter.downcast_ref::<BinaryExpr>() {
        return match binary.op() {
            Operator::And => {
                pinned_values(binary.left().as_ref(), key).or_else(|| pinned_values(binary.right().as_ref(), key))
            }
            Operator::Or => {
                let mut either = pinned_values(binary.left().as_ref(), key)?;
                either.extend(pinned_values(binary.right().as_ref(), key)?);
                Some(either)
            }
            Operator::Eq => {
                let (left, right) = (binary.left().as_ref(), binary.right().as_ref());
                match (is_column(left, key), literal(right), is_column(right, key), literal(left)) {
                    (true, Some(value), _, _) | (_, _, true, Some(value)) => Some(vec![value]),
                    _ => None,
                }
            }
            _ => None,
        };
    }
    let list = filter.downcast_ref::<InListExpr>()?;
    if list.negated() || !is_column(list.expr().as_ref(), key) {
        return None;
    }
    list.list().iter().map(|item| literal(item.as_ref())).collect()
}

/// Whether `expr` reads the column `key`, as it is or cast to a type that tells every value of
/// it apart (an integer widened): a cast that makes two values equal (`'05'` and `'5'` read as
/// numbers) would pin keys the query does not.
fn is_column(expr: &dyn PhysicalExpr, key: &KeyColumn) -> bool {
    let widened = |cast_type: &DataType| key.data_type.is_integer() && (cast_type.is_integer() || cast_type.is_floating());
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return widened(cast.cast_type()) && is_column(cast.expr().as_ref(), key);
    }
    if let Some(cast) = expr.downcast_ref::<TryCastExpr>() {
        return widened(cast.cast_type()) && is_column(cast.expr().as_ref(), key);
    }
    expr.downcast_ref::<Column>().is_some_and(|column| column.name() == key.name)
}

fn literal(expr: &dyn PhysicalExpr) -> Option<ScalarValue> {
    expr.downcast_ref::<Literal>().map(|l| l.value().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        catalog::{Catalog, SourceDef},
        parser::{KsqlParser, Statement},
        planner::QueryPlanner,
    };

    async fn keys(declaration: &str, query: &str) -> Option<Vec<Vec<u8>>> {
        let Statement::CreateSource(create) = KsqlParser::parse_one(declaration).unwrap().statement else { panic!() };
        let catalog = Catalog::default();
        catalog.put_stream(SourceDef::declared(&create, declaration).unwrap());
        let Statement::Select(select) = KsqlParser::parse_one(query).unwrap().statement else { panic!() };
        pinned_keys(&QueryPlanner::plan(&catalog, &select).await.unwrap()).unwrap()
    }

    const STRING_KEYED: &str = "CREATE SOURCE TABLE T (K STRING PRIMARY KEY, V INT) WITH (KAFKA_TOPIC = 't', VALUE_FORMAT = 'JSON');";

    #[tokio::test]
    async fn a_filter_pinning_the_key_reads_those_keys_only() {
        let a = b"a".to_vec();
        assert_eq!(keys(STRING_KEYED, "SELECT * FROM T WHERE K = 'a';").await, Some(vec![a.clone()]));
        assert_eq!(keys(STRING_KEYED, "SELECT * FROM T WHERE 'a' = K AND V > 1;").await, Some(vec![a.clone()]));
        assert_eq!(keys(STRING_KEYED, "SELECT * FROM T WHERE V > 1 AND K IN ('a', 'b', 'a');").await, Some(vec![a, b"b".to_vec()]));
        assert_eq!(keys(STRING_KEYED, "SELECT * FROM T WHERE K = 'a' OR K = 'c';").await.map(|k| k.len()), Some(2));
        let int_keyed = "CREATE SOURCE TABLE T (K INT PRIMARY KEY, V INT) WITH (KAFKA_TOPIC = 't', VALUE_FORMAT = 'JSON');";
        assert_eq!(keys(int_keyed, "SELECT * FROM T WHERE K = 5;").await, Some(vec![5i32.to_be_bytes().to_vec()]));
        assert_eq!(keys(int_keyed, "SELECT * FROM T WHERE K = 5000000000;").await, Some(vec![]));
    }

    #[tokio::test]
    async fn a_filter_that_may_pass_other_keys_reads_every_row() {
        for query in [
            "SELECT * FROM T;",
            "SELECT * FROM T WHERE K = 'a' OR V = 1;",
            "SELECT * FROM T WHERE V = 1 OR K IN ('a');",
            "SELECT * FROM T WHERE V = 1;",
            "SELECT * FROM T WHERE K NOT IN ('a');",
            "SELECT * FROM T WHERE K > 'a';",
            "SELECT * FROM T WHERE CAST(K AS INT) = 5;",
        ] {
            assert_eq!(keys(STRING_KEYED, query).await, None, "{query}");
        }
        let json_keyed = "CREATE SOURCE TABLE T (K STRING PRIMARY KEY, V INT) WITH (KAFKA_TOPIC = 't', FORMAT = 'JSON');";
        assert_eq!(keys(json_keyed, "SELECT * FROM T WHERE K = 'a';").await, None, "JSON keys may be spaced otherwise");
    }
}
