//! What mailfuse does about an incident. One module per action, each with
//! its configuration struct beside it:
//!
//! - alerts: [`email`], [`webhook`], [`command`];
//! - account locks and queue holds: [`kerio`] (Kerio Connect Admin API),
//!   [`postfix`] (a `check_sasl_access` lock map, `postsuper -h`);
//! - IP blocks with expiry: [`nftables`], [`kerio`] (IP address group).
//!
//! Actions do I/O and nothing else: what to do, and whether it was already
//! done, is decided by the caller from the store.

pub mod command;
pub mod email;
pub mod kerio;
pub mod message;
pub mod nftables;
pub mod postfix;
mod tool;
pub mod webhook;

/// An action that could not be carried out, and why, in words for the admin.
#[derive(Debug, thiserror::Error)]
#[error("{action}: {message}")]
pub struct ActError {
    /// Which action failed (`kerio`, `email`…).
    pub action: &'static str,
    pub message: String,
}

impl ActError {
    pub fn new(action: &'static str, message: impl Into<String>) -> Self {
        ActError {
            action,
            message: message.into(),
        }
    }
}
