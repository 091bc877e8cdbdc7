//! `mailfuse watch`: follow the logs live, feed the same detectors as
//! `scan`, and act on what trips.
//!
//! The loop polls every followed file (every `poll_ms`), hands each new
//! line's event to the detector, and gives each new incident to the
//! responder ([`crate::respond`]). Every few seconds, and at once after an incident, it
//! saves the detector's state together with the files' read positions in
//! one transaction: after a restart, even after `kill -9`, reading resumes
//! at the line after the last one the saved state has seen, so no line is
//! lost and none is counted twice. Incidents re-found after a crash are
//! recognised by their key, and actions already done are not repeated.
//!
//! A save that fails (a full disk) stops nothing: watch goes on following,
//! detecting, locking and alerting from memory, tries again later and later
//! ([`Saving`]), raises `mailfuse_state_saving_failed` and alerts once per
//! outage; the first save that succeeds writes everything held since, and
//! the incidents, locks and actions the store refused meanwhile.
//!
//! The systemd journal (`[watch.journal]`, `journal.rs`) is followed
//! through a child journalctl, its cursor saved with the files' positions:
//! as durable as a file. Mail servers may also send their logs over the
//! network (`[watch.syslog]`, `syslog.rs`): those lines are handed out as
//! they arrive, each host's queue ids apart (`readers.rs`, which other
//! hosts' journal records go through too), and are not durable — what came
//! between the last save and a crash is lost (a file can be read again,
//! the network cannot). Dovecot's auth policy requests
//! (`[watch.auth_policy]`, `auth_policy/`) are another input, as little
//! durable: the logins it reports.

mod auth_policy;
mod hosts;
mod inbox;
mod inputs;
mod journal;
mod readers;
mod recent;
pub mod senders;
mod syslog;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mailfuse_act::capability::Fault;
use mailfuse_core::Event;
use mailfuse_detect::{Detector, Incident};
use mailfuse_formats::LocalZone;
use mailfuse_store::{Progress, Store};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::engine::Overlap;
use crate::metrics::WatchMetrics;
use crate::respond::Responder;
use crate::source::follow::Checkpoint;
use auth_policy::AuthPolicy;
use hosts::HostsSeen;
use inputs::{Input, MissingFiles};
use journal::Journal;
use readers::HostReaders;
use recent::RecentSubmissions;
use syslog::Remote;

/// Runs until SIGTERM or SIGINT (then saves and returns).
pub fn run(config: Config) -> Result<()> {
    if config.watch.logs.is_empty() && !config.watch.listens() {
        anyhow::bail!("watch.logs: {}", crate::config::NO_INPUT);
    }
    let stop = crate::signals::stop_flag()?;
    let mut watch = Watch::start(config)?;
    if let Some(listen) = watch.config.watch.metrics_listen {
        let registry = Arc::new(watch.metrics.registry());
        crate::metrics::spawn_metrics_server(listen, registry)?;
    }
    watch.run_until(&stop)
}

/// The running watch: inputs, detector, state.
pub struct Watch {
    config: Config,
    zone: LocalZone,
    inputs: Vec<Input>,
    /// Which of them do not exist, said now and then.
    missing: MissingFiles,
    /// Lines handed out lately, so overlapping files give each line once.
    overlap: Overlap,
    /// Mail servers sending syslog, when listeners are configured.
    remote: Option<Remote>,
    /// The systemd journal, when it is followed.
    journal: Option<Journal>,
    /// The journal cursor the saved state holds, kept for the next saves
    /// while the journal is not followed.
    saved_journal_cursor: Option<String>,
    /// Each other mail server's reader (syslog senders, other hosts'
    /// journal records).
    readers: HostReaders,
    /// The logins Dovecot reports, when its auth policy is served.
    auth_policy: Option<AuthPolicy>,
    /// Which of them logged each account and IP lately (for incidents).
    hosts: HostsSeen,
    detector: Detector,
    store: Store,
    responder: Responder,
    /// Queue ids each account submitted lately (to hold them on a lock).
    recent: RecentSubmissions,
    /// Locked accounts (lower-case), mirrored from the store: their new
    /// messages are held as they are seen.
    locked: HashSet<String>,
    metrics: WatchMetrics,
    /// Whether saves fail now, and when to try again.
    saving: Saving,
}

/// The longest wait between two tries while saving the state fails.
const SAVE_RETRY_MAX: Duration = Duration::from_secs(300);

/// Saves that fail: since when, how many, and when to try again (the wait
/// doubles from `save_every_secs` up to [`SAVE_RETRY_MAX`]).
#[derive(Default)]
struct Saving {
    outage: Option<Outage>,
}

struct Outage {
    since: Instant,
    failures: u32,
    retry_at: Instant,
}

impl Saving {
    /// Whether a save may be tried now.
    fn may_try(&self) -> bool {
        self.outage
            .as_ref()
            .is_none_or(|outage| Instant::now() >= outage.retry_at)
    }

    /// Notes a failed save; true for the first of an outage.
    fn failed(&mut self, save_every: Duration) -> bool {
        let now = Instant::now();
        let first = self.outage.is_none();
        let outage = self.outage.get_or_insert(Outage {
            since: now,
            failures: 0,
            retry_at: now,
        });
        outage.failures = outage.failures.saturating_add(1);
        let wait = save_every.saturating_mul(1 << (outage.failures - 1).min(16));
        outage.retry_at = now + wait.min(SAVE_RETRY_MAX);
        first
    }
}

/// The name watch's rows of the senders table go under.
const SENDERS_SOURCE: &str = "watch";

impl Watch {
    /// Opens the state and resumes every input where the saved progress
    /// left it.
    pub fn start(mut config: Config) -> Result<Watch> {
        // The dashboard's top senders, counted even without limits.
        config.detect.count_senders = true;
        let mut store = crate::open_state(&config.watch.state)?;
        let progress = store.progress()?;
        let saved_journal_cursor = progress.as_ref().and_then(|p| p.journal_cursor.clone());
        let (detector, positions) = match &progress {
            Some(progress) => {
                let started = Instant::now();
                let mut detector = restore_detector(&mut store, progress, &config)?;
                let positions: Vec<Checkpoint> = serde_json::from_str(&progress.positions)
                    .context("the saved read positions cannot be read")?;
                info!(
                    saved_at = %progress.saved_at,
                    seconds = started.elapsed().as_secs_f64(),
                    entries = ?detector.entries(),
                    "resuming from saved state"
                );
                (detector, positions)
            }
            None => (Detector::new(config.detect.clone()), Vec::new()),
        };
        let mut detector = detector;
        // Rows restored are saved already; a new or whole state is written
        // whole by the first save.
        if !progress.as_ref().is_some_and(|p| p.rows) {
            detector.track_changes();
        }
        let configured_zone = config
            .watch
            .timezone
            .as_deref()
            .map(LocalZone::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let metrics = WatchMetrics::default();
        let files = inputs::files(&config.watch.logs);
        // One zone for all the files, chosen as `scan` chooses it.
        let chosen = inputs::choose_zone(configured_zone, &files);
        info!(zone = %chosen.zone.describe(), source = ?chosen.source, "time zone");
        let zone = chosen.zone;
        let mut inputs = Vec::new();
        for path in files {
            let resume = positions.iter().find(|c| c.path == path);
            let input = Input::open(&path, resume, &metrics)
                .with_context(|| format!("cannot follow {}", path.display()))?;
            inputs.push(input);
        }
        let mut responder = Responder::new(&config, metrics.respond.clone())?;
        responder.queue_alerts(&mut store)?;
        let remote = match config.watch.syslog.listens() {
            true => Some(Remote::start(&config.watch.syslog, &metrics)?),
            false => None,
        };
        let journal = match &config.watch.journal {
            Some(journal) => {
                let kernel_name = crate::respond::this_host();
                let local_names = [responder.host(), kernel_name.as_str()];
                let cursor = saved_journal_cursor.clone();
                Some(Journal::start(journal, cursor, &local_names, &metrics)?)
            }
            None => None,
        };
        let readers = HostReaders::new(responder.host());
        // After the store's first open: its schema is there.
        let auth_policy = match &config.watch.auth_policy {
            Some(policy) => Some(AuthPolicy::start(
                policy,
                &config.watch.state,
                config.allow.clone(),
                config.detect.safety.clone(),
                config.watch.dry_run,
            )?),
            None => None,
        };
        let mut watch = Watch {
            config,
            zone,
            inputs,
            missing: MissingFiles::default(),
            overlap: Overlap::default(),
            remote,
            journal,
            saved_journal_cursor,
            readers,
            auth_policy,
            hosts: HostsSeen::default(),
            detector,
            store,
            responder,
            recent: RecentSubmissions::default(),
            locked: HashSet::new(),
            metrics,
            saving: Saving::default(),
        };
        watch.refresh_locks();
        watch
            .responder
            .restore_blocks(&mut watch.store, crate::source::now());
        Ok(watch)
    }

    fn run_until(&mut self, stop: &AtomicBool) -> Result<()> {
        let poll = Duration::from_millis(self.config.watch.poll_ms.max(10));
        let save_every = Duration::from_secs(self.config.watch.save_every_secs.max(1));
        let mut last_save = Instant::now();
        info!(
            files = self.inputs.len(),
            state = %self.config.watch.state.display(),
            dry_run = self.config.watch.dry_run,
            secrets = ?self.config.watch.secrets,
            "watching"
        );
        self.missing.check(&self.inputs, &self.metrics);
        self.refresh_marks();
        while !stop.load(Ordering::Relaxed) {
            let tripped = self.poll_once()?;
            if tripped || last_save.elapsed() >= save_every {
                if self.saving.may_try() {
                    self.try_save(save_every);
                }
                self.refresh_locks();
                self.refresh_marks();
                self.recent.forget_idle();
                self.hosts.forget_idle();
                self.responder
                    .expire_blocks(&mut self.store, crate::source::now());
                self.refresh_blocks_and_senders();
                self.missing.check(&self.inputs, &self.metrics);
                last_save = Instant::now();
            }
            match (&mut self.remote, &mut self.journal) {
                (Some(remote), _) => remote.wait(poll),
                (None, Some(journal)) => journal.wait(poll),
                (None, None) => std::thread::sleep(poll),
            }
        }
        self.save().context(
            "stopping: what was read since the last save is read again at the next start",
        )?;
        info!("stopped; progress saved");
        Ok(())
    }

    /// Saves, or notes that saving fails and goes on: the first failure of
    /// an outage is an error and an alert, the others warnings; the first
    /// save that succeeds after it also writes what the store refused.
    fn try_save(&mut self, save_every: Duration) {
        match self.save() {
            Ok(()) => {
                let written = self.responder.write_unwritten(&mut self.store);
                if let Some(outage) = self.saving.outage.take() {
                    self.metrics.state_saving_failed.set(0);
                    info!(
                        failures = outage.failures,
                        seconds = outage.since.elapsed().as_secs(),
                        records = written,
                        "the state is saved again"
                    );
                }
            }
            Err(e) => {
                self.metrics.state_save_failures.inc();
                self.metrics.state_saving_failed.set(1);
                if !self.saving.failed(save_every) {
                    warn!("still cannot save the state: {e:#}");
                    return;
                }
                let state = self.config.watch.state.display();
                error!(
                    "cannot save the state in {state} ({e:#}): watch goes on from memory \
                     (following, detecting, locking, alerting) and tries again; \
                     free space where the state is"
                );
                self.responder.alert_fault(&Fault {
                    kind: "state_not_saved",
                    summary: "the state cannot be saved".to_string(),
                    details: format!(
                        "Saving {state} failed: {e:#}. Watch goes on following the logs, \
                         detecting, locking and alerting from memory, and saves as soon as it \
                         can (mailfuse_state_saving_failed is 1 until then). If it stops \
                         before, what it read since the last save is read again at its next \
                         start. Free space on the state's filesystem."
                    ),
                });
            }
        }
    }

    /// Reads what is new in every input and acts on what tripped; true if
    /// something did.
    pub fn poll_once(&mut self) -> Result<bool> {
        let Watch {
            zone,
            inputs,
            overlap,
            detector,
            recent,
            locked,
            metrics,
            remote,
            journal,
            readers,
            auth_policy,
            hosts,
            ..
        } = self;
        let mut late: Vec<(String, String)> = Vec::new();
        // With other servers' lines, incidents name this one too (host 0).
        let name_hosts = remote.is_some() || journal.is_some();
        // Each event with the host that logged it: this server's (0) with
        // the holds of a locked account's late mail, the others' queue ids
        // kept apart (they are not this server's: no holds).
        let mut on_event = |host: u32, event: &Event<'_>, line: &[u8]| {
            metrics.event(event);
            if name_hosts {
                hosts.note(host, event);
            }
            if host != 0 {
                detector.observe_from(host, event, line);
                return;
            }
            if let Event::Submission(s) = event {
                if let Some(account) = s.account {
                    recent.note(account, s.queue_id, s.at);
                    if !locked.is_empty() {
                        let account = String::from_utf8_lossy(account).to_lowercase();
                        if locked.contains(&account) {
                            let queue_id = String::from_utf8_lossy(s.queue_id).into_owned();
                            late.push((account, queue_id));
                        }
                    }
                }
            }
            detector.observe(event, line);
        };
        Input::merge(inputs, overlap, zone, metrics, &mut |event, line| {
            on_event(0, event, line);
        });
        if let Some(journal) = journal {
            journal.poll(readers, zone, metrics, &mut on_event);
        }
        if let Some(remote) = remote {
            remote.poll(readers, zone, metrics, &mut on_event);
        }
        if let Some(policy) = auth_policy {
            // Logins at this server, as its own log would give them.
            policy.drain(&mut |event, line| on_event(0, event, line));
        }
        // Lines a rotation or a restart may have lost: the admin hears of it.
        let losses: Vec<String> = self
            .inputs
            .iter_mut()
            .flat_map(Input::take_losses)
            .collect();
        if !losses.is_empty() {
            self.responder.alert_fault(&Fault {
                kind: "lines_lost",
                summary: "log lines may have been lost".to_string(),
                details: losses.join("\n"),
            });
        }
        // One postsuper run per account for what slipped in this poll.
        late.sort_unstable();
        late.dedup();
        for group in late.chunk_by(|a, b| a.0 == b.0) {
            let ids: Vec<String> = group.iter().map(|(_, id)| id.clone()).collect();
            if let Some((account, _)) = group.first() {
                self.responder.hold_late(&mut self.store, account, &ids);
            }
        }
        let mut incidents: Vec<Incident> = self.detector.new_incidents();
        if self.remote.is_some() || self.journal.is_some() {
            for incident in &mut incidents {
                let ids = self.hosts.of(incident);
                incident.hosts = ids
                    .iter()
                    .filter_map(|&id| self.readers.name(id))
                    .map(String::from)
                    .collect();
                incident.hosts.sort_unstable();
                // A sender may call itself what this server is called.
                incident.hosts.dedup();
            }
        }
        for incident in &incidents {
            let queued = incident
                .account
                .as_deref()
                .map(|account| self.recent.of(account))
                .unwrap_or_default();
            self.responder.respond(incident, &queued, &mut self.store);
        }
        if !incidents.is_empty() {
            self.refresh_locks();
        }
        Ok(!incidents.is_empty())
    }

    /// Reloads the locked accounts (the CLI may have unlocked one).
    fn refresh_locks(&mut self) {
        match self.store.locks() {
            Ok(locks) => {
                self.locked = locks.into_iter().map(|l| l.account).collect();
                let count = i64::try_from(self.locked.len()).unwrap_or(i64::MAX);
                self.metrics.locks.set(count);
            }
            Err(e) => {
                self.metrics.store_error();
                warn!("cannot read locks: {e}");
            }
        }
    }

    /// Reloads the accounts `mailfuse audit --save` found nobody logs into
    /// (an audit may run while watch does): their first sending is strong
    /// evidence of a hijack.
    fn refresh_marks(&mut self) {
        match self.store.audit_marks() {
            Ok(marks) => self
                .detector
                .set_never_logs_in(marks.into_iter().map(|mark| mark.account)),
            Err(e) => {
                self.metrics.store_error();
                warn!("cannot read the audit's marks: {e}");
            }
        }
    }

    /// Counts the blocks for the metrics and tells the dashboard who sends
    /// most now.
    fn refresh_blocks_and_senders(&mut self) {
        match self.store.blocks() {
            Ok(blocks) => {
                let count = i64::try_from(blocks.len()).unwrap_or(i64::MAX);
                self.metrics.blocks.set(count);
            }
            Err(e) => {
                self.metrics.store_error();
                warn!("cannot read blocks: {e}");
            }
        }
        if self.saving.outage.is_some() {
            return; // the store takes no writes now: said once already
        }
        let rows = senders::rows(self.detector.top_senders(senders::TOP_SENDERS));
        if let Err(e) = self
            .store
            .replace_senders(SENDERS_SOURCE, crate::source::now(), &rows)
        {
            self.metrics.store_error();
            warn!("cannot save the top senders: {e}");
        }
    }

    /// Saves what changed in the detector since the last save, and the
    /// read positions, together: the cost follows the change, not the
    /// state's size.
    pub fn save(&mut self) -> Result<()> {
        let started = Instant::now();
        let positions: Vec<Checkpoint> = self.inputs.iter().map(Input::checkpoint).collect();
        let changes = self.detector.changes()?;
        let collected = started.elapsed().as_secs_f64();
        let progress = Progress {
            saved_at: crate::source::now(),
            detector: changes.rest,
            positions: serde_json::to_string(&positions)?,
            rows: true,
            journal_cursor: match &self.journal {
                Some(journal) => journal.cursor().map(str::to_string),
                None => self.saved_journal_cursor.clone(),
            },
        };
        let saved = self
            .store
            .save_progress(&progress, &changes.rows, &changes.dictionaries);
        match saved {
            Ok(()) => {
                self.detector.changes_saved();
                let seconds = started.elapsed().as_secs_f64();
                let entries = self.detector.entries();
                self.metrics.saved(
                    seconds,
                    changes.rows.len(),
                    &entries,
                    self.detector.forgotten(),
                );
                debug!(
                    seconds,
                    collected,
                    rows = changes.rows.len(),
                    rest_bytes = progress.detector.len(),
                    "saved"
                );
            }
            Err(_) => self.metrics.store_error(),
        }
        saved.context("cannot save progress")
    }
}

/// The detector as the last save left it: its rest and rows, or a whole
/// snapshot written by an older mailfuse.
fn restore_detector(store: &mut Store, progress: &Progress, config: &Config) -> Result<Detector> {
    const MOVE_AWAY: &str =
        "the saved state cannot be read: move the state file away to start afresh";
    if !progress.rows {
        return Detector::restore(&progress.detector, config.detect.clone()).context(MOVE_AWAY);
    }
    let dictionaries = store.row_dictionaries().context(MOVE_AWAY)?;
    Detector::restore_rows(
        &progress.detector,
        config.detect.clone(),
        &dictionaries,
        |loader| {
            store.detector_rows(|map, key, value| -> Result<()> {
                loader.load(map, key, value)?;
                Ok(())
            })
        },
    )
    .context(MOVE_AWAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_saves_are_one_outage_tried_again_later_and_later() {
        let mut saving = Saving::default();
        assert!(saving.may_try());
        let every = Duration::from_secs(5);
        assert!(saving.failed(every), "the first failure starts an outage");
        assert!(!saving.may_try(), "not again at once");
        let wait = |saving: &Saving| {
            let outage = saving.outage.as_ref().unwrap();
            (outage.retry_at - Instant::now()).as_secs_f64().round() as u64
        };
        assert_eq!(wait(&saving), 5, "the first retry at the usual interval");
        let mut waits = Vec::new();
        for _ in 0..8 {
            assert!(!saving.failed(every), "the same outage");
            waits.push(wait(&saving));
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 300, 300, 300]);
    }
}
