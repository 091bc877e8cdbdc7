//! `mailfuse policy`: the Postfix policy server (`crates/policy`) wired to
//! the state database and to `watch`'s actions.
//!
//! The sockets are served on a tokio runtime. One plain thread, the keeper,
//! owns the database: it records each tripped lock as an incident and runs
//! the configured actions for it (locks, blocks, alerts — as `watch` does),
//! refreshes the locked accounts from the database twice a second (so
//! `mailfuse unlock`, or a lock by `watch`, takes effect at once), and saves
//! the counters every `policy.save_every` and at exit.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use mailfuse_core::Timestamp;
use mailfuse_detect::{Incident, IncidentKind};
use mailfuse_policy::counters::{Diversity, Memory};
use mailfuse_policy::server::{self, Limits};
use mailfuse_policy::{
    Address, Clock, Counters, Listener, Policy, PolicyMetrics, SystemClock, Trip, TripReport,
};
use mailfuse_store::Store;
use prometheus_client::registry::Registry;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::hint::cannot_listen;
use crate::metrics::{serve_metrics, PREFIX};
use crate::respond::{RespondMetrics, Responder};
use crate::watch::senders;

/// Where the counters are saved in the state database.
const COUNTERS_BLOB: &str = "policy.counters";

/// How often the keeper reads the locks from the database.
const LOCKS_EVERY: Duration = Duration::from_millis(500);

/// Command-line replacements of configured values.
pub struct Options {
    pub listen: Vec<String>,
    pub state: Option<PathBuf>,
}

/// Serves until SIGTERM or SIGINT.
pub fn run(mut config: Config, options: Options) -> Result<()> {
    if !options.listen.is_empty() {
        config.policy.listen = options.listen;
    }
    let addresses = config
        .policy
        .listen
        .iter()
        .map(|text| text.parse::<Address>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        warn!("cannot raise the open files limit: {e}");
    }
    let state = options.state.unwrap_or_else(|| config.watch.state.clone());
    let mut store = crate::open_state(&state)?;
    // The actions' metrics (incidents, actions, store errors) under the
    // names watch gives them, and the policy server's own.
    let respond_metrics = RespondMetrics::default();
    let mut registry = Registry::with_prefix(PREFIX);
    respond_metrics.register(&mut registry);
    let metrics = Arc::new(PolicyMetrics::register(&mut registry));
    let registry = Arc::new(registry);
    let mut responder = Responder::new(&config, respond_metrics)?;
    responder.queue_alerts(&mut store)?;
    let policy_config = &config.policy;
    let diversity = Diversity {
        max_ips: policy_config.trips.max_ips,
        max_networks: policy_config.trips.max_networks,
        window_secs: policy_config.trips.window.as_secs(),
        dry_run: policy_config.dry_run,
    };
    // [allow] accounts are never limited, tripped or locked, by watch or here.
    let limits = config.policy_limits()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // Held out here until the keeper takes them: the responder owns a
    // runtime of its own, which may not be dropped inside this one (a
    // start that fails, e.g. on a taken port, would panic).
    let mut store = Some(store);
    let mut responder = Some(responder);
    let served = runtime.block_on(async {
        let counters = match &policy_config.redis {
            None => Counters::memory(limits, diversity),
            Some(redis) => Counters::redis(redis, limits, diversity, metrics.clone())
                .await
                .context("policy.redis")?,
        };
        let Some(saved) = store.as_ref() else {
            anyhow::bail!("the policy server started twice");
        };
        restore_counters(saved, counters.local());
        let clock = Arc::new(SystemClock);
        refresh_locks(saved, counters.local(), clock.now(), &metrics);
        let (trips_to_keeper, trips) = std::sync::mpsc::channel();
        let on_trip = Box::new(move |report: TripReport| {
            // The keeper is gone only at shutdown.
            let _ = trips_to_keeper.send(report);
        });
        let policy = Arc::new(
            Policy::new(policy_config, counters, clock, on_trip, metrics.clone())
                .with_safety(config.detect.safety.clone()),
        );
        if let Some(listen) = policy_config.metrics_listen {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| cannot_listen(&e, "metrics", listen, "policy.metrics_listen"))?;
            info!("metrics on http://{listen}/metrics");
            tokio::spawn(serve_metrics(listener, registry.clone()));
        }
        let mut listeners = Vec::new();
        for address in &addresses {
            let listener = Listener::bind(address)
                .await
                .map_err(|e| cannot_listen(&e, "policy requests", address, "policy.listen"))?;
            listeners.push(listener);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let keeper = {
            let policy = policy.clone();
            let stop = stop.clone();
            let save_every = policy_config.save_every;
            let (Some(store), Some(responder)) = (store.take(), responder.take()) else {
                anyhow::bail!("the policy server started twice");
            };
            std::thread::spawn(move || keep(store, responder, &policy, trips, &stop, save_every))
        };
        let limits = Limits {
            max_request_bytes: policy_config.max_request_bytes,
            max_connections: policy_config.max_connections,
            max_connections_per_peer: policy_config.max_connections_per_peer,
            idle_timeout: policy_config.idle_timeout,
            request_timeout: policy_config.request_timeout,
        };
        server::serve(listeners, policy, limits, crate::signals::stopped()).await;
        info!("stopping: saving the counters");
        stop.store(true, Ordering::SeqCst);
        if keeper.join().is_err() {
            error!("the keeper thread panicked: counters since the last save are lost");
        }
        for address in &addresses {
            if let Address::Unix(path) = address {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    });
    drop((store, responder));
    served
}

/// The keeper thread's loop; see the module doc.
fn keep(
    mut store: Store,
    mut responder: Responder,
    policy: &Policy,
    trips: Receiver<TripReport>,
    stop: &AtomicBool,
    save_every: Duration,
) {
    let clock = SystemClock;
    let local = policy.counters().local();
    let metrics = policy.metrics();
    let mut saved = Instant::now();
    loop {
        match trips.recv_timeout(LOCKS_EVERY) {
            Ok(report) => {
                if report.trip == Trip::NeverLogsIn {
                    // Its first message was the evidence, once: an unlock
                    // must not be tripped again by the same mark.
                    if let Err(e) = store.remove_audit_mark(&report.account) {
                        metrics.store_errors.inc();
                        warn!(
                            account = report.account,
                            "cannot remove the audit's mark: {e}"
                        );
                    }
                }
                responder.respond(&incident_of(&report), &[], &mut store);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {}
        }
        let stopping = stop.load(Ordering::SeqCst);
        refresh_locks(&store, local, clock.now(), metrics);
        if stopping || saved.elapsed() >= save_every {
            let now = clock.now();
            local.prune(now);
            let at = Timestamp(i64::try_from(now).unwrap_or(i64::MAX));
            if let Err(e) = store.save_blob(COUNTERS_BLOB, at, &local.save()) {
                metrics.store_errors.inc();
                error!("cannot save the counters: {e}");
            }
            if let Err(e) = store.replace_senders(
                "policy",
                at,
                &senders::rows(local.top(now, senders::TOP_SENDERS)),
            ) {
                metrics.store_errors.inc();
                warn!("cannot publish the top senders: {e}");
            }
            // What a full disk made the store refuse since, if it takes it now.
            responder.write_unwritten(&mut store);
            saved = Instant::now();
        }
        if stopping {
            return;
        }
    }
}

/// Takes the locks in the database as the truth (watch's and ours), and
/// the accounts `mailfuse audit --save` found nobody logs into.
fn refresh_locks(store: &Store, local: &Memory, now: u64, metrics: &PolicyMetrics) {
    match store.locks() {
        Ok(locks) => local.set_locks(locks.into_iter().map(|lock| lock.account), now),
        Err(e) => {
            metrics.store_errors.inc();
            warn!("cannot read the locked accounts: {e}");
        }
    }
    match store.audit_marks() {
        Ok(marks) => local.set_never_logs_in(marks.into_iter().map(|mark| mark.account)),
        Err(e) => {
            metrics.store_errors.inc();
            warn!("cannot read the audit's marks: {e}");
        }
    }
}

/// Loads the counters saved by the last run, if any.
fn restore_counters(store: &Store, local: &mailfuse_policy::counters::Memory) {
    match store.blob(COUNTERS_BLOB) {
        Ok(Some((at, bytes))) => match local.load(&bytes) {
            Ok(()) => info!("counters restored from {at}"),
            Err(e) => warn!("saved counters unreadable, starting from zero: {e}"),
        },
        Ok(None) => {}
        Err(e) => warn!("cannot read the saved counters, starting from zero: {e}"),
    }
}

/// A tripped lock as an incident, for the store, the actions and alerts.
fn incident_of(report: &TripReport) -> Incident {
    let at = Timestamp(i64::try_from(report.at).unwrap_or(i64::MAX));
    let client = report
        .client
        .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
    // A canary is proof, the other trips strong signs.
    let score = match report.trip {
        Trip::Canary { .. } => 100,
        _ => 90,
    };
    Incident {
        account: Some(report.account.clone()),
        ips: report.client.into_iter().collect(),
        score,
        reasons: vec![format!(
            "{} (seen by mailfuse policy at RCPT, before the message was accepted)",
            report.trip
        )],
        evidence: vec![format!(
            "policy request: sasl_username={} client_address={client} sender={}",
            report.account, report.sender
        )],
        ..Incident::new(IncidentKind::CompromisedAccount, at..=at, at)
    }
}
