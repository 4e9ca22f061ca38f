//! `sluice import`: Sqoop's import of a PostgreSQL table or query into a directory of HDFS (or a
//! local file system), with Sqoop's file names and text formats, so `sqoop import …` runs with
//! `sluice import` in its place.
//!
//! Every split is read with `COPY (SELECT …) TO STDOUT` on a connection of its own and written to
//! `part-m-NNNNN` of a staging directory beside the target; the staging directory becomes the
//! target in one rename once every split is written, so a failed import leaves no target behind.

mod parquet_file;
mod plan;
mod split;
mod target;
mod text;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio_postgres::Client;

use crate::{
    connectors::{
        hdfs::store::{Store, StoreFile},
        postgres::{self, JdbcUrl},
    },
    error::{Result, SluiceError},
};

pub use target::TargetMode;
pub use text::{parse_delimiter, unescape_argument};

/// What to import: a table (optionally some columns and rows of it) or a free-form query.
#[derive(Debug, Clone)]
pub enum ImportSource {
    Table { name: String, columns: Option<Vec<String>>, filter: Option<String> },
    /// A query holding `$CONDITIONS` where each split's range goes.
    Query(String),
}

/// The file format of the part files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Text,
    Parquet,
}

/// One import, as Sqoop's flags describe it.
#[derive(Debug, Clone)]
pub struct ImportJob {
    pub connect: JdbcUrl,
    pub source: ImportSource,
    /// Where the files go: a path on `file_system`, or a full `hdfs://` / `file://` URL.
    pub target_dir: String,
    /// `hdfs://namenode:port` or `file:///`; `None` reads `fs.defaultFS` from `HADOOP_CONF_DIR`,
    /// else the local file system, as Hadoop does.
    pub file_system: Option<String>,
    pub mode: TargetMode,
    /// `--direct`: the bytes `COPY … CSV` writes, as Sqoop's direct PostgreSQL import.
    pub direct: bool,
    pub mappers: u32,
    pub split_by: Option<String>,
    pub boundary_query: Option<String>,
    pub format: FileFormat,
    pub fields_terminated_by: char,
    pub lines_terminated_by: char,
    pub null_string: Option<String>,
    pub null_non_string: Option<String>,
    pub boolean_true: String,
    pub boolean_false: String,
    /// Counts the rows before importing them, for a progress bar that knows its end.
    pub count_rows: bool,
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    /// The target directory as a URL.
    pub target: String,
    pub files: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
}

/// Rows and bytes written so far, for a progress bar; `total_rows` once counted.
#[derive(Debug, Default)]
pub struct ImportProgress {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub total_rows: AtomicU64,
}

impl ImportJob {
    /// The job as Sqoop's defaults set it: four mappers, comma-separated text, `null` for NULL.
    pub fn new(connect: JdbcUrl, source: ImportSource, target_dir: String) -> ImportJob {
        ImportJob {
            connect,
            source,
            target_dir,
            file_system: None,
            mode: TargetMode::Create,
            direct: false,
            mappers: 4,
            split_by: None,
            boundary_query: None,
            format: FileFormat::Text,
            fields_terminated_by: ',',
            lines_terminated_by: '\n',
            null_string: None,
            null_non_string: None,
            boolean_true: "TRUE".to_string(),
            boolean_false: "FALSE".to_string(),
            count_rows: false,
        }
    }

    /// Runs the import; `progress` is updated as rows are written.
    pub async fn run(&self, progress: Arc<ImportProgress>) -> Result<ImportSummary> {
        self.validate()?;
        let (store, target) = target::resolve(self.file_system.as_deref(), &self.target_dir)?;
        let client = postgres::connect(&self.connect).await?;
        let plan = plan::ImportPlan::build(self, &client).await?;
        if let Some(total) = plan.count_rows(&client).await? {
            progress.total_rows.store(total, Ordering::Relaxed);
        }
        let staging = target.prepare(&store, self.mode).await?;
        let written = self.write_splits(&store, &staging, &plan, &progress).await;
        let files = match written {
            Ok(files) => target.commit(&store, &staging, files, self.mode).await,
            Err(e) => Err(e),
        };
        let files = match files {
            Ok(files) => files,
            Err(e) => {
                if let Err(cleanup) = store.delete(&staging).await {
                    tracing::warn!(error = %cleanup, staging, "could not remove the staging directory");
                }
                return Err(e);
            }
        };
        Ok(ImportSummary {
            target: target.url(),
            files,
            rows: progress.rows.load(Ordering::Relaxed),
            bytes: progress.bytes.load(Ordering::Relaxed),
        })
    }

    fn validate(&self) -> Result<()> {
        let refuse = |why: String| Err(SluiceError::Config(why));
        if self.mappers == 0 {
            return refuse("--num-mappers must be at least 1".to_string());
        }
        if let ImportSource::Query(query) = &self.source {
            if !query.contains(plan::CONDITIONS) {
                return refuse(format!(
                    "Query [{query}] must contain '$CONDITIONS' in WHERE clause."
                ));
            }
            if self.mappers > 1 && self.split_by.is_none() {
                return refuse(plan::PARALLEL_QUERY_NEEDS_SPLIT_BY.to_string());
            }
        }
        if self.direct && self.format == FileFormat::Parquet {
            return refuse(
                "--direct writes PostgreSQL's COPY text; it cannot be combined with --as-parquetfile"
                    .to_string(),
            );
        }
        if self.direct && self.null_string != self.null_non_string {
            return refuse(
                "Detected different values of --null-string and --null-non-string parameters. \
                 PostgreSQL direct manager do not support that. Please either use the same values \
                 or omit the --direct parameter."
                    .to_string(),
            );
        }
        Ok(())
    }

    /// Writes every split to its own part file, all splits at once, each on its own connection.
    async fn write_splits(
        &self,
        store: &Store,
        staging: &str,
        plan: &plan::ImportPlan,
        progress: &Arc<ImportProgress>,
    ) -> Result<Vec<String>> {
        let tasks = plan.splits().iter().enumerate().map(|(index, condition)| {
            let name = part_file_name(index, self.format);
            let path = format!("{staging}/{name}");
            async move {
                let client = postgres::connect(&self.connect).await?;
                let file = store.create(&path).await?;
                self.write_split(&client, plan, condition, file, progress).await?;
                Ok::<_, SluiceError>(name)
            }
        });
        futures::stream::iter(tasks).buffered(plan.splits().len().max(1)).try_collect().await
    }

    async fn write_split(
        &self,
        client: &Client,
        plan: &plan::ImportPlan,
        condition: &str,
        mut file: StoreFile,
        progress: &ImportProgress,
    ) -> Result<()> {
        if !self.direct {
            client.batch_execute(postgres::SESSION_SETTINGS).await?;
        }
        let statement = plan.copy_statement(condition, self.direct);
        let mut chunks = Box::pin(postgres::copy_out(client, &statement).await?);
        let mut rows = postgres::CopyTextRows::default();
        let mut out = Vec::with_capacity(WRITE_SIZE);
        let mut encoder = match self.format {
            FileFormat::Parquet => Encoder::Parquet(parquet_file::PartWriter::new(plan.columns())?),
            FileFormat::Text if self.direct => Encoder::Direct(text::DirectLines::new(self.lines_terminated_by)),
            FileFormat::Text => Encoder::Text(text::SqoopText::new(self, plan.columns())),
        };
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            match &mut encoder {
                Encoder::Direct(lines) => {
                    let rows = lines.push(&chunk, &mut out);
                    progress.rows.fetch_add(rows, Ordering::Relaxed);
                }
                Encoder::Text(formatter) => rows.push(&chunk, |row| {
                    progress.rows.fetch_add(1, Ordering::Relaxed);
                    formatter.write_row(row, &mut out)
                })?,
                Encoder::Parquet(writer) => {
                    rows.push(&chunk, |row| {
                        progress.rows.fetch_add(1, Ordering::Relaxed);
                        writer.push(row)
                    })?;
                    writer.take_ready_bytes(&mut out)?;
                }
            }
            if out.len() >= WRITE_SIZE {
                write_counted(&mut file, Bytes::from(std::mem::replace(&mut out, Vec::with_capacity(WRITE_SIZE))), progress).await?;
            }
        }
        rows.finish()?;
        if let Encoder::Parquet(writer) = encoder {
            writer.finish(&mut out)?;
        }
        write_counted(&mut file, Bytes::from(out), progress).await?;
        file.close().await
    }
}

/// What turns a split's COPY output into the bytes of its part file.
enum Encoder<'a> {
    Direct(text::DirectLines),
    Text(text::SqoopText<'a>),
    Parquet(parquet_file::PartWriter),
}

/// How much text is gathered before it is written to the file.
const WRITE_SIZE: usize = 1 << 20;

async fn write_counted(file: &mut StoreFile, bytes: Bytes, progress: &ImportProgress) -> Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    progress.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    file.write(bytes).await
}

/// Hadoop's name for a map task's output: `part-m-00000`, and `.parquet` for Parquet.
pub fn part_file_name(index: usize, format: FileFormat) -> String {
    match format {
        FileFormat::Text => format!("part-m-{index:05}"),
        FileFormat::Parquet => format!("part-m-{index:05}.parquet"),
    }
}
