//! The HTTP API: ksqlDB's REST endpoints, Kafka Connect's `/connectors` and the web console
//! on one port, HTTP/1.1 and HTTP/2, in clear or over TLS.

pub mod auth;
mod body;
mod cluster;
mod connect;
mod console;
mod error;
mod forward;
#[cfg(test)]
mod fuzz;
mod inserts;
mod ksql;
mod metrics;
mod query;
pub mod tls;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, routing::{get, post}};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use error::AppError;

use crate::{error::Result, handler::Engine};

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// Running push queries by id, for `/close-query`.
    pub push_queries: Arc<Mutex<BTreeMap<String, CancellationToken>>>,
    /// What `/metrics` shows.
    pub metrics: Arc<metrics::Metrics>,
    /// How this server reaches the others of its service.
    pub peers: reqwest::Client,
}

/// The API's routes; with a guard, every request must pass it first.
pub fn router(engine: Arc<Engine>, guard: Option<Arc<auth::Guard>>) -> Result<Router> {
    let state = AppState {
        metrics: Arc::new(metrics::Metrics::new(engine.clone())),
        peers: forward::peer_client(engine.config.tls.as_ref())?,
        engine,
        push_queries: Arc::new(Mutex::new(BTreeMap::new())),
    };
    let router = Router::new()
        .route("/ksql", post(ksql::ksql))
        .route("/info", get(ksql::info))
        .route("/healthcheck", get(ksql::healthcheck))
        .route("/clusterStatus", get(cluster::cluster_status))
        .route("/query", post(query::query))
        .route("/query-stream", post(query::query_stream))
        .route("/close-query", post(query::close_query))
        .route("/inserts-stream", post(inserts::inserts_stream))
        .route("/connectors", get(connect::list).post(connect::create))
        .route("/connectors/{name}", get(connect::get_info).delete(connect::delete))
        .route("/connectors/{name}/config", get(connect::get_config).put(connect::put_config))
        .route("/connectors/{name}/status", get(connect::status))
        .route("/connectors/{name}/tasks", get(connect::tasks))
        .route("/connectors/{name}/topics", get(connect::topics))
        .route("/connectors/{name}/restart", post(connect::restart))
        .route("/connectors/{name}/tasks/{task}/restart", post(connect::restart))
        .route("/metrics", get(metrics::metrics))
        .merge(console::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count_requests))
        .with_state(state);
    Ok(match guard {
        Some(guard) => router.layer(axum::middleware::from_fn_with_state(guard, auth::require)),
        None => router,
    })
}

/// Serves the API until `shutdown` is cancelled, then drains for at most five seconds; with a
/// TLS configuration, over TLS only.
pub async fn serve(
    engine: Arc<Engine>,
    address: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    guard: Option<Arc<auth::Guard>>,
    shutdown: CancellationToken,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let app = router(engine, guard)?;
    match tls {
        None => {
            info!(%address, "HTTP API listening");
            run(listener, app, shutdown).await
        }
        Some(config) => {
            info!(%address, "HTTPS API listening");
            run(tls::TlsListener::new(listener, config)?, app, shutdown).await
        }
    }
}

async fn run<L>(listener: L, app: Router, shutdown: CancellationToken) -> Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let drained = shutdown.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move { drained.cancelled().await });
    tokio::select! {
        result = server => result?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(Duration::from_secs(5)).await } => {}
    }
    Ok(())
}
