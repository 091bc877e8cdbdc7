//! Prometheus metrics: what `watch` counts, and a small server for
//! `/metrics` that any daemon can run with its own registry.
//!
//! Labels never name an account or an IP: their number is unbounded
//! (cardinality), and the store and the dashboard say who.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Result;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use mailfuse_core::Event;
use mailfuse_detect::Forgotten;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tracing::{error, info};

use crate::engine::LineOutcome;
use crate::respond::RespondMetrics;
use crate::source::journal::follow::JournalMetrics;
use crate::source::syslog_net::SyslogMetrics;

/// The prefix of every metric's name.
pub const PREFIX: &str = "mailfuse";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LineLabels {
    format: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectionLabel {
    collection: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ForgottenLabels {
    what: &'static str,
    why: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// The event kinds, in [`event_index`] order.
const EVENT_KINDS: [&str; 6] = [
    "submission",
    "delivery",
    "auth_failure",
    "auth_success",
    "server_block",
    "removed",
];

fn event_index(event: &Event<'_>) -> usize {
    match event {
        Event::Submission(_) => 0,
        Event::Delivery(_) => 1,
        Event::AuthFailure(_) => 2,
        Event::AuthSuccess(_) => 3,
        Event::ServerBlock(_) => 4,
        Event::Removed(_) => 5,
    }
}

/// The watch daemon's metrics. Cloning shares the counters (they are
/// atomic), so every part of watch holds its own handle.
#[derive(Clone, Debug)]
pub struct WatchMetrics {
    lines: Family<LineLabels, Counter>,
    events: Family<KindLabel, Counter>,
    /// The counters of `events`, resolved once: no lookup per line.
    event_counters: [Counter; 6],
    /// The responder's metrics (and the store error counter watch shares).
    pub respond: RespondMetrics,
    pub locks: Gauge,
    pub blocks: Gauge,
    /// Followed files that do not exist (watch waits for them).
    pub inputs_missing: Gauge,
    /// Times lines of a followed file may have been lost (a checkpoint not
    /// found after a restart, a rotated member unreadable or broken off).
    pub read_losses: Counter,
    /// Saves of the state that failed (a full disk): watch goes on from
    /// memory and tries again.
    pub state_save_failures: Counter,
    /// 1 while the state cannot be saved, else 0.
    pub state_saving_failed: Gauge,
    /// How long each save of the state took.
    save_seconds: Histogram,
    /// Rows of the detector's state written (changed or removed entries).
    rows_saved: Counter,
    /// Entries the detector holds, by collection: what its memory and
    /// its saved state grow with.
    entries: Family<CollectionLabel, Gauge>,
    /// Guessing IPs and networks forgotten, by time or for room.
    forgotten: Family<ForgottenLabels, Gauge>,
    /// What the syslog listeners count.
    pub syslog: SyslogMetrics,
    /// What following the journal counts.
    pub journal: JournalMetrics,
}

/// One format's line counters, resolved once per followed file.
#[derive(Clone, Debug)]
pub struct LineCounters([Counter; LineOutcome::ALL.len()]);

impl LineCounters {
    pub fn add(&self, outcome: LineOutcome, lines: u64) {
        if let Some(counter) = self.0.get(outcome as usize) {
            counter.inc_by(lines);
        }
    }
}

impl Default for WatchMetrics {
    fn default() -> Self {
        let events: Family<KindLabel, Counter> = Family::default();
        let event_counters =
            EVENT_KINDS.map(|kind| events.get_or_create(&KindLabel { kind }).clone());
        WatchMetrics {
            lines: Family::default(),
            events,
            event_counters,
            respond: RespondMetrics::default(),
            locks: Gauge::default(),
            blocks: Gauge::default(),
            inputs_missing: Gauge::default(),
            read_losses: Counter::default(),
            state_save_failures: Counter::default(),
            state_saving_failed: Gauge::default(),
            // 1 ms to about 16 s.
            save_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            rows_saved: Counter::default(),
            entries: Family::default(),
            forgotten: Family::default(),
            syslog: SyslogMetrics::default(),
            journal: JournalMetrics::default(),
        }
    }
}

impl WatchMetrics {
    /// A registry (prefixed `mailfuse_`) holding these metrics.
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register(
            "lines_read",
            "Log lines read, by format and by what became of them",
            self.lines.clone(),
        );
        registry.register(
            "events",
            "Events parsed from the lines, by kind",
            self.events.clone(),
        );
        self.respond.register(&mut registry);
        self.syslog.register(&mut registry);
        self.journal.register(&mut registry);
        registry.register("locks", "Accounts locked now", self.locks.clone());
        registry.register("blocks", "IPs blocked now", self.blocks.clone());
        registry.register(
            "inputs_missing",
            "Followed log files that do not exist (nothing is read from them until they appear)",
            self.inputs_missing.clone(),
        );
        registry.register(
            "read_losses",
            "Times lines of a followed file may have been lost: its checkpoint not found after a restart, a rotated member unreadable or broken off, a truncation without a copy (the log says which)",
            self.read_losses.clone(),
        );
        registry.register(
            "state_save_failures",
            "Saves of the state that failed (a full disk): watch goes on from memory and tries again",
            self.state_save_failures.clone(),
        );
        registry.register(
            "state_saving_failed",
            "1 while the state cannot be saved (what watch learns since the last save would be lost if it stopped), else 0",
            self.state_saving_failed.clone(),
        );
        registry.register(
            "state_save_seconds",
            "How long each save of the state took",
            self.save_seconds.clone(),
        );
        registry.register(
            "state_rows_saved",
            "Rows of the detector's state written by the saves (changed or removed entries)",
            self.rows_saved.clone(),
        );
        registry.register(
            "detector_entries",
            "Entries the detector holds, by collection",
            self.entries.clone(),
        );
        registry.register(
            "guessing_forgotten",
            "Guessing IPs and networks forgotten since the state began, after a day without failures (expired) or for room past max_ips (evicted)",
            self.forgotten.clone(),
        );
        registry
    }

    /// Counts a save of `rows` rows that took `seconds`, how many entries
    /// each collection of the detector holds now, and what it forgot.
    pub fn saved(
        &self,
        seconds: f64,
        rows: usize,
        entries: &[(&'static str, usize)],
        forgotten: Forgotten,
    ) {
        for (what, why, count) in [
            ("ips", "expired", forgotten.ips_expired),
            ("ips", "evicted", forgotten.ips_evicted),
            ("networks", "expired", forgotten.networks_expired),
            ("networks", "evicted", forgotten.networks_evicted),
        ] {
            self.forgotten
                .get_or_create(&ForgottenLabels { what, why })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.save_seconds.observe(seconds);
        self.rows_saved.inc_by(rows as u64);
        for &(collection, count) in entries {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            self.entries
                .get_or_create(&CollectionLabel { collection })
                .set(count);
        }
    }

    /// The line counters of `format` (`unknown` until a file shows one).
    pub fn lines_of(&self, format: &'static str) -> LineCounters {
        LineCounters(LineOutcome::ALL.map(|outcome| {
            self.lines
                .get_or_create(&LineLabels {
                    format,
                    outcome: outcome.name(),
                })
                .clone()
        }))
    }

    pub fn event(&self, event: &Event<'_>) {
        if let Some(counter) = self.event_counters.get(event_index(event)) {
            counter.inc();
        }
    }

    pub fn store_error(&self) {
        self.respond.store_error();
    }
}

/// `registry` in the text format, as a response.
pub fn exposition(registry: &Registry) -> Response {
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /metrics` from `registry`.
fn metrics_router(registry: Arc<Registry>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move { exposition(&registry) }
        }),
    )
}

/// Serves `GET /metrics` from `registry` on `listener` until the process
/// ends (the policy daemon runs it on its own runtime).
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    registry: Arc<Registry>,
) -> std::io::Result<()> {
    axum::serve(listener, metrics_router(registry)).await
}

/// Binds `listen` now (a taken port fails the start) and serves
/// `/metrics` from a thread of its own, for daemons without a runtime.
pub fn spawn_metrics_server(listen: SocketAddr, registry: Arc<Registry>) -> Result<SocketAddr> {
    let bound = spawn_server(
        "metrics",
        "watch.metrics_listen",
        listen,
        metrics_router(registry),
    )?;
    info!(%bound, "serving metrics at /metrics");
    Ok(bound)
}

/// Binds `listen` (the configuration's `setting`) now, a taken port failing
/// the start, and serves `app` from a thread of its own, named `what`,
/// until the process ends: the HTTP servers of `watch`, whose loop is not
/// async.
pub fn spawn_server(
    what: &'static str,
    setting: &str,
    listen: SocketAddr,
    app: Router,
) -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(listen)
        .map_err(|e| crate::hint::cannot_listen(&e, what, listen, setting))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(what.into())
        .spawn(move || {
            runtime.block_on(async move {
                let served = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => axum::serve(listener, app).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = served {
                    error!("{what} server stopped: {e}");
                }
            });
        })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(registry: &Registry) -> String {
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, registry).unwrap();
        body
    }

    #[test]
    fn counts_show_under_the_prefix_with_their_labels() {
        let metrics = WatchMetrics::default();
        let kerio = metrics.lines_of("kerio");
        kerio.add(LineOutcome::Event, 1);
        kerio.add(LineOutcome::TooLong, 2);
        metrics.respond.incident("compromised_account");
        metrics.respond.action("kerio.disable_user", false);
        metrics.locks.set(3);
        let shared = metrics.clone();
        shared.store_error();
        let body = text(&metrics.registry());
        for expected in [
            "mailfuse_lines_read_total{format=\"kerio\",outcome=\"event\"} 1",
            "mailfuse_lines_read_total{format=\"kerio\",outcome=\"too_long\"} 2",
            "mailfuse_incidents_total{kind=\"compromised_account\"} 1",
            "mailfuse_actions_total{action=\"kerio.disable_user\",outcome=\"failed\"} 1",
            "mailfuse_events_total{kind=\"submission\"} 0",
            "mailfuse_store_errors_total 1",
            "mailfuse_locks 3",
        ] {
            assert!(body.contains(expected), "missing {expected:?} in\n{body}");
        }
    }
}
