//! The embedded Kafka-protocol broker (Tansu with SQLite storage) that runs when no cluster is given.

use std::{net::SocketAddr, path::Path};

use tansu_broker::{broker::Broker, coordinator::group::administrator::Controller};
use tansu_storage::StorageContainer;
use tokio::task::JoinHandle;
use tracing::{error, info};
use url::Url;

use crate::error::{Result, SluiceError};

/// A running in-process broker; dropping it leaves it running, [`EmbeddedBroker::stop`] ends it.
pub struct EmbeddedBroker {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl EmbeddedBroker {
    /// Starts a broker listening on `address` whose log lives in `data_dir/broker.db`.
    ///
    /// Returns once the broker accepts connections.
    pub async fn start(address: SocketAddr, data_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let storage = sqlite_url(&data_dir.join("broker.db"))?;
        let listener = Url::parse(&format!("tcp://{address}"))
            .map_err(|e| SluiceError::Config(format!("broker address {address}: {e}")))?;
        let mut broker = Broker::<Controller<StorageContainer>, StorageContainer>::builder()
            .node_id(tansu_broker::NODE_ID)
            .cluster_id("sluice")
            .incarnation_id(uuid_from_address(address))
            .advertised_listener(listener.clone())
            .storage(storage)
            .listener(listener)
            .silent(true)
            .build()
            .await
            .map_err(|e| SluiceError::Execution(format!("embedded broker: {e:?}")))?;
        let task = tokio::spawn(async move {
            if let Err(e) = broker.serve(tokio::time::Instant::now()).await {
                error!(error = ?e, "embedded broker stopped");
            }
        });
        wait_until_listening(address).await?;
        info!(%address, "embedded Kafka broker listening");
        Ok(Self { address, task })
    }

    pub fn bootstrap_servers(&self) -> String {
        self.address.to_string()
    }

    pub fn stop(self) {
        self.task.abort();
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

fn uuid_from_address(address: SocketAddr) -> uuid::Uuid {
    uuid::Uuid::from_u128(u128::from(address.port()))
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
