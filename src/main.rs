//! `sluice-server`: the Sluice server, with the embedded broker when no Kafka cluster is given.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::Parser;
use sluice::{broker::EmbeddedBroker, config::{Overrides, ServerConfig}, handler::Engine, server};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How long queries and connectors get to stop after the HTTP API has drained; what is not
/// committed by then is redone on restart.
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A streaming SQL engine for Kafka that speaks ksqlDB's dialect and REST API.
#[derive(Debug, Parser)]
#[command(name = "sluice-server", version)]
struct Args {
    /// Address of the HTTP API; https://host:port serves it over TLS (ssl.* keys in --config) [default: 127.0.0.1:8088]
    #[arg(long, env = "SLUICE_LISTEN")]
    listen: Option<String>,
    /// Kafka cluster to use; without it the embedded broker starts
    #[arg(long, env = "SLUICE_BOOTSTRAP_SERVERS")]
    bootstrap_servers: Option<String>,
    /// Address of the embedded broker [default: 127.0.0.1:9092]
    #[arg(long, env = "SLUICE_BROKER_LISTEN")]
    broker_listen: Option<String>,
    /// Names the command topic, like ksql.service.id [default: default_]
    #[arg(long, env = "SLUICE_SERVICE_ID")]
    service_id: Option<String>,
    /// Where the embedded broker keeps its log [default: sluice-data]
    #[arg(long, env = "SLUICE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Push queries running at once, like ksql.max.push.queries [default: 100]
    #[arg(long, env = "SLUICE_MAX_PUSH_QUERIES")]
    max_push_queries: Option<String>,
    /// The largest request body read, in bytes (sluice.http.max.request.bytes) [default: 4194304]
    #[arg(long, env = "SLUICE_MAX_REQUEST_BYTES")]
    max_request_bytes: Option<String>,
    /// A properties file (listeners, bootstrap.servers, ksql.service.id, data.dir, broker.listen,
    /// ksql.max.push.queries, sluice.http.max.request.bytes, authentication.*, ssl.*)
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    /// Reads a password from standard input, prints its ARGON2: credential for a password file
    /// line (`user: ARGON2:…,role`) and exits
    #[arg(long)]
    hash_password: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tansu_broker=warn,tansu_storage=warn,tansu_service=warn,tansu_sans_io=warn,libsql=warn".into()),
        )
        .init();
    let args = Args::parse();
    if args.hash_password {
        let mut password = String::new();
        std::io::stdin().read_line(&mut password).context("reading the password")?;
        println!("{}", server::auth::argon2_credential(password.trim_end_matches(['\r', '\n']))?);
        return Ok(());
    }
    let config = ServerConfig::load(
        args.config.as_deref(),
        Overrides {
            listen: args.listen,
            bootstrap_servers: args.bootstrap_servers,
            broker_listen: args.broker_listen,
            service_id: args.service_id,
            data_dir: args.data_dir,
            max_push_queries: args.max_push_queries,
            max_request_bytes: args.max_request_bytes,
        },
    )?;
    let broker = match &config.bootstrap_servers {
        Some(_) => None,
        None => Some(
            EmbeddedBroker::start(config.broker_listen, &config.data_dir)
                .await
                .context("starting the embedded broker")?,
        ),
    };
    let bootstrap = match (&config.bootstrap_servers, &broker) {
        (Some(servers), _) => servers.clone(),
        (None, Some(broker)) => broker.bootstrap_servers(),
        (None, None) => unreachable!("the embedded broker starts when no cluster is given"),
    };
    let listen: SocketAddr = config.listen;
    let guard = match &config.authentication {
        Some(basic) => Some(std::sync::Arc::new(server::auth::Guard::load(basic).context("loading the users of authentication.realm")?)),
        None => None,
    };
    let tls = config.tls.as_ref().map(server::tls::server_config).transpose().context("setting up TLS on the listener")?;
    let engine = Engine::start(config, &bootstrap)
        .await
        .with_context(|| format!("connecting to Kafka at {bootstrap}"))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    server::serve(engine.clone(), listen, tls, guard, shutdown).await?;
    info!("shutting down");
    let stopped = tokio::time::timeout(SHUTDOWN_LIMIT, async {
        engine.shutdown().await
    })
    .await;
    if stopped.is_err() {
        warn!("shutdown took longer than {SHUTDOWN_LIMIT:?}; exiting with work uncommitted, to be redone on restart");
    }
    if let Some(broker) = broker {
        broker.stop();
    }
    Ok(())
}

/// Cancels on the first Ctrl-C or SIGTERM; a second one exits at once.
async fn stop_on_signal(shutdown: CancellationToken) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    shutdown.cancel();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    std::process::exit(130);
}
