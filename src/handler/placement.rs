//! This server's share of the service's persistent queries. Each pass deals the queries round
//! the servers alive; lets go of those no longer its share (stopped at a checkpoint first, so
//! the next holder starts exactly there); and starts those that are once it holds them —
//! claimed when free, taken over when their holder has stopped beating, else waited for until
//! their holder lets them go.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::{AtomicBool, Ordering},
};

use parking_lot::Mutex;
use tracing::{info, warn};

use super::{Engine, ddl};
use crate::{
    catalog::QueryDef,
    cluster::{Holders, Membership, assignment::assign},
    error::Result,
};

/// The name a persistent query goes by in the holders log.
pub fn task(query_id: &str) -> String {
    format!("query/{query_id}")
}

fn query_of(task: &str) -> Option<&str> {
    task.strip_prefix("query/")
}

pub struct Placement {
    pub membership: Membership,
    pub holders: Holders,
    /// The queries running here.
    running: Mutex<BTreeSet<String>>,
    /// Queries that could not start here, with why; not tried again while they exist.
    failed: Mutex<BTreeMap<String, String>>,
    /// One pass at a time.
    pass: tokio::sync::Mutex<()>,
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
            leaving: AtomicBool::new(false),
        }
    }

    /// Whether this server is shutting down.
    pub fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::SeqCst)
    }

    /// The queries running here.
    pub fn running(&self) -> BTreeSet<String> {
        self.running.lock().clone()
    }

    /// Which server runs each query, as far as this one knows: its holder.
    pub fn holders_by_query(&self) -> BTreeMap<String, String> {
        self.holders
            .holds()
            .into_iter()
            .filter_map(|(task, hold)| Some((query_of(&task)?.to_string(), hold.server?)))
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
        let catalog = self.catalog.snapshot().queries;
        let mut queries: Vec<&QueryDef> = catalog.values().filter(|q| !q.paused).collect();
        queries.sort_by_key(|q| (q.sequence, q.id.clone()));
        let tasks: Vec<String> = queries.iter().map(|q| task(&q.id)).collect();
        let shares = assign(&tasks, &placement.membership.live());
        let mine = |task: &str| shares.get(task) == Some(&me);
        placement.failed.lock().retain(|id, _| catalog.contains_key(id));

        let running: Vec<String> = placement.running.lock().iter().cloned().collect();
        for id in running {
            let task = task(&id);
            let hold = placement.holders.hold(&task);
            let held = hold.server.as_deref() == Some(me.as_str());
            if held && mine(&task) {
                continue;
            }
            match catalog.get(&id) {
                // PAUSE stopped it, keeping its status.
                Some(query) if query.paused => {}
                Some(_) => self.queries.stop_persistent(&id),
                None => {
                    self.queries.stop_persistent(&id);
                    if held && let Err(e) = self.queries.offsets().forget(&id).await {
                        warn!(query = %id, error = %e, "could not forget a terminated query's positions");
                    }
                }
            }
            placement.running.lock().remove(&id);
            if held {
                info!(query = %id, "handing a query over");
                if let Err(e) = placement.holders.release(&task, hold.epoch).await {
                    warn!(query = %id, error = %e, "could not let go of a query");
                }
            } else {
                warn!(query = %id, holder = ?hold.server, "stopped a query another server has taken over");
            }
        }

        for (task, hold) in placement.holders.holds() {
            let Some(id) = query_of(&task) else { continue };
            if hold.server.as_deref() == Some(me.as_str()) && !mine(&task) && !placement.running.lock().contains(id) {
                if let Err(e) = placement.holders.release(&task, hold.epoch).await {
                    warn!(query = %id, error = %e, "could not let go of a query");
                }
            }
        }

        for query in queries {
            let task = task(&query.id);
            if !mine(&task) || placement.running.lock().contains(&query.id) || placement.failed.lock().contains_key(&query.id) {
                continue;
            }
            match self.hold(&task).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    warn!(query = %query.id, error = %e, "could not take hold of a query");
                    continue;
                }
            }
            // The previous holder's last checkpoint is where this server starts.
            if let Err(e) = self.queries.offsets().reload().await {
                warn!(query = %query.id, error = %e, "could not read the committed positions; trying again");
                continue;
            }
            match ddl::start_query(self, query).await {
                Ok(()) => {
                    placement.running.lock().insert(query.id.clone());
                }
                Err(e) => {
                    self.replay_failed(-1, &query.statement, &e);
                    placement.failed.lock().insert(query.id.clone(), e.to_string());
                }
            }
        }
    }

    /// Takes hold of `task` if it can: claimed when nobody holds it, taken over when its
    /// holder has stopped beating, already held here; false while another server holds it.
    async fn hold(&self, task: &str) -> Result<bool> {
        let placement = &self.placement;
        let hold = placement.holders.hold(task);
        match hold.server.as_deref() {
            None => placement.holders.claim(task, hold.epoch).await,
            Some(holder) if holder == placement.membership.me() => Ok(true),
            Some(holder) if !placement.membership.is_live(holder) => {
                info!(task, holder, "taking over from a server that stopped beating");
                placement.holders.take_over(task, holder, hold.epoch).await
            }
            Some(_) => Ok(false),
        }
    }

    /// Stops every query at a checkpoint, lets go of what this server holds and says it is
    /// leaving, so the other servers of the service take its share at once.
    pub async fn shutdown(&self) {
        let placement = &self.placement;
        placement.leaving.store(true, Ordering::SeqCst);
        let _pass = placement.pass.lock().await;
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
        if let Err(e) = placement.membership.beat(true).await {
            warn!(error = %e, "could not say this server is leaving");
        }
    }
}
