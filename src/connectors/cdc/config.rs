//! Debezium's PostgreSQL connector keys (`PostgresConnectorConfig`), read and checked; the
//! `pgoutput` plugin only.

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
pub const CONNECTOR_CLASS: &str = "io.debezium.connector.postgresql.PostgresConnector";

/// Whether `class` names this connector.
pub fn is_connector_class(class: &str) -> bool {
    class == CONNECTOR_CLASS || class == "PostgresConnector"
}

/// When the tables' existing rows are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// On the first start, then changes.
    Initial,
    /// On every start, then changes.
    Always,
    /// On the first start, and no changes after.
    InitialOnly,
    /// Never: changes from the slot's position on (`no_data`, formerly `never`).
    NoData,
}

/// How the publication the slot decodes through is made when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicationAutocreate {
    AllTables,
    /// Over the tables the include and exclude lists select.
    Filtered,
    /// Never: it must exist.
    Disabled,
}

#[derive(Debug, Clone)]
pub struct CdcConfig {
    pub connection: JdbcUrl,
    pub database: String,
    pub prefix: String,
    pub slot: String,
    pub publication: String,
    pub publication_autocreate: PublicationAutocreate,
    pub snapshot_mode: SnapshotMode,
    pub schema_include: Vec<Regex>,
    pub schema_exclude: Vec<Regex>,
    pub table_include: Vec<Regex>,
    pub table_exclude: Vec<Regex>,
    pub tombstones_on_delete: bool,
    pub poll_interval: Duration,
    pub max_batch_size: usize,
    pub retry_delay: Duration,
    pub key_schemas: bool,
    pub value_schemas: bool,
}

/// Keys Connect's workers read, or Debezium's that change nothing here.
const INERT_KEYS: [&str; 9] = [
    "name",
    "tasks.max",
    "key.converter",
    "value.converter",
    "database.server.id",
    "slot.drop.on.stop",
    "heartbeat.interval.ms",
    "errors.log.enable",
    "errors.log.include.messages",
];

/// `key`'s comma-separated anchored patterns; none when it is not set.
fn patterns(keys: &mut Keys, key: &str) -> Result<Vec<Regex>> {
    anchored_patterns(key, &keys.get(key).unwrap_or_default())
}

impl CdcConfig {
    /// Reads a config given as Connect's string map; names the first offending key.
    pub fn from_map(config: &BTreeMap<String, String>) -> Result<CdcConfig> {
        let mut keys = Keys::new(config);
        let class = keys.required("connector.class")?;
        if !is_connector_class(&class) {
            return Err(SluiceError::Config(format!("connector.class '{class}' is not {CONNECTOR_CLASS}")));
        }
        match keys.get("plugin.name").as_deref() {
            None | Some("pgoutput") => {}
            Some(other) => {
                return Err(SluiceError::Config(format!(
                    "plugin.name '{other}': Sluice decodes changes with PostgreSQL's built-in pgoutput only; set plugin.name=pgoutput"
                )));
            }
        }
        let host = keys.required("database.hostname")?;
        let port = keys.number_in("database.port", 1, 65535)?.unwrap_or(5432);
        let database = keys.required("database.dbname")?;
        let mut connection = JdbcUrl::parse(&format!("jdbc:postgresql://{host}:{port}/{database}"))?;
        connection.set_user(&keys.required("database.user")?);
        if let Some(password) = keys.get("database.password") {
            connection.set_password(&password);
        }
        let prefix = match (keys.get("topic.prefix"), keys.get("database.server.name")) {
            (Some(prefix), _) | (None, Some(prefix)) if !prefix.is_empty() => prefix,
            _ => return Err(SluiceError::Config("topic.prefix is required".into())),
        };
        let snapshot_mode = match keys.get("snapshot.mode").as_deref() {
            None | Some("initial") => SnapshotMode::Initial,
            Some("always") => SnapshotMode::Always,
            Some("initial_only") => SnapshotMode::InitialOnly,
            Some("no_data") | Some("never") => SnapshotMode::NoData,
            Some(other) => {
                return Err(SluiceError::Config(format!(
                    "snapshot.mode '{other}' is not supported; Sluice takes initial, always, initial_only and no_data (never)"
                )));
            }
        };
        let publication_autocreate = match keys.get("publication.autocreate.mode").as_deref() {
            None | Some("all_tables") => PublicationAutocreate::AllTables,
            Some("filtered") => PublicationAutocreate::Filtered,
            Some("disabled") => PublicationAutocreate::Disabled,
            Some(other) => {
                return Err(SluiceError::Config(format!(
                    "publication.autocreate.mode must be all_tables, filtered or disabled, not '{other}'"
                )));
            }
        };
        let converter_schemas = |keys: &mut Keys, side: &str| -> Result<bool> {
            Ok(keys.boolean(&format!("{side}.converter.schemas.enable"))?.unwrap_or(true))
        };
        let parsed = CdcConfig {
            connection,
            database,
            slot: keys.get("slot.name").unwrap_or_else(|| "debezium".into()),
            publication: keys.get("publication.name").unwrap_or_else(|| "dbz_publication".into()),
            publication_autocreate,
            snapshot_mode,
            schema_include: patterns(&mut keys, "schema.include.list")?,
            schema_exclude: patterns(&mut keys, "schema.exclude.list")?,
            table_include: patterns(&mut keys, "table.include.list")?,
            table_exclude: patterns(&mut keys, "table.exclude.list")?,
            tombstones_on_delete: keys.boolean("tombstones.on.delete")?.unwrap_or(true),
            poll_interval: Duration::from_millis(keys.number_in("poll.interval.ms", 1, i64::MAX)?.unwrap_or(500) as u64),
            max_batch_size: keys.number_in("max.batch.size", 1, i64::MAX)?.unwrap_or(2048) as usize,
            retry_delay: Duration::from_millis(keys.number_in("retriable.restart.connector.wait.ms", 1, i64::MAX)?.unwrap_or(10_000) as u64),
            key_schemas: converter_schemas(&mut keys, "key")?,
            value_schemas: converter_schemas(&mut keys, "value")?,
            prefix,
        };
        if !parsed.slot.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            return Err(SluiceError::Config(format!(
                "slot.name '{}': PostgreSQL's slot names hold lower-case letters, digits and underscores only",
                parsed.slot
            )));
        }
        keys.accept(&INERT_KEYS);
        keys.reject_unused("the Debezium PostgreSQL source")?;
        Ok(parsed)
    }

    /// Whether the table `schema`.`table` is captured.
    pub fn captures(&self, schema: &str, table: &str) -> bool {
        let qualified = format!("{schema}.{table}");
        let matches = |patterns: &[Regex], text: &str| patterns.iter().any(|p| p.is_match(text));
        (self.schema_include.is_empty() || matches(&self.schema_include, schema))
            && !matches(&self.schema_exclude, schema)
            && (self.table_include.is_empty() || matches(&self.table_include, &qualified))
            && !matches(&self.table_exclude, &qualified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &[(&str, &str)]) -> Result<CdcConfig> {
        let mut map: BTreeMap<String, String> = [
            ("connector.class", CONNECTOR_CLASS),
            ("database.hostname", "127.0.0.1"),
            ("database.port", "5432"),
            ("database.user", "root"),
            ("database.password", "pwd1234"),
            ("database.dbname", "telemetry"),
            ("topic.prefix", "grid"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            map.insert(k.to_string(), v.to_string());
        }
        CdcConfig::from_map(&map)
    }

    #[test]
    fn debeziums_defaults() {
        let parsed = config(&[]).unwrap();
        assert_eq!(parsed.slot, "debezium");
        assert_eq!(parsed.publication, "dbz_publication");
        assert_eq!(parsed.snapshot_mode, SnapshotMode::Initial);
        assert!(parsed.tombstones_on_delete && parsed.key_schemas && parsed.value_schemas);
        assert!(parsed.captures("public", "telemetry"));
    }

    #[test]
    fn include_and_exclude_lists_are_anchored() {
        let parsed = config(&[("table.include.list", "public.tele.*"), ("table.exclude.list", "public.telemetry_old")]).unwrap();
        assert!(parsed.captures("public", "telemetry"));
        assert!(!parsed.captures("public", "telemetry_old"));
        assert!(!parsed.captures("other", "telemetry"));
        assert!(!parsed.captures("public", "xtelemetry"));
    }

    #[test]
    fn what_cannot_run_is_refused_by_key() {
        let refused = |extra: &[(&str, &str)]| config(extra).unwrap_err().to_string();
        assert!(refused(&[("plugin.name", "decoderbufs")]).contains("pgoutput"));
        assert!(refused(&[("snapshot.mode", "custom")]).contains("snapshot.mode"));
        assert!(refused(&[("slot.name", "Bad-Slot")]).contains("slot.name"));
        assert!(refused(&[("table.include.list", "(")]).contains("table.include.list"));
        assert!(refused(&[("colour", "blue")]).contains("colour"));
        let mut map = BTreeMap::new();
        map.insert("connector.class".to_string(), CONNECTOR_CLASS.to_string());
        assert!(CdcConfig::from_map(&map).unwrap_err().to_string().contains("database.hostname"));
    }
}
