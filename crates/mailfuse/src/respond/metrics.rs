//! The responder's own metrics: incidents, actions, store errors. `watch`
//! and `policy` register them into their registries (under the names
//! dashboards already use); the one-shot commands keep them unregistered.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use mailfuse_detect::IncidentKind;

use crate::metrics::KindLabel;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: String,
    outcome: &'static str,
}

/// Cloning shares the counters (they are atomic).
#[derive(Clone, Debug, Default)]
pub struct RespondMetrics {
    incidents: Family<KindLabel, Counter>,
    actions: Family<ActionLabels, Counter>,
    store_errors: Counter,
    alert_queue: Gauge,
    alert_retries: Counter,
    alerts_dropped: Counter,
}

impl RespondMetrics {
    /// Adds these metrics to `registry` (`mailfuse_incidents_total`,
    /// `mailfuse_actions_total`, `mailfuse_store_errors_total`,
    /// `mailfuse_alert_queue`, `mailfuse_alert_retries_total`,
    /// `mailfuse_alerts_dropped_total`).
    pub fn register(&self, registry: &mut Registry) {
        // Every kind at 0 from the start: an alert on increase() then sees
        // the first incident too (a series born at 1 shows no increase).
        for kind in IncidentKind::ALL {
            self.incidents
                .get_or_create_owned(&KindLabel { kind: kind.name() });
        }
        registry.register(
            "incidents",
            "Incidents detected, by kind",
            self.incidents.clone(),
        );
        registry.register(
            "actions",
            "Actions taken or attempted, by action and outcome (ok or failed)",
            self.actions.clone(),
        );
        registry.register(
            "store_errors",
            "Reads or writes of the state database that failed",
            self.store_errors.clone(),
        );
        registry.register(
            "alert_queue",
            "Alerts waiting to be sent (or tried again)",
            self.alert_queue.clone(),
        );
        registry.register(
            "alert_retries",
            "Alerts that failed and will be tried again",
            self.alert_retries.clone(),
        );
        registry.register(
            "alerts_dropped",
            "Alerts dropped unsent because the alert queue was full",
            self.alerts_dropped.clone(),
        );
    }

    pub fn incident(&self, kind: &'static str) {
        self.incidents.get_or_create(&KindLabel { kind }).inc();
    }

    pub fn action(&self, action: &str, ok: bool) {
        let labels = ActionLabels {
            action: action.to_string(),
            outcome: if ok { "ok" } else { "failed" },
        };
        self.actions.get_or_create(&labels).inc();
    }

    /// How many alerts wait now.
    pub fn alert_queue(&self, len: usize) {
        self.alert_queue.set(i64::try_from(len).unwrap_or(i64::MAX));
    }

    pub fn alert_retry(&self) {
        self.alert_retries.inc();
    }

    pub fn alert_dropped(&self) {
        self.alerts_dropped.inc();
    }

    /// Also counts the store errors of whoever registered these metrics
    /// (one counter per registry).
    pub fn store_error(&self) {
        self.store_errors.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(metrics: &RespondMetrics) -> String {
        let mut registry = Registry::with_prefix(crate::metrics::PREFIX);
        metrics.register(&mut registry);
        let mut body = String::new();
        prometheus_client::encoding::text::encode(&mut body, &registry).unwrap();
        body
    }

    #[test]
    fn counts_show_under_the_names_dashboards_use() {
        let metrics = RespondMetrics::default();
        metrics.incident("compromised_account");
        metrics.action("kerio.disable_user", false);
        metrics.clone().store_error();
        let body = text(&metrics);
        for expected in [
            "mailfuse_incidents_total{kind=\"compromised_account\"} 1",
            "mailfuse_actions_total{action=\"kerio.disable_user\",outcome=\"failed\"} 1",
            "mailfuse_store_errors_total 1",
        ] {
            assert!(body.contains(expected), "missing {expected:?} in\n{body}");
        }
    }

    #[test]
    fn every_incident_kind_is_exported_at_zero_before_its_first_incident() {
        let body = text(&RespondMetrics::default());
        for kind in IncidentKind::ALL {
            let expected = format!("mailfuse_incidents_total{{kind=\"{}\"}} 0", kind.name());
            assert!(body.contains(&expected), "missing {expected:?} in\n{body}");
        }
    }

    #[test]
    fn a_hostile_action_name_cannot_break_the_exposition() {
        let metrics = RespondMetrics::default();
        metrics.action("x\"} 999\nmailfuse_locks 7", true);
        assert!(!text(&metrics).contains("\nmailfuse_locks 7"));
    }
}
