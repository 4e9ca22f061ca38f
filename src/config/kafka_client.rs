//! How every Kafka client of the server reaches a secured cluster: `security.protocol`, SASL
//! and TLS settings read under librdkafka's names, bare or with ksqlDB's `ksql.streams.` prefix,
//! Java's `sasl.jaas.config` translated into a user and password, Java keystores refused with
//! the conversion to use.

use std::collections::BTreeMap;

use crate::error::{Result, SluiceError};

/// ksqlDB's prefix for settings passed on to Kafka clients.
const STREAMS_PREFIX: &str = "ksql.streams.";

/// Keys read bare: they do not clash with the listener's `ssl.*` keys.
const BARE_KEYS: [&str; 10] = [
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.endpoint.identification.algorithm",
];

/// Keys read only with the `ksql.streams.` prefix, where bare they set up the listener.
const PREFIXED_ONLY_KEYS: [&str; 5] =
    ["ssl.key.password", "ssl.truststore.location", "ssl.truststore.type", "ssl.keystore.location", "ssl.keystore.password"];

/// The librdkafka properties the settings come to, added to every client's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KafkaClientSecurity {
    pub properties: BTreeMap<String, String>,
}

/// The name a key of the properties file has among the Kafka client's settings, if it is one.
pub fn client_key(key: &str) -> Option<&str> {
    match key.strip_prefix(STREAMS_PREFIX) {
        Some(bare) if BARE_KEYS.contains(&bare) || PREFIXED_ONLY_KEYS.contains(&bare) => Some(bare),
        Some(_) => None,
        None => BARE_KEYS.contains(&key).then_some(key),
    }
}

fn refuse(message: String) -> SluiceError {
    SluiceError::Config(message)
}

/// The user and password of a `PlainLoginModule` or `ScramLoginModule` JAAS line.
fn jaas_credentials(jaas: &str) -> Result<(String, String)> {
    let module = jaas.split_whitespace().next().unwrap_or_default();
    if !module.ends_with(".PlainLoginModule") && !module.ends_with(".ScramLoginModule") {
        return Err(refuse(format!(
            "sasl.jaas.config: '{module}' has no librdkafka equivalent; Sluice takes PlainLoginModule and ScramLoginModule, or sasl.username and sasl.password"
        )));
    }
    let option = |name: &str| {
        let start = jaas.find(&format!("{name}=\""))? + name.len() + 2;
        let length = jaas[start..].find('"')?;
        Some(jaas[start..start + length].to_string())
    };
    match (option("username"), option("password")) {
        (Some(user), Some(password)) => Ok((user, password)),
        _ => Err(refuse("sasl.jaas.config needs username=\"…\" and password=\"…\"".into())),
    }
}

impl KafkaClientSecurity {
    /// Reads the client keys (as [`client_key`] names them) of the properties file.
    pub fn from_keys(keys: &BTreeMap<String, String>) -> Result<KafkaClientSecurity> {
        let mut properties = BTreeMap::new();
        for (key, value) in keys {
            let value = value.trim().to_string();
            match key.as_str() {
                "security.protocol" => {
                    let protocol = value.to_ascii_lowercase();
                    if !["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"].contains(&protocol.as_str()) {
                        return Err(refuse(format!("security.protocol: '{value}' is none of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")));
                    }
                    properties.insert(key.clone(), protocol);
                }
                "sasl.mechanism" | "sasl.mechanisms" => {
                    let mechanism = value.to_ascii_uppercase();
                    if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&mechanism.as_str()) {
                        return Err(refuse(format!(
                            "{key}: '{value}' is not built in; Sluice's Kafka clients speak PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512"
                        )));
                    }
                    properties.insert("sasl.mechanism".into(), mechanism);
                }
                "sasl.jaas.config" => {
                    let (user, password) = jaas_credentials(&value)?;
                    properties.entry("sasl.username".into()).or_insert(user);
                    properties.entry("sasl.password".into()).or_insert(password);
                }
                "ssl.truststore.type" | "ssl.truststore.location" => {}
                "ssl.keystore.location" | "ssl.keystore.password" => {
                    return Err(refuse(format!(
                        "ksql.streams.{key}: give the Kafka client's certificate as PEM with ssl.certificate.location and ssl.key.location \
                         (`openssl pkcs12 -in store.p12 -nodes` converts a PKCS12 store; `keytool -importkeystore -deststoretype PKCS12` a JKS one)"
                    )));
                }
                "ssl.endpoint.identification.algorithm" => {
                    let algorithm = value.to_ascii_lowercase();
                    let algorithm = if algorithm.is_empty() { "none".to_string() } else { algorithm };
                    if algorithm != "https" && algorithm != "none" {
                        return Err(refuse(format!("ssl.endpoint.identification.algorithm: '{value}' is neither https nor none")));
                    }
                    properties.insert(key.clone(), algorithm);
                }
                _ => {
                    properties.insert(key.clone(), value);
                }
            }
        }
        if let Some(truststore) = keys.get("ssl.truststore.location") {
            match keys.get("ssl.truststore.type").map(|t| t.trim().to_ascii_uppercase()) {
                Some(kind) if kind == "PEM" => {
                    properties.entry("ssl.ca.location".into()).or_insert_with(|| truststore.trim().to_string());
                }
                _ => {
                    return Err(refuse(
                        "ksql.streams.ssl.truststore.location: librdkafka reads PEM authorities only; set ksql.streams.ssl.truststore.type=PEM \
                         or ssl.ca.location (`keytool -exportcert -rfc -keystore truststore.jks -alias <alias>` writes one out)"
                            .into(),
                    ));
                }
            }
        }
        let protocol = properties.get("security.protocol").map_or_else(|| "plaintext".to_string(), Clone::clone);
        let sasl = protocol.starts_with("sasl_");
        if sasl && !(properties.contains_key("sasl.username") && properties.contains_key("sasl.password")) {
            return Err(refuse(format!(
                "security.protocol={} needs sasl.username and sasl.password (or sasl.jaas.config)",
                protocol.to_ascii_uppercase()
            )));
        }
        if sasl && !properties.contains_key("sasl.mechanism") {
            properties.insert("sasl.mechanism".into(), "PLAIN".into());
        }
        if let Some(key) = properties.keys().find(|k| k.starts_with("sasl.")).filter(|_| !sasl) {
            return Err(refuse(format!("{key} is set but security.protocol is {}, without SASL", protocol.to_ascii_uppercase())));
        }
        if let Some(key) = properties.keys().find(|k| k.starts_with("ssl.")).filter(|_| !protocol.ends_with("ssl")) {
            return Err(refuse(format!("{key} is set but security.protocol is {}, without TLS", protocol.to_ascii_uppercase())));
        }
        Ok(KafkaClientSecurity { properties })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<KafkaClientSecurity> {
        let keys = pairs
            .iter()
            .map(|(k, v)| (client_key(k).unwrap_or_else(|| panic!("{k} is a client key")).to_string(), v.to_string()))
            .collect();
        KafkaClientSecurity::from_keys(&keys)
    }

    fn properties(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        read(pairs).unwrap().properties.into_iter().collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn sasl_over_tls_is_read_under_librdkafkas_or_ksqldbs_names() {
        assert_eq!(
            properties(&[
                ("security.protocol", "SASL_SSL"),
                ("sasl.mechanism", "scram-sha-512"),
                ("sasl.username", "grid"),
                ("sasl.password", "s3cret"),
                ("ssl.ca.location", "/etc/kafka/ca.pem"),
            ]),
            pairs(&[
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.password", "s3cret"),
                ("sasl.username", "grid"),
                ("security.protocol", "sasl_ssl"),
                ("ssl.ca.location", "/etc/kafka/ca.pem"),
            ])
        );
        assert_eq!(
            properties(&[
                ("ksql.streams.security.protocol", "SASL_PLAINTEXT"),
                (
                    "ksql.streams.sasl.jaas.config",
                    r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="grid" password="s3cret";"#,
                ),
            ]),
            pairs(&[("sasl.mechanism", "PLAIN"), ("sasl.password", "s3cret"), ("sasl.username", "grid"), ("security.protocol", "sasl_plaintext")])
        );
        assert_eq!(
            properties(&[
                ("security.protocol", "SSL"),
                ("ksql.streams.ssl.truststore.location", "/etc/kafka/ca.pem"),
                ("ksql.streams.ssl.truststore.type", "PEM"),
                ("ssl.certificate.location", "/etc/kafka/me.pem"),
                ("ssl.key.location", "/etc/kafka/me.key"),
                ("ksql.streams.ssl.key.password", "k3y"),
                ("ssl.endpoint.identification.algorithm", ""),
            ]),
            pairs(&[
                ("security.protocol", "ssl"),
                ("ssl.ca.location", "/etc/kafka/ca.pem"),
                ("ssl.certificate.location", "/etc/kafka/me.pem"),
                ("ssl.endpoint.identification.algorithm", "none"),
                ("ssl.key.location", "/etc/kafka/me.key"),
                ("ssl.key.password", "k3y"),
            ])
        );
        assert_eq!(read(&[]).unwrap(), KafkaClientSecurity::default());
    }

    #[test]
    fn what_librdkafka_cannot_take_is_refused_with_the_way_out() {
        let refused = |pairs: &[(&str, &str)]| read(pairs).unwrap_err().to_string();
        assert!(refused(&[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "GSSAPI")]).contains("not built in"));
        assert!(refused(&[("security.protocol", "SASL_SSL")]).contains("needs sasl.username"));
        assert!(refused(&[("security.protocol", "SASL_PLAINTEXT"), ("sasl.jaas.config", "com.sun.security.auth.module.Krb5LoginModule required;")])
            .contains("no librdkafka equivalent"));
        assert!(refused(&[("security.protocol", "SSL"), ("ksql.streams.ssl.truststore.location", "/etc/kafka/truststore.jks")]).contains("keytool -exportcert"));
        assert!(refused(&[("security.protocol", "SSL"), ("ksql.streams.ssl.keystore.location", "/etc/kafka/me.p12")]).contains("openssl pkcs12"));
        assert!(refused(&[("sasl.username", "grid")]).contains("without SASL"));
        assert!(refused(&[("ssl.ca.location", "/ca.pem")]).contains("without TLS"));
        assert!(refused(&[("security.protocol", "TLS")]).contains("none of PLAINTEXT"));
        assert_eq!(client_key("ssl.key.password"), None, "bare, it is the listener's");
        assert_eq!(client_key("ksql.streams.ssl.key.password"), Some("ssl.key.password"));
        assert_eq!(client_key("ksql.streams.cache.max.bytes.buffering"), None);
    }
}
