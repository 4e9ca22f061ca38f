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
    let broker = EmbeddedBroker::start(free_address(), dir).await.unwrap();
    let config = ServerConfig {
        listen: free_address(),
        bootstrap_servers: Some(broker.bootstrap_servers()),
        ..ServerConfig::default()
    };
    let listen = config.listen;
    let engine = Engine::start(config, &broker.bootstrap_servers()).await.unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(server::serve(engine, listen, guard, shutdown.clone()));
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(listen).await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (format!("http://{listen}"), broker, shutdown)
}
