//! The journal: every action on an incident goes through here, so each is
//! run and recorded once. One that already succeeded for the incident
//! (before a restart) is not run again; in a dry run, what would have been
//! done is recorded once instead.

use std::fmt::Display;
use std::future::Future;
use std::sync::{Arc, Mutex};

use mailfuse_act::ActError;
use mailfuse_store::{ActionRecord, Lock, Store, StoredIncident};
use tracing::{error, info};

use super::RespondMetrics;

/// The journal name of a dry run's record (one per incident and target).
const DRY_RUN: &str = "dry run";
/// The journal name of an action the safety rules forbade (one per
/// incident and target).
const SKIPPED: &str = "skipped";

/// Records kept in memory at most while the store cannot be written.
const UNWRITTEN_MAX: usize = 10_000;

/// Runs actions (they are async: network, tools) one at a time, in order,
/// and records their outcomes in the store.
pub struct Journal {
    runtime: tokio::runtime::Runtime,
    metrics: RespondMetrics,
    dry_run: bool,
    unwritten: UnwrittenList,
}

/// What the store refused (a full disk), in order, to write once it takes
/// writes again: the incidents, locks and actions of an outage are then in
/// `status`, and not redone after a restart. Shared with the alert queue's
/// worker (cloning shares the list).
#[derive(Clone, Default)]
pub struct UnwrittenList(Arc<Mutex<Vec<Unwritten>>>);

impl UnwrittenList {
    /// Keeps `record`, which the store refused, to write it later.
    pub fn keep(&self, record: Unwritten) {
        let mut unwritten = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if unwritten.len() < UNWRITTEN_MAX {
            unwritten.push(record);
        } else {
            error!("too many records the state could not take: {record:?} is lost");
        }
    }
}

/// A record the store refused.
#[derive(Debug)]
pub enum Unwritten {
    Incident(StoredIncident),
    Lock(Lock),
    Action(ActionRecord),
}

impl Unwritten {
    fn write(&self, store: &mut Store) -> Result<(), mailfuse_store::StoreError> {
        match self {
            Unwritten::Incident(incident) => store.add_incident(incident).map(drop),
            Unwritten::Lock(lock) => store.lock(lock).map(drop),
            Unwritten::Action(record) => store.record_action(record),
        }
    }
}

impl Journal {
    pub fn new(metrics: RespondMetrics, dry_run: bool) -> std::io::Result<Journal> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Journal {
            runtime,
            metrics,
            dry_run,
            unwritten: UnwrittenList::default(),
        })
    }

    /// Keeps `record`, which the store refused, to write it later.
    pub fn keep(&self, record: Unwritten) {
        self.unwritten.keep(record);
    }

    /// The records kept to write later, shared.
    pub fn unwritten(&self) -> UnwrittenList {
        self.unwritten.clone()
    }

    /// Writes the records the store refused before, in order, up to the
    /// first it refuses again; how many were written.
    pub fn write_unwritten(&self, store: &mut Store) -> usize {
        let mut unwritten = self.unwritten.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut written = 0;
        for record in unwritten.iter() {
            if let Err(e) = record.write(store) {
                self.metrics.store_error();
                error!("still cannot record what was done while the state could not be saved: {e}");
                break;
            }
            written += 1;
        }
        unwritten.drain(..written);
        written
    }

    pub fn metrics(&self) -> &RespondMetrics {
        &self.metrics
    }

    /// Whether actions are only recorded as what they would have done.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Runs `action` on `target` for the incident `key` unless it already
    /// succeeded, and records the outcome; what was done, if it succeeded
    /// now. (A future does nothing until run: building it before the check
    /// costs nothing.)
    pub fn once(
        &self,
        store: &mut Store,
        key: &str,
        name: &str,
        target: &str,
        action: impl Future<Output = Result<String, ActError>>,
    ) -> Option<String> {
        if self.succeeded(store, key, name, target) {
            return None;
        }
        self.every_time(store, key, name, target, action)
    }

    /// Runs `action` and records it even if the same was done before (late
    /// holds: each batch is new messages).
    pub fn every_time(
        &self,
        store: &mut Store,
        key: &str,
        name: &str,
        target: &str,
        action: impl Future<Output = Result<String, ActError>>,
    ) -> Option<String> {
        let outcome = self.runtime.block_on(action);
        if let Ok(done) = &outcome {
            info!(action = name, target, "{done}");
        }
        self.record(store, key, name, target, outcome)
    }

    /// In a dry run: records, once per incident and target, `what` would
    /// have been done (`would lock …`).
    pub fn would(&self, store: &mut Store, key: &str, target: &str, what: &str) {
        if self.note_once(store, key, DRY_RUN, target, what) {
            info!(target, "dry run: {what}");
        }
    }

    /// Records, once per incident and target, that an action was not run
    /// and why (`127.0.0.1 not blocked: it is this server…`), so the
    /// journal shows it was judged, not forgotten.
    pub fn skipped(&self, store: &mut Store, key: &str, target: &str, why: &str) {
        self.note_once(store, key, SKIPPED, target, why);
    }

    /// Writes `what` under `name` unless it was written for the incident
    /// and target before; whether it wrote.
    fn note_once(
        &self,
        store: &mut Store,
        key: &str,
        name: &str,
        target: &str,
        what: &str,
    ) -> bool {
        if self.succeeded(store, key, name, target) {
            return false;
        }
        self.write(store, key, name, target, true, what.to_string());
        true
    }

    /// Records an outcome reached outside an action (the store's own lock
    /// or block), logging failures; what was done, if it succeeded.
    pub fn record(
        &self,
        store: &mut Store,
        key: &str,
        name: &str,
        target: &str,
        outcome: Result<String, impl Display>,
    ) -> Option<String> {
        let (ok, outcome) = match outcome {
            Ok(done) => (true, done),
            Err(e) => {
                error!(action = name, target, "failed: {e}");
                (false, e.to_string())
            }
        };
        self.metrics.action(name, ok);
        self.write(store, key, name, target, ok, outcome)
    }

    /// Runs a future outside the journal (unlock, unblock, restores).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Whether `name` already succeeded on `target` for the incident `key`.
    pub fn succeeded(&self, store: &Store, key: &str, name: &str, target: &str) -> bool {
        store
            .action_succeeded(key, name, target)
            .unwrap_or_else(|e| {
                self.metrics.store_error();
                error!(name, target, "cannot read past actions: {e}");
                false
            })
    }

    fn write(
        &self,
        store: &mut Store,
        key: &str,
        name: &str,
        target: &str,
        ok: bool,
        outcome: String,
    ) -> Option<String> {
        let record = ActionRecord {
            incident_key: key.to_string(),
            action: name.to_string(),
            target: target.to_string(),
            at: crate::source::now(),
            ok,
            outcome,
        };
        if let Err(e) = store.record_action(&record) {
            self.metrics.store_error();
            error!(
                action = name,
                target, "cannot record the action (kept to record later): {e}"
            );
            let outcome = ok.then(|| record.outcome.clone());
            self.keep(Unwritten::Action(record));
            return outcome;
        }
        ok.then_some(record.outcome)
    }
}
