//! The configured actions, built in one place from `[actions]`, and which
//! of them run for which kind of incident. The actions themselves, their
//! names and their sections come from `mailfuse_act`'s list.

use mailfuse_act::capability::Action;
use mailfuse_act::{ActionName, Registered, SectionError};
use mailfuse_detect::IncidentKind;

use crate::config::ActionsConfig;

/// The configured actions, in registration order, and the selection per
/// incident kind.
pub struct Actions {
    all: Vec<Registered>,
    for_accounts: Vec<ActionName>,
    for_guessing: Vec<ActionName>,
    for_limits: Vec<ActionName>,
    for_suspicious: Vec<ActionName>,
    for_misconfigured: Vec<ActionName>,
}

impl Actions {
    /// Builds the actions configured in `config`; an action whose section
    /// it refuses fails the whole (`check-config` says which).
    pub fn new(config: &ActionsConfig) -> Result<Actions, SectionError> {
        Ok(Actions::select(config, config.sections.build()?))
    }

    /// `all`, selected per kind as `config` says.
    pub fn select(config: &ActionsConfig, all: Vec<Registered>) -> Actions {
        let configured: Vec<ActionName> = all.iter().map(|r| r.name).collect();
        // Over a limit is not proof of a hijack: alerts only, unless asked.
        let alerts: Vec<ActionName> = all
            .iter()
            .filter(|r| r.action.alert().is_some())
            .map(|r| r.name)
            .collect();
        Actions {
            for_accounts: (config.compromised_account.clone()).unwrap_or(configured.clone()),
            for_guessing: (config.password_guessing.clone()).unwrap_or(configured),
            for_limits: (config.limit_exceeded.clone()).unwrap_or(alerts.clone()),
            for_suspicious: (config.suspicious_activity.clone()).unwrap_or(alerts.clone()),
            for_misconfigured: (config.misconfigured_client.clone()).unwrap_or(alerts),
            all,
        }
    }

    /// The actions with `capability` (`|a| a.lock()`) selected for `kind`,
    /// or every configured one for `None` (unlock, unblock, restores).
    pub fn with<'a, C: ?Sized + 'a>(
        &'a self,
        kind: Option<IncidentKind>,
        capability: impl Fn(&'a dyn Action) -> Option<&'a C> + 'a,
    ) -> impl Iterator<Item = (ActionName, &'a C)> + 'a {
        let selected = kind.map(|kind| match kind {
            IncidentKind::CompromisedAccount => &self.for_accounts,
            IncidentKind::PasswordGuessing => &self.for_guessing,
            IncidentKind::LimitExceeded => &self.for_limits,
            IncidentKind::SuspiciousActivity => &self.for_suspicious,
            IncidentKind::MisconfiguredClient => &self.for_misconfigured,
        });
        self.all
            .iter()
            .filter(move |r| selected.is_none_or(|names| names.contains(&r.name)))
            .filter_map(move |r| Some((r.name, capability(r.action.as_ref())?)))
    }

    /// Whether an incident of `kind` locks its account: a hijack always
    /// (in the store, and by every lock action selected), guessing never
    /// (no account of its own), a limit only when a lock action is listed,
    /// the lower tiers (suspicious activity, a misconfigured client) never.
    pub fn locks_account(&self, kind: IncidentKind) -> bool {
        match kind {
            IncidentKind::CompromisedAccount => true,
            IncidentKind::LimitExceeded => self.with(Some(kind), |a| a.lock()).next().is_some(),
            IncidentKind::PasswordGuessing
            | IncidentKind::SuspiciousActivity
            | IncidentKind::MisconfiguredClient => false,
        }
    }

    /// Whether an incident of `kind` blocks its IPs: not for a limit, which
    /// is crossed from the account's usual IPs, often the office's own, nor
    /// for the lower tiers.
    pub fn blocks_ips(kind: IncidentKind) -> bool {
        kind != IncidentKind::LimitExceeded && kind.may_act()
    }
}
