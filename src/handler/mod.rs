//! Statement handling: one `execute` that validates a statement, appends it to the command log
//! when it changes state, applies it, and answers with ksqlDB's entities; and the follower that
//! applies what the service's other servers append.

pub mod connector;
pub mod ddl;
pub mod entity;
pub mod explain;
pub mod insert;
pub mod lag;
pub mod metadata;
pub mod placement;

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Weak,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use ddl::Mode;
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::{
    catalog::{
        Catalog, SourceDef,
        command_log::{Command, CommandLog},
        types::CustomTypes,
    },
    cluster::{Holders, Membership, membership::HEARTBEAT_INTERVAL},
    config::ServerConfig,
    connectors::kafka::{KafkaCluster, offsets::OffsetStore, source_offsets::SourceOffsets},
    error::{Result, SluiceError},
    parser::{CreateAsSelect, DropSource, KsqlParser, ParsedStatement, Statement, variables},
    planner::stages::Staged,
    properties,
    runtime::{
        QueryManager,
        connectors::ConnectorManager,
        processing_log::{self, ProcessingLog},
    },
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
    /// This server's share of the service's persistent queries.
    pub placement: placement::Placement,
    /// State-changing statements are applied one at a time, in command-log order.
    write: tokio::sync::Mutex<()>,
    /// The sequence number of the next command to apply: every one before it is applied here.
    next_command: AtomicI64,
    /// Command-log entries that could not be applied (on replay, followed, or a query that
    /// could not start): the server serves the rest and reports itself degraded.
    replay_failures: parking_lot::Mutex<Vec<ReplayFailure>>,
}

/// A logged statement the server could not apply when it replayed the command log.
#[derive(Debug, Clone)]
pub struct ReplayFailure {
    pub sequence: i64,
    pub statement: String,
    pub error: String,
}

impl Engine {
    /// Connects to Kafka, replays the command log and resumes every persistent query and connector.
    pub async fn start(config: ServerConfig, bootstrap_servers: &str) -> Result<Arc<Engine>> {
        let cluster = Arc::new(KafkaCluster::connect_with(bootstrap_servers, &config.kafka_security.properties)?);
        let commands = CommandLog::open(cluster.clone(), &config.service_id).await?;
        let offsets = Arc::new(OffsetStore::open(cluster.clone(), &config.service_id).await?);
        let source_offsets = Arc::new(SourceOffsets::open(cluster.clone(), &config.service_id).await?);
        let log = Arc::new(ProcessingLog::new(cluster.clone(), &config.service_id, tokio::runtime::Handle::current()));
        cluster.ensure_topic(log.topic(), 1, 1, &[]).await?;
        let me = config.server_name();
        let membership = Membership::join(cluster.clone(), &config.service_id, me.clone(), config.session_timeout).await?;
        let holders = Holders::open(cluster.clone(), &config.service_id, me).await?;
        let catalog = Arc::new(Catalog::default());
        let engine = Arc::new(Engine {
            placement: placement::Placement::new(membership, holders),
            config,
            connectors: ConnectorManager::new(cluster.clone(), catalog.clone(), source_offsets),
            catalog,
            queries: QueryManager::new(cluster.clone(), offsets, log),
            cluster,
            commands,
            write: tokio::sync::Mutex::new(()),
            next_command: AtomicI64::new(0),
            replay_failures: parking_lot::Mutex::new(Vec::new()),
        });
        engine.replay().await?;
        engine.beat().await?;
        engine.placement.membership.settle().await?;
        tokio::spawn(keep_beating(Arc::downgrade(&engine)));
        engine.place().await;
        tokio::spawn(follow(Arc::downgrade(&engine)));
        Ok(engine)
    }

    async fn replay(&self) -> Result<()> {
        let (commands, end) = self.commands.replay().await?;
        let count = commands.len();
        for (seq, command) in commands {
            match command {
                Ok(command) => {
                    let _ = self.apply_logged(seq, &command, Mode::Replay).await;
                }
                Err(unreadable) => self.replay_failed(seq, &unreadable.text, &SluiceError::Internal(unreadable.error)),
            }
        }
        self.next_command.store(end, Ordering::SeqCst);
        self.declare_processing_log()?;
        let queries: Vec<_> = self.catalog.snapshot().queries.into_values().collect();
        for query in queries.iter().filter(|q| q.paused) {
            self.queries.pause(&query.id);
        }
        for table in self.catalog.snapshot().streams.values().filter(|s| s.is_materialized()) {
            if let Err(e) = self.queries.materialize(table) {
                self.replay_failed(-1, &table.statement, &e);
            }
        }
        let connectors = self.catalog.snapshot().connectors.len();
        info!(commands = count, queries = queries.len(), connectors, "command log replayed");
        Ok(())
    }

    /// Applies a logged command as `mode` says. A statement the catalog no longer allows at its
    /// place in the log (another server's statement came first) is refused here as on every
    /// server, and only logged; one that fails otherwise is kept as a failure the health check
    /// shows. Gives the statement's entity, or why it was refused or failed.
    async fn apply_logged(&self, seq: i64, command: &Command, mode: Mode) -> Result<Value> {
        let properties = properties::normalize(&command.properties).unwrap_or_else(|_| command.properties.clone());
        let parsed = match KsqlParser::parse_one_with_types(&command.statement, &self.catalog.types()) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.replay_failed(seq, &command.statement, &e);
                return Err(e);
            }
        };
        if let Err(refusal) = ddl::check_logged(self, &parsed) {
            info!(sequence = seq, statement = %command.statement, reason = %refusal, "a logged statement is refused: another came first");
            return Err(refusal);
        }
        let applied = ddl::apply(self, &parsed, &properties, seq, mode, command.start.clone()).await;
        if let Err(e) = &applied {
            self.replay_failed(seq, &command.statement, e);
        }
        applied
    }

    /// Applies the commands other servers logged, up to `until` (exclusive). The caller holds
    /// the write lock.
    async fn follow_to(&self, until: i64) -> Result<()> {
        let from = self.next_command.load(Ordering::SeqCst);
        if until <= from {
            return Ok(());
        }
        for (seq, command) in self.commands.read(from, until).await? {
            match command {
                Ok(command) => {
                    debug!(sequence = seq, statement = %command.statement, "applying a statement another server logged");
                    let _ = self.apply_logged(seq, &command, Mode::Followed).await;
                }
                Err(unreadable) => self.replay_failed(seq, &unreadable.text, &SluiceError::Internal(unreadable.error)),
            }
            self.next_command.store(seq + 1, Ordering::SeqCst);
        }
        self.next_command.store(until, Ordering::SeqCst);
        Ok(())
    }

    /// Applies whatever the service's other servers have logged since this one last looked.
    pub async fn catch_up(&self) -> Result<()> {
        let end = self.commands.end().await?;
        if end <= self.next_command.load(Ordering::SeqCst) {
            return Ok(());
        }
        let _guard = self.write.lock().await;
        self.follow_to(end).await
    }

    /// Waits until the command with sequence number `seq` is applied here (ksqlDB's
    /// `commandSequenceNumber` of a request), catching up on the log meanwhile; false when
    /// `limit` passes first.
    pub async fn await_command(&self, seq: i64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if seq < self.next_command.load(Ordering::SeqCst) {
                return true;
            }
            if let Err(e) = self.catch_up().await {
                warn!(error = %e, "could not read the command log");
            }
            if seq < self.next_command.load(Ordering::SeqCst) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(COMMAND_POLL).await;
        }
    }

    fn replay_failed(&self, sequence: i64, statement: &str, error: &SluiceError) {
        warn!(sequence, statement, error = %error, "a command could not be applied");
        self.replay_failures.lock().push(ReplayFailure {
            sequence,
            statement: statement.to_string(),
            error: error.to_string(),
        });
    }

    /// The logged statements that could not be applied, on start or since.
    pub fn replay_failures(&self) -> Vec<ReplayFailure> {
        self.replay_failures.lock().clone()
    }

    /// Declares the stream over the processing log, unless the command log declared one.
    fn declare_processing_log(&self) -> Result<()> {
        if self.catalog.has_stream(processing_log::STREAM_NAME) {
            return Ok(());
        }
        let declaration = self.queries.processing_log().declaration();
        let parsed = KsqlParser::parse_one(&declaration)?;
        let Statement::CreateSource(create) = &parsed.statement else {
            return Err(SluiceError::Internal("the processing log's declaration is not a CREATE STREAM".into()));
        };
        let stream = SourceDef::from_declaration(&create.name, create.columns.clone(), &create.properties, None, &declaration)?;
        self.catalog.put_stream(stream);
        Ok(())
    }

    /// Runs every statement of `sql` in order, stopping at the first failure. Every statement is
    /// parsed (with `${name}` replaced by the request's and `DEFINE`d variables) before any runs.
    pub async fn execute(
        &self,
        sql: &str,
        request_properties: &BTreeMap<String, String>,
        request_variables: &BTreeMap<String, String>,
    ) -> Result<Vec<Value>, StatementFailure> {
        let whole = |error| StatementFailure {
            error,
            statement_text: sql.trim().to_string(),
            entities: Vec::new(),
            is_query: false,
        };
        if let Err(e) = self.catch_up().await {
            warn!(error = %e, "could not read the command log; answering from what is applied here");
        }
        let parsed = parse_with_variables(sql, request_variables, &self.catalog.types()).map_err(whole)?;
        let mut properties = properties::normalize(request_properties).map_err(whole)?;
        let mut session = Session {
            properties: &mut properties,
            variables: request_variables.clone(),
        };
        let mut entities = Vec::new();
        for statement in parsed {
            match self.execute_one(&statement, &mut session).await {
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

    async fn execute_one(&self, parsed: &ParsedStatement, session: &mut Session<'_>) -> Result<Option<Value>> {
        let properties = &mut *session.properties;
        match &parsed.statement {
            Statement::Set(set) => {
                properties::set(properties, &set.name, &set.value)?;
                Ok(None)
            }
            Statement::Unset(unset) => {
                properties::unset(properties, &unset.name)?;
                Ok(None)
            }
            Statement::Define(define) => {
                undefine_variable(&mut session.variables, &define.name);
                session.variables.insert(define.name.clone(), define.value.clone());
                Ok(None)
            }
            Statement::Undefine(undefine) => Ok((!undefine_variable(&mut session.variables, &undefine.name))
                .then(|| entity::warning(&parsed.text, &format!("Cannot undefine variable '{}' which was never defined", undefine.name)))),
            Statement::Show(show) => metadata::show(self, parsed, show, properties, &session.variables).map(Some),
            Statement::Describe(describe) => metadata::describe(self, parsed, describe).map(Some),
            Statement::DescribeConnector(describe) => metadata::describe_connector(self, parsed, describe).map(Some),
            Statement::Explain(target) => explain::explain(self, parsed, target).await.map(Some),
            Statement::InsertValues(insert) => {
                insert::insert_values(self, insert).await?;
                Ok(None)
            }
            Statement::Select(_) | Statement::Print(_) => Err(SluiceError::Plan(
                "The following statement types should be issued to the websocket endpoint '/query': SELECT, PRINT".into(),
            )),
            Statement::CreateAsSelect(csas) if !(csas.if_not_exists && self.catalog.has_stream(&csas.name)) => {
                match crate::planner::stages::split(&self.catalog, &csas.name, &csas.select)? {
                    Some(staged) => self.execute_staged(parsed, csas, staged, session).await,
                    None => self.apply_statement(parsed, properties).await,
                }
            }
            _ => self.apply_statement(parsed, properties).await,
        }
    }

    /// Runs a statement whose joins need a stage: the stage first, as a statement of its own
    /// (itself staged when it needs one), then the statement reading it, answered with the
    /// statement's own text; the stage is dropped again when the statement fails.
    async fn execute_staged(&self, parsed: &ParsedStatement, csas: &CreateAsSelect, staged: Staged, session: &mut Session<'_>) -> Result<Option<Value>> {
        let location = parsed.location;
        let stage = ParsedStatement {
            text: format!("{};", staged.stage),
            statement: Statement::CreateAsSelect(staged.stage.clone()),
            location,
        };
        Box::pin(self.execute_one(&stage, session)).await?;
        let reading = CreateAsSelect { select: staged.select, ..csas.clone() };
        let reading = ParsedStatement { text: format!("{reading};"), statement: Statement::CreateAsSelect(reading), location };
        match Box::pin(self.execute_one(&reading, session)).await {
            Ok(entity) => Ok(entity.map(|mut entity| {
                if let Some(text) = entity.get_mut("statementText") {
                    *text = Value::String(parsed.text.clone());
                }
                entity
            })),
            Err(error) => {
                let drop = DropSource { kind: staged.stage.kind, if_exists: true, name: staged.stage.name.clone(), delete_topic: false };
                let undo = ParsedStatement { text: format!("{drop};"), statement: Statement::DropSource(drop), location };
                if let Err(e) = Box::pin(self.execute_one(&undo, session)).await {
                    warn!(stage = %staged.stage.name, error = %e, "could not drop the join stage of a statement that failed");
                }
                Err(error)
            }
        }
    }

    /// Validates, logs and applies a statement that changes the catalog.
    async fn apply_statement(&self, parsed: &ParsedStatement, properties: &BTreeMap<String, String>) -> Result<Option<Value>> {
        let applied = {
            let _guard = self.write.lock().await;
            self.follow_to(self.commands.end().await?).await?;
            ddl::validate(self, parsed, properties).await?;
            let start = ddl::prepare(self, parsed, properties).await?;
            let seq = self
                .commands
                .append(&Command {
                    statement: parsed.text.clone(),
                    properties: properties.clone(),
                    start: start.clone(),
                })
                .await?;
            // Another server may have logged statements between this one's validation
            // and its place in the log: they are applied first, and this one checked again.
            self.follow_to(seq).await?;
            let applied = match ddl::check_logged(self, parsed) {
                Ok(()) => ddl::apply(self, parsed, properties, seq, Mode::Accepted, start).await,
                Err(refusal) => Err(refusal),
            };
            self.next_command.store(seq + 1, Ordering::SeqCst);
            applied
        };
        self.place().await;
        applied.map(Some)
    }
}

/// How often the log is read for what other servers appended, and how often a request waiting
/// for a command looks again.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);
const COMMAND_POLL: Duration = Duration::from_millis(50);

/// Follows the command log for as long as the engine lives: what the service's other servers
/// append is applied here within [`FOLLOW_INTERVAL`], and a placement pass follows, so a
/// server that joins or leaves is noticed as soon.
async fn follow(engine: Weak<Engine>) {
    loop {
        tokio::time::sleep(FOLLOW_INTERVAL).await;
        let Some(engine) = engine.upgrade() else { return };
        if engine.placement.is_leaving() {
            return;
        }
        if let Err(e) = engine.catch_up().await {
            warn!(error = %e, "could not follow the command log");
        }
        engine.place().await;
    }
}

/// Says every [`HEARTBEAT_INTERVAL`] that this server is alive, until it leaves.
async fn keep_beating(engine: Weak<Engine>) {
    loop {
        tokio::time::sleep(HEARTBEAT_INTERVAL).await;
        let Some(engine) = engine.upgrade() else { return };
        if engine.placement.is_leaving() {
            return;
        }
        if let Err(e) = engine.beat().await {
            warn!(error = %e, "could not send a heartbeat");
        }
    }
}

/// What one request's statements share: its properties, changed by `SET` and `UNSET`, and its
/// variables, changed by `DEFINE` and `UNDEFINE`.
struct Session<'a> {
    properties: &'a mut BTreeMap<String, String>,
    variables: BTreeMap<String, String>,
}

/// Parses each statement of `sql` after replacing `${name}` with the variables defined at that
/// point: the request's, then those its `DEFINE`s and `UNDEFINE`s set. Column types may name
/// `types` and the types the request's `CREATE TYPE`s name before them.
fn parse_with_variables(sql: &str, variables: &BTreeMap<String, String>, types: &CustomTypes) -> Result<Vec<ParsedStatement>> {
    let mut variables = variables.clone();
    let mut types = types.clone();
    let mut parsed = Vec::new();
    for piece in KsqlParser::split(sql)? {
        let text = variables::substitute(&piece.text, &variables);
        let statement = KsqlParser::parse_split(&text, piece.location, &types)?;
        statement.statement.name_types(&mut types);
        match &statement.statement {
            Statement::Define(define) => {
                undefine_variable(&mut variables, &define.name);
                variables.insert(define.name.clone(), define.value.clone());
            }
            Statement::Undefine(undefine) => {
                undefine_variable(&mut variables, &undefine.name);
            }
            _ => {}
        }
        parsed.push(statement);
    }
    Ok(parsed)
}

/// Removes a variable, its name in any case (as `${name}` finds it); whether there was one.
fn undefine_variable(variables: &mut BTreeMap<String, String>, name: &str) -> bool {
    let before = variables.len();
    variables.retain(|defined, _| !defined.eq_ignore_ascii_case(name));
    variables.len() < before
}
