//! The statements of an import: the columns and their kinds, the `COPY (SELECT …) TO STDOUT` a
//! split runs, and the splits themselves (Sqoop's ranges over the split column).

use tokio_postgres::Client;

use super::{ImportJob, ImportSource, split};
use crate::{
    connectors::postgres::{Column, ColumnKind, describe, quote_identifier, quote_literal},
    error::{Result, SluiceError},
};

/// Where a free-form query takes each split's condition.
pub const CONDITIONS: &str = "$CONDITIONS";

/// Sqoop's refusal of a parallel query import without a split column.
pub const PARALLEL_QUERY_NEEDS_SPLIT_BY: &str =
    "When importing query results in parallel, you must specify --split-by.";

/// The statements an import runs, one per split.
#[derive(Debug)]
pub struct ImportPlan {
    columns: Vec<Column>,
    /// The SELECT with `$CONDITIONS` where a split's condition goes; `direct` has booleans
    /// spelled as `--boolean-true-string` / `--boolean-false-string`, as Sqoop's direct mode.
    select: String,
    select_direct: String,
    splits: Vec<String>,
    count_rows: bool,
    direct_options: String,
}

impl ImportPlan {
    pub async fn build(job: &ImportJob, client: &Client) -> Result<ImportPlan> {
        let (select, select_direct, columns) = match &job.source {
            ImportSource::Table { name, columns, filter } => {
                let table = quote_identifier(name);
                let listed = match columns {
                    Some(names) => names.iter().map(|n| quote_identifier(n)).collect::<Vec<_>>().join(", "),
                    None => "*".to_string(),
                };
                let columns = describe(client, &format!("SELECT {listed} FROM {table}")).await?;
                let filter = filter.as_deref().map(|f| format!(" AND ({f})")).unwrap_or_default();
                let plain: Vec<String> = columns.iter().map(|c| quote_identifier(&c.name)).collect();
                let direct: Vec<String> = columns.iter().map(|c| direct_column(job, c)).collect();
                let select = |list: &[String]| {
                    format!("SELECT {} FROM {table} WHERE {CONDITIONS}{filter}", list.join(", "))
                };
                (select(&plain), select(&direct), columns)
            }
            ImportSource::Query(query) => {
                let columns = describe(client, &query.replace(CONDITIONS, "(1 = 0)")).await?;
                (query.clone(), query.clone(), columns)
            }
        };
        let mut plan = ImportPlan {
            columns,
            select,
            select_direct,
            splits: vec!["1 = 1".to_string()],
            count_rows: job.count_rows,
            direct_options: direct_options(job),
        };
        if job.mappers > 1 {
            plan.splits = plan.split_conditions(job, client).await?;
        }
        Ok(plan)
    }

    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Each split's condition, in part-file order.
    pub fn splits(&self) -> &[String] {
        &self.splits
    }

    /// How many rows the import will write, when asked for.
    pub async fn count_rows(&self, client: &Client) -> Result<Option<u64>> {
        if !self.count_rows {
            return Ok(None);
        }
        let query = format!("SELECT count(*) FROM ({}) AS t1", with_condition(&self.select, "1 = 1"));
        let count: i64 = client.query_one(&query, &[]).await?.get(0);
        Ok(Some(count as u64))
    }

    /// The `COPY` a split runs: Sqoop's direct-mode CSV, or COPY's text format to be re-written.
    pub fn copy_statement(&self, condition: &str, direct: bool) -> String {
        if direct {
            let select = with_condition(&self.select_direct, condition);
            format!("COPY ({select}) TO STDOUT WITH {}", self.direct_options)
        } else {
            format!("COPY ({}) TO STDOUT", with_condition(&self.select, condition))
        }
    }

    /// Sqoop's ranges: `MIN` and `MAX` of the split column, cut into `--num-mappers` ranges.
    async fn split_conditions(&self, job: &ImportJob, client: &Client) -> Result<Vec<String>> {
        let column = match &job.split_by {
            Some(column) => column.clone(),
            None => match &job.source {
                ImportSource::Table { name, .. } => primary_key(client, name).await?.ok_or_else(|| {
                    SluiceError::Config(format!(
                        "No primary key could be found for table {name}. Please specify one with \
                         --split-by or perform a sequential import with '-m 1'."
                    ))
                })?,
                ImportSource::Query(_) => {
                    return Err(SluiceError::Config(PARALLEL_QUERY_NEEDS_SPLIT_BY.to_string()));
                }
            },
        };
        let quoted = quote_identifier(&column);
        let bounds = match &job.boundary_query {
            Some(query) => query.clone(),
            None => format!(
                "SELECT MIN(t1.{quoted}), MAX(t1.{quoted}) FROM ({}) AS t1",
                with_condition(&self.select, "1 = 1")
            ),
        };
        let statement = client.prepare(&bounds).await?;
        let kind = statement.columns().first().map(|c| ColumnKind::of(c.type_()));
        if !kind.is_some_and(ColumnKind::is_integer) {
            return Err(SluiceError::Config(format!(
                "sluice import splits on integer columns; the split column {column} is not one: \
                 give an integer column with --split-by, or import sequentially with -m 1"
            )));
        }
        let row = client.query_one(&statement, &[]).await?;
        let bound = |i: usize| -> Result<Option<i64>> {
            Ok(match kind {
                Some(ColumnKind::Int16) => row.try_get::<_, Option<i16>>(i)?.map(i64::from),
                Some(ColumnKind::Int32) => row.try_get::<_, Option<i32>>(i)?.map(i64::from),
                _ => row.try_get::<_, Option<i64>>(i)?,
            })
        };
        Ok(split::integer_ranges(&quoted, bound(0)?, bound(1)?, job.mappers))
    }
}

/// `select` with a split's condition, parenthesised, in place of `$CONDITIONS`.
fn with_condition(select: &str, condition: &str) -> String {
    select.replace(CONDITIONS, &format!("({condition})"))
}

/// A column as Sqoop's direct mode selects it: booleans as `TRUE` / `FALSE` words.
fn direct_column(job: &ImportJob, column: &Column) -> String {
    let name = quote_identifier(&column.name);
    if column.kind != ColumnKind::Boolean {
        return name;
    }
    format!(
        "case when {name}=true then {} when {name}=false then {} end as {name}",
        quote_literal(&job.boolean_true),
        quote_literal(&job.boolean_false)
    )
}

/// Sqoop's direct mode `COPY` options: its delimiter, CSV, and its NULL string if given.
fn direct_options(job: &ImportJob) -> String {
    let mut options = format!("DELIMITER E'\\{:o}' CSV", u32::from(job.fields_terminated_by));
    if let Some(null) = &job.null_string {
        options.push_str(&format!(" NULL AS E'{}'", null.replace('\\', "\\\\").replace('\'', "\\'")));
    }
    options
}

/// The first column of `table`'s primary key, as Sqoop picks its split column.
async fn primary_key(client: &Client, table: &str) -> Result<Option<String>> {
    let query = "SELECT a.attname::text FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                 WHERE i.indrelid = $1::text::regclass AND i.indisprimary";
    let row = client.query_opt(query, &[&quote_identifier(table)]).await?;
    Ok(row.map(|r| r.get(0)))
}
