//! This server's share of the service's work: its persistent queries and connectors. Each pass
//! deals them round the servers alive; lets go of those no longer its share (stopped at a
//! checkpoint first, so the next holder starts exactly there); and starts those that are once
//! it holds them — claimed when free, taken over when their holder has stopped beating, else
//! waited for until their holder lets them go.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::{AtomicBool, Ordering},
};

use parking_lot::Mutex;
use tracing::{info, warn};

use super::{Engine, ddl};
use crate::{
    catalog::CatalogState,
    cluster::{Holders, Membership, assignment::assign, membership::host_port},
    error::Result,
};

/// A piece of work one server runs at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Task {
    Query(String),
    Connector(String),
}

impl Task {
    /// Its name in the holders log.
    pub fn name(&self) -> String {
        match self {
            Task::Query(id) => format!("query/{id}"),
            Task::Connector(name) => format!("connector/{name}"),
        }
    }

    fn parse(name: &str) -> Option<Task> {
        if let Some(id) = name.strip_prefix("query/") {
            Some(Task::Query(id.to_string()))
        } else {
            name.strip_prefix("connector/").map(|n| Task::Connector(n.to_string()))
        }
    }

    /// Whether it exists and is to run: a query not paused, a connector.
    fn wanted(&self, catalog: &CatalogState) -> bool {
        match self {
            Task::Query(id) => catalog.queries.get(id).is_some_and(|q| !q.paused),
            Task::Connector(name) => catalog.connectors.contains_key(name),
        }
    }
}

/// Every task of `catalog`, in the order they are dealt: queries as they were created, then
/// connectors by name.
fn tasks(catalog: &CatalogState) -> Vec<Task> {
    let mut queries: Vec<_> = catalog.queries.values().filter(|q| !q.paused).collect();
    queries.sort_by_key(|q| (q.sequence, q.id.clone()));
    queries
        .into_iter()
        .map(|q| Task::Query(q.id.clone()))
        .chain(catalog.connectors.keys().map(|name| Task::Connector(name.clone())))
        .collect()
}

pub struct Placement {
    pub membership: Membership,
    pub holders: Holders,
    /// The tasks running here.
    running: Mutex<BTreeSet<Task>>,
    /// Tasks that could not start here, with why; not tried again while they exist.
    failed: Mutex<BTreeMap<Task, String>>,
    /// One pass at a time.
    pass: tokio::sync::Mutex<()>,
    /// One heartbeat at a time: none goes out after the one saying this server is leaving.
    beating: tokio::sync::Mutex<()>,
    /// Set on shutdown: no more passes.
    leaving: AtomicBool,
}

impl Placement {
    pub fn new(membership: Membership, holders: Holders) -> Placement {
        Placement {
            membership,
            holders,
            running: Mutex::default(),
            failed: Mutex::default(),
            pass: tokio::sync::Mutex::new(()),
            beating: tokio::sync::Mutex::new(()),
            leaving: AtomicBool::new(false),
        }
    }

    /// Whether this server is shutting down.
    pub fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::SeqCst)
    }

    /// The server holding each task, as far as this one knows.
    pub fn holders(&self) -> BTreeMap<Task, String> {
        self.holders
            .holds()
            .into_iter()
            .filter_map(|(name, hold)| Some((Task::parse(&name)?, hold.server?)))
            .collect()
    }
}

impl Engine {
    /// One pass of placement; what fails is logged and tried again on the next.
    pub async fn place(&self) {
        let placement = &self.placement;
        let _pass = placement.pass.lock().await;
        if placement.is_leaving() {
            return;
        }
        let me = placement.membership.me().to_string();
        let catalog = self.catalog.snapshot();
        let tasks = tasks(&catalog);
        let names: Vec<String> = tasks.iter().map(Task::name).collect();
        let shares = assign(&names, &placement.membership.live());
        let mine = |task: &Task| shares.get(task.name().as_str()) == Some(&me);
        placement.failed.lock().retain(|task, _| task.wanted(&catalog));

        let running: Vec<Task> = placement.running.lock().iter().cloned().collect();
        for task in running {
            let hold = placement.holders.hold(&task.name());
            let held = hold.server.as_deref() == Some(me.as_str());
            let keep = held && mine(&task) && task.wanted(&catalog);
            if keep && self.runs_here(&task) {
                continue;
            }
            self.stop_task(&task, &catalog, held).await;
            placement.running.lock().remove(&task);
            if keep {
                // Stopped by statements since the last pass (a PAUSE and a RESUME, a connector
                // dropped and created again): still this server's, started again below as it
                // is defined now.
                continue;
            }
            if held {
                info!(task = %task.name(), "letting a task go");
                if let Err(e) = placement.holders.release(&task.name(), hold.epoch).await {
                    warn!(task = %task.name(), error = %e, "could not let go of a task");
                }
            } else {
                warn!(task = %task.name(), holder = ?hold.server, "stopped a task another server has taken over");
            }
        }

        for (name, hold) in placement.holders.holds() {
            let Some(task) = Task::parse(&name) else { continue };
            let idle_here = hold.server.as_deref() == Some(me.as_str()) && !placement.running.lock().contains(&task);
            if idle_here && !(mine(&task) && task.wanted(&catalog)) {
                if let Err(e) = placement.holders.release(&name, hold.epoch).await {
                    warn!(task = %name, error = %e, "could not let go of a task");
                }
            }
        }

        let mut to_start = Vec::new();
        for task in tasks {
            if !mine(&task) || placement.running.lock().contains(&task) || placement.failed.lock().contains_key(&task) {
                continue;
            }
            match self.hold(&task.name()).await {
                Ok(true) => to_start.push(task),
                Ok(false) => {}
                Err(e) => warn!(task = %task.name(), error = %e, "could not take hold of a task"),
            }
        }
        if to_start.is_empty() {
            return;
        }
        // Where the last holders left them, read once all are held (each holder committed
        // before it let go); Kafka not answering is tried again next pass.
        let queries = to_start.iter().any(|t| matches!(t, Task::Query(_)));
        let connectors = to_start.iter().any(|t| matches!(t, Task::Connector(_)));
        let committed = async {
            if queries {
                self.queries.offsets().reload().await?;
            }
            if connectors {
                self.connectors.reload_offsets().await?;
            }
            Ok::<_, crate::error::SluiceError>(())
        };
        if let Err(e) = committed.await {
            warn!(error = %e, "could not read the committed positions; trying again");
            return;
        }
        for task in to_start {
            match self.start_task(&task, &catalog).await {
                Ok(()) => {
                    placement.running.lock().insert(task);
                }
                Err(e) => {
                    let what = match &task {
                        Task::Query(id) => catalog.queries.get(id).map_or_else(|| task.name(), |q| q.statement.clone()),
                        Task::Connector(_) => task.name(),
                    };
                    self.replay_failed(-1, &what, &e);
                    placement.failed.lock().insert(task, e.to_string());
                }
            }
        }
    }

    /// Starts a task this server holds from the positions and offsets committed.
    async fn start_task(&self, task: &Task, catalog: &CatalogState) -> Result<()> {
        match task {
            Task::Query(id) => {
                let Some(query) = catalog.queries.get(id) else { return Ok(()) };
                self.queries.forget_paused(id);
                ddl::start_query(self, query).await
            }
            Task::Connector(name) => {
                let Some(connector) = catalog.connectors.get(name) else { return Ok(()) };
                self.connectors.start(connector).await
            }
        }
    }

    /// Whether a task placement started here still runs (a statement may have stopped it).
    fn runs_here(&self, task: &Task) -> bool {
        match task {
            Task::Query(id) => self.queries.is_running(id),
            Task::Connector(name) => self.connectors.is_running(name),
        }
    }

    /// Stops a task running here: at a checkpoint, or as its PAUSE or DROP left it; a
    /// terminated query's positions are forgotten by the server that held it.
    async fn stop_task(&self, task: &Task, catalog: &CatalogState, held: bool) {
        match task {
            Task::Query(id) => match catalog.queries.get(id) {
                // A PAUSE stops it, unless it was applied while this server was starting it.
                Some(query) if query.paused => {
                    if self.queries.is_running(id) {
                        self.queries.pause(id);
                    }
                }
                Some(_) => self.queries.stop_persistent(id),
                None => {
                    self.queries.stop_persistent(id);
                    if held && let Err(e) = self.queries.offsets().forget(id).await {
                        warn!(query = %id, error = %e, "could not forget a terminated query's positions");
                    }
                }
            },
            Task::Connector(name) => self.connectors.stop(name).await,
        }
    }

    /// Says this server is alive and how its queries are, unless it is leaving.
    pub async fn beat(&self) -> Result<()> {
        let _beating = self.placement.beating.lock().await;
        if self.placement.is_leaving() {
            return Ok(());
        }
        self.placement.membership.beat(false, self.local_query_states(), self.local_query_positions()).await
    }

    /// How far each query running here has read: per source partition, the next offset.
    pub fn local_query_positions(&self) -> BTreeMap<String, BTreeMap<i32, i64>> {
        self.local_queries()
            .into_iter()
            .filter_map(|id| Some((id.clone(), self.queries.status(&id)?.progress.read())))
            .collect()
    }

    /// The persistent queries running here.
    fn local_queries(&self) -> Vec<String> {
        self.placement
            .running
            .lock()
            .iter()
            .filter_map(|task| match task {
                Task::Query(id) => Some(id.clone()),
                Task::Connector(_) => None,
            })
            .collect()
    }

    /// The state of each query running here, by id, as this server's heartbeat reports it.
    pub fn local_query_states(&self) -> BTreeMap<String, String> {
        self.local_queries()
            .into_iter()
            .filter_map(|id| Some((id.clone(), self.queries.status(&id)?.state().name().to_string())))
            .collect()
    }

    /// How query `id` is on each server alive that runs it (`host:port` → `RUNNING`, `ERROR`,
    /// …; ksqlDB's `ksqlHostQueryStatus`): here from its status, elsewhere as that server's
    /// last heartbeat said. A query paused shows PAUSED here.
    pub fn query_states(&self, id: &str) -> BTreeMap<String, String> {
        let membership = &self.placement.membership;
        let mut states: BTreeMap<String, String> = membership
            .live_heartbeats()
            .into_iter()
            .filter_map(|heartbeat| Some((host_port(&heartbeat.server), heartbeat.queries.get(id)?.clone())))
            .collect();
        if let Some(status) = self.queries.status(id) {
            states.insert(host_port(membership.me()), status.state().name().to_string());
        }
        states
    }

    /// Takes hold of a task if it can: claimed when nobody holds it, taken over when its
    /// holder has stopped beating, already held here; false while another server holds it.
    async fn hold(&self, task: &str) -> Result<bool> {
        let placement = &self.placement;
        let hold = placement.holders.hold(task);
        match hold.server.as_deref() {
            None => placement.holders.claim(task, hold.epoch).await,
            Some(holder) if holder == placement.membership.me() => Ok(true),
            Some(holder) if !placement.membership.is_live(holder) => {
                if !placement.membership.confirmed_gone(holder).await? {
                    return Ok(false);
                }
                info!(task, holder, "taking over from a server that stopped beating");
                placement.holders.take_over(task, holder, hold.epoch).await
            }
            Some(_) => Ok(false),
        }
    }

    /// Stops every query and connector at a checkpoint, lets go of what this server holds and
    /// says it is leaving, so the other servers of the service take its share at once.
    pub async fn shutdown(&self) {
        let placement = &self.placement;
        placement.leaving.store(true, Ordering::SeqCst);
        let _pass = placement.pass.lock().await;
        self.connectors.shutdown().await;
        crate::connectors::kafka::blocking(|| self.queries.shutdown());
        placement.running.lock().clear();
        let me = placement.membership.me();
        for (task, hold) in placement.holders.holds() {
            if hold.server.as_deref() == Some(me) {
                if let Err(e) = placement.holders.release(&task, hold.epoch).await {
                    warn!(task, error = %e, "could not let go on shutdown");
                }
            }
        }
        let _beating = placement.beating.lock().await;
        if let Err(e) = placement.membership.beat(true, BTreeMap::new(), BTreeMap::new()).await {
            warn!(error = %e, "could not say this server is leaving");
        }
    }
}
