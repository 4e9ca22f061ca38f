//! A broker and a sluice-server running inside the test process, for driving the client.

#![allow(dead_code)]

use std::net::TcpListener;

use sluice::{broker::EmbeddedBroker, config::ServerConfig, handler::Engine, server};
use tokio_util::sync::CancellationToken;

/// The real Hadoop NameNode and DataNode harness of the server's tests.
#[path = "../../../tests/common/hdfs.rs"]
pub mod hdfs;

/// The real PostgreSQL harness of the server's tests.
#[path = "../../../tests/common/postgres.rs"]
pub mod postgres;

/// The throwaway certificate authority of the server's TLS tests.
#[path = "../../../tests/common/certificates.rs"]
pub mod certificates;

pub fn free_port() -> u16 {
    free_address().port()
}

pub fn free_address() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A broker and a server running inside the test; returns the server's URL.
pub async fn start_server(dir: &std::path::Path) -> (String, EmbeddedBroker, CancellationToken) {
    start_guarded_server(dir, None).await
}

/// As [`start_server`], with the API behind `guard`.
pub async fn start_guarded_server(
    dir: &std::path::Path,
    guard: Option<std::sync::Arc<server::auth::Guard>>,
) -> (String, EmbeddedBroker, CancellationToken) {
    start_server_with(dir, guard, None).await
}

/// As [`start_server`], with the API behind `guard` and served over TLS as `tls` says; the URL
/// is `https://` then.
pub async fn start_server_with(
    dir: &std::path::Path,
    guard: Option<std::sync::Arc<server::auth::Guard>>,
    tls: Option<sluice::config::TlsSettings>,
) -> (String, EmbeddedBroker, CancellationToken) {
    let broker = EmbeddedBroker::start(free_address(), dir).await.unwrap();
    let config = ServerConfig {
        listen: free_address(),
        bootstrap_servers: Some(broker.bootstrap_servers()),
        ..ServerConfig::default()
    };
    let listen = config.listen;
    let engine = Engine::start(config, &broker.bootstrap_servers()).await.unwrap();
    let shutdown = CancellationToken::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let tls = tls.map(|settings| server::tls::server_config(&settings).unwrap());
    tokio::spawn(server::serve(engine, listen, tls, guard, shutdown.clone()));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (format!("{scheme}://{listen}"), broker, shutdown)
}
