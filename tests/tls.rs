//! TLS on the HTTP listener set up with ksqlDB's keys (`listeners=https://…`, a PEM
//! `ssl.keystore.location`): clients that trust the authority reach the API over HTTP/1.1 and,
//! by ALPN, HTTP/2; clients that do not, or that speak plain HTTP, do not; with
//! `ssl.client.authentication=REQUIRED`, only clients presenting a certificate the truststore
//! vouches for get in.

mod common;

use common::{SluiceServer, TestBroker, certificates::TestAuthority};
use serde_json::json;

/// Writes the server's keystore, its authority and a properties file setting TLS up with
/// `extra` lines; returns the properties file.
fn tls_config(dir: &std::path::Path, authority: &TestAuthority, extra: &str) -> std::path::PathBuf {
    let keystore = dir.join("server.pem");
    std::fs::write(&keystore, authority.server_keystore()).unwrap();
    let truststore = dir.join("ca.pem");
    std::fs::write(&truststore, authority.pem()).unwrap();
    let config = dir.join("server.properties");
    std::fs::write(
        &config,
        format!(
            "ssl.keystore.location={}\nssl.keystore.type=PEM\nssl.truststore.location={}\nssl.truststore.type=PEM\n{extra}",
            keystore.display(),
            truststore.display()
        ),
    )
    .unwrap();
    config
}

fn client(authority: Option<&TestAuthority>, identity: Option<&str>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    if let Some(authority) = authority {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(authority.pem().as_bytes()).unwrap());
    }
    if let Some(identity) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_is_served_over_tls_to_clients_that_verify_its_certificate() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let authority = TestAuthority::new("Sluice test CA");
    let config = tls_config(dir.path(), &authority, "");
    let server = SluiceServer::start_tls(&broker.bootstrap, dir.path().join("data"), &config, &authority.pem(), None).await;
    assert!(server.url.starts_with("https://"));

    let created = server
        .ksql_ok("CREATE STREAM READINGS (ID INTEGER KEY, WATTS DOUBLE) WITH (KAFKA_TOPIC='READINGS', VALUE_FORMAT='JSON', PARTITIONS=1);")
        .await;
    assert_eq!(created[0]["commandStatus"]["status"], "SUCCESS");

    let trusting = client(Some(&authority), None);
    let response = trusting.get(format!("{}/info", server.url)).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2, "ALPN picks HTTP/2");
    assert_eq!(response.status(), 200);
    let http1 = reqwest::Client::builder()
        .use_rustls_tls()
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(authority.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let response = http1.post(format!("{}/ksql", server.url)).json(&json!({"ksql": "SHOW STREAMS;"})).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body[0]["streams"][0]["name"], "READINGS");

    let stranger = client(Some(&TestAuthority::new("Another CA")), None);
    let refused = stranger.get(format!("{}/info", server.url)).send().await.unwrap_err();
    assert!(format!("{refused:?}").contains("UnknownIssuer"), "{refused:?}");
    let plain = reqwest::Client::new().get(server.url.replace("https://", "http://") + "/info").send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "plain HTTP is not served on the TLS port");
    assert_eq!(trusting.get(format!("{}/healthcheck", server.url)).send().await.unwrap().status(), 200, "the server goes on after bad handshakes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_client_authentication_required_only_certified_clients_get_in() {
    let broker = TestBroker::start().await;
    let dir = tempfile::tempdir().unwrap();
    let authority = TestAuthority::new("Sluice test CA");
    let config = tls_config(dir.path(), &authority, "ssl.client.authentication=REQUIRED\n");
    let identity = authority.client_identity("alice");
    // The harness's own client must present a certificate as well.
    let server = SluiceServer::start_tls(&broker.bootstrap, dir.path().join("data"), &config, &authority.pem(), Some(&identity)).await;

    let certified = client(Some(&authority), Some(&identity));
    assert_eq!(certified.get(format!("{}/info", server.url)).send().await.unwrap().status(), 200);
    let anonymous = client(Some(&authority), None);
    assert!(anonymous.get(format!("{}/info", server.url)).send().await.is_err(), "a client without a certificate is turned away");
    let foreign = TestAuthority::new("Another CA").client_identity("mallory");
    assert!(client(Some(&authority), Some(&foreign)).get(format!("{}/info", server.url)).send().await.is_err(), "a certificate the truststore does not vouch for is refused");
}
