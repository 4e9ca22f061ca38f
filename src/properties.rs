//! Query and session properties as ksqlDB names them.
//!
//! ksqlDB takes a Kafka Streams, consumer or producer property with or without its
//! `ksql.streams.` prefix, and its own under `ksql.`; anything else is refused. Sluice keeps a
//! property under one canonical name — the streams ones without the prefix, the `ksql.` ones as
//! written — so `auto.offset.reset` and `ksql.streams.auto.offset.reset` are one property.
//! Sluice's own properties, which ksqlDB has no counterpart of, are named under `sluice.`.

use std::collections::BTreeMap;

use crate::error::{Result, SluiceError};

/// The prefix ksqlDB puts before Kafka Streams, consumer and producer properties.
pub const STREAMS_PREFIX: &str = "ksql.streams.";
const KSQL_PREFIX: &str = "ksql.";
const SLUICE_PREFIX: &str = "sluice.";

pub const AUTO_OFFSET_RESET: &str = "auto.offset.reset";
pub const PROCESSING_GUARANTEE: &str = "processing.guarantee";
pub const CACHE_MAX_BYTES_BUFFERING: &str = "cache.max.bytes.buffering";
pub const COLLECT_LIST_LIMIT: &str = "ksql.functions.collect_list.limit";
pub const COLLECT_SET_LIMIT: &str = "ksql.functions.collect_set.limit";
/// Put before the name of a topic a `CREATE … AS SELECT` names after its sink.
pub const OUTPUT_TOPIC_PREFIX: &str = "ksql.output.topic.name.prefix";
/// The value format of a `CREATE STREAM` or `CREATE TABLE` that names none.
pub const DEFAULT_VALUE_FORMAT: &str = "ksql.persistence.default.format.value";
/// The key format of a `CREATE STREAM` or `CREATE TABLE` that names none (else KAFKA).
pub const DEFAULT_KEY_FORMAT: &str = "ksql.persistence.default.format.key";
/// ksqlDB's switch for `LIMIT` in pull queries (on unless set `false`).
pub const PULL_LIMIT_CLAUSE_ENABLED: &str = "ksql.query.pull.limit.clause.enabled";
/// `false`: a query's sink with one value column writes it unwrapped unless it says otherwise.
pub const WRAP_SINGLE_VALUES: &str = "ksql.persistence.wrap.single.values";

/// How long (ms) an `EMIT FINAL` windowed aggregation's input must be idle before its stream
/// time moves on with the wall clock, closing windows no new record closes.
pub const WINDOW_IDLE_CLOSE_MS: &str = "sluice.window.idle.close.ms";
/// Sluice's own properties.
const SLUICE_PROPERTIES: &[&str] = &[WINDOW_IDLE_CLOSE_MS];

/// The properties Sluice acts on, with the value in force when none is set.
pub const DEFAULTS: [(&str, &str); 3] = [
    (AUTO_OFFSET_RESET, "latest"),
    (PROCESSING_GUARANTEE, "exactly_once"),
    (CACHE_MAX_BYTES_BUFFERING, "10485760"),
];

/// Whether an aggregation emits every update (`cache.max.bytes.buffering` 0) rather than the
/// latest per group per batch.
pub fn per_record_updates(properties: &BTreeMap<String, String>) -> bool {
    properties.get(CACHE_MAX_BYTES_BUFFERING).is_some_and(|v| v.trim() == "0")
}

/// Whether a pull query may have a `LIMIT` (`ksql.query.pull.limit.clause.enabled`).
pub fn pull_limit_enabled(properties: &BTreeMap<String, String>) -> bool {
    properties.get(PULL_LIMIT_CLAUSE_ENABLED).is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"))
}

/// How long an `EMIT FINAL` windowed aggregation waits on idle input before the wall clock
/// moves its stream time (`sluice.window.idle.close.ms`); none when not set.
pub fn window_idle_close(properties: &BTreeMap<String, String>) -> Option<std::time::Duration> {
    properties.get(WINDOW_IDLE_CLOSE_MS).and_then(|v| v.trim().parse().ok()).map(std::time::Duration::from_millis)
}

/// Kafka Streams, consumer and producer properties ksqlDB accepts; Sluice acts on those in
/// [`DEFAULTS`] and accepts the others, which tune a Java client, without effect.
const STREAMS_PROPERTIES: &[&str] = &[
    // How often Kafka Streams checks for windows to close under EMIT FINAL; Sluice checks at
    // every record.
    "__emit.interval.ms.kstreams.windowed.aggregation__",
    AUTO_OFFSET_RESET,
    PROCESSING_GUARANTEE,
    "acks",
    "auto.commit.interval.ms",
    "batch.size",
    "bootstrap.servers",
    "buffer.memory",
    "buffered.records.per.partition",
    CACHE_MAX_BYTES_BUFFERING,
    "client.id",
    "commit.interval.ms",
    "compression.type",
    "connections.max.idle.ms",
    "default.deserialization.exception.handler",
    "default.production.exception.handler",
    "default.timestamp.extractor",
    "delivery.timeout.ms",
    "enable.auto.commit",
    "enable.idempotence",
    "fetch.max.bytes",
    "fetch.max.wait.ms",
    "fetch.min.bytes",
    "heartbeat.interval.ms",
    "isolation.level",
    "linger.ms",
    "max.in.flight.requests.per.connection",
    "max.partition.fetch.bytes",
    "max.poll.interval.ms",
    "max.poll.records",
    "max.request.size",
    "max.task.idle.ms",
    "metadata.max.age.ms",
    "num.standby.replicas",
    "num.stream.threads",
    "poll.ms",
    "receive.buffer.bytes",
    "replication.factor",
    "request.timeout.ms",
    "retries",
    "retry.backoff.ms",
    "security.protocol",
    "send.buffer.bytes",
    "session.timeout.ms",
    "state.dir",
    "statestore.cache.max.bytes",
    "task.timeout.ms",
    "topology.optimization",
    "transaction.timeout.ms",
];

/// The canonical name of property `name`, or ksqlDB's refusal.
pub fn resolve(name: &str) -> Result<String> {
    let bare = name.strip_prefix(STREAMS_PREFIX).unwrap_or(name);
    let client = bare
        .strip_prefix("consumer.")
        .or_else(|| bare.strip_prefix("producer."))
        .unwrap_or(bare);
    if STREAMS_PROPERTIES.contains(&client) {
        return Ok(bare.to_string());
    }
    if name.starts_with(KSQL_PREFIX) && !name.starts_with(STREAMS_PREFIX) {
        return Ok(name.to_string());
    }
    if name.starts_with(SLUICE_PREFIX) {
        return match SLUICE_PROPERTIES.contains(&name) {
            true => Ok(name.to_string()),
            false => Err(SluiceError::Plan(format!(
                "Not a Sluice property: '{name}'; Sluice's own properties are {}",
                SLUICE_PROPERTIES.join(", ")
            ))),
        };
    }
    Err(SluiceError::Plan(format!(
        "Not recognizable as ksql, streams, consumer, or producer property: '{name}'"
    )))
}

/// Checks a value of a property Sluice acts on.
pub fn check_value(name: &str, value: &str) -> Result<()> {
    let allowed: &[&str] = match name {
        AUTO_OFFSET_RESET => &["latest", "earliest"],
        PROCESSING_GUARANTEE => &["at_least_once", "exactly_once", "exactly_once_beta", "exactly_once_v2"],
        COLLECT_LIST_LIMIT | COLLECT_SET_LIMIT if value.trim().parse::<i32>().is_err() => {
            return Err(SluiceError::Plan(format!("Invalid value {value} for configuration {name}: Not a number of type INT")));
        }
        WINDOW_IDLE_CLOSE_MS => {
            return match value.trim().parse::<i64>() {
                Ok(ms) if ms >= 0 => Ok(()),
                Ok(_) => Err(SluiceError::Plan(format!("Invalid value {value} for configuration {name}: Value must be at least 0"))),
                Err(_) => Err(SluiceError::Plan(format!("Invalid value {value} for configuration {name}: Not a number of type LONG"))),
            };
        }
        _ => return Ok(()),
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(value)) {
        Ok(())
    } else {
        Err(SluiceError::Plan(format!(
            "Invalid value {value} for configuration {name}: String must be one of: {}",
            allowed.join(", ")
        )))
    }
}

/// Resolves and checks every property of a request or a `SET`.
pub fn normalize(properties: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    properties
        .iter()
        .map(|(name, value)| {
            let name = resolve(name)?;
            check_value(&name, value)?;
            Ok((name, value.clone()))
        })
        .collect()
}

/// `SET 'name' = 'value'`: resolves and checks the property, then sets it.
pub fn set(properties: &mut BTreeMap<String, String>, name: &str, value: &str) -> Result<()> {
    let name = resolve(name)?;
    check_value(&name, value)?;
    properties.insert(name, value.to_string());
    Ok(())
}

/// `UNSET 'name'`.
pub fn unset(properties: &mut BTreeMap<String, String>, name: &str) -> Result<()> {
    properties.remove(&resolve(name)?);
    Ok(())
}

/// The name ksqlDB shows for a canonical name: streams properties with their prefix.
pub fn display_name(name: &str) -> String {
    if name.starts_with(KSQL_PREFIX) || name.starts_with(SLUICE_PREFIX) {
        name.to_string()
    } else {
        format!("{STREAMS_PREFIX}{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streams_property_is_one_property_with_and_without_its_prefix() {
        assert_eq!(resolve("ksql.streams.auto.offset.reset").unwrap(), "auto.offset.reset");
        assert_eq!(resolve("auto.offset.reset").unwrap(), "auto.offset.reset");
        assert_eq!(resolve("ksql.streams.producer.linger.ms").unwrap(), "producer.linger.ms");
        assert_eq!(display_name("auto.offset.reset"), "ksql.streams.auto.offset.reset");
    }

    #[test]
    fn ksql_properties_are_kept_as_written() {
        assert_eq!(resolve("ksql.query.pull.table.scan.enabled").unwrap(), "ksql.query.pull.table.scan.enabled");
        assert_eq!(display_name("ksql.service.id"), "ksql.service.id");
    }

    #[test]
    fn an_unknown_property_is_refused_with_ksqldbs_message() {
        let error = resolve("auto.offset.rest").unwrap_err().to_string();
        assert_eq!(error, "Not recognizable as ksql, streams, consumer, or producer property: 'auto.offset.rest'");
        assert!(resolve("ksql.streams.no.such.thing").is_err());
    }

    #[test]
    fn sluice_properties_are_named_under_their_own_prefix_and_checked() {
        assert_eq!(resolve(WINDOW_IDLE_CLOSE_MS).unwrap(), WINDOW_IDLE_CLOSE_MS);
        assert_eq!(display_name(WINDOW_IDLE_CLOSE_MS), WINDOW_IDLE_CLOSE_MS);
        assert!(resolve("sluice.window.idle.close").unwrap_err().to_string().contains(WINDOW_IDLE_CLOSE_MS));
        assert!(check_value(WINDOW_IDLE_CLOSE_MS, "-1").unwrap_err().to_string().contains("at least 0"));
        assert!(check_value(WINDOW_IDLE_CLOSE_MS, "soon").unwrap_err().to_string().contains("LONG"));
        let set = BTreeMap::from([(WINDOW_IDLE_CLOSE_MS.to_string(), "1500".to_string())]);
        assert_eq!(window_idle_close(&set), Some(std::time::Duration::from_millis(1500)));
        assert_eq!(window_idle_close(&BTreeMap::new()), None);
    }

    #[test]
    fn values_of_acted_on_properties_are_checked() {
        let mut request = BTreeMap::new();
        request.insert("ksql.streams.auto.offset.reset".to_string(), "Earliest".to_string());
        assert_eq!(normalize(&request).unwrap()["auto.offset.reset"], "Earliest");
        request.insert("processing.guarantee".to_string(), "twice".to_string());
        assert!(normalize(&request).unwrap_err().to_string().contains("processing.guarantee"));
    }
}
