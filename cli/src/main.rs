//! `sluice`: the interactive SQL REPL and script runner for sluice-server, over its HTTP API.

mod client;
mod render;
mod session;
mod split;

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use session::{Output, Session};

/// Talks to sluice-server: an interactive SQL prompt, or statements from a file or the command line.
#[derive(Debug, Parser)]
#[command(name = "sluice", version)]
struct Args {
    /// The server's HTTP address
    #[arg(long, default_value = "http://localhost:8088", env = "SLUICE_SERVER")]
    server: String,
    /// Runs the statements of a file, stopping at the first that fails
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Runs these statements
    #[arg(short = 'e', long = "execute")]
    execute: Option<String>,
    /// Defines a variable used as ${name}, as `DEFINE name = 'value';` does
    #[arg(short = 'd', long = "define", value_name = "NAME=VALUE")]
    define: Vec<String>,
    /// How answers are shown
    #[arg(long, value_enum, default_value = "tabular", ignore_case = true)]
    output: Output,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let code = match run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e:#}");
            1
        }
    };
    std::process::exit(code);
}

async fn run(args: Args) -> Result<i32> {
    let mut session = Session::new(&args.server, args.output);
    for definition in &args.define {
        let (name, value) = definition
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--define takes NAME=VALUE, not '{definition}'"))?;
        session.define(name.trim(), value.trim());
    }
    if let Some(file) = &args.file {
        return session.run_file(file).await;
    }
    if let Some(sql) = &args.execute {
        return session.run_text(sql, "<command line>").await;
    }
    session.repl().await
}
