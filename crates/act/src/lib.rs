//! What mailfuse does about an incident. One module per action, each with
//! its configuration struct beside it and implementing the capabilities its
//! server offers ([`capability`]):
//!
//! - account locks: [`kerio`] (Kerio Connect Admin API), [`postfix`] (a
//!   `check_sasl_access` lock map), [`exim`] (a lock list an ACL looks up),
//!   [`dovecot`] (ends the sessions; watch's auth policy refuses the logins);
//! - queued mail: [`kerio`] (removes it), [`postfix`] (`postsuper -h`),
//!   [`exim`] (`exim -Mf`, thawed on unlock, or `-Mrm`);
//! - IP blocks with expiry: [`nftables`], [`kerio`] (IP address group),
//!   [`crowdsec`] (ban decisions of a Local API, for its bouncers);
//! - alerts: [`email`], [`webhook`], [`command`].
//!
//! Actions do I/O and nothing else: what to do, and whether it was already
//! done, is decided by the caller from the store.
//!
//! Adding an action: its module here, and its line in the `actions!` list
//! below.

pub mod capability;
pub mod command;
pub mod crowdsec;
pub mod dovecot;
pub mod email;
pub mod exim;
pub mod kerio;
pub mod message;
pub mod nftables;
pub mod postfix;
mod registry;
mod tool;
pub mod webhook;
mod whole_file;

pub use registry::{ActionName, Registered, SectionError};

registry::actions! {
    /// Kerio Connect: disable the account, remove its queued messages,
    /// block the IP through an IP address group.
    kerio: kerio::Kerio [kerio::KerioConfig],
    /// Postfix: lock the account in a `check_sasl_access` map and put its
    /// queued messages on hold.
    postfix: postfix::Postfix [postfix::PostfixConfig],
    /// Exim: lock the account in a list an ACL looks up and freeze its
    /// queued messages.
    exim: exim::Exim [exim::EximConfig],
    /// Dovecot: end the account's sessions (its logins are refused by
    /// watch's auth policy while it is locked).
    dovecot: dovecot::Dovecot [dovecot::DovecotConfig],
    /// nftables: add the IP to a set with a timeout.
    nftables: nftables::Nftables [nftables::NftablesConfig],
    /// CrowdSec: ban the IP through a Local API, for its bouncers.
    crowdsec: crowdsec::Crowdsec [crowdsec::CrowdsecConfig],
    /// Mail the admin, once per incident.
    email: email::Email [email::EmailConfig],
    /// POST the incident as JSON (Slack, Teams, Mattermost compatible).
    webhook: webhook::Webhook [webhook::WebhookConfig],
    /// Run a program with the incident in its arguments and environment.
    command: command::Command [command::CommandConfig],
}

/// An action that could not be carried out, and why, in words for the admin.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {message}")]
pub struct ActError {
    /// Which action failed (`kerio`, `email`…).
    pub action: &'static str,
    /// What went wrong and, where it can, what to do about it.
    pub message: String,
}

impl ActError {
    /// An error of `action`, in words for the admin.
    pub fn new(action: &'static str, message: impl Into<String>) -> Self {
        ActError {
            action,
            message: message.into(),
        }
    }
}

/// An error and its causes, `a: b: c`, without repeats: reqwest's own
/// message alone (`error sending request`) does not say what failed.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(inner) = cause {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = inner.source();
    }
    text
}
