//! The keys of the text sources: Kafka Connect's `FileStreamSource`, the spooldir line
//! connector, and Flume's HTTP and netcat sources, each with the names its users write.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use regex::Regex;

use crate::{
    connectors::config_keys::Keys,
    error::{Result, SluiceError},
};

pub const FILE_STREAM: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
pub const SPOOL_DIR: &str = "com.github.jcustenborder.kafka.connect.spooldir.SpoolDirLineDelimitedSourceConnector";
pub const HTTP: &str = "org.apache.flume.source.http.HTTPSource";
pub const NETCAT: &str = "org.apache.flume.source.NetcatSource";

/// The text source a class names, by its full or short name.
pub fn kind_of_class(class: &str) -> Option<&'static str> {
    match class {
        FILE_STREAM | "FileStreamSource" | "FileStreamSourceConnector" => Some(FILE_STREAM),
        SPOOL_DIR | "SpoolDirLineDelimitedSourceConnector" => Some(SPOOL_DIR),
        HTTP | "http" => Some(HTTP),
        NETCAT | "netcat" => Some(NETCAT),
        _ => None,
    }
}

/// What happens to a spooled file once every line of it is in Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    Move,
    Delete,
    None,
}

/// How a line becomes a record's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineValue {
    /// StringConverter: the line's bytes.
    Raw,
    /// JsonConverter: a JSON string, in the schema envelope when `schemas` is on.
    Json { schemas: bool },
}

#[derive(Debug, Clone)]
pub enum TextSource {
    /// Tails one file from where it was left.
    FileStream { file: PathBuf, batch_size: usize },
    /// Takes whole files dropped into a directory, then moves or deletes them.
    SpoolDir {
        input: PathBuf,
        pattern: Regex,
        finished: Option<PathBuf>,
        error: PathBuf,
        cleanup: Cleanup,
        batch_size: usize,
        minimum_age: Duration,
        empty_poll_wait: Duration,
    },
    /// Flume's JSONHandler arrays (`[{"headers": {…}, "body": "…"}]`) or plain lines, POSTed.
    Http { listen: SocketAddr },
    /// Lines over TCP, each answered `OK` once it is in Kafka.
    Netcat { listen: SocketAddr, max_line_length: usize, ack_every_event: bool },
}

#[derive(Debug, Clone)]
pub struct TextSourceConfig {
    pub source: TextSource,
    pub topic: String,
    pub value: LineValue,
}

const INERT_KEYS: [&str; 6] = ["name", "tasks.max", "key.converter", "key.converter.schemas.enable", "errors.log.enable", "errors.log.include.messages"];

impl TextSourceConfig {
    pub fn from_map(config: &BTreeMap<String, String>) -> Result<TextSourceConfig> {
        let mut keys = Keys::new(config);
        let class = keys.required("connector.class")?;
        let kind = kind_of_class(&class)
            .ok_or_else(|| SluiceError::Config(format!("connector.class '{class}' is not a text source")))?;
        let topic = match kind {
            HTTP | NETCAT => keys.get("topic").or_else(|| keys.get("kafka.topic")).ok_or_else(|| {
                SluiceError::Config("topic (or Flume's kafka.topic) is required".into())
            })?,
            _ => keys.required("topic")?,
        };
        let source = match kind {
            FILE_STREAM => TextSource::FileStream {
                file: PathBuf::from(keys.get("file").ok_or_else(|| {
                    SluiceError::Config("file is required (Sluice does not read its own standard input)".into())
                })?),
                batch_size: keys.number_in("batch.size", 1, i64::MAX)?.unwrap_or(2000) as usize,
            },
            SPOOL_DIR => spool_dir(&mut keys)?,
            HTTP => TextSource::Http { listen: listen(&mut keys)? },
            _ => TextSource::Netcat {
                listen: listen(&mut keys)?,
                max_line_length: keys.number_in("max-line-length", 1, i64::MAX)?.unwrap_or(512) as usize,
                ack_every_event: keys.boolean("ack-every-event")?.unwrap_or(true),
            },
        };
        let value = match keys.get("value.converter").as_deref() {
            None | Some("org.apache.kafka.connect.storage.StringConverter") => LineValue::Raw,
            Some("org.apache.kafka.connect.json.JsonConverter") => {
                LineValue::Json { schemas: keys.boolean("value.converter.schemas.enable")?.unwrap_or(true) }
            }
            Some(other) => {
                return Err(SluiceError::Config(format!(
                    "value.converter '{other}' is not supported; use org.apache.kafka.connect.storage.StringConverter or org.apache.kafka.connect.json.JsonConverter"
                )));
            }
        };
        keys.accept(&INERT_KEYS);
        keys.accept(&["value.converter.schemas.enable", "handler", "type"]);
        keys.reject_unused("the text source")?;
        Ok(TextSourceConfig { source, topic, value })
    }
}

fn listen(keys: &mut Keys) -> Result<SocketAddr> {
    let bind = keys.get("bind").unwrap_or_else(|| "0.0.0.0".to_string());
    let port = keys
        .number_in("port", 1, 65535)?
        .ok_or_else(|| SluiceError::Config("port is required".into()))?;
    format!("{bind}:{port}")
        .parse()
        .map_err(|_| SluiceError::Config(format!("bind '{bind}' is not an IP address")))
}

fn spool_dir(keys: &mut Keys) -> Result<TextSource> {
    let directory = |keys: &mut Keys, key: &str| -> Result<Option<PathBuf>> {
        Ok(keys.get(key).filter(|p| !p.is_empty()).map(PathBuf::from))
    };
    let input = directory(keys, "input.path")?.ok_or_else(|| SluiceError::Config("input.path is required".into()))?;
    let pattern = keys.required("input.file.pattern")?;
    let pattern = Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| SluiceError::Config(format!("input.file.pattern '{pattern}' is not a valid regex: {e}")))?;
    let error = directory(keys, "error.path")?.ok_or_else(|| SluiceError::Config("error.path is required".into()))?;
    let finished = directory(keys, "finished.path")?;
    let cleanup = match keys.get("cleanup.policy").as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("MOVE") => Cleanup::Move,
        Some("DELETE") => Cleanup::Delete,
        Some("NONE") => Cleanup::None,
        Some(other) => {
            return Err(SluiceError::Config(format!("cleanup.policy must be MOVE, DELETE or NONE, not '{other}'")));
        }
    };
    if cleanup == Cleanup::Move && finished.is_none() {
        return Err(SluiceError::Config("cleanup.policy MOVE requires finished.path".into()));
    }
    keys.accept(&["halt.on.error", "processing.file.extension", "files.sort.attributes", "file.charset"]);
    Ok(TextSource::SpoolDir {
        input,
        pattern,
        finished,
        error,
        cleanup,
        batch_size: keys.number_in("batch.size", 1, i64::MAX)?.unwrap_or(1000) as usize,
        minimum_age: Duration::from_millis(keys.number_in("file.minimum.age.ms", 0, i64::MAX)?.unwrap_or(0) as u64),
        empty_poll_wait: Duration::from_millis(keys.number_in("empty.poll.wait.ms", 1, i64::MAX)?.unwrap_or(500) as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn each_source_reads_its_own_keys() {
        let spool = TextSourceConfig::from_map(&config(&[
            ("connector.class", SPOOL_DIR),
            ("topic", "UNORGANIZED"),
            ("input.path", "/data/in"),
            ("input.file.pattern", ".*\\.txt"),
            ("error.path", "/data/error"),
            ("finished.path", "/data/done"),
        ]))
        .unwrap();
        assert!(matches!(spool.source, TextSource::SpoolDir { cleanup: Cleanup::Move, batch_size: 1000, .. }));
        assert_eq!(spool.value, LineValue::Raw);
        let netcat = TextSourceConfig::from_map(&config(&[("connector.class", "netcat"), ("kafka.topic", "UNORGANIZED"), ("port", "44444")])).unwrap();
        assert!(matches!(netcat.source, TextSource::Netcat { max_line_length: 512, ack_every_event: true, .. }));
        assert_eq!(netcat.topic, "UNORGANIZED");
    }

    #[test]
    fn missing_and_unknown_keys_are_named() {
        let no_finished = TextSourceConfig::from_map(&config(&[
            ("connector.class", SPOOL_DIR),
            ("topic", "T"),
            ("input.path", "/in"),
            ("input.file.pattern", ".*"),
            ("error.path", "/err"),
        ]));
        assert!(no_finished.unwrap_err().to_string().contains("requires finished.path"));
        let unknown = TextSourceConfig::from_map(&config(&[("connector.class", FILE_STREAM), ("topic", "T"), ("file", "/f"), ("fille", "x")]));
        assert!(unknown.unwrap_err().to_string().contains("unknown options for the text source: fille"));
    }
}
