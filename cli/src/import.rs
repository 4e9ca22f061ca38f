//! `sluice import`: Sqoop's `import` tool for PostgreSQL, with Sqoop's flags, so a `sqoop import`
//! command line runs unchanged with `sluice` in place of `sqoop`.

use std::{
    io::{IsTerminal, Write},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use sluice::{
    connectors::postgres::JdbcUrl,
    import::{FileFormat, ImportJob, ImportProgress, ImportSource, TargetMode, parse_delimiter, unescape_argument},
};

/// Imports a PostgreSQL table or query into HDFS (or a local directory), as `sqoop import` does.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The database: jdbc:postgresql://host:port/database
    #[arg(long)]
    connect: String,
    /// Only org.postgresql.Driver is accepted
    #[arg(long)]
    driver: Option<String>,
    #[arg(long)]
    username: Option<String>,
    #[arg(long)]
    password: Option<String>,
    /// Reads the password from this local file (a trailing newline is not part of it)
    #[arg(long, value_name = "FILE")]
    password_file: Option<String>,
    /// Asks for the password on the terminal
    #[arg(short = 'P')]
    ask_password: bool,
    /// The table to import
    #[arg(long, conflicts_with = "query")]
    table: Option<String>,
    /// The table's schema, when not on the search path
    #[arg(long)]
    schema: Option<String>,
    /// The columns to import, comma-separated
    #[arg(long, requires = "table")]
    columns: Option<String>,
    /// Imports only the rows this condition holds for
    #[arg(long = "where", requires = "table")]
    filter: Option<String>,
    /// A free-form query with $CONDITIONS in its WHERE clause
    #[arg(short = 'e', long, requires = "target_dir")]
    query: Option<String>,
    /// The directory to write
    #[arg(long)]
    target_dir: Option<String>,
    /// The parent of the table's directory, when no --target-dir is given
    #[arg(long, conflicts_with = "target_dir")]
    warehouse_dir: Option<String>,
    /// The file system: hdfs://namenode:port or file:///
    #[arg(long, visible_alias = "fs")]
    hdfs_url: Option<String>,
    /// Hadoop's generic -D property=value; fs.defaultFS names the file system
    #[arg(short = 'D', value_name = "PROPERTY=VALUE")]
    properties: Vec<String>,
    /// PostgreSQL's own COPY … CSV output, as Sqoop's direct mode
    #[arg(long)]
    direct: bool,
    /// How many parallel splits (and part files)
    #[arg(short = 'm', long = "num-mappers", visible_alias = "m", default_value_t = 4)]
    mappers: u32,
    /// The column whose range is split; the primary key by default
    #[arg(long)]
    split_by: Option<String>,
    /// A query giving the split column's MIN and MAX
    #[arg(long)]
    boundary_query: Option<String>,
    /// Delimited text (the default)
    #[arg(long, conflicts_with = "as_parquetfile")]
    as_textfile: bool,
    #[arg(long)]
    as_parquetfile: bool,
    #[arg(long, hide = true)]
    as_avrodatafile: bool,
    #[arg(long, hide = true)]
    as_sequencefile: bool,
    #[arg(long, default_value = ",", allow_hyphen_values = true)]
    fields_terminated_by: String,
    #[arg(long, default_value = "\\n", allow_hyphen_values = true)]
    lines_terminated_by: String,
    /// What a NULL string column is written as (default: null)
    #[arg(long, allow_hyphen_values = true)]
    null_string: Option<String>,
    /// What a NULL in another column is written as (default: null)
    #[arg(long, allow_hyphen_values = true)]
    null_non_string: Option<String>,
    /// Direct mode's spelling of true
    #[arg(long, default_value = "TRUE")]
    boolean_true_string: String,
    /// Direct mode's spelling of false
    #[arg(long, default_value = "FALSE")]
    boolean_false_string: String,
    /// Deletes the target directory first
    #[arg(long, conflicts_with = "append")]
    delete_target_dir: bool,
    /// Adds the new files to an existing target directory
    #[arg(long)]
    append: bool,
    /// Logs what the import does
    #[arg(long)]
    verbose: bool,
}

/// Sqoop's argument forms clap does not read: Hadoop's `-fs url`, and the `--` before
/// connector-specific arguments.
pub fn normalize_arguments(args: impl Iterator<Item = String>) -> Vec<String> {
    args.filter(|arg| arg != "--")
        .map(|arg| if arg == "-fs" { "--fs".to_string() } else { arg })
        .collect()
}

pub async fn run(args: ImportArgs) -> Result<i32> {
    let job = job(&args)?;
    let progress = Arc::new(ImportProgress::default());
    let started = Instant::now();
    let bar = job.count_rows.then(|| tokio::spawn(draw_progress(progress.clone())));
    let result = job.run(progress.clone()).await;
    if let Some(bar) = bar {
        bar.abort();
        eprint!("\r\x1b[2K");
    }
    let summary = result.context("Import failed")?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "Transferred {} bytes in {seconds:.4} seconds ({:.4} bytes/sec)",
        summary.bytes,
        summary.bytes as f64 / seconds.max(1e-9)
    );
    eprintln!("Retrieved {} records into {}.", summary.rows, summary.target);
    Ok(0)
}

fn job(args: &ImportArgs) -> Result<ImportJob> {
    if let Some(driver) = &args.driver
        && driver != "org.postgresql.Driver"
    {
        bail!("sluice import reads PostgreSQL only; --driver {driver} is not org.postgresql.Driver");
    }
    if args.as_avrodatafile || args.as_sequencefile {
        bail!("sluice import writes --as-textfile or --as-parquetfile; Avro and SequenceFile are not supported");
    }
    let mut connect = JdbcUrl::parse(&args.connect)?;
    if let Some(user) = &args.username {
        connect.set_user(user);
    }
    if let Some(password) = password(args)? {
        connect.set_password(&password);
    }
    let (source, table) = match (&args.table, &args.query) {
        (Some(table), None) => {
            let name = match &args.schema {
                Some(schema) => format!("{schema}.{table}"),
                None => table.clone(),
            };
            let columns = args
                .columns
                .as_ref()
                .map(|list| list.split(',').map(|c| c.trim().to_string()).collect());
            (ImportSource::Table { name, columns, filter: args.filter.clone() }, table.clone())
        }
        (None, Some(query)) => (ImportSource::Query(query.clone()), String::new()),
        _ => bail!("Import failed: give --table or --query"),
    };
    let target_dir = match (&args.target_dir, &args.warehouse_dir) {
        (Some(dir), _) => dir.clone(),
        (None, Some(warehouse)) => format!("{}/{table}", warehouse.trim_end_matches('/')),
        (None, None) => table,
    };
    let mut job = ImportJob::new(connect, source, target_dir);
    job.file_system = file_system(args);
    job.mode = if args.append {
        TargetMode::Append
    } else if args.delete_target_dir {
        TargetMode::DeleteFirst
    } else {
        TargetMode::Create
    };
    job.direct = args.direct;
    job.mappers = args.mappers;
    job.split_by = args.split_by.clone();
    job.boundary_query = args.boundary_query.clone();
    job.format = if args.as_parquetfile { FileFormat::Parquet } else { FileFormat::Text };
    job.fields_terminated_by = parse_delimiter(&args.fields_terminated_by)?;
    job.lines_terminated_by = parse_delimiter(&args.lines_terminated_by)?;
    job.null_string = args.null_string.as_deref().map(unescape_argument);
    job.null_non_string = args.null_non_string.as_deref().map(unescape_argument);
    job.boolean_true = args.boolean_true_string.clone();
    job.boolean_false = args.boolean_false_string.clone();
    job.count_rows = std::io::stderr().is_terminal();
    Ok(job)
}

/// `--hdfs-url`, else `-D fs.defaultFS=…` (or its old name `fs.default.name`).
fn file_system(args: &ImportArgs) -> Option<String> {
    args.hdfs_url.clone().or_else(|| {
        args.properties.iter().rev().find_map(|property| {
            let (key, value) = property.split_once('=')?;
            matches!(key.trim(), "fs.defaultFS" | "fs.default.name").then(|| value.trim().to_string())
        })
    })
}

fn password(args: &ImportArgs) -> Result<Option<String>> {
    if let Some(file) = &args.password_file {
        let path = file.strip_prefix("file://").unwrap_or(file);
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the password file {path} (sluice reads it from the local file system)"))?;
        let password = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        return Ok(Some(password.to_string()));
    }
    if args.ask_password {
        return Ok(Some(rpassword::prompt_password("Enter password: ")?));
    }
    Ok(args.password.clone())
}

/// A one-line bar on the terminal: rows of the counted total, and bytes written.
async fn draw_progress(progress: Arc<ImportProgress>) {
    const WIDTH: u64 = 30;
    loop {
        let rows = progress.rows.load(Ordering::Relaxed);
        let total = progress.total_rows.load(Ordering::Relaxed).max(rows).max(1);
        let filled = (rows * WIDTH / total) as usize;
        let megabytes = progress.bytes.load(Ordering::Relaxed) as f64 / 1e6;
        eprint!(
            "\r[{}{}] {:>3}%  {rows}/{total} rows  {megabytes:.1} MB",
            "#".repeat(filled),
            " ".repeat(WIDTH as usize - filled),
            rows * 100 / total
        );
        let _ = std::io::stderr().flush();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
