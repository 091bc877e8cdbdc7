//! `mailfuse simulate`: the logs replayed against limit policies, to tell
//! what each would have stopped of every hijack `scan` finds in them, and
//! whom it would have hurt.
//!
//! One reading (the scan engine, the detector) gives the hijacks and, with
//! [`Detector::collect_sends`], every message and recipient as it counts;
//! each policy's [`replay::Replay`] feeds them to the limiter
//! `mailfuse policy` uses, at their log times. The policies: the admin's
//! configuration (`-c`), each `--limit` flag, mailfuse's built-in limits
//! and the reference settings of [`reference`].

pub mod policy;
pub mod reference;
pub mod replay;

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use mailfuse_core::Timestamp;
use mailfuse_detect::{DetectConfig, Detector, IncidentKind};
use mailfuse_limits::{normalize, Sent};
use serde::Serialize;

use crate::config::Config;
use crate::engine::{self, ReadOptions, ReadSummary};
use policy::{OnOver, Policy, Recipients};
use replay::{Hour, Outcome, Replay, Replayed, Sending};

/// What a replay of logs cannot know, said with every report.
pub const CAVEATS: &[&str] = &[
    "mail a policy defers is retried by the client: some of it would have gone out later, and \
     a spammer's retries would have added attempts the log does not show",
    "after a lock the log still shows what the account sent; the replay counts all of it as \
     stopped, but a locked spammer might have moved to another account",
    "a hijacker that met a limit might have sent more slowly to stay under it",
    "failed recipients are those refused permanently (5.x.x) by any server, after the mail \
     went; a server refusing them at RCPT sees them earlier",
    "a recipient is counted when a log line first names it (for Postfix, its delivery line, \
     which can come later than the RCPT the policy server would have judged)",
    "a hijack's figures are the mail from the IPs its incident names; what the hijacker sent \
     from others (or through webmail from the owner's IP) counts as the owner's",
];

/// The hijack as it happened: a compromised-account incident of the run.
#[derive(Debug, Serialize)]
pub struct Hijack {
    pub account: String,
    /// The IPs it sent from (the incident's): its figures are their mail.
    pub ips: Vec<IpAddr>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// What the account sent from those IPs.
    pub sent: Sent,
}

/// One policy's verdict on one account.
#[derive(Debug, Serialize)]
pub struct AccountOutcome {
    pub account: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One policy's report.
#[derive(Debug, Serialize)]
pub struct PolicyReport {
    pub name: String,
    pub source: String,
    pub approximation: bool,
    /// Its limits in words.
    pub limits: Vec<String>,
    pub recipients: Recipients,
    pub on_over: OnOver,
    /// For each hijack, in the order of [`Simulation::hijacks`].
    pub hijacks: Vec<AccountOutcome>,
    /// Accounts not found hijacked (or a hijacked account's mail from its
    /// other IPs: its owner's) that it would have deferred or locked,
    /// earliest first.
    pub legitimate: Vec<AccountOutcome>,
    /// Recipients let out and held back per UTC hour (for the chart).
    #[serde(skip)]
    pub hours: Vec<(Timestamp, Hour)>,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Simulation {
    pub first_event: Option<Timestamp>,
    pub last_event: Option<Timestamp>,
    pub hijacks: Vec<Hijack>,
    pub policies: Vec<PolicyReport>,
    pub caveats: &'static [&'static str],
    #[serde(flatten)]
    pub read: ReadSummary,
}

/// What `simulate` is asked.
pub struct Request<'a> {
    pub paths: &'a [std::path::PathBuf],
    pub options: &'a ReadOptions,
    pub config: Option<&'a Path>,
    pub limits: &'a [Policy],
    pub local_domains: &'a [String],
}

/// The policies of a request, in report order: the configuration's, the
/// flags', mailfuse's defaults, the references.
fn policies(request: &Request<'_>, config: Option<&Config>) -> Vec<Policy> {
    let mut policies = Vec::new();
    if let (Some(config), Some(path)) = (config, request.config) {
        let source = match config.limits {
            Some(_) => format!("[limits] of {}", path.display()),
            None => format!(
                "{} has no [limits]: mailfuse policy's built-in limits",
                path.display()
            ),
        };
        policies.push(Policy {
            name: "your configuration".into(),
            source,
            approximation: false,
            limits: config.policy_limits_config(),
            recipients: Recipients::All,
            on_over: OnOver::Defer,
        });
    }
    policies.extend(request.limits.iter().cloned());
    policies.push(Policy {
        name: "mailfuse defaults".into(),
        source: "mailfuse policy's built-in limits (no [limits] section)".into(),
        approximation: false,
        limits: mailfuse_policy::config::default_limits(),
        recipients: Recipients::All,
        on_over: OnOver::Defer,
    });
    policies.extend(reference::policies());
    policies
}

/// Reads the logs once and replays every policy over them.
pub fn simulate(request: &Request<'_>) -> Result<Simulation> {
    let config = request
        .config
        .map(|path| Config::load_for_scan(path).map_err(crate::unusable))
        .transpose()?;
    let mut detect = config
        .as_ref()
        .map_or_else(DetectConfig::default, |c| c.detect.clone());
    detect
        .compromise
        .local_domains
        .extend(request.local_domains.iter().cloned());
    let mut replays = policies(request, config.as_ref())
        .into_iter()
        .map(|policy| {
            let name = policy.name.clone();
            Replay::new(policy).with_context(|| format!("the policy {name:?} cannot be used"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut detector = Detector::new(detect);
    detector.collect_sends();
    let read = engine::read_all(request.paths, request.options, |event, line| {
        detector.observe(event, line);
        detector.take_sends(|account, send| {
            let sending = Sending {
                at: send.at,
                ip: send.ip,
                message: send.message,
                kind: send.kind,
            };
            for replay in &mut replays {
                replay.feed(account, &sending);
            }
        });
    })?;
    let findings = detector.final_findings();
    let hijacks: Vec<Hijack> = findings
        .incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::CompromisedAccount)
        .filter_map(|i| {
            Some(Hijack {
                account: i.account.clone()?,
                ips: i.ips.clone(),
                first_seen: i.first_seen,
                last_seen: i.last_seen,
                sent: Sent::default(),
            })
        })
        .collect();
    let mut simulation = Simulation {
        first_event: findings.stats.first_event,
        last_event: findings.stats.last_event,
        hijacks,
        policies: Vec::new(),
        caveats: CAVEATS,
        read,
    };
    for replay in replays {
        let report = report(replay.finish(), &mut simulation.hijacks);
        simulation.policies.push(report);
    }
    Ok(simulation)
}

/// One policy's report, noting in `hijacks` what each sent from its IPs.
fn report(replayed: Replayed, hijacks: &mut [Hijack]) -> PolicyReport {
    let Replayed {
        policy,
        accounts,
        hours,
    } = replayed;
    let hijack_ips = |account: &str| -> Vec<IpAddr> {
        hijacks
            .iter()
            .filter(|h| normalize(&h.account) == account)
            .flat_map(|h| h.ips.iter().copied())
            .collect()
    };
    let mut legitimate: Vec<AccountOutcome> = accounts
        .iter()
        .filter_map(|(account, state)| {
            let spam = hijack_ips(account);
            let outcome = state.outcome(|ip| !ip.is_some_and(|ip| spam.contains(&ip)))?;
            outcome.tripped_at.is_some().then(|| AccountOutcome {
                account: account.to_string(),
                outcome,
            })
        })
        .collect();
    legitimate.sort_by(|a, b| {
        (a.outcome.tripped_at, &a.account).cmp(&(b.outcome.tripped_at, &b.account))
    });
    let hijack_outcomes = hijacks
        .iter_mut()
        .map(|hijack| {
            let outcome = accounts
                .get(normalize(&hijack.account).as_ref())
                .and_then(|state| state.outcome(|ip| ip.is_some_and(|ip| hijack.ips.contains(&ip))))
                .unwrap_or_default();
            hijack.sent = outcome.actual();
            AccountOutcome {
                account: hijack.account.clone(),
                outcome,
            }
        })
        .collect();
    PolicyReport {
        limits: policy.words(),
        name: policy.name,
        source: policy.source,
        approximation: policy.approximation,
        recipients: policy.recipients,
        on_over: policy.on_over,
        hijacks: hijack_outcomes,
        legitimate,
        hours: hours
            .into_iter()
            .map(|(hour, counts)| (Timestamp(hour), counts))
            .collect(),
    }
}
