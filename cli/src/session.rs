//! A session: variables, output mode and properties, running statements from a prompt, a file
//! or the command line.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result};
use futures::StreamExt;
use rustyline::{
    Completer, Editor, Helper, Highlighter, Hinter, Validator,
    completion::{Completer, Pair},
    error::ReadlineError,
    history::FileHistory,
};
use serde_json::Value;

use crate::{
    client::{Answer, Client, Endpoint},
    render,
    split::{Piece, split},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Tabular,
    Json,
}

pub struct Session {
    client: Client,
    output: Output,
    variables: BTreeMap<String, String>,
    properties: BTreeMap<String, String>,
    /// `SPOOL file`: everything shown is also written here, statements included.
    spool: Option<std::fs::File>,
}

/// Why a statement did not run, and where in its text the server says the problem is.
struct Failure {
    message: String,
    /// Line and column inside the statement, from a syntax error.
    at: Option<(usize, usize)>,
}

const KEYWORDS: &[&str] = &[
    "CREATE", "STREAM", "AS", "SELECT", "FROM", "WHERE", "EMIT", "CHANGES", "LIMIT", "PARTITION", "BY",
    "INSERT", "INTO", "VALUES", "SHOW", "LIST", "STREAMS", "TOPICS", "QUERIES", "PROPERTIES", "DESCRIBE",
    "EXTENDED", "DROP", "DELETE", "TOPIC", "TERMINATE", "ALL", "PRINT", "BEGINNING", "SET", "UNSET",
    "DEFINE", "UNDEFINE", "WITH", "KAFKA_TOPIC", "VALUE_FORMAT", "PARTITIONS", "EXTRACTJSONFIELD",
    "RUN", "SCRIPT", "OUTPUT", "JSON", "TABULAR", "EXIT", "HELP", "SPOOL", "OFF", "CONNECTOR",
    "CONNECTORS", "SINK", "EXPLAIN", "PAUSE", "RESUME", "FUNCTIONS", "FUNCTION", "HISTORY", "CLEAR", "TYPE", "TYPES",
];

const HELP: &str = "Statements end with ';' and may span lines. Besides ksqlDB's statements:
  DEFINE name = 'value';   UNDEFINE name;   ${name} is replaced in later statements
  RUN SCRIPT 'file.sql';   runs a file's statements
  OUTPUT JSON; / OUTPUT TABULAR;   how answers are shown
  SPOOL 'file.txt'; / SPOOL OFF;   copies statements and answers to a file
  SET 'auto.offset.reset' = 'earliest';   applies to the statements after it
  history   lists the statements entered (kept in ~/.sluice_history);   clear   clears the screen
  help, exit (or Ctrl-D). Ctrl-C stops a running push query.";

#[derive(Helper, Completer, Hinter, Highlighter, Validator)]
struct Prompt {
    #[rustyline(Completer)]
    words: Words,
}

struct Words(Vec<String>);

impl Completer for Words {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _: &rustyline::Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let prefix = line[start..pos].to_ascii_uppercase();
        if prefix.is_empty() {
            return Ok((start, Vec::new()));
        }
        let matches = self
            .0
            .iter()
            .filter(|w| w.to_ascii_uppercase().starts_with(&prefix))
            .map(|w| Pair { display: w.clone(), replacement: w.clone() })
            .collect();
        Ok((start, matches))
    }
}

impl Session {
    pub fn new(endpoint: &Endpoint, output: Output) -> Session {
        Session {
            client: Client::new(endpoint),
            output,
            variables: BTreeMap::new(),
            properties: BTreeMap::new(),
            spool: None,
        }
    }

    pub fn define(&mut self, name: &str, value: &str) {
        self.variables.insert(name.to_ascii_lowercase(), value.to_string());
    }

    /// Runs a file; the first failure stops it and is reported as FILE:line:column.
    pub async fn run_file(&mut self, path: &Path) -> Result<i32> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        self.run_text(&text, &path.display().to_string()).await
    }

    /// Runs every statement of `text`; `origin` names it in error messages.
    pub async fn run_text(&mut self, text: &str, origin: &str) -> Result<i32> {
        let (pieces, rest) = split(text);
        let mut pieces = pieces;
        if !rest.is_empty() {
            let line = text.lines().count().max(1);
            pieces.push(Piece { text: rest, line, column: 1 });
        }
        for piece in pieces {
            if let Err(failure) = Box::pin(self.run_statement(&piece.text)).await? {
                let (line, column) = match failure.at {
                    Some((1, c)) => (piece.line, piece.column + c - 1),
                    Some((l, c)) => (piece.line + l - 1, c),
                    None => (piece.line, piece.column),
                };
                let shown = format!("{origin}:{line}:{column}: {}", failure.message);
                eprintln!("{shown}");
                self.spool_line(&shown);
                return Ok(1);
            }
        }
        Ok(0)
    }

    /// The interactive prompt.
    pub async fn repl(&mut self) -> Result<i32> {
        let info = match self.client.info().await {
            Ok(info) => info,
            Err(_) => {
                eprintln!(
                    "Cannot reach sluice-server at {}. Start it with `sluice-server`, or name another with --server.",
                    self.client.base()
                );
                return Ok(1);
            }
        };
        let server = &info["KsqlServerInfo"];
        println!(
            "Sluice CLI v{}, Server v{} (ksqlDB API {}) located at {}\nServer Status: {}\nWeb console: {}/\n\nType 'help' for help, 'exit' or Ctrl-D to leave.\n",
            env!("CARGO_PKG_VERSION"),
            server["sluiceVersion"].as_str().unwrap_or("?"),
            server["version"].as_str().unwrap_or("?"),
            self.client.base(),
            server["serverStatus"].as_str().unwrap_or("?"),
            self.client.base().trim_end_matches('/')
        );
        let mut editor: Editor<Prompt, FileHistory> = Editor::new()?;
        editor.set_helper(Some(Prompt { words: Words(self.completions().await) }));
        let history = std::env::var_os("HOME").map(|h| Path::new(&h).join(".sluice_history"));
        if let Some(history) = &history {
            let _ = editor.load_history(history);
        }
        let mut buffer = String::new();
        loop {
            let prompt = if buffer.trim().is_empty() { "sluice> " } else { "   ...> " };
            match editor.readline(prompt) {
                Ok(line) => {
                    let trimmed = line.trim();
                    if buffer.trim().is_empty() && ["exit", "quit", "exit;", "quit;"].contains(&trimmed.to_ascii_lowercase().as_str()) {
                        break;
                    }
                    if buffer.trim().is_empty() {
                        match trimmed.trim_end_matches(';').to_ascii_lowercase().as_str() {
                            "help" => {
                                println!("{HELP}");
                                continue;
                            }
                            "history" => {
                                for (n, entry) in editor.history().iter().enumerate() {
                                    println!("{:>5}  {entry}", n + 1);
                                }
                                continue;
                            }
                            "clear" => {
                                editor.clear_screen()?;
                                continue;
                            }
                            _ => {}
                        }
                    }
                    buffer.push_str(&line);
                    buffer.push('\n');
                    let (pieces, rest) = split(&buffer);
                    if pieces.is_empty() {
                        continue;
                    }
                    let _ = editor.add_history_entry(buffer.trim());
                    for piece in pieces {
                        match Box::pin(self.run_statement(&piece.text)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(failure)) => {
                                let shown = failure_text(&piece.text, &failure);
                                eprintln!("{shown}");
                                self.spool_line(&shown);
                            }
                            Err(e) => eprintln!("{e:#}"),
                        }
                    }
                    buffer = rest;
                    if let Some(helper) = editor.helper_mut() {
                        helper.words = Words(self.completions().await);
                    }
                }
                Err(ReadlineError::Interrupted) => buffer.clear(),
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(history) = &history {
            let _ = editor.save_history(history);
        }
        Ok(0)
    }

    /// Keywords, stream names and topic names, for tab completion.
    async fn completions(&self) -> Vec<String> {
        let mut words: Vec<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
        if let Ok(Answer::Entities(entities)) = self.client.ksql("SHOW STREAMS; SHOW TOPICS;", &Value::Null, &Value::Null).await {
            for entity in entities {
                for item in entity["streams"].as_array().into_iter().chain(entity["topics"].as_array()).flatten() {
                    if let Some(name) = item["name"].as_str() {
                        words.push(name.to_string());
                    }
                }
            }
        }
        words
    }

    /// Runs one statement: client commands here, queries streamed, the rest through `/ksql`.
    async fn run_statement(&mut self, statement: &str) -> Result<Result<(), Failure>> {
        let text = self.substitute(statement);
        self.spool_line(&format!("sluice> {}", text.trim()));
        let words: Vec<String> = text
            .trim_end_matches(';')
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let first = words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default();
        match first.as_str() {
            "DEFINE" => {
                let body = text.trim_end_matches(';')[6..].trim();
                let Some((name, value)) = body.split_once('=') else {
                    return Ok(Err(plain("DEFINE takes name = 'value'")));
                };
                self.define(name.trim(), value.trim().trim_matches('\''));
                Ok(Ok(()))
            }
            "UNDEFINE" => {
                if let Some(name) = words.get(1) {
                    self.variables.remove(&name.to_ascii_lowercase());
                }
                Ok(Ok(()))
            }
            "OUTPUT" => {
                match words.get(1).map(|w| w.to_ascii_uppercase()).as_deref() {
                    Some("JSON") => self.output = Output::Json,
                    Some("TABULAR") => self.output = Output::Tabular,
                    _ => self.say(&format!("Output format: {:?}", self.output)),
                }
                Ok(Ok(()))
            }
            "SPOOL" => {
                let target = words[1..].join(" ");
                let target = target.trim_matches('\'');
                if target.is_empty() {
                    return Ok(Err(plain("SPOOL takes a file name, or OFF")));
                }
                if target.eq_ignore_ascii_case("OFF") {
                    self.spool = None;
                    return Ok(Ok(()));
                }
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(target)
                    .with_context(|| format!("cannot open {target} to spool to"))?;
                self.spool = Some(file);
                self.say(&format!("Session will be spooled to {target}"));
                Ok(Ok(()))
            }
            "RUN" if words.get(1).is_some_and(|w| w.eq_ignore_ascii_case("SCRIPT")) => {
                let path = words[2..].join(" ");
                let path = path.trim_matches('\'');
                match self.run_file(Path::new(path)).await? {
                    0 => Ok(Ok(())),
                    _ => Ok(Err(plain(&format!("the script {path} stopped at a failing statement")))),
                }
            }
            "SET" | "UNSET" => {
                let quoted: Vec<&str> = text.split('\'').skip(1).step_by(2).collect();
                match (first.as_str(), quoted.as_slice()) {
                    ("SET", [name, value, ..]) => {
                        self.properties.insert(name.to_string(), value.to_string());
                        self.say(&format!("Successfully changed local property '{name}' to '{value}'."));
                    }
                    ("UNSET", [name, ..]) => {
                        self.properties.remove(*name);
                        self.say(&format!("Successfully unset local property '{name}'."));
                    }
                    _ => return Ok(Err(plain("SET takes 'property' = 'value'; UNSET takes 'property'"))),
                }
                Ok(Ok(()))
            }
            "SELECT" | "PRINT" => self.stream(&text).await,
            _ => {
                let properties = serde_json::to_value(&self.properties)?;
                let variables = serde_json::to_value(&self.variables)?;
                match self.client.ksql(&text, &properties, &variables).await? {
                    Answer::Entities(entities) => {
                        for entity in entities {
                            match self.output {
                                Output::Json => self.say(&serde_json::to_string_pretty(&entity)?),
                                Output::Tabular => self.say(&format!("{}\n", render::entity(&entity))),
                            }
                        }
                        Ok(Ok(()))
                    }
                    Answer::Refused(refusal) => Ok(Err(failure_of(refusal.message))),
                }
            }
        }
    }

    /// Streams a push query or PRINT until it ends or Ctrl-C, which closes it on the server.
    async fn stream(&mut self, text: &str) -> Result<Result<(), Failure>> {
        let properties = serde_json::to_value(&self.properties)?;
        let lines = match self.client.stream(text, &properties).await? {
            Ok(lines) => lines,
            Err(refusal) => return Ok(Err(failure_of(refusal.message))),
        };
        let mut lines = Box::pin(lines);
        // Listening from here on, so a Ctrl-C between two rows is not missed.
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut query_id = None;
        let mut widths: Vec<usize> = Vec::new();
        loop {
            tokio::select! {
                line = lines.next() => {
                    let Some(line) = line else { break };
                    let line = line?;
                    let parsed: Option<Value> = serde_json::from_str(&line).ok();
                    match parsed {
                        Some(Value::Object(header)) if query_id.is_none() && header.contains_key("queryId") => {
                            query_id = header["queryId"].as_str().map(str::to_string);
                            let names: Vec<String> = header["columnNames"].as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_string)).collect();
                            if self.output == Output::Tabular {
                                widths = names.iter().map(|n| n.len().max(12)).collect();
                                let cells: Vec<Value> = names.iter().cloned().map(Value::String).collect();
                                let rule = render::rule(&widths);
                                self.say(&format!("{rule}\n{}\n{rule}", render::row(&cells, &widths)));
                            } else {
                                self.say(&line);
                            }
                        }
                        Some(Value::Array(cells)) if self.output == Output::Tabular => self.say(&render::row(&cells, &widths)),
                        _ => self.say(&line),
                    }
                }
                _ = interrupt.recv() => {
                    if let Some(id) = &query_id {
                        self.client.close_query(id).await?;
                    }
                    self.say("Query terminated");
                    break;
                }
            }
        }
        if self.output == Output::Tabular && !widths.is_empty() {
            self.say(&render::rule(&widths));
        }
        Ok(Ok(()))
    }

    /// Shows a line of output, and spools it.
    fn say(&mut self, text: &str) {
        println!("{text}");
        self.spool_line(text);
    }

    fn spool_line(&mut self, text: &str) {
        if let Some(file) = &mut self.spool {
            use std::io::Write;
            if let Err(e) = writeln!(file, "{text}") {
                eprintln!("spooling stopped: {e}");
                self.spool = None;
            }
        }
    }

    /// Replaces `${name}` with defined variables, names ignoring case as ksqlDB does.
    fn substitute(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            match rest[start..].find('}') {
                Some(end) => {
                    let name = &rest[start + 2..start + end];
                    match self.variables.get(&name.to_ascii_lowercase()) {
                        Some(value) => out.push_str(value),
                        None => out.push_str(&rest[start..start + end + 1]),
                    }
                    rest = &rest[start + end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }
}

fn plain(message: &str) -> Failure {
    Failure { message: message.to_string(), at: None }
}

/// Reads `line L:C` out of a syntax error so it can be pointed at.
fn failure_of(message: String) -> Failure {
    let at = message.split("line ").nth(1).and_then(|rest| {
        let position = rest.split(':').take(2).collect::<Vec<_>>();
        match position.as_slice() {
            [line, column] => Some((line.trim().parse().ok()?, column.trim().parse().ok()?)),
            _ => None,
        }
    });
    Failure { message, at }
}

/// The error, and for a syntax error the statement line with a caret under the column.
fn failure_text(statement: &str, failure: &Failure) -> String {
    let mut shown = failure.message.clone();
    if let Some((line, column)) = failure.at {
        if let Some(text) = statement.lines().nth(line.saturating_sub(1)) {
            shown.push_str(&format!("\n  {text}\n  {}^", " ".repeat(column.saturating_sub(1))));
        }
    }
    shown
}
