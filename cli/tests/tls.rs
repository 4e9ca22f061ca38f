//! The client against an https:// server: it verifies the server's certificate against the
//! system's authorities and `--ca`, and presents `--client-cert` to a server that requires one.

mod common;

use std::{path::PathBuf, process::Command};

use common::{certificates::TestAuthority, start_server_with};
use sluice::config::{ClientAuthentication, TlsProtocol, TlsSettings};

fn sluice(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code().unwrap_or(-1), text(&output.stdout), text(&output.stderr))
}

/// Writes `text` to `dir/name` and returns its path as a string.
fn file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn settings(keystore: &str, truststore: &str, client_authentication: ClientAuthentication) -> TlsSettings {
    TlsSettings {
        keystore: PathBuf::from(keystore),
        client_authentication,
        truststore: Some(PathBuf::from(truststore)),
        protocols: vec![TlsProtocol::Tls12, TlsProtocol::Tls13],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_client_trusts_the_server_named_by_ca_and_shows_itself_with_client_cert() {
    let dir = tempfile::tempdir().unwrap();
    let authority = TestAuthority::new("Sluice test CA");
    let keystore = file(dir.path(), "server.pem", &authority.server_keystore());
    let ca = file(dir.path(), "ca.pem", &authority.pem());
    let (url, _broker, shutdown) = start_server_with(dir.path(), None, Some(settings(&keystore, &ca, ClientAuthentication::None))).await;
    assert!(url.starts_with("https://"));

    let (code, out, err) = sluice(&["--server", &url, "--ca", &ca, "-e", "SHOW STREAMS;"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, err) = sluice(&["--server", &url, "-e", "SHOW STREAMS;"]);
    assert_ne!(code, 0, "an authority the client does not know is not trusted");
    assert!(err.contains("cannot reach the server at https://"), "{err}");
    let (code, _, err) = sluice(&["--server", &url, "--ca", &keystore.replace("server.pem", "missing.pem"), "-e", "SHOW STREAMS;"]);
    assert_ne!(code, 0);
    assert!(err.contains("cannot read the --ca file"), "{err}");
    shutdown.cancel();

    let certified = tempfile::tempdir().unwrap();
    let (url, _broker, shutdown) =
        start_server_with(certified.path(), None, Some(settings(&keystore, &ca, ClientAuthentication::Required))).await;
    let identity = file(dir.path(), "alice.pem", &authority.client_identity("alice"));
    let (code, out, err) = sluice(&["--server", &url, "--ca", &ca, "--client-cert", &identity, "-e", "SHOW STREAMS;"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, _, _) = sluice(&["--server", &url, "--ca", &ca, "-e", "SHOW STREAMS;"]);
    assert_ne!(code, 0, "without its certificate the client is turned away");
    shutdown.cancel();
}
