//! Runs the catalog's connectors: one task per connector, started when it is created or the
//! command log is replayed, stopped when it is dropped, restarted on request.

use std::{collections::BTreeMap, sync::Arc};

use parking_lot::Mutex;

use crate::{
    catalog::{Catalog, ConnectorDef},
    connectors::{
        RunningConnector,
        cdc::{self, CdcConfig},
        hdfs::{self, HdfsSinkConfig},
        jdbc::{self, JdbcSourceConfig},
        kafka::{KafkaCluster, source_offsets::SourceOffsets},
        status::ConnectorStatus,
        text::{self, TextSourceConfig},
    },
    error::{Result, SluiceError},
    parser::ConnectorKind,
};

/// A connector's config, checked, by the kind of connector it is.
pub enum ConnectorConfig {
    HdfsSink(HdfsSinkConfig),
    ChangeCapture(CdcConfig),
    JdbcSource(JdbcSourceConfig),
    TextSource(TextSourceConfig),
}

pub struct ConnectorManager {
    cluster: Arc<KafkaCluster>,
    catalog: Arc<Catalog>,
    source_offsets: Arc<SourceOffsets>,
    running: Mutex<BTreeMap<String, RunningConnector>>,
}

impl ConnectorManager {
    pub fn new(cluster: Arc<KafkaCluster>, catalog: Arc<Catalog>, source_offsets: Arc<SourceOffsets>) -> Self {
        Self {
            cluster,
            catalog,
            source_offsets,
            running: Mutex::new(BTreeMap::new()),
        }
    }

    /// Checks a connector's config without starting it; the error names the offending key.
    pub fn validate(connector: &ConnectorDef) -> Result<ConnectorConfig> {
        match connector.kind {
            ConnectorKind::Sink => Ok(ConnectorConfig::HdfsSink(HdfsSinkConfig::from_map(&connector.config)?)),
            ConnectorKind::Source if jdbc::config::is_connector_class(connector.class()) => {
                Ok(ConnectorConfig::JdbcSource(JdbcSourceConfig::from_map(&connector.config)?))
            }
            ConnectorKind::Source if cdc::config::is_connector_class(connector.class()) => {
                Ok(ConnectorConfig::ChangeCapture(CdcConfig::from_map(&connector.config)?))
            }
            ConnectorKind::Source if text::kind_of_class(connector.class()).is_some() => {
                Ok(ConnectorConfig::TextSource(TextSourceConfig::from_map(&connector.config)?))
            }
            ConnectorKind::Source => Err(SluiceError::NotImplemented(format!(
                "source connector class '{}'; Sluice runs {}, {}, {}, {}, {} and {}",
                connector.class(),
                jdbc::CONNECTOR_CLASS,
                cdc::CONNECTOR_CLASS,
                text::config::FILE_STREAM,
                text::config::SPOOL_DIR,
                text::config::HTTP,
                text::config::NETCAT
            ))),
        }
    }

    /// Starts `connector`, replacing a running one of the same name.
    pub async fn start(&self, connector: &ConnectorDef) -> Result<()> {
        let running = match Self::validate(connector)? {
            ConnectorConfig::HdfsSink(config) => hdfs::start(&connector.name, config, self.cluster.clone(), self.catalog.clone()),
            ConnectorConfig::JdbcSource(config) => {
                jdbc::start(&connector.name, config, self.cluster.clone(), self.source_offsets.clone())
            }
            ConnectorConfig::ChangeCapture(config) => {
                cdc::start(&connector.name, config, self.cluster.clone(), self.source_offsets.clone())
            }
            ConnectorConfig::TextSource(config) => {
                text::start(&connector.name, config, self.cluster.clone(), self.source_offsets.clone())
            }
        };
        let previous = self.running.lock().insert(connector.name.clone(), running);
        if let Some(previous) = previous {
            previous.stop().await;
        }
        Ok(())
    }

    /// Reads the source offsets again, as whichever server ran each connector last committed
    /// them, before a connector another server may have run starts here.
    pub async fn reload_offsets(&self) -> Result<()> {
        self.source_offsets.reload().await
    }

    /// Whether `name` runs here.
    pub fn is_running(&self, name: &str) -> bool {
        self.running.lock().contains_key(name)
    }

    pub async fn stop(&self, name: &str) {
        let sink = self.running.lock().remove(name);
        if let Some(sink) = sink {
            sink.stop().await;
        }
    }

    /// Stops and starts a connector; it recovers from what its store has committed.
    pub async fn restart(&self, name: &str) -> Result<()> {
        let connector = self
            .catalog
            .connector(name)
            .ok_or_else(|| SluiceError::NotFound(format!("Connector {name} not found")))?;
        self.stop(&connector.name).await;
        self.start(&connector).await
    }

    pub fn status(&self, name: &str) -> Option<Arc<ConnectorStatus>> {
        self.running.lock().get(name).map(|s| s.status.clone())
    }

    /// Every running connector's status, by name.
    pub fn statuses(&self) -> Vec<(String, Arc<ConnectorStatus>)> {
        self.running.lock().iter().map(|(name, s)| (name.clone(), s.status.clone())).collect()
    }

    /// Stops every connector (server shutdown).
    pub async fn shutdown(&self) {
        let sinks = std::mem::take(&mut *self.running.lock());
        for (_, sink) in sinks {
            sink.stop().await;
        }
    }
}
