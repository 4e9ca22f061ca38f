//! TLS settings of the HTTP listener, read from ksqlDB's `ssl.*` keys where they map onto PEM
//! files (Java keystores are refused with the command that converts them).

use std::{collections::BTreeMap, path::PathBuf};

use crate::error::{Result, SluiceError};

/// `listeners=https://…`: the certificate the server presents and whose clients it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ssl.keystore.location`: a PEM file with the private key and the certificate chain, the
    /// server's own certificate first.
    pub keystore: PathBuf,
    /// `ssl.client.authentication`.
    pub client_authentication: ClientAuthentication,
    /// `ssl.truststore.location` (PEM): the authorities whose client certificates are accepted.
    pub truststore: Option<PathBuf>,
    /// `ssl.enabled.protocols`: TLSv1.2 and TLSv1.3 unless narrowed.
    pub protocols: Vec<TlsProtocol>,
}

/// ksqlDB's `ssl.client.authentication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthentication {
    /// No client certificate is asked for.
    None,
    /// A client certificate is asked for and checked when sent.
    Requested,
    /// A client without a certificate the truststore vouches for is turned away.
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsProtocol {
    Tls12,
    Tls13,
}

/// The `ssl.*` keys this module reads.
pub const KEYS: &str = "ssl.keystore.location, ssl.keystore.type, ssl.keystore.password, ssl.key.password, ssl.truststore.location, ssl.truststore.type, ssl.truststore.password, ssl.client.authentication, ssl.client.auth, ssl.enabled.protocols";

fn refuse(message: String) -> SluiceError {
    SluiceError::Config(message)
}

/// A keystore or truststore type other than PEM, refused with how to convert it.
fn pem_only(key: &str, value: &str) -> Result<()> {
    if value.trim().eq_ignore_ascii_case("PEM") {
        return Ok(());
    }
    Err(refuse(format!(
        "{key}={value}: Sluice reads PEM files only; set {key}=PEM and convert the store, e.g. \
         `keytool -importkeystore -srckeystore store.jks -destkeystore store.p12 -deststoretype PKCS12` then \
         `openssl pkcs12 -in store.p12 -nodes -out store.pem`"
    )))
}

impl TlsSettings {
    /// The settings of an `https://` listener (`https` true) from its `ssl.*` keys; `None` for
    /// a plain one, which takes none.
    pub fn from_keys(https: bool, keys: &BTreeMap<String, String>) -> Result<Option<TlsSettings>> {
        if !https {
            if let Some(key) = keys.keys().next() {
                return Err(refuse(format!("{key} is set but listeners is not an https:// address")));
            }
            return Ok(None);
        }
        let get = |key: &str| keys.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        for key in ["ssl.keystore.type", "ssl.truststore.type"] {
            if let Some(value) = get(key) {
                pem_only(key, value)?;
            }
        }
        for key in ["ssl.keystore.password", "ssl.key.password", "ssl.truststore.password"] {
            if get(key).is_some() {
                return Err(refuse(format!(
                    "{key}: Sluice reads unencrypted PEM files only; decrypt the key with `openssl pkey -in key.pem -out key-plain.pem` and leave {key} unset"
                )));
            }
        }
        let keystore = match get("ssl.keystore.location") {
            Some(keystore) => {
                if get("ssl.keystore.type").is_none() {
                    pem_only("ssl.keystore.type", "JKS")?;
                }
                PathBuf::from(keystore)
            }
            None => {
                return Err(refuse(
                    "an https:// listener needs ssl.keystore.location, a PEM file with the key and certificate chain (ssl.keystore.type=PEM)".into(),
                ));
            }
        };
        let client_authentication = match (get("ssl.client.authentication"), get("ssl.client.auth")) {
            (Some(value), _) => match value.to_ascii_uppercase().as_str() {
                "NONE" => ClientAuthentication::None,
                "REQUESTED" => ClientAuthentication::Requested,
                "REQUIRED" => ClientAuthentication::Required,
                _ => return Err(refuse(format!("ssl.client.authentication: '{value}' is none of NONE, REQUESTED, REQUIRED"))),
            },
            (None, Some(value)) => match value.to_ascii_lowercase().as_str() {
                "true" => ClientAuthentication::Required,
                "false" => ClientAuthentication::None,
                _ => return Err(refuse(format!("ssl.client.auth: '{value}' is neither true nor false"))),
            },
            (None, None) => ClientAuthentication::None,
        };
        let truststore = get("ssl.truststore.location").map(PathBuf::from);
        if client_authentication != ClientAuthentication::None && truststore.is_none() {
            return Err(refuse("client certificates are checked against ssl.truststore.location (PEM), which is not set".into()));
        }
        let protocols = match get("ssl.enabled.protocols") {
            None => vec![TlsProtocol::Tls12, TlsProtocol::Tls13],
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| match p {
                    "TLSv1.2" => Ok(TlsProtocol::Tls12),
                    "TLSv1.3" => Ok(TlsProtocol::Tls13),
                    other => Err(refuse(format!("ssl.enabled.protocols: '{other}' is not offered; Sluice speaks TLSv1.2 and TLSv1.3"))),
                })
                .collect::<Result<Vec<_>>>()?,
        };
        if protocols.is_empty() {
            return Err(refuse("ssl.enabled.protocols names no protocol".into()));
        }
        Ok(Some(TlsSettings { keystore, client_authentication, truststore, protocols }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_pem_keystore_and_truststore_are_read() {
        let pem = keys(&[("ssl.keystore.location", "/etc/sluice/server.pem"), ("ssl.keystore.type", "PEM")]);
        let settings = TlsSettings::from_keys(true, &pem).unwrap().unwrap();
        assert_eq!(settings.keystore, PathBuf::from("/etc/sluice/server.pem"));
        assert_eq!(settings.client_authentication, ClientAuthentication::None);
        assert_eq!(settings.protocols, [TlsProtocol::Tls12, TlsProtocol::Tls13]);

        let required = keys(&[
            ("ssl.keystore.location", "server.pem"),
            ("ssl.keystore.type", "pem"),
            ("ssl.client.authentication", "required"),
            ("ssl.truststore.location", "ca.pem"),
            ("ssl.enabled.protocols", "TLSv1.3"),
        ]);
        let settings = TlsSettings::from_keys(true, &required).unwrap().unwrap();
        assert_eq!(settings.client_authentication, ClientAuthentication::Required);
        assert_eq!(settings.truststore, Some(PathBuf::from("ca.pem")));
        assert_eq!(settings.protocols, [TlsProtocol::Tls13]);
        assert_eq!(TlsSettings::from_keys(false, &BTreeMap::new()).unwrap(), None);
    }

    #[test]
    fn what_cannot_be_served_is_refused_with_the_way_out() {
        let refused = |pairs: &[(&str, &str)], https: bool| TlsSettings::from_keys(https, &keys(pairs)).unwrap_err().to_string();
        assert!(refused(&[("ssl.keystore.location", "store.jks")], true).contains("keytool -importkeystore"));
        assert!(refused(&[("ssl.keystore.location", "s.pem"), ("ssl.keystore.type", "PKCS12")], true).contains("openssl pkcs12"));
        assert!(refused(&[("ssl.keystore.location", "s.pem"), ("ssl.keystore.type", "PEM"), ("ssl.key.password", "x")], true).contains("openssl pkey"));
        assert!(refused(&[], true).contains("needs ssl.keystore.location"));
        assert!(refused(&[("ssl.keystore.location", "s.pem")], false).contains("not an https:// address"));
        let pem = [("ssl.keystore.location", "s.pem"), ("ssl.keystore.type", "PEM")];
        assert!(refused(&[pem[0], pem[1], ("ssl.client.auth", "true")], true).contains("ssl.truststore.location"));
        assert!(refused(&[pem[0], pem[1], ("ssl.enabled.protocols", "TLSv1.1")], true).contains("'TLSv1.1'"));
    }
}
