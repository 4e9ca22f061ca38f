//! HTTP Basic authentication configured as ksqlDB's: the realm's JAAS section names a Jetty
//! password file; plain, MD5, CRYPT and ARGON2 credentials; roles; skip paths; ksqlDB's 401 and
//! 403 bodies on the ksqlDB and Kafka Connect routes alike; a ksqlDB client library signing in.

mod common;

use std::{path::PathBuf, process::Command};

use common::{SluiceServer, TestBroker, python};
use serde_json::{Value, json};

/// A server whose API lets in users with role `user` or `developer`, `/healthcheck` open.
async fn guarded_server(broker: &TestBroker, dir: &std::path::Path) -> SluiceServer {
    let argon2 = sluice::server::auth::argon2_credential("argon-pass").unwrap();
    let passwords = dir.join("password-file");
    std::fs::write(
        &passwords,
        format!(
            "# Jetty's PropertyFileLoginModule format\nfred: letmein,user\nharry: MD5:83b1a588059ff7e208fd752e32c01555,developer\nhazel: CRYPT:haEYZ8ZT/T9qE,user\nalice: {argon2},developer\nmallory: opensesame,guest\n"
        ),
    )
    .unwrap();
    let jaas = dir.join("jaas.conf");
    std::fs::write(
        &jaas,
        format!(
            "KsqlServer-Props {{\n  org.eclipse.jetty.jaas.spi.PropertyFileLoginModule required\n  file=\"{}\"\n  debug=\"false\";\n}};\n",
            passwords.display()
        ),
    )
    .unwrap();
    let config = dir.join("server.properties");
    std::fs::write(
        &config,
        format!(
            "authentication.method=BASIC\nauthentication.realm=KsqlServer-Props\nauthentication.roles=user,developer\nauthentication.skip.paths=/healthcheck\nauthentication.jaas.config={}\n",
            jaas.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    SluiceServer::start_with_env(&broker.bootstrap, dir.join("data"), &[("SLUICE_CONFIG", &config)]).await
}

/// `POST /ksql` of `SHOW STREAMS;` as `user`: the status and body.
async fn show_streams(server: &SluiceServer, user: Option<(&str, &str)>) -> (u16, Value, Option<String>) {
    let mut request = server.client().post(format!("{}/ksql", server.url)).json(&json!({"ksql": "SHOW STREAMS;"}));
    if let Some((name, password)) = user {
        request = request.basic_auth(name, Some(password));
    }
    let response = request.send().await.unwrap();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    (response.status().as_u16(), response.json().await.unwrap(), challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_users_of_the_realm_with_an_allowed_role_reach_the_api() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = guarded_server(&broker, dir.path()).await;

    let unauthorized = json!({"@type": "generic_error", "error_code": 40100, "message": "Unauthorized"});
    let (status, body, challenge) = show_streams(&server, None).await;
    assert_eq!((status, &body), (401, &unauthorized));
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"KsqlServer-Props\""));
    for wrong in [("fred", "letmeout"), ("harry", "Kingfisher"), ("hazel", "changeMe"), ("alice", "argon"), ("nobody", "x")] {
        let (status, body, _) = show_streams(&server, Some(wrong)).await;
        assert_eq!((status, &body), (401, &unauthorized), "{wrong:?}");
    }
    for right in [("fred", "letmein"), ("harry", "kingfisher"), ("hazel", "changeme"), ("alice", "argon-pass")] {
        let (status, body, _) = show_streams(&server, Some(right)).await;
        assert_eq!(status, 200, "{right:?}: {body}");
        assert_eq!(body[0]["@type"], "streams", "{right:?}: {body}");
    }
    let (status, body, _) = show_streams(&server, Some(("mallory", "opensesame"))).await;
    assert_eq!((status, body), (403, json!({"@type": "generic_error", "error_code": 40300, "message": "Forbidden"})));

    let health = server.client().get(format!("{}/healthcheck", server.url)).send().await.unwrap();
    assert_eq!(health.status(), 200, "a skip path needs no credentials");
    for path in ["/info", "/connectors", "/metrics"] {
        let open = server.client().get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(open.status(), 401, "{path}");
        assert_eq!(open.json::<Value>().await.unwrap(), unauthorized, "{path}");
        let signed = server.client().get(format!("{}{path}", server.url)).basic_auth("fred", Some("letmein")).send().await.unwrap();
        assert_eq!(signed.status(), 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ksql_python_ng_signs_in_with_its_basic_credentials() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let server = guarded_server(&broker, dir.path()).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ksql_python_ng.py");
    let run = |password: &str| {
        let (script, url, bootstrap, password) = (script.clone(), server.url.clone(), broker.bootstrap.clone(), password.to_string());
        tokio::task::spawn_blocking(move || Command::new(python()).arg(script).arg(url).arg(bootstrap).args(["fred", &password]).output().unwrap())
    };
    let refused = run("letmeout").await.unwrap();
    assert!(!refused.status.success(), "a wrong password is refused");
    let output = run("letmein").await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "ksql-python-ng failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}
