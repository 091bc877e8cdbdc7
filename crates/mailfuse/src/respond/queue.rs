//! The alert queue: alerts (email, webhook, command) are sent by a worker
//! thread of their own, so a slow SMTP server or webhook never delays the
//! reading of the logs, nor the next lock. Locks, queued mail and blocks
//! stay inline in the responder: they are what stops the spam.
//!
//! Each alert of an incident is queued as a row of the store
//! (`pending_alerts`) before it is handed to the worker, and the row goes
//! only in the transaction that records the alert sent: after a crash, the
//! next start sends what was pending, and an alert whose success was
//! recorded is never sent again (the worker asks the journal first).
//! Faults of mailfuse itself (the state not saved) are queued in memory
//! only: the store may be what fails.
//!
//! The queue is bounded ([`CAPACITY`]): when it is full, the oldest alert
//! is dropped (logged and counted), never the newest — a burst of incidents
//! tells the admin of the latest. Each attempt has a time limit
//! ([`ATTEMPT_TIMEOUT`], beside each action's own), a failed one is tried
//! again later and later, [`TRIES`] times in all.
//!
//! An alert is sent at least once, not exactly once: an attempt that timed
//! out, or that a crash cut off between its delivery and the transaction
//! recording it, may have been delivered, and is sent again. Every attempt
//! carries the same alert id ([`Job::alert_id`]: the incident's key, or the
//! fault and when it was told), for the receiver to drop a repeat.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mailfuse_act::capability::{alert_id, Fault};
use mailfuse_act::ActionName;
use mailfuse_detect::Incident;
use mailfuse_store::{ActionRecord, PendingAlert, Store};
use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};

use super::journal::{Unwritten, UnwrittenList};
use super::registry::Actions;
use super::RespondMetrics;

/// Alerts waiting at most; the oldest is dropped to queue one more.
pub const CAPACITY: usize = 1_000;
/// The longest one attempt may take, whatever the action's own timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts per alert before it is given up.
pub const TRIES: u32 = 8;
/// How long a shutdown waits for the alerts due to be sent (the others,
/// and those left, are sent at the next start).
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The wait before the first retry; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Whom alerts are journaled as sent to.
pub const ADMIN: &str = "admin";

/// What an incident's alert says, as its row keeps it.
#[derive(Serialize, Deserialize)]
struct Payload {
    incident: Incident,
    /// What was done about it (locked, blocked…).
    done: Vec<String>,
}

enum What {
    Incident {
        key: String,
        payload: Box<Payload>,
    },
    /// A fault, and when it was told ([`told_now`]): with its kind, what
    /// its alerts' ids are made of.
    Fault {
        fault: Fault,
        told: u128,
    },
}

struct Job {
    /// Its row in `pending_alerts`; none for faults, or when the store
    /// refused it (sent from memory, not after a restart).
    row: Option<i64>,
    action: ActionName,
    what: What,
    tries: u32,
    due: Instant,
}

#[derive(Default)]
struct Queued {
    jobs: VecDeque<Job>,
    /// Rows of dropped alerts, for the worker to remove.
    forget: Vec<i64>,
    /// Set at shutdown: the alerts due are still sent until then.
    stop_by: Option<Instant>,
}

struct Shared {
    queued: Mutex<Queued>,
    wake: Condvar,
    metrics: RespondMetrics,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queued> {
        self.queued.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The queue and its worker; dropping it stops the worker once the
/// alerts due are sent, or after [`STOP_GRACE`] (what is left stays
/// pending in the store).
pub struct AlertQueue {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl AlertQueue {
    /// Starts the worker on its own connection to the state file of
    /// `store`, with the alerts `store` holds pending from before.
    pub fn start(
        store: &mut Store,
        actions: Arc<Actions>,
        host: String,
        metrics: RespondMetrics,
        unwritten: UnwrittenList,
    ) -> Result<AlertQueue> {
        let path = store
            .path()
            .context("the alert queue needs a state file, not a state in memory")?
            .to_path_buf();
        let pending = store.pending_alerts().context(
            "cannot read the alerts pending from before: move the state file away to start afresh",
        )?;
        let shared = Arc::new(Shared {
            queued: Mutex::default(),
            wake: Condvar::new(),
            metrics: metrics.clone(),
        });
        let worker = Worker {
            store: open_worker_store(&path)?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the alert queue's runtime")?,
            actions,
            host,
            metrics,
            unwritten,
            shared: shared.clone(),
        };
        let queue_len = {
            let mut queued = shared.lock();
            for alert in pending {
                match job_of(&alert) {
                    Some(job) => queued.jobs.push_back(job),
                    None => queued.forget.push(alert.id),
                }
            }
            queued.jobs.len()
        };
        if queue_len > 0 {
            info!(alerts = queue_len, "sending the alerts pending from before");
        }
        shared.metrics.alert_queue(queue_len);
        let worker = std::thread::Builder::new()
            .name("alerts".to_string())
            .spawn(move || worker.serve())
            .context("cannot start the alert queue's thread")?;
        Ok(AlertQueue {
            shared,
            worker: Some(worker),
        })
    }

    /// Queues `action`'s alert of the incident `key`, unless it is queued
    /// already (the incident found again after a restart).
    pub fn incident(
        &self,
        store: &mut Store,
        key: &str,
        action: ActionName,
        incident: &Incident,
        done: &[String],
    ) {
        let payload = Box::new(Payload {
            incident: incident.clone(),
            done: done.to_vec(),
        });
        let row = match serde_json::to_string(&payload) {
            Ok(json) => {
                match store.queue_alert(key, action.as_str(), crate::source::now(), &json) {
                    Ok(Some(row)) => Some(row),
                    Ok(None) => return,
                    Err(e) => {
                        self.shared.metrics.store_error();
                        error!(
                            key,
                            action = action.as_str(),
                            "cannot queue the alert in the state (sent from memory, \
                         not after a restart): {e}"
                        );
                        None
                    }
                }
            }
            Err(e) => {
                error!(key, "cannot write the alert for the queue: {e}");
                None
            }
        };
        let what = What::Incident {
            key: key.to_string(),
            payload,
        };
        self.push(row, action, what);
    }

    /// Queues `action`'s alert of `fault`, told at `told` (in memory only).
    pub fn fault(&self, action: ActionName, fault: &Fault, told: u128) {
        let what = What::Fault {
            fault: fault.clone(),
            told,
        };
        self.push(None, action, what);
    }

    fn push(&self, row: Option<i64>, action: ActionName, what: What) {
        let job = Job {
            row,
            action,
            what,
            tries: 0,
            due: Instant::now(),
        };
        let mut queued = self.shared.lock();
        if let Some(oldest) = queued.admit(job, CAPACITY) {
            self.shared.metrics.alert_dropped();
            error!(
                action = oldest.action.as_str(),
                about = oldest.what.about(),
                capacity = CAPACITY,
                "the alert queue is full: its oldest alert is dropped, not sent"
            );
        }
        self.shared.metrics.alert_queue(queued.jobs.len());
        drop(queued);
        self.shared.wake.notify_one();
    }
}

impl Queued {
    /// Queues `job`, dropping the oldest when `capacity` jobs wait already
    /// (its row is to be removed); the job dropped.
    fn admit(&mut self, job: Job, capacity: usize) -> Option<Job> {
        let dropped = if self.jobs.len() >= capacity {
            self.jobs.pop_front()
        } else {
            None
        };
        if let Some(oldest) = &dropped {
            self.forget.extend(oldest.row);
        }
        self.jobs.push_back(job);
        dropped
    }
}

impl Drop for AlertQueue {
    fn drop(&mut self) {
        self.shared.lock().stop_by = Some(Instant::now() + STOP_GRACE);
        self.shared.wake.notify_one();
        if let Some(worker) = self.worker.take() {
            if worker.join().is_err() {
                error!("the alert queue's thread panicked");
            }
        }
    }
}

/// The worker's store: the same file, its own connection.
fn open_worker_store(path: &Path) -> Result<Store> {
    Store::open(path).with_context(|| format!("cannot open {} for the alert queue", path.display()))
}

/// The job of a row from before; `None` (logged) for one this mailfuse
/// cannot send, to be removed.
fn job_of(alert: &PendingAlert) -> Option<Job> {
    let Some(action) = ActionName::of(&alert.action) else {
        error!(
            action = alert.action,
            key = alert.incident_key,
            "a pending alert of an action this mailfuse does not know is dropped"
        );
        return None;
    };
    match serde_json::from_str::<Payload>(&alert.payload) {
        Ok(payload) => Some(Job {
            row: Some(alert.id),
            action,
            what: What::Incident {
                key: alert.incident_key.clone(),
                payload: Box::new(payload),
            },
            tries: 0,
            due: Instant::now(),
        }),
        Err(e) => {
            error!(
                key = alert.incident_key,
                "a pending alert that cannot be read is dropped: {e}"
            );
            None
        }
    }
}

impl What {
    /// The incident's key or the fault's kind, for the log.
    fn about(&self) -> &str {
        match self {
            What::Incident { key, .. } => key,
            What::Fault { fault, .. } => fault.kind,
        }
    }
}

impl Job {
    /// The id of this alert, sent by `host`: the same at every attempt
    /// and, for an incident, after a restart.
    fn alert_id(&self, host: &str) -> String {
        let action = self.action.as_str();
        match &self.what {
            What::Incident { key, .. } => alert_id(host, key, action),
            What::Fault { fault, told } => alert_id(host, &fault_told(fault, *told), action),
        }
    }
}

/// Now, as [`What::Fault`]'s `told`: nanoseconds since 1970.
pub fn told_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default()
}

/// What a fault's alert id is made of: its kind and when it was told.
pub fn fault_told(fault: &Fault, told: u128) -> String {
    format!("fault {} {told}", fault.kind)
}

/// What the worker is to do next.
enum Next {
    Send(Job),
    Forget(Vec<i64>),
    Stop,
}

struct Worker {
    store: Store,
    runtime: tokio::runtime::Runtime,
    actions: Arc<Actions>,
    host: String,
    metrics: RespondMetrics,
    unwritten: UnwrittenList,
    shared: Arc<Shared>,
}

impl Worker {
    fn serve(mut self) {
        loop {
            match self.next() {
                Next::Stop => return,
                Next::Forget(rows) => {
                    for row in rows {
                        self.finish(row, None);
                    }
                }
                Next::Send(job) => self.send(job),
            }
        }
    }

    /// Waits for a job that is due, rows to remove, or the stop.
    fn next(&self) -> Next {
        let mut queued = self.shared.lock();
        loop {
            if !queued.forget.is_empty() {
                return Next::Forget(std::mem::take(&mut queued.forget));
            }
            let now = Instant::now();
            let due = queued.jobs.iter().position(|job| job.due <= now);
            if queued.stop_by.is_some_and(|by| due.is_none() || now >= by) {
                return Next::Stop;
            }
            if let Some(job) = due.and_then(|at| queued.jobs.remove(at)) {
                self.metrics.alert_queue(queued.jobs.len());
                return Next::Send(job);
            }
            let wait = queued
                .jobs
                .iter()
                .map(|job| job.due.saturating_duration_since(now))
                .min()
                .unwrap_or(RETRY_MAX);
            queued = self
                .shared
                .wake
                .wait_timeout(queued, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn send(&mut self, mut job: Job) {
        let name = job.action.as_str();
        if let What::Incident { key, .. } = &job.what {
            if self.succeeded(key, name) {
                if let Some(row) = job.row {
                    self.finish(row, None);
                }
                return;
            }
        }
        let outcome = self.attempt(&job);
        self.metrics.action(name, outcome.is_ok());
        job.tries += 1;
        let last = outcome.is_ok() || job.tries >= TRIES;
        match (&outcome, &job.what) {
            (Ok(done), what) => info!(action = name, about = what.about(), "{done}"),
            (Err(e), what) if last => error!(
                action = name,
                about = what.about(),
                tries = job.tries,
                "cannot send the alert, given up: {e}"
            ),
            (Err(e), what) => warn!(
                action = name,
                about = what.about(),
                tries = job.tries,
                "cannot send the alert, trying again later: {e}"
            ),
        }
        let record = match &job.what {
            What::Incident { key, .. } => Some(ActionRecord {
                incident_key: key.clone(),
                action: name.to_string(),
                target: ADMIN.to_string(),
                at: crate::source::now(),
                ok: outcome.is_ok(),
                outcome: outcome.unwrap_or_else(|e| e),
            }),
            What::Fault { .. } => None,
        };
        match (job.row, last) {
            (Some(row), true) => self.finish(row, record),
            _ => {
                if let Some(record) = record {
                    self.record(record);
                }
            }
        }
        if !last {
            self.metrics.alert_retry();
            let wait = RETRY_FIRST.saturating_mul(1 << (job.tries - 1).min(16));
            job.due = Instant::now() + wait.min(RETRY_MAX);
            let mut queued = self.shared.lock();
            queued.jobs.push_back(job);
            self.metrics.alert_queue(queued.jobs.len());
        }
    }

    /// One attempt at sending, bounded in time.
    fn attempt(&self, job: &Job) -> Result<String, String> {
        let Some((_, alert)) = self
            .actions
            .with(None, |a| a.alert())
            .find(|(name, _)| *name == job.action)
        else {
            return Err("this alert is no longer configured".to_string());
        };
        let id = job.alert_id(&self.host);
        let send = match &job.what {
            What::Incident { payload, .. } => {
                alert.alert(&payload.incident, &self.host, &payload.done, &id)
            }
            What::Fault { fault, .. } => alert.fault(fault, &self.host, &id),
        };
        // The timer is made inside the runtime, whose clock it needs.
        let bounded = async { tokio::time::timeout(ATTEMPT_TIMEOUT, send).await };
        match self.runtime.block_on(bounded) {
            Ok(sent) => sent.map_err(|e| e.to_string()),
            Err(_) => Err(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
        }
    }

    fn succeeded(&self, key: &str, name: &str) -> bool {
        self.store
            .action_succeeded(key, name, ADMIN)
            .unwrap_or_else(|e| {
                self.metrics.store_error();
                error!(key, action = name, "cannot read past actions: {e}");
                false
            })
    }

    /// Removes the row `row`, recording `record` with it.
    fn finish(&mut self, row: i64, record: Option<ActionRecord>) {
        if let Err(e) = self.store.finish_alert(row, record.as_ref()) {
            self.metrics.store_error();
            error!("cannot record the alert's outcome (kept to record later): {e}");
            if let Some(record) = record {
                self.unwritten.keep(Unwritten::Action(record));
            }
        }
    }

    fn record(&mut self, record: ActionRecord) {
        if let Err(e) = self.store.record_action(&record) {
            self.metrics.store_error();
            error!("cannot record the alert's outcome (kept to record later): {e}");
            self.unwritten.keep(Unwritten::Action(record));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(row: i64) -> Job {
        Job {
            row: Some(row),
            action: ActionName::of("webhook").unwrap(),
            what: What::Fault {
                fault: Fault {
                    kind: "lines_lost",
                    summary: String::new(),
                    details: String::new(),
                },
                told: 1,
            },
            tries: 0,
            due: Instant::now(),
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_alert_and_forgets_its_row() {
        let mut queued = Queued::default();
        assert!(queued.admit(job(1), 2).is_none());
        assert!(queued.admit(job(2), 2).is_none());
        let dropped = queued.admit(job(3), 2).expect("one dropped");
        assert_eq!(dropped.row, Some(1), "the oldest");
        let rows: Vec<_> = queued.jobs.iter().map(|j| j.row).collect();
        assert_eq!(rows, [Some(2), Some(3)]);
        assert_eq!(queued.forget, [1], "its row is removed from the state");
    }
}
