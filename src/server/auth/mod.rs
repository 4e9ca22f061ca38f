//! HTTP Basic authentication as ksqlDB configures it (`authentication.method=BASIC`): every
//! route — the ksqlDB API, the Kafka Connect API, `/metrics` — asks for a user of the realm's
//! password file holding one of `authentication.roles`, except the paths
//! `authentication.skip.paths` names. Refusals carry ksqlDB's bodies: 401 with 40100
//! `Unauthorized`, 403 with 40300 `Forbidden`.

mod password_file;

use std::{collections::BTreeMap, sync::Arc};

use axum::{
    Json,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use serde_json::json;

pub use password_file::{Credential, argon2_credential};
use password_file::User;

use crate::{config::BasicAuthentication, error::Result};

/// Who may use the API.
#[derive(Debug)]
pub struct Guard {
    realm: String,
    /// Roles that may use the API; `*` or `**` lets in every user who authenticates.
    roles: Vec<String>,
    /// Path patterns reachable without credentials; `*` matches any characters.
    skip_paths: Vec<String>,
    users: BTreeMap<String, User>,
}

impl Guard {
    /// Reads the realm's password file; a missing or malformed one fails the server's start.
    pub fn load(config: &BasicAuthentication) -> Result<Guard> {
        Ok(Guard {
            realm: config.realm.clone(),
            roles: config.roles.clone(),
            skip_paths: config.skip_paths.clone(),
            users: password_file::load(&config.jaas_config, &config.realm)?,
        })
    }

    fn check(&self, request: &Request) -> Result<(), Refusal> {
        if self.skip_paths.iter().any(|pattern| matches(pattern, request.uri().path())) {
            return Ok(());
        }
        let (name, password) = basic_credentials(request).ok_or(Refusal::Unauthorized)?;
        let user = self.users.get(&name).filter(|u| u.credential.verify(&password)).ok_or(Refusal::Unauthorized)?;
        let any_role = self.roles.iter().any(|r| r == "*" || r == "**");
        if any_role || user.roles.iter().any(|r| self.roles.contains(r)) {
            Ok(())
        } else {
            Err(Refusal::Forbidden)
        }
    }
}

enum Refusal {
    Unauthorized,
    Forbidden,
}

/// The middleware: a request goes on only if the guard lets it.
pub async fn require(State(guard): State<Arc<Guard>>, request: Request, next: Next) -> Response {
    match guard.check(&request) {
        Ok(()) => next.run(request).await,
        Err(Refusal::Unauthorized) => {
            let body = json!({"@type": "generic_error", "error_code": 40100, "message": "Unauthorized"});
            let challenge = format!("Basic realm=\"{}\"", guard.realm);
            (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], Json(body)).into_response()
        }
        Err(Refusal::Forbidden) => {
            let body = json!({"@type": "generic_error", "error_code": 40300, "message": "Forbidden"});
            (StatusCode::FORBIDDEN, Json(body)).into_response()
        }
    }
}

/// The user and password of an `Authorization: Basic …` header.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let (name, password) = String::from_utf8(decoded).ok()?.split_once(':').map(|(n, p)| (n.to_string(), p.to_string()))?;
    Some((name, password))
}

/// Whether `path` matches `pattern`, where `*` stands for any characters.
fn matches(pattern: &str, path: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = path.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_path_patterns_match_exactly_or_through_stars() {
        assert!(matches("/healthcheck", "/healthcheck"));
        assert!(!matches("/healthcheck", "/healthcheck/x"));
        assert!(matches("/connectors/*", "/connectors/sink/status"));
        assert!(!matches("/connectors/*", "/ksql"));
        assert!(matches("/*/status", "/connectors/status"));
        assert!(matches("*", "/anything"));
    }
}
