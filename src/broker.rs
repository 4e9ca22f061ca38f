//! The embedded Kafka-protocol broker (Tansu with SQLite storage) that runs when no cluster is given.

use std::{net::SocketAddr, path::Path, time::Duration};

use tansu_broker::{broker::Broker, coordinator::group::administrator::Controller};
use tansu_storage::StorageContainer;
use tracing::{error, info};
use url::Url;

use crate::error::{Result, SluiceError};

/// A running in-process broker on a runtime of its own, so that blocking Kafka calls made by
/// the server's tasks can never starve the broker they are waiting for.
pub struct EmbeddedBroker {
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `address` whose log lives in `data_dir/broker.db`.
    ///
    /// Returns once the broker accepts connections.
    pub async fn start(address: SocketAddr, data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let database = data_dir.join("broker.db");
        let storage = sqlite_url(&database)?;
        let listener = Url::parse(&format!("tcp://{address}"))
            .map_err(|e| SluiceError::Config(format!("broker address {address}: {e}")))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, started) = tokio::sync::oneshot::channel::<Result<()>>();
        let thread = std::thread::Builder::new()
            .name("embedded-broker".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("broker")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(e.into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let built = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
                        .node_id(tansu_broker::NODE_ID)
                        .cluster_id("sluice")
                        .incarnation_id(uuid::Uuid::from_u128(u128::from(address.port())))
                        .advertised_listener(listener.clone())
                        .storage(storage)
                        .listener(listener)
                        .silent(true)
                        .build()
                        .await;
                    let mut broker = match built {
                        Ok(broker) => broker,
                        Err(e) => {
                            let _ = ready.send(Err(SluiceError::Execution(format!("embedded broker: {e:?}"))));
                            return;
                        }
                    };
                    if let Err(e) = index_headers(&database).await {
                        let _ = ready.send(Err(e));
                        return;
                    }
                    let serve = tokio::spawn(async move {
                        if let Err(e) = broker.serve(tokio::time::Instant::now()).await {
                            error!(error = ?e, "embedded broker stopped");
                        }
                    });
                    let _ = ready.send(wait_until_listening(address).await);
                    let _ = stopped.await;
                    serve.abort();
                });
            })?;
        started
            .await
            .map_err(|_| SluiceError::Execution("the embedded broker's thread ended".into()))??;
        info!(%address, "embedded Kafka broker listening");
        Ok(Self {
            address,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.address.to_string()
    }

    /// Stops the broker and waits for its runtime to end.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Tansu resolves a `sqlite:` URL's path against the working directory, so an absolute
/// path is expressed as a relative one that climbs to the root first.
fn sqlite_url(path: &Path) -> Result<Url> {
    let absolute = std::path::absolute(path)?;
    let cwd = std::env::current_dir()?;
    let climb = "../".repeat(cwd.components().count());
    let rest = absolute.to_string_lossy();
    Url::parse(&format!("sqlite:{climb}{}", rest.trim_start_matches('/')))
        .map_err(|e| SluiceError::Config(format!("broker storage path {}: {e}", path.display())))
}

/// Tansu 0.6.0 reads each fetched record's headers with a query that scans its whole
/// `header` table, which has no index: a fetch costs as many scans as it returns records,
/// each as long as every header ever written, and every record Sluice writes carries its
/// origin header. Fetching then grows quadratic and holds up every other request of the
/// broker (they are served one at a time). The index makes each lookup a seek.
async fn index_headers(database: &Path) -> Result<()> {
    let failed = |e: libsql::Error| SluiceError::Execution(format!("indexing the embedded broker's headers: {e}"));
    let db = libsql::Builder::new_local(database).build().await.map_err(failed)?;
    let connection = db.connect().map_err(failed)?;
    connection.busy_timeout(Duration::from_secs(30)).map_err(failed)?;
    connection
        .execute("CREATE INDEX IF NOT EXISTS sluice_header_record ON header (topition, offset_id)", ())
        .await
        .map_err(failed)?;
    Ok(())
}

async fn wait_until_listening(address: SocketAddr) -> Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    Err(SluiceError::Execution(format!(
        "embedded broker did not start listening on {address}"
    )))
}
