//! `jdbc:postgresql://host:port/database?user=…&password=…`, the URL form of PostgreSQL's JDBC
//! driver, read into a connection configuration.

use std::time::Duration;

use tokio_postgres::{Config, config::SslMode};

use crate::error::{Result, SluiceError};

const DEFAULT_PORT: u16 = 5432;

/// A parsed JDBC URL; user and password may come from the URL or be set afterwards.
#[derive(Debug, Clone)]
pub struct JdbcUrl {
    config: Config,
    database: String,
}

impl JdbcUrl {
    /// Reads the forms the PostgreSQL JDBC driver accepts: `jdbc:postgresql:database`,
    /// `jdbc:postgresql://host[:port][,host[:port]…]/[database][?key=value&…]`.
    pub fn parse(url: &str) -> Result<JdbcUrl> {
        let invalid = |why: &str| {
            SluiceError::Config(format!("'{url}' is not a PostgreSQL JDBC URL: {why}"))
        };
        let rest = url
            .strip_prefix("jdbc:postgresql:")
            .ok_or_else(|| invalid("it must start with jdbc:postgresql:"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut config = Config::new();
        let database = match location.strip_prefix("//") {
            Some(hosts_and_path) => {
                let (hosts, path) = hosts_and_path.split_once('/').unwrap_or((hosts_and_path, ""));
                for host in hosts.split(',').filter(|h| !h.is_empty()) {
                    let (name, port) = split_host_port(host).map_err(|why| invalid(&why))?;
                    config.host(name).port(port);
                }
                decode(path)
            }
            None => decode(location.trim_start_matches('/')),
        };
        if config.get_hosts().is_empty() {
            config.host("localhost").port(DEFAULT_PORT);
        }
        config.ssl_mode(SslMode::Disable);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            apply_property(&mut config, key, &decode(value)).map_err(|why| invalid(&why))?;
        }
        if !database.is_empty() {
            config.dbname(&database);
        }
        Ok(JdbcUrl { config, database })
    }

    /// The user, as `--username` or `connection.user` give it; overrides the URL's.
    pub fn set_user(&mut self, user: &str) {
        self.config.user(user);
    }

    pub fn set_password(&mut self, password: &str) {
        self.config.password(password);
    }

    /// The database named in the URL; empty when PostgreSQL's default (the user's name) applies.
    pub fn database(&self) -> &str {
        &self.database
    }

    pub(super) fn config(&self) -> &Config {
        &self.config
    }
}

fn split_host_port(host: &str) -> Result<(&str, u16), String> {
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let (name, after) = v6.split_once(']').ok_or("an IPv6 host lacks its ']'")?;
            (name, after.strip_prefix(':'))
        }
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let port = match port {
        Some(port) => port.parse().map_err(|_| format!("'{port}' is not a port number"))?,
        None => DEFAULT_PORT,
    };
    Ok((name, port))
}

/// The driver's connection properties Sluice honours; TLS is refused rather than ignored.
fn apply_property(config: &mut Config, key: &str, value: &str) -> Result<(), String> {
    match key {
        "user" => {
            config.user(value);
        }
        "password" => {
            config.password(value);
        }
        "ApplicationName" => {
            config.application_name(value);
        }
        "connectTimeout" => {
            let seconds: u64 = value.parse().map_err(|_| format!("connectTimeout '{value}' is not a number of seconds"))?;
            if seconds > 0 {
                config.connect_timeout(Duration::from_secs(seconds));
            }
        }
        "currentSchema" => {
            config.options(format!("-c search_path={value}"));
        }
        "ssl" if value == "false" => {}
        "sslmode" if matches!(value, "disable" | "allow" | "prefer") => {}
        "ssl" | "sslmode" => {
            return Err(format!("TLS connections to PostgreSQL ({key}={value}) are not supported yet"));
        }
        _ => tracing::debug!(key, "JDBC URL property ignored"),
    }
    Ok(())
}

/// Undoes the URL's encoding as the driver's `URLDecoder` does (`%26` is `&`, `+` a space).
fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("v={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::config::Host;

    fn hosts(url: &JdbcUrl) -> Vec<(String, u16)> {
        let config = url.config();
        config
            .get_hosts()
            .iter()
            .zip(config.get_ports())
            .map(|(host, port)| match host {
                Host::Tcp(name) => (name.clone(), *port),
                Host::Unix(path) => (path.display().to_string(), *port),
            })
            .collect()
    }

    #[test]
    fn the_seeds_url_names_host_port_and_database() {
        let url = JdbcUrl::parse("jdbc:postgresql://postgresql:5432/telemetry").unwrap();
        assert_eq!(hosts(&url), [("postgresql".to_string(), 5432)]);
        assert_eq!(url.database(), "telemetry");
    }

    #[test]
    fn port_and_host_default_as_the_driver_defaults_them() {
        assert_eq!(hosts(&JdbcUrl::parse("jdbc:postgresql://db/x").unwrap()), [("db".to_string(), 5432)]);
        let short = JdbcUrl::parse("jdbc:postgresql:telemetry").unwrap();
        assert_eq!(hosts(&short), [("localhost".to_string(), 5432)]);
        assert_eq!(short.database(), "telemetry");
    }

    #[test]
    fn several_hosts_and_ipv6_are_read() {
        let url = JdbcUrl::parse("jdbc:postgresql://a:1,[::1]:2,b/db").unwrap();
        assert_eq!(
            hosts(&url),
            [("a".to_string(), 1), ("::1".to_string(), 2), ("b".to_string(), 5432)]
        );
    }

    #[test]
    fn properties_set_user_and_password_and_are_decoded() {
        let url = JdbcUrl::parse("jdbc:postgresql://h/db?user=root&password=p%26w+d").unwrap();
        assert_eq!(url.config().get_user(), Some("root"));
        assert_eq!(url.config().get_password(), Some(&b"p&w d"[..]));
    }

    #[test]
    fn other_schemes_and_tls_are_refused_in_plain_words() {
        let other = JdbcUrl::parse("jdbc:mysql://h/db").unwrap_err().to_string();
        assert!(other.contains("must start with jdbc:postgresql:"), "{other}");
        let tls = JdbcUrl::parse("jdbc:postgresql://h/db?sslmode=require").unwrap_err().to_string();
        assert!(tls.contains("not supported yet"), "{tls}");
        let port = JdbcUrl::parse("jdbc:postgresql://h:x/db").unwrap_err().to_string();
        assert!(port.contains("'x' is not a port number"), "{port}");
    }
}
