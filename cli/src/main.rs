//! `sluice`: the interactive SQL REPL and script runner for sluice-server, over its HTTP API.

mod client;
mod import;
mod migrate;
mod render;
mod session;
mod split;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use client::Endpoint;
use session::{Output, Session};

/// Talks to sluice-server: an interactive SQL prompt, or statements from a file or the command line.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
struct Args {
    /// The server's HTTP address
    #[arg(long, default_value = "http://localhost:8088", env = "SLUICE_SERVER", global = true)]
    server: String,
    /// Runs the statements of a file, stopping at the first that fails
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Runs these statements
    #[arg(short = 'e', long = "execute")]
    execute: Option<String>,
    /// Defines a variable used as ${name}, as `DEFINE name = 'value';` does
    #[arg(short = 'd', long = "define", value_name = "NAME=VALUE", global = true)]
    define: Vec<String>,
    /// How answers are shown
    #[arg(long, value_enum, default_value = "tabular", ignore_case = true)]
    output: Output,
    /// The user, on a server with authentication.method=BASIC (before any subcommand)
    #[arg(short = 'u', long = "user", env = "SLUICE_USER")]
    user: Option<String>,
    /// The user's password; asked for when -u is given without it
    #[arg(short = 'p', long = "password", env = "SLUICE_PASSWORD", requires = "user")]
    password: Option<String>,
    /// A PEM file of authorities trusted for an https:// server, besides the system's
    #[arg(long = "ca", env = "SLUICE_CA", global = true)]
    ca: Option<PathBuf>,
    /// A PEM file with this client's certificate chain and key, for a server that asks for one
    #[arg(long = "client-cert", env = "SLUICE_CLIENT_CERT", global = true)]
    client_cert: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// SQL in version control: `V000001__name.sql` files applied once each, in version order
    #[command(subcommand)]
    Migrate(Migrate),
    /// Sqoop's import: a PostgreSQL table or query into HDFS or a local directory
    Import(Box<import::ImportArgs>),
}

#[derive(Debug, clap::Subcommand)]
enum Migrate {
    /// Creates the next version's empty file in DIR
    New {
        name: String,
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Applies the migrations not applied yet, in version order; a second run does nothing
    Apply {
        /// Stops after this version (`3` or `V000003`)
        #[arg(long, value_parser = parse_version)]
        until: Option<u32>,
        dir: PathBuf,
    },
    /// Lists applied and pending migrations, as recorded on the server
    Info { dir: PathBuf },
    /// Fails when an applied migration's file was edited or removed
    Validate { dir: PathBuf },
}

fn parse_version(text: &str) -> Result<u32, String> {
    text.trim_start_matches(['V', 'v'])
        .parse()
        .map_err(|_| format!("'{text}' is not a version such as 3 or V000003"))
}

#[tokio::main]
async fn main() {
    let args = Args::parse_from(command_line());
    let code = match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    };
    std::process::exit(code);
}

/// The arguments; invoked as `sqoop` (a link to `sluice`), `sqoop import …` reads as `sluice import …`.
fn command_line() -> Vec<String> {
    let mut args = std::env::args();
    let program = args.next().unwrap_or_else(|| "sluice".to_string());
    let invoked_as_sqoop = std::path::Path::new(&program).file_name().is_some_and(|name| name == "sqoop");
    let program = if invoked_as_sqoop { "sluice".to_string() } else { program };
    let rest: Vec<String> = args.collect();
    let rest = if rest.first().is_some_and(|first| first == "import") {
        import::normalize_arguments(rest.into_iter())
    } else {
        rest
    };
    std::iter::once(program).chain(rest).collect()
}

async fn run(args: Args) -> Result<i32> {
    let defines: Vec<(String, String)> = args
        .define
        .iter()
        .map(|definition| {
            definition
                .split_once('=')
                .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
                .ok_or_else(|| anyhow::anyhow!("--define takes NAME=VALUE, not '{definition}'"))
        })
        .collect::<Result<_>>()?;
    let credentials = match (args.user, args.password) {
        (Some(user), Some(password)) => Some((user, password)),
        (Some(user), None) => Some((user, rpassword::prompt_password("Enter password: ")?)),
        (None, _) => None,
    };
    let http = client::http_client(args.ca.as_deref(), args.client_cert.as_deref())?;
    let endpoint = Endpoint { url: args.server.clone(), credentials, http };
    match args.command {
        Some(Command::Import(import)) => return import::run(*import).await,
        Some(Command::Migrate(action)) => {
            return match action {
                Migrate::New { name, dir } => migrate::new_file(&name, &dir),
                Migrate::Apply { until, dir } => migrate::apply(&endpoint, &dir, until, &defines).await,
                Migrate::Info { dir } => migrate::info(&endpoint, &dir).await,
                Migrate::Validate { dir } => migrate::validate(&endpoint, &dir).await,
            };
        }
        None => {}
    }
    let mut session = Session::new(&endpoint, args.output);
    for (name, value) in &defines {
        session.define(name, value);
    }
    if let Some(file) = &args.file {
        return session.run_file(file).await;
    }
    if let Some(sql) = &args.execute {
        return session.run_text(sql, "<command line>").await;
    }
    session.repl().await
}
