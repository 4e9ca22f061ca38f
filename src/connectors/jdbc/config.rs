//! The Confluent JDBC source connector's keys (`JdbcSourceConnectorConfig`), read and checked;
//! PostgreSQL URLs only.

use std::{collections::BTreeMap, time::Duration};

use regex::Regex;

use crate::{
    connectors::{
        config_keys::{Keys, anchored_patterns},
        postgres::JdbcUrl,
    },
    error::{Result, SluiceError},
};

/// The class name this connector answers to.
pub const CONNECTOR_CLASS: &str = "io.confluent.connect.jdbc.JdbcSourceConnector";

/// Whether `class` names this connector (Connect also takes its short name).
pub fn is_connector_class(class: &str) -> bool {
    class == CONNECTOR_CLASS || class == "JdbcSourceConnector"
}

/// How new rows are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The whole table on every poll.
    Bulk,
    /// Rows whose strictly increasing column is past the last one read.
    Incrementing { column: String },
    /// Rows whose timestamp (the first non-NULL of `columns`) is past the last one read.
    Timestamp { columns: Vec<String> },
    /// Both: a timestamp, ties broken by the incrementing column.
    TimestampIncrementing { columns: Vec<String>, incrementing: String },
}

/// Which tables, or a query.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Table names, schema-qualified or not (`table.whitelist`).
    Names(Vec<String>),
    /// Anchored patterns over `schema.table` (`table.include.list`), less `table.exclude.list`.
    Patterns { include: Vec<Regex>, exclude: Vec<Regex> },
    /// Every table but these (`table.blacklist`).
    AllBut(Vec<String>),
    /// A custom SELECT; its rows go to the topic `topic.prefix`.
    Query(String),
}

/// What the values of DECIMAL (NUMERIC) columns become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericMapping {
    /// Connect's `Decimal` (bytes of the unscaled value) — the connector's default.
    None,
    /// Integers for scale 0, else `Decimal`.
    PrecisionOnly,
    /// Integers for scale 0, doubles otherwise.
    BestFit,
}

#[derive(Debug, Clone)]
pub struct JdbcSourceConfig {
    pub connection: JdbcUrl,
    pub connection_attempts: u32,
    pub connection_backoff: Duration,
    pub selection: Selection,
    pub mode: Mode,
    /// Epoch milliseconds where timestamp modes start; `None` is the epoch.
    pub timestamp_initial: Option<i64>,
    pub timestamp_delay: Duration,
    pub topic_prefix: String,
    pub poll_interval: Duration,
    pub batch_max_rows: usize,
    pub table_poll_interval: Duration,
    pub numeric_mapping: NumericMapping,
    /// `value.converter.schemas.enable`: values in JsonConverter's schema envelope.
    pub value_schemas: bool,
    /// ksqlDB's `key`: the column whose value is each record's key.
    pub key_column: Option<String>,
}

/// Keys Connect's workers read, or this connector's that change nothing here.
const INERT_KEYS: [&str; 12] = [
    "name",
    "tasks.max",
    "key.converter",
    "key.converter.schemas.enable",
    "value.converter.schema.registry.url",
    "dialect.name",
    "quote.sql.identifiers",
    "validate.non.null",
    "table.types",
    "transaction.isolation.mode",
    "errors.log.enable",
    "errors.log.include.messages",
];

impl JdbcSourceConfig {
    /// Reads a config given as Connect's string map; names the first offending key.
    pub fn from_map(config: &BTreeMap<String, String>) -> Result<JdbcSourceConfig> {
        let mut keys = Keys::new(config);
        let class = keys.required("connector.class")?;
        if !is_connector_class(&class) {
            return Err(SluiceError::Config(format!("connector.class '{class}' is not {CONNECTOR_CLASS}")));
        }
        let mut connection = JdbcUrl::parse(&keys.required("connection.url")?)?;
        if let Some(user) = keys.get("connection.user") {
            connection.set_user(&user);
        }
        if let Some(password) = keys.get("connection.password") {
            connection.set_password(&password);
        }
        let selection = selection(&mut keys)?;
        let mode = mode(&mut keys)?;
        let numeric_mapping = match keys.get("numeric.mapping").as_deref() {
            None | Some("none") => NumericMapping::None,
            Some("precision_only") => NumericMapping::PrecisionOnly,
            Some("best_fit") | Some("best_fit_eager_double") => NumericMapping::BestFit,
            Some(other) => {
                return Err(SluiceError::Config(format!(
                    "numeric.mapping must be none, precision_only or best_fit, not '{other}'"
                )));
            }
        };
        if keys.boolean("numeric.precision.mapping")? == Some(true) && numeric_mapping == NumericMapping::None {
            return Err(SluiceError::Config("numeric.precision.mapping is replaced by numeric.mapping=precision_only".into()));
        }
        match keys.get("value.converter").as_deref() {
            None | Some("org.apache.kafka.connect.json.JsonConverter") => {}
            Some(other) => {
                return Err(SluiceError::Config(format!(
                    "value.converter '{other}' is not supported; use org.apache.kafka.connect.json.JsonConverter"
                )));
            }
        }
        if let Some(zone) = keys.get("db.timezone")
            && zone != "UTC"
        {
            return Err(SluiceError::Config(format!("db.timezone '{zone}' is not supported yet; only UTC is")));
        }
        if let Some(transforms) = keys.get("transforms") {
            return Err(SluiceError::Config(format!(
                "transforms ({transforms}) are not supported yet; ksqlDB's 'key' sets the record key"
            )));
        }
        let positive = |keys: &mut Keys, key: &str, default: i64| -> Result<i64> {
            Ok(keys.number_in(key, 1, i64::MAX)?.unwrap_or(default))
        };
        let parsed = JdbcSourceConfig {
            connection,
            connection_attempts: positive(&mut keys, "connection.attempts", 3)? as u32,
            connection_backoff: Duration::from_millis(positive(&mut keys, "connection.backoff.ms", 10_000)? as u64),
            timestamp_initial: keys.number("timestamp.initial")?,
            timestamp_delay: Duration::from_millis(keys.number_in("timestamp.delay.interval.ms", 0, i64::MAX)?.unwrap_or(0) as u64),
            topic_prefix: keys.required("topic.prefix")?,
            poll_interval: Duration::from_millis(positive(&mut keys, "poll.interval.ms", 5_000)? as u64),
            batch_max_rows: positive(&mut keys, "batch.max.rows", 100)? as usize,
            table_poll_interval: Duration::from_millis(positive(&mut keys, "table.poll.interval.ms", 60_000)? as u64),
            numeric_mapping,
            value_schemas: keys.boolean("value.converter.schemas.enable")?.unwrap_or(true),
            key_column: keys.get("key"),
            selection,
            mode,
        };
        keys.accept(&INERT_KEYS);
        keys.reject_unused("the JDBC source")?;
        Ok(parsed)
    }
}

fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect()
}

fn selection(keys: &mut Keys) -> Result<Selection> {
    let query = keys.get("query").filter(|q| !q.is_empty());
    let whitelist = keys.get("table.whitelist");
    let blacklist = keys.get("table.blacklist");
    let include = keys.get("table.include.list");
    let exclude = keys.get("table.exclude.list");
    let legacy = whitelist.is_some() || blacklist.is_some();
    if legacy && (include.is_some() || exclude.is_some()) {
        return Err(SluiceError::Config(
            "table.whitelist/table.blacklist cannot be combined with table.include.list/table.exclude.list".into(),
        ));
    }
    if whitelist.is_some() && blacklist.is_some() {
        return Err(SluiceError::Config("table.whitelist and table.blacklist are mutually exclusive".into()));
    }
    if exclude.is_some() && include.is_none() {
        return Err(SluiceError::Config("table.exclude.list requires table.include.list".into()));
    }
    if let Some(query) = query {
        if legacy || include.is_some() {
            return Err(SluiceError::Config("query cannot be combined with a table list".into()));
        }
        return Ok(Selection::Query(query));
    }
    Ok(match (whitelist, blacklist, include) {
        (Some(names), _, _) => Selection::Names(list(&names)),
        (None, Some(names), _) => Selection::AllBut(list(&names)),
        (None, None, Some(include)) => Selection::Patterns {
            include: anchored_patterns("table.include.list", &include)?,
            exclude: exclude.map(|e| anchored_patterns("table.exclude.list", &e)).transpose()?.unwrap_or_default(),
        },
        (None, None, None) => Selection::AllBut(Vec::new()),
    })
}

fn mode(keys: &mut Keys) -> Result<Mode> {
    let incrementing = keys.get("incrementing.column.name").filter(|c| !c.is_empty());
    let timestamps = keys.get("timestamp.column.name").map(|c| list(&c)).unwrap_or_default();
    let needs = |what: &str, mode: &str| SluiceError::Config(format!("mode '{mode}' requires {what}"));
    match keys.required("mode")?.as_str() {
        "bulk" => Ok(Mode::Bulk),
        "incrementing" => Ok(Mode::Incrementing {
            column: incrementing.ok_or_else(|| needs("incrementing.column.name", "incrementing"))?,
        }),
        "timestamp" if timestamps.is_empty() => Err(needs("timestamp.column.name", "timestamp")),
        "timestamp" => Ok(Mode::Timestamp { columns: timestamps }),
        "timestamp+incrementing" if timestamps.is_empty() => Err(needs("timestamp.column.name", "timestamp+incrementing")),
        "timestamp+incrementing" => Ok(Mode::TimestampIncrementing {
            columns: timestamps,
            incrementing: incrementing.ok_or_else(|| needs("incrementing.column.name", "timestamp+incrementing"))?,
        }),
        other => Err(SluiceError::Config(format!(
            "mode must be bulk, incrementing, timestamp or timestamp+incrementing, not '{other}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> = [
            ("connector.class", CONNECTOR_CLASS),
            ("connection.url", "jdbc:postgresql://postgresql:5432/telemetry"),
            ("topic.prefix", "jdbc-"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        map.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        map
    }

    #[test]
    fn ksqldbs_documented_example_is_accepted() {
        let parsed = JdbcSourceConfig::from_map(&config(&[("mode", "bulk"), ("table.whitelist", "users"), ("key", "username")])).unwrap();
        assert_eq!(parsed.mode, Mode::Bulk);
        assert!(matches!(parsed.selection, Selection::Names(ref names) if names == &["users"]));
        assert_eq!(parsed.key_column.as_deref(), Some("username"));
        assert!(parsed.value_schemas);
    }

    #[test]
    fn modes_need_their_columns() {
        let missing = JdbcSourceConfig::from_map(&config(&[("mode", "incrementing")])).unwrap_err().to_string();
        assert!(missing.contains("mode 'incrementing' requires incrementing.column.name"), "{missing}");
        let both = JdbcSourceConfig::from_map(&config(&[
            ("mode", "timestamp+incrementing"),
            ("timestamp.column.name", "modified, created"),
            ("incrementing.column.name", "id"),
        ]))
        .unwrap();
        assert_eq!(
            both.mode,
            Mode::TimestampIncrementing { columns: vec!["modified".into(), "created".into()], incrementing: "id".into() }
        );
        let bad = JdbcSourceConfig::from_map(&config(&[("mode", "sometimes")])).unwrap_err().to_string();
        assert!(bad.contains("not 'sometimes'"), "{bad}");
    }

    #[test]
    fn conflicting_lists_and_unknown_keys_are_refused_by_name() {
        let legacy = JdbcSourceConfig::from_map(&config(&[("mode", "bulk"), ("table.whitelist", "a"), ("table.include.list", "b")]));
        assert!(legacy.unwrap_err().to_string().contains("cannot be combined"));
        let unknown = JdbcSourceConfig::from_map(&config(&[("mode", "bulk"), ("poll.intervall.ms", "5")])).unwrap_err().to_string();
        assert!(unknown.contains("unknown options for the JDBC source: poll.intervall.ms"), "{unknown}");
        let mysql = JdbcSourceConfig::from_map(&config(&[("mode", "bulk"), ("connection.url", "jdbc:mysql://h/db")]));
        assert!(mysql.unwrap_err().to_string().contains("jdbc:postgresql:"));
    }
}
