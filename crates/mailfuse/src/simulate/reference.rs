//! Well-known settings other products and admins use, written as data so
//! `simulate` compares them with the admin's own. Each is an approximation:
//! the product's own counting differs (smoothing, what counts as a bad
//! recipient, where in the SMTP dialogue it applies); the source says which
//! published setting it stands for.

use mailfuse_limits::{LimitsConfig, WindowLimit};

use super::policy::{OnOver, Policy, Recipients};

/// One reference setting: at most `max` over `window_secs`.
struct Reference {
    name: &'static str,
    /// `None`: messages; else which recipients.
    recipients: Option<Recipients>,
    max: u64,
    window_secs: u64,
    on_over: OnOver,
    source: &'static str,
}

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// The table (sources: `docs/simulate.md`).
const REFERENCES: &[Reference] = &[
    Reference {
        name: "100 messages an hour",
        recipients: None,
        max: 100,
        window_secs: HOUR,
        on_over: OnOver::Defer,
        source: "approximation of an hourly per-user cap as hosting panels set \
                 (cPanel's maximum emails per hour); Stalwart reported a hijack \
                 stopped at about 100 messages by such a limit",
    },
    Reference {
        name: "Exim BlockCracking",
        recipients: Some(Recipients::Failed),
        max: 100,
        window_secs: HOUR,
        on_over: OnOver::Lock,
        source: "approximation of the Exim wiki's BlockCracking: more than 100 \
                 nonexistent recipients an hour blocks the authenticated user; \
                 counted here as recipients refused permanently (5.x.x), the \
                 nearest a log shows",
    },
    Reference {
        name: "200 messages a day",
        recipients: None,
        max: 200,
        window_secs: DAY,
        on_over: OnOver::Defer,
        source: "approximation of Mailu's default per-user limit of 200 messages a day",
    },
    Reference {
        name: "500 external recipients an hour",
        recipients: Some(Recipients::External),
        max: 500,
        window_secs: HOUR,
        on_over: OnOver::LockForToday,
        source: "approximation of Microsoft 365's default outbound spam policy: \
                 500 external recipients an hour, then the user is blocked until \
                 the next day (BlockUserForToday)",
    },
];

/// The reference settings as policies, in the table's order.
pub fn policies() -> Vec<Policy> {
    REFERENCES
        .iter()
        .map(|reference| {
            let max = Some(reference.max);
            let limit = WindowLimit {
                window_secs: reference.window_secs,
                messages: max.filter(|_| reference.recipients.is_none()),
                recipients: max.filter(|_| reference.recipients.is_some()),
            };
            Policy {
                name: reference.name.into(),
                source: reference.source.into(),
                approximation: true,
                limits: LimitsConfig {
                    defaults: vec![limit],
                    ..LimitsConfig::default()
                },
                recipients: reference.recipients.unwrap_or(Recipients::All),
                on_over: reference.on_over,
            }
        })
        .collect()
}
