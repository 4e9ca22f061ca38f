//! Statement handling: one `execute` that validates a statement, appends it to the command log
//! when it changes state, applies it, and answers with ksqlDB's entities.

pub mod connector;
pub mod ddl;
pub mod entity;
pub mod metadata;

use std::{collections::BTreeMap, sync::Arc};

use serde_json::Value;
use tracing::{info, warn};

use crate::{
    catalog::{Catalog, command_log::{Command, CommandLog}},
    config::ServerConfig,
    connectors::kafka::{KafkaCluster, offsets::OffsetStore},
    error::{Result, SluiceError},
    parser::{KsqlParser, ParsedStatement, Statement},
    runtime::{QueryManager, connectors::ConnectorManager},
};

/// A statement that failed, with the entities of the statements before it that succeeded.
#[derive(Debug)]
pub struct StatementFailure {
    pub error: SluiceError,
    pub statement_text: String,
    pub entities: Vec<Value>,
    /// A SELECT or PRINT was sent where only statements are taken.
    pub is_query: bool,
}

/// The server's engine: catalog, Kafka, command log, running queries and connectors.
pub struct Engine {
    pub config: ServerConfig,
    pub catalog: Arc<Catalog>,
    pub cluster: Arc<KafkaCluster>,
    pub commands: CommandLog,
    pub queries: QueryManager,
    pub connectors: ConnectorManager,
    /// State-changing statements are applied one at a time, in command-log order.
    write: tokio::sync::Mutex<()>,
}

impl Engine {
    /// Connects to Kafka, replays the command log and resumes every persistent query and connector.
    pub async fn start(config: ServerConfig, bootstrap_servers: &str) -> Result<Arc<Engine>> {
        let cluster = Arc::new(KafkaCluster::connect(bootstrap_servers)?);
        let commands = CommandLog::open(cluster.clone(), &config.service_id).await?;
        let offsets = Arc::new(OffsetStore::open(cluster.clone(), &config.service_id).await?);
        let catalog = Arc::new(Catalog::default());
        let engine = Arc::new(Engine {
            config,
            connectors: ConnectorManager::new(cluster.clone(), catalog.clone()),
            catalog,
            queries: QueryManager::new(cluster.clone(), offsets),
            cluster,
            commands,
            write: tokio::sync::Mutex::new(()),
        });
        engine.replay().await?;
        Ok(engine)
    }

    async fn replay(&self) -> Result<()> {
        let commands = self.commands.replay().await?;
        let count = commands.len();
        for (seq, command) in commands {
            let parsed = match KsqlParser::parse_one(&command.statement) {
                Ok(parsed) => parsed,
                Err(e) => {
                    warn!(seq, error = %e, "skipping a command that no longer parses");
                    continue;
                }
            };
            if let Err(e) = ddl::apply(self, &parsed, &command.properties, seq, false).await {
                warn!(seq, statement = %command.statement, error = %e, "a command failed on replay");
            }
        }
        let queries: Vec<_> = self.catalog.snapshot().queries.into_values().collect();
        for query in &queries {
            if let Err(e) = ddl::start_query(self, query).await {
                warn!(query = %query.id, error = %e, "could not resume query");
            }
        }
        let connectors: Vec<_> = self.catalog.snapshot().connectors.into_values().collect();
        for connector in &connectors {
            if let Err(e) = self.connectors.start(connector).await {
                warn!(connector = %connector.name, error = %e, "could not resume connector");
            }
        }
        info!(commands = count, queries = queries.len(), connectors = connectors.len(), "command log replayed");
        Ok(())
    }

    /// Runs every statement of `sql` in order, stopping at the first failure.
    pub async fn execute(
        &self,
        sql: &str,
        request_properties: &BTreeMap<String, String>,
    ) -> Result<Vec<Value>, StatementFailure> {
        let parsed = KsqlParser::parse(sql).map_err(|error| StatementFailure {
            error,
            statement_text: sql.trim().to_string(),
            entities: Vec::new(),
            is_query: false,
        })?;
        let mut properties = request_properties.clone();
        let mut entities = Vec::new();
        for statement in parsed {
            match self.execute_one(&statement, &mut properties).await {
                Ok(Some(entity)) => entities.push(entity),
                Ok(None) => {}
                Err(error) => {
                    return Err(StatementFailure {
                        is_query: matches!(statement.statement, Statement::Select(_) | Statement::Print(_))
                            && matches!(error, SluiceError::Plan(_)),
                        error,
                        statement_text: statement.text,
                        entities,
                    });
                }
            }
        }
        Ok(entities)
    }

    async fn execute_one(
        &self,
        parsed: &ParsedStatement,
        properties: &mut BTreeMap<String, String>,
    ) -> Result<Option<Value>> {
        match &parsed.statement {
            Statement::Set(set) => {
                properties.insert(set.name.clone(), set.value.clone());
                Ok(None)
            }
            Statement::Unset(unset) => {
                properties.remove(&unset.name);
                Ok(None)
            }
            Statement::Show(show) => metadata::show(self, parsed, show, properties).map(Some),
            Statement::Describe(describe) => metadata::describe(self, parsed, describe).map(Some),
            Statement::DescribeConnector(describe) => metadata::describe_connector(self, parsed, describe).map(Some),
            Statement::InsertValues(insert) => {
                ddl::insert_values(self, insert).await?;
                Ok(None)
            }
            Statement::Select(_) | Statement::Print(_) => Err(SluiceError::Plan(
                "The following statement types should be issued to the websocket endpoint '/query': SELECT, PRINT".into(),
            )),
            _ => {
                let _guard = self.write.lock().await;
                ddl::validate(self, parsed, properties).await?;
                let seq = self
                    .commands
                    .append(&Command {
                        statement: parsed.text.clone(),
                        properties: properties.clone(),
                    })
                    .await?;
                ddl::apply(self, parsed, properties, seq, true).await.map(Some)
            }
        }
    }

    pub fn shutdown(&self) {
        self.queries.shutdown();
    }
}
