//! Server configuration: built-in defaults, then a properties file, then environment and flags.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use crate::{
    error::{Result, SluiceError},
    properties,
};

mod kafka_client;
mod tls;

pub use kafka_client::KafkaClientSecurity;
pub use tls::{ClientAuthentication, TlsProtocol, TlsSettings};

/// Everything `sluice-server` needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// `listeners=https://…`: TLS on the HTTP API's listener.
    pub tls: Option<TlsSettings>,
    /// An external Kafka cluster; `None` starts the embedded broker.
    pub bootstrap_servers: Option<String>,
    /// How every Kafka client reaches a secured cluster (`security.protocol`, SASL, TLS).
    pub kafka_security: KafkaClientSecurity,
    /// Where the embedded broker listens when it is used.
    pub broker_listen: SocketAddr,
    /// Names the command topic and query groups, like `ksql.service.id`.
    pub service_id: String,
    /// Holds the embedded broker's log and any local state.
    pub data_dir: PathBuf,
    /// Push queries running at once before another is refused, like `ksql.max.push.queries`.
    pub max_push_queries: usize,
    /// The largest request body the HTTP API reads; a larger one gets 413.
    pub max_request_bytes: usize,
    /// `authentication.method=BASIC`: who may use the HTTP API. `None` lets anyone.
    pub authentication: Option<BasicAuthentication>,
    /// `ksql.functions.collect_list.limit` and `ksql.functions.collect_set.limit`: settings of
    /// the functions every query starts from, which a request's properties override.
    pub function_properties: BTreeMap<String, String>,
    /// `ksql.advertised.listener`: the URL the service's other servers and clients reach this
    /// one at, and its name among them; by default the listener's.
    pub advertised_listener: Option<String>,
    /// `sluice.cluster.session.timeout.ms`: how long a server of the service may go without a
    /// heartbeat before its share of the queries is taken over.
    pub session_timeout: Duration,
}

/// ksqlDB's HTTP Basic authentication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuthentication {
    /// `authentication.realm`: the JAAS section naming the password file.
    pub realm: String,
    /// `authentication.roles`: the roles that may use the API (`*`: any user).
    pub roles: Vec<String>,
    /// `authentication.skip.paths`: paths reachable without credentials (`*` matches anything).
    pub skip_paths: Vec<String>,
    /// `authentication.jaas.config` (or the JVM's `java.security.auth.login.config`): the JAAS file.
    pub jaas_config: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8088).into(),
            tls: None,
            bootstrap_servers: None,
            kafka_security: KafkaClientSecurity::default(),
            broker_listen: ([127, 0, 0, 1], 9092).into(),
            service_id: "default_".to_string(),
            data_dir: PathBuf::from("sluice-data"),
            max_push_queries: 100,
            max_request_bytes: 4 << 20,
            authentication: None,
            function_properties: BTreeMap::new(),
            advertised_listener: None,
            session_timeout: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    /// The name this server goes by among the servers of its service: the advertised
    /// listener, else the URL of the listener (with the host's name for a wildcard address).
    pub fn server_name(&self) -> String {
        if let Some(advertised) = &self.advertised_listener {
            return advertised.trim_end_matches('/').to_string();
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        if self.listen.ip().is_unspecified() {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".to_string());
            format!("{scheme}://{host}:{}", self.listen.port())
        } else {
            format!("{scheme}://{}", self.listen)
        }
    }
}

/// Settings given explicitly by flags or environment variables; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub bootstrap_servers: Option<String>,
    pub broker_listen: Option<String>,
    pub service_id: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub max_push_queries: Option<String>,
    pub max_request_bytes: Option<String>,
}

impl ServerConfig {
    /// Layers the optional properties file and the overrides over the defaults.
    pub fn load(file: Option<&std::path::Path>, overrides: Overrides) -> Result<Self> {
        let mut layered = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                SluiceError::Config(format!("cannot read config file {}: {e}", path.display()))
            })?;
            layered = parse_properties(&text)?;
        }
        let mut set = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                layered.insert(key.to_string(), value);
            }
        };
        set("listeners", overrides.listen);
        set("bootstrap.servers", overrides.bootstrap_servers);
        set("broker.listen", overrides.broker_listen);
        set("ksql.service.id", overrides.service_id);
        set(
            "data.dir",
            overrides.data_dir.map(|p| p.to_string_lossy().into_owned()),
        );
        set("ksql.max.push.queries", overrides.max_push_queries);
        set("sluice.http.max.request.bytes", overrides.max_request_bytes);

        let mut config = ServerConfig::default();
        let mut basic = false;
        let (mut realm, mut jaas_config) = (None, None);
        let (mut roles, mut skip_paths) = (vec!["*".to_string()], Vec::new());
        let list = |value: &str| -> Vec<String> { value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string).collect() };
        let (mut https, mut ssl, mut kafka) = (false, BTreeMap::new(), BTreeMap::new());
        for (key, value) in layered {
            if let Some(client_key) = kafka_client::client_key(&key) {
                kafka.insert(client_key.to_string(), value);
                continue;
            }
            match key.as_str() {
                "listeners" | "listen" => {
                    https = value.trim().starts_with("https://");
                    config.listen = parse_address(&key, &value)?;
                }
                ssl_key if ssl_key.starts_with("ssl.") => {
                    ssl.insert(key, value);
                }
                "bootstrap.servers" => {
                    config.bootstrap_servers = Some(value).filter(|v| !v.trim().is_empty())
                }
                "broker.listen" => config.broker_listen = parse_address(&key, &value)?,
                "ksql.service.id" | "service.id" => config.service_id = value,
                "ksql.advertised.listener" => config.advertised_listener = Some(value.trim().to_string()).filter(|v| !v.is_empty()),
                "sluice.cluster.session.timeout.ms" => {
                    config.session_timeout = Duration::from_millis(parse_count(&key, &value)? as u64)
                }
                "data.dir" => config.data_dir = PathBuf::from(value),
                "ksql.max.push.queries" => config.max_push_queries = parse_count(&key, &value)?,
                "sluice.http.max.request.bytes" => config.max_request_bytes = parse_count(&key, &value)?,
                "authentication.method" => {
                    basic = match value.trim().to_ascii_uppercase().as_str() {
                        "BASIC" => true,
                        "NONE" => false,
                        _ => return Err(SluiceError::Config(format!("authentication.method: '{value}' is neither BASIC nor NONE"))),
                    }
                }
                "authentication.realm" => realm = Some(value),
                "authentication.roles" => roles = list(&value),
                "authentication.skip.paths" => skip_paths = list(&value),
                "authentication.jaas.config" | "java.security.auth.login.config" => jaas_config = Some(PathBuf::from(value)),
                properties::COLLECT_LIST_LIMIT | properties::COLLECT_SET_LIMIT => {
                    properties::check_value(&key, &value).map_err(|e| SluiceError::Config(e.to_string()))?;
                    config.function_properties.insert(key, value);
                }
                other => {
                    return Err(SluiceError::Config(format!(
                        "unknown key '{other}' (known: listeners, bootstrap.servers, broker.listen, ksql.service.id, ksql.advertised.listener, sluice.cluster.session.timeout.ms, data.dir, ksql.max.push.queries, sluice.http.max.request.bytes, authentication.method, authentication.realm, authentication.roles, authentication.skip.paths, authentication.jaas.config, ksql.functions.collect_list.limit, ksql.functions.collect_set.limit, {}, and the Kafka clients' security.protocol, sasl.*, ssl.ca.location, ssl.certificate.location, ssl.key.location, each also prefixed ksql.streams.)",
                        tls::KEYS
                    )));
                }
            }
        }
        if let Some(unknown) = ssl.keys().find(|k| !tls::KEYS.split(", ").any(|known| known == k.as_str())) {
            return Err(SluiceError::Config(format!("unknown key '{unknown}' (the ssl.* keys Sluice reads: {})", tls::KEYS)));
        }
        config.tls = TlsSettings::from_keys(https, &ssl)?;
        config.kafka_security = KafkaClientSecurity::from_keys(&kafka)?;
        if config.bootstrap_servers.is_none() && !config.kafka_security.properties.is_empty() {
            return Err(SluiceError::Config(
                "security.protocol, sasl.* and the Kafka clients' ssl.* keys are for an external cluster (bootstrap.servers); the embedded broker speaks PLAINTEXT on loopback".into(),
            ));
        }
        if basic {
            let missing = |key: &str| SluiceError::Config(format!("authentication.method=BASIC needs {key}"));
            config.authentication = Some(BasicAuthentication {
                realm: realm.ok_or_else(|| missing("authentication.realm"))?,
                roles,
                skip_paths,
                jaas_config: jaas_config.ok_or_else(|| missing("authentication.jaas.config, the JAAS file naming the password file"))?,
            });
        }
        Ok(config)
    }
}

/// Reads `key=value` lines as in ksqlDB's server properties; `#` and `!` start comments.
fn parse_properties(text: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = line
            .split_once(['=', ':'])
            .ok_or_else(|| SluiceError::Config(format!("line {}: expected key=value", n + 1)))?;
        map.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(map)
}

/// A positive whole number.
fn parse_count(key: &str, value: &str) -> Result<usize> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| SluiceError::Config(format!("{key}: '{value}' is not a whole number above 0")))
}

/// Accepts `host:port` and ksqlDB's `http://host:port` and `https://host:port` listener forms.
fn parse_address(key: &str, value: &str) -> Result<SocketAddr> {
    let bare = value
        .trim()
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let bare = bare.replace("localhost", "127.0.0.1");
    bare.parse().map_err(|_| {
        SluiceError::Config(format!("{key}: '{value}' is not an address like 127.0.0.1:8088"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(
            &path,
            "# comment\nlisteners=http://0.0.0.0:9000\nksql.service.id=grid_\n",
        )
        .unwrap();
        let config = ServerConfig::load(
            Some(&path),
            Overrides {
                service_id: Some("flag_".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.service_id, "flag_");
        assert_eq!(config.broker_listen, "127.0.0.1:9092".parse().unwrap());
    }

    #[test]
    fn unknown_key_is_rejected_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.properties");
        std::fs::write(&path, "listen.port=1\n").unwrap();
        let err = ServerConfig::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("unknown key 'listen.port'"), "{err}");
    }

    #[test]
    fn basic_authentication_takes_ksqldbs_keys_and_needs_a_realm_and_a_jaas_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.properties");
        std::fs::write(
            &path,
            "authentication.method=BASIC\nauthentication.realm=KsqlServer-Props\nauthentication.roles=admin, user\nauthentication.skip.paths=/healthcheck\njava.security.auth.login.config=/etc/ksql/jaas.conf\n",
        )
        .unwrap();
        let config = ServerConfig::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(
            config.authentication,
            Some(BasicAuthentication {
                realm: "KsqlServer-Props".into(),
                roles: vec!["admin".into(), "user".into()],
                skip_paths: vec!["/healthcheck".into()],
                jaas_config: "/etc/ksql/jaas.conf".into(),
            })
        );
        std::fs::write(&path, "authentication.method=BASIC\n").unwrap();
        let err = ServerConfig::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("needs authentication.realm"), "{err}");
        std::fs::write(&path, "authentication.method=NONE\n").unwrap();
        assert_eq!(ServerConfig::load(Some(&path), Overrides::default()).unwrap().authentication, None);
    }

    #[test]
    fn kafka_client_security_is_read_for_an_external_cluster_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secure.properties");
        let secure = "ksql.streams.security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=grid\nsasl.password=s3cret\nssl.ca.location=/etc/kafka/ca.pem\n";
        std::fs::write(&path, format!("bootstrap.servers=kafka-1:9093\n{secure}")).unwrap();
        let config = ServerConfig::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(config.kafka_security.properties.get("security.protocol").map(String::as_str), Some("sasl_ssl"));
        assert_eq!(config.kafka_security.properties.get("ssl.ca.location").map(String::as_str), Some("/etc/kafka/ca.pem"));
        assert_eq!(config.tls, None, "the Kafka clients' ssl.* keys leave the listener alone");
        std::fs::write(&path, secure).unwrap();
        let err = ServerConfig::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("the embedded broker speaks PLAINTEXT"), "{err}");
    }

    #[test]
    fn limits_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("limits.properties");
        std::fs::write(&path, "ksql.max.push.queries=3\nsluice.http.max.request.bytes=1024\n").unwrap();
        let config = ServerConfig::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!((config.max_push_queries, config.max_request_bytes), (3, 1024));
        std::fs::write(&path, "ksql.max.push.queries=-1\n").unwrap();
        let err = ServerConfig::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("ksql.max.push.queries: '-1'"), "{err}");
        std::fs::write(&path, "ksql.functions.collect_list.limit=10\n").unwrap();
        let config = ServerConfig::load(Some(&path), Overrides::default()).unwrap();
        assert_eq!(config.function_properties.get("ksql.functions.collect_list.limit").map(String::as_str), Some("10"));
        std::fs::write(&path, "ksql.functions.collect_set.limit=ten\n").unwrap();
        let err = ServerConfig::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("Not a number of type INT"), "{err}");
    }
}
