//! The HDFS sink's configuration: Kafka Connect's keys and defaults, each pulled explicitly;
//! a key nobody reads is rejected by name.

use std::{collections::BTreeMap, time::Duration};

use regex::Regex;

use crate::{
    connectors::config_keys::Keys,
    error::{Result, SluiceError},
};

/// The widest `filename.offset.zero.pad.width`: more than an offset's 19 digits pads nothing
/// useful, and a wider one would only make names no store accepts.
const MAX_PAD: i64 = 64;

pub const CONNECTOR_CLASSES: [&str; 2] = ["io.confluent.connect.hdfs.HdfsSinkConnector", "HdfsSinkConnector"];

/// How records become file content, from `format.class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON value per line, `.json`.
    Json,
    /// One value's text per line, `.txt`.
    String,
    /// Columns of the stream declared over the topic, `.parquet`.
    Parquet,
}

impl FileFormat {
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Json => ".json",
            FileFormat::String => ".txt",
            FileFormat::Parquet => ".parquet",
        }
    }
}

/// How a record value's bytes are read, from `value.converter` and its `schemas.enable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueConverter {
    /// JSON; with `schemas.enable` the value is a `{"schema":…,"payload":…}` envelope.
    Json { schemas: bool },
    /// UTF-8 text.
    String,
    /// Raw bytes (base64 when written as JSON).
    ByteArray,
}

/// Which topics a sink reads.
#[derive(Debug, Clone)]
pub enum TopicSelection {
    List(Vec<String>),
    Regex(Regex),
}

impl TopicSelection {
    pub fn matches(&self, topic: &str) -> bool {
        match self {
            TopicSelection::List(topics) => topics.iter().any(|t| t == topic),
            TopicSelection::Regex(regex) => regex.is_match(topic),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HdfsSinkConfig {
    pub topics: TopicSelection,
    pub store_url: String,
    pub topics_dir: String,
    pub flush_size: u64,
    pub rotate_interval: Option<Duration>,
    pub rotate_schedule_interval: Option<Duration>,
    pub format: FileFormat,
    pub value_converter: ValueConverter,
    pub offset_pad: usize,
    pub retry_backoff: Duration,
    /// Where `rotate.schedule.interval.ms` boundaries fall (Connect's `timezone`).
    pub timezone: chrono_tz::Tz,
    /// Whether a record that cannot be written is skipped (`all`) or stops the task (`none`).
    pub errors_tolerance: ErrorsTolerance,
}

/// Connect's `errors.tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorsTolerance {
    /// A bad record fails the task, which stays FAILED until restarted (Connect's default).
    None,
    /// A bad record is skipped and counted.
    All,
}

/// Keys Connect's workers or other converters read that change nothing in what this sink
/// writes; accepted so that configs written for Connect work as they are. `logs.dir` is among
/// them: a commit here is one atomic rename of a file whose name carries its offsets, so
/// recovery needs no write-ahead log.
const INERT_KEYS: [&str; 13] = [
    "name",
    "logs.dir",
    "key.converter",
    "key.converter.schemas.enable",
    "key.converter.schema.registry.url",
    "value.converter.schema.registry.url",
    "locale",
    "shutdown.timeout.ms",
    "schema.compatibility",
    "hadoop.conf.dir",
    "hadoop.home",
    "errors.log.enable",
    "errors.log.include.messages",
];

impl HdfsSinkConfig {
    /// Reads a config given as Connect's string map; names the first offending key.
    pub fn from_map(config: &BTreeMap<String, String>) -> Result<HdfsSinkConfig> {
        let mut keys = Keys::new(config);
        let class = keys.required("connector.class")?;
        if !CONNECTOR_CLASSES.contains(&class.as_str()) {
            return Err(SluiceError::Config(format!(
                "connector.class '{class}' is not a connector Sluice runs; use 'io.confluent.connect.hdfs.HdfsSinkConnector'"
            )));
        }
        let topics = match (keys.get("topics"), keys.get("topics.regex")) {
            (Some(_), Some(_)) => {
                return Err(SluiceError::Config("set either topics or topics.regex, not both".into()));
            }
            (Some(list), None) => {
                let topics: Vec<String> =
                    list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
                if topics.is_empty() {
                    return Err(SluiceError::Config("topics is empty".into()));
                }
                TopicSelection::List(topics)
            }
            (None, Some(pattern)) => TopicSelection::Regex(
                Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| SluiceError::Config(format!("topics.regex '{pattern}' is not a valid regex: {e}")))?,
            ),
            (None, None) => return Err(SluiceError::Config("topics or topics.regex is required".into())),
        };
        let store_url = match (keys.get("store.url"), keys.get("hdfs.url")) {
            (Some(url), _) | (None, Some(url)) => url.trim_end_matches('/').to_string(),
            (None, None) => return Err(SluiceError::Config("store.url (or hdfs.url) is required".into())),
        };
        if !(store_url.starts_with("hdfs://") || store_url.starts_with("file:///")) {
            return Err(SluiceError::Config(format!(
                "store.url (or hdfs.url) '{store_url}' must be hdfs://host:port or file:///path"
            )));
        }
        let flush_size = keys.number("flush.size")?.ok_or_else(|| {
            SluiceError::Config("flush.size is required: the number of records per file".into())
        })?;
        if flush_size < 1 {
            return Err(SluiceError::Config("flush.size must be at least 1".into()));
        }
        let rotate_interval = keys.interval("rotate.interval.ms")?;
        let rotate_schedule_interval = keys.interval("rotate.schedule.interval.ms")?;
        let timezone = match keys.get("timezone") {
            Some(name) => name.parse::<chrono_tz::Tz>().map_err(|_| {
                SluiceError::Config(format!("timezone '{name}' is not a time zone of the tz database (e.g. UTC, Europe/Berlin)"))
            })?,
            None if rotate_schedule_interval.is_some() => {
                return Err(SluiceError::Config("rotate.schedule.interval.ms requires timezone (e.g. UTC)".into()));
            }
            None => chrono_tz::UTC,
        };
        let format = match keys.get("format.class").as_deref() {
            Some("io.confluent.connect.hdfs.json.JsonFormat") => FileFormat::Json,
            Some("io.confluent.connect.hdfs.string.StringFormat") => FileFormat::String,
            Some("io.confluent.connect.hdfs.parquet.ParquetFormat") => FileFormat::Parquet,
            Some(other) => {
                return Err(SluiceError::Config(format!(
                    "format.class '{other}' is not supported; use io.confluent.connect.hdfs.json.JsonFormat, io.confluent.connect.hdfs.string.StringFormat or io.confluent.connect.hdfs.parquet.ParquetFormat"
                )));
            }
            None => {
                return Err(SluiceError::Config(
                    "format.class is required (Connect's default, AvroFormat, is not supported): use io.confluent.connect.hdfs.json.JsonFormat, io.confluent.connect.hdfs.string.StringFormat or io.confluent.connect.hdfs.parquet.ParquetFormat".into(),
                ));
            }
        };
        let schemas = keys.boolean("value.converter.schemas.enable")?;
        let value_converter = match keys.get("value.converter").as_deref() {
            Some("org.apache.kafka.connect.json.JsonConverter") => ValueConverter::Json {
                schemas: schemas.unwrap_or(true),
            },
            None => ValueConverter::Json {
                schemas: schemas.unwrap_or(false),
            },
            Some("org.apache.kafka.connect.storage.StringConverter") => ValueConverter::String,
            Some("org.apache.kafka.connect.converters.ByteArrayConverter") => ValueConverter::ByteArray,
            Some(other) => {
                return Err(SluiceError::Config(format!(
                    "value.converter '{other}' is not supported; use org.apache.kafka.connect.json.JsonConverter, org.apache.kafka.connect.storage.StringConverter or org.apache.kafka.connect.converters.ByteArrayConverter"
                )));
            }
        };
        if let Some(class) = keys.get("partitioner.class") {
            if !class.ends_with(".partitioner.DefaultPartitioner") {
                return Err(SluiceError::NotImplemented(format!(
                    "partitioner.class '{class}'; Sluice writes the DefaultPartitioner layout (partition=<N>)"
                )));
            }
        }
        if let Some(extractor) = keys.get("timestamp.extractor") {
            if extractor != "Wallclock" {
                return Err(SluiceError::NotImplemented(format!(
                    "timestamp.extractor '{extractor}'; rotate.interval.ms is measured in wall-clock time"
                )));
            }
        }
        if keys.boolean("hive.integration")?.unwrap_or(false) {
            return Err(SluiceError::NotImplemented("hive.integration=true".into()));
        }
        let offset_pad = keys.number_in("filename.offset.zero.pad.width", 0, MAX_PAD)?.unwrap_or(10);
        // One task runs all partitions of a connector; `tasks.max` is checked, not used.
        keys.number_in("tasks.max", 1, i64::from(i32::MAX))?;
        let retry_backoff = Duration::from_millis(keys.number_in("retry.backoff.ms", 0, i64::MAX)?.unwrap_or(5000) as u64);
        let errors_tolerance = match keys.get("errors.tolerance").as_deref() {
            None | Some("none") => ErrorsTolerance::None,
            Some("all") => ErrorsTolerance::All,
            Some(other) => {
                return Err(SluiceError::Config(format!("errors.tolerance must be none or all, not '{other}'")));
            }
        };
        let parsed = HdfsSinkConfig {
            topics,
            store_url,
            topics_dir: keys.get("topics.dir").unwrap_or_else(|| "topics".into()),
            flush_size: flush_size as u64,
            rotate_interval,
            rotate_schedule_interval,
            format,
            value_converter,
            offset_pad: offset_pad as usize,
            retry_backoff,
            timezone,
            errors_tolerance,
        };
        keys.accept(&INERT_KEYS);
        keys.reject_unused("the HDFS sink")?;
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_seed_sensor_config_is_accepted_verbatim() {
        let parsed = HdfsSinkConfig::from_map(&config(&[
            ("connector.class", "io.confluent.connect.hdfs.HdfsSinkConnector"),
            ("tasks.max", "1"),
            ("topics", "SENSOR_ID_1"),
            ("hdfs.url", "hdfs://namenode:9000"),
            ("flush.size", "3"),
            ("format.class", "io.confluent.connect.hdfs.json.JsonFormat"),
            ("topics.dir", "/grid-wattage/sensor1"),
            ("key.converter", "org.apache.kafka.connect.storage.StringConverter"),
            ("value.converter", "org.apache.kafka.connect.json.JsonConverter"),
            ("key.converter.schemas.enable", "false"),
            ("value.converter.schemas.enable", "false"),
        ]))
        .unwrap();
        assert_eq!(parsed.flush_size, 3);
        assert_eq!(parsed.format, FileFormat::Json);
        assert_eq!(parsed.value_converter, ValueConverter::Json { schemas: false });
        assert_eq!(parsed.topics_dir, "/grid-wattage/sensor1");
        assert_eq!(parsed.offset_pad, 10);
        assert!(parsed.topics.matches("SENSOR_ID_1"));
    }

    #[test]
    fn errors_name_the_key() {
        let base = [
            ("connector.class", "HdfsSinkConnector"),
            ("topics", "T"),
            ("store.url", "file:///tmp/x"),
            ("format.class", "io.confluent.connect.hdfs.string.StringFormat"),
        ];
        let missing = HdfsSinkConfig::from_map(&config(&base)).unwrap_err().to_string();
        assert!(missing.contains("flush.size is required"), "{missing}");
        let mut with = base.to_vec();
        with.extend([("flush.size", "x")]);
        let invalid = HdfsSinkConfig::from_map(&config(&with)).unwrap_err().to_string();
        assert!(invalid.contains("flush.size must be a whole number"), "{invalid}");
        with.pop();
        with.extend([("flush.size", "2"), ("flush.sise", "3")]);
        let unknown = HdfsSinkConfig::from_map(&config(&with)).unwrap_err().to_string();
        assert!(unknown.contains("unknown options for the HDFS sink: flush.sise"), "{unknown}");
        let class = HdfsSinkConfig::from_map(&config(&[("connector.class", "io.example.Nope")]))
            .unwrap_err()
            .to_string();
        assert!(class.contains("connector.class 'io.example.Nope'"), "{class}");
    }

    #[test]
    fn numbers_are_range_checked_and_timezone_and_errors_tolerance_read() {
        let base = [
            ("connector.class", "HdfsSinkConnector"),
            ("topics", "T"),
            ("store.url", "file:///tmp/x"),
            ("flush.size", "1"),
            ("format.class", "io.confluent.connect.hdfs.json.JsonFormat"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            HdfsSinkConfig::from_map(&config(&pairs))
        };
        for (key, value, said) in [
            ("filename.offset.zero.pad.width", "-1", "filename.offset.zero.pad.width must be from 0 to 64, not -1"),
            ("retry.backoff.ms", "-5", "retry.backoff.ms must be at least 0, not -5"),
            ("tasks.max", "0", "tasks.max must be from 1 to"),
            ("rotate.interval.ms", "-2", "rotate.interval.ms must be -1 (off)"),
            ("timezone", "Mars/Olympus", "timezone 'Mars/Olympus'"),
            ("errors.tolerance", "some", "errors.tolerance must be none or all"),
        ] {
            let error = with(&[(key, value)]).unwrap_err().to_string();
            assert!(error.contains(said), "{key}={value}: {error}");
        }
        let parsed = with(&[("timezone", "Asia/Kolkata"), ("rotate.schedule.interval.ms", "3600000"), ("errors.tolerance", "all")]).unwrap();
        assert_eq!(parsed.timezone, chrono_tz::Asia::Kolkata);
        assert_eq!(parsed.errors_tolerance, ErrorsTolerance::All);
        assert_eq!(with(&[]).unwrap().errors_tolerance, ErrorsTolerance::None, "Connect's default");
        assert!(with(&[("rotate.schedule.interval.ms", "60000")]).unwrap_err().to_string().contains("requires timezone"));
    }

    #[test]
    fn topics_regex_matches_whole_names() {
        let parsed = HdfsSinkConfig::from_map(&config(&[
            ("connector.class", "HdfsSinkConnector"),
            ("topics.regex", "SENSOR_ID_[0-9]+"),
            ("store.url", "file:///tmp/x"),
            ("flush.size", "1"),
            ("format.class", "io.confluent.connect.hdfs.json.JsonFormat"),
        ]))
        .unwrap();
        assert!(parsed.topics.matches("SENSOR_ID_12"));
        assert!(!parsed.topics.matches("SENSOR_ID_1X"));
    }
}
