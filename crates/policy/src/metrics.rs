//! The policy server's Prometheus metrics: decisions by outcome with their
//! latency, connections, protocol errors and the store's health. No label
//! names an account (cardinality).

use std::fmt::Write;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// What a decision came to.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// Let through (`DUNNO`).
    Dunno,
    /// Over a limit: the configured `over_limit` action.
    OverLimit,
    /// A locked account refused.
    Locked,
    /// This request locked the account.
    Tripped,
    /// mailfuse could not decide: the `on_error` action.
    Error,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Dunno,
        Outcome::OverLimit,
        Outcome::Locked,
        Outcome::Tripped,
        Outcome::Error,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Dunno => "dunno",
            Outcome::OverLimit => "over_limit",
            Outcome::Locked => "locked",
            Outcome::Tripped => "tripped",
            Outcome::Error => "error",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.name())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    verdict: Outcome,
}

/// The counters, registered once, shared by every connection.
#[derive(Debug)]
pub struct PolicyMetrics {
    decisions: Family<OutcomeLabels, Counter>,
    /// The counters of `decisions`, resolved once: no lookup per request.
    by_outcome: [Counter; 5],
    latency: Histogram,
    /// Postfix connections open now (`mailfuse_policy_connections`): near
    /// `max_connections` means Postfix is about to be refused.
    pub connections: Gauge,
    /// Connections closed on accept because `max_connections` were already
    /// open; Postfix then applies its `default_action`.
    pub refused_connections: Counter,
    /// Connections closed without a reply over a malformed or oversize
    /// request (`max_request_bytes`): a confused or hostile peer.
    pub protocol_errors: Counter,
    /// Decisions made on local counts because Redis was unreachable.
    pub fallback_decisions: Counter,
    /// 1 while Redis answers (0 with the embedded store too).
    pub redis_up: Gauge,
    /// Times Redis was found to have lost its data (its epoch key gone)
    /// and was seeded again from this server's counts and locks.
    pub redis_reseeds: Counter,
    /// Failures of the counters store: each Redis request that failed or
    /// timed out (an outage is logged once but counted here every time), and
    /// each failed save of the counts or of the top senders to the state
    /// database.
    pub store_errors: Counter,
}

impl PolicyMetrics {
    /// Registers the metrics in `registry` under `mailfuse_policy_*`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = PolicyMetrics::default();
        let registry = registry.sub_registry_with_prefix("policy");
        registry.register(
            "decisions",
            "Policy requests answered, by verdict",
            metrics.decisions.clone(),
        );
        registry.register(
            "decision_seconds",
            "Time to answer a policy request",
            metrics.latency.clone(),
        );
        registry.register(
            "connections",
            "Open connections from Postfix",
            metrics.connections.clone(),
        );
        registry.register(
            "refused_connections",
            "Connections closed at once because max_connections were open",
            metrics.refused_connections.clone(),
        );
        registry.register(
            "protocol_errors",
            "Connections closed without reply: malformed or oversize requests",
            metrics.protocol_errors.clone(),
        );
        registry.register(
            "fallback_decisions",
            "Decisions on local counts while Redis was unreachable",
            metrics.fallback_decisions.clone(),
        );
        registry.register(
            "redis_up",
            "1 while the shared Redis store answers",
            metrics.redis_up.clone(),
        );
        registry.register(
            "redis_reseeds",
            "Times Redis had lost its data and was seeded again from this server's counts",
            metrics.redis_reseeds.clone(),
        );
        registry.register(
            "store_errors",
            "Errors of the counters store",
            metrics.store_errors.clone(),
        );
        metrics
    }

    /// Counts one answered request under its `verdict` and records how long
    /// deciding it `took` (`mailfuse_policy_decision_seconds`).
    pub fn observe(&self, verdict: Outcome, took: Duration) {
        if let Some(counter) = self.by_outcome.get(verdict as usize) {
            counter.inc();
        }
        self.latency.observe(took.as_secs_f64());
    }

    /// Decisions so far with `verdict` (tests, logs).
    pub fn decisions(&self, verdict: Outcome) -> u64 {
        self.by_outcome
            .get(verdict as usize)
            .map_or(0, Counter::get)
    }
}

impl Default for PolicyMetrics {
    fn default() -> Self {
        // 10 µs to 1 s: answers normally take microseconds, Redis a
        // millisecond, a struggling store up to its timeout.
        let buckets = [
            0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
            0.025, 0.05, 0.1, 0.25, 1.0,
        ];
        let decisions: Family<OutcomeLabels, Counter> = Family::default();
        let by_outcome =
            Outcome::ALL.map(|verdict| decisions.get_or_create(&OutcomeLabels { verdict }).clone());
        PolicyMetrics {
            decisions,
            by_outcome,
            latency: Histogram::new(buckets),
            connections: Gauge::default(),
            refused_connections: Counter::default(),
            protocol_errors: Counter::default(),
            fallback_decisions: Counter::default(),
            redis_up: Gauge::default(),
            redis_reseeds: Counter::default(),
            store_errors: Counter::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_verdicts_in_snake_case_without_accounts() {
        let mut registry = Registry::with_prefix("mailfuse");
        let metrics = PolicyMetrics::register(&mut registry);
        metrics.observe(Outcome::OverLimit, Duration::from_micros(30));
        metrics.observe(Outcome::Dunno, Duration::from_micros(5));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("mailfuse_policy_decisions_total{verdict=\"over_limit\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mailfuse_policy_decision_seconds_count 2"),
            "{text}"
        );
        assert!(
            text.contains("mailfuse_policy_decision_seconds_bucket{le=\"0.00001\"} 1"),
            "{text}"
        );
    }
}
