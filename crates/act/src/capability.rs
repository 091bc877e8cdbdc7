//! What an action can do, one small trait per capability. The responder
//! asks each configured action for the capabilities it has ([`Action`]) and
//! runs them in its own order; an action module implements only what its
//! server offers.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use mailfuse_core::safety::Blockable;
use mailfuse_core::Timestamp;
use mailfuse_detect::{Incident, IncidentKind};
use serde::Serialize;

use crate::ActError;

/// What a capability returns: boxed so that the traits stay usable as
/// `dyn` (the responder holds every action behind one type).
pub type ActFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ActError>> + 'a>>;

/// A configured action: the capabilities it has, none by default.
pub trait Action: Send + Sync {
    /// Its account lock, if its server can stop an account from sending.
    fn lock(&self) -> Option<&dyn LockAccount> {
        None
    }
    /// What it does with an account's queued mail, if its server has a queue it can reach.
    fn queue(&self) -> Option<&dyn QueuedMail> {
        None
    }
    /// Its IP block, if it can refuse an address for a time.
    fn block(&self) -> Option<&dyn BlockIp> {
        None
    }
    /// Its alert, if it tells the admin.
    fn alert(&self) -> Option<&dyn Alert> {
        None
    }
}

/// Locks an account on the mail server, so that it stops sending.
pub trait LockAccount {
    /// Its name in the journal and the metrics (`kerio.disable_user`).
    fn journal_name(&self) -> &'static str;
    /// Locks `account`; `locked` is every account locked now, this one
    /// included (a lock map is rewritten whole). Says what was done.
    fn lock<'a>(&'a self, account: &'a str, locked: &'a [String]) -> ActFuture<'a, String>;
    /// Unlocks `account`; `locked` is every account still locked.
    fn unlock<'a>(&'a self, account: &'a str, locked: &'a [String]) -> ActFuture<'a, String>;
}

/// Keeps a locked account's queued messages from going out.
pub trait QueuedMail {
    /// Its name in the journal and the metrics (`postfix.hold`).
    fn journal_name(&self) -> &'static str;
    /// Stops what `account` queued; `queued` are the queue ids it submitted
    /// lately (a server that can list its queue by sender may ignore them).
    fn stop_queued<'a>(&'a self, account: &'a str, queued: &'a [String]) -> ActFuture<'a, String>;
    /// Stops messages that got in after the lock, by queue id; `None` when
    /// this action has no such step.
    fn stop_late<'a>(&'a self, _queue_ids: &'a [String]) -> Option<ActFuture<'a, String>> {
        None
    }
    /// Lets go what it stopped of `account`'s mail, once the account is
    /// unlocked; `None` when this action leaves that to the admin (mail on
    /// hold) or has nothing to give back (mail removed).
    fn release<'a>(&'a self, _account: &'a str) -> Option<ActFuture<'a, String>> {
        None
    }
}

/// One IP block, as the blocking actions need it.
#[derive(Clone, Copy, Debug)]
pub struct Blocking<'a> {
    /// The address refused: a guessing IP, or the IP a hijacked account
    /// sent from — one the safety rules let be blocked (never loopback,
    /// private or the server's own unless the admin allows it: see
    /// [`mailfuse_core::safety`]).
    pub ip: Blockable,
    /// How long, in seconds (a set element's timeout).
    pub secs: i64,
    /// The same in words (`21d`), for the admin and the server's comments.
    pub duration: &'a str,
    /// When the block ends (the responder lifts expired blocks; Kerio notes it on the entry).
    pub until: Timestamp,
    /// The incident's key, for the server's own notes.
    pub incident_key: &'a str,
    /// The incident's kind (CrowdSec names its scenario after it); `None`
    /// for a block restored whose incident is not known.
    pub kind: Option<IncidentKind>,
}

/// Blocks an IP for a time.
pub trait BlockIp {
    /// Its name in the journal and the metrics (`nftables.block`).
    fn journal_name(&self) -> &'static str;
    /// Refuses `blocking.ip` until `blocking.until`; says what was done.
    fn block<'a>(&'a self, blocking: Blocking<'a>) -> ActFuture<'a, String>;
    /// Lifts the block of `ip`; what was done, `None` when there was nothing
    /// to lift.
    fn unblock(&self, ip: IpAddr) -> ActFuture<'_, Option<String>>;
    /// Whether its blocks are lost when the machine restarts (nftables sets):
    /// the responder then puts back those the store still has running.
    fn forgets_on_restart(&self) -> bool {
        false
    }
}

/// Tells the admin about an incident.
///
/// An alert may arrive twice: an attempt that timed out, or that a crash
/// cut off before its outcome was recorded, may have been delivered all the
/// same, and is sent again. Every attempt at one alert carries the same
/// `id` ([`alert_id`]), for the receiver to drop a repeat.
pub trait Alert {
    /// Sends `incident` seen on `host`, with what was `done` about it.
    fn alert<'a>(
        &'a self,
        incident: &'a Incident,
        host: &'a str,
        done: &'a [String],
        id: &'a str,
    ) -> ActFuture<'a, String>;
    /// Sends `fault`, a fault of mailfuse itself on `host`.
    fn fault<'a>(&'a self, fault: &'a Fault, host: &'a str, id: &'a str) -> ActFuture<'a, String>;
}

/// The id of one alert: the same at every attempt and after every restart,
/// different for any other alert. 32 hex digits of SHA-256 over the mail
/// server's name, what the alert tells of (an incident's key, a fault's
/// kind and time) and the alert action's name, so that the mail and the
/// webhook of one incident, or two servers' incidents, never share one.
pub fn alert_id(host: &str, about: &str, action: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [host, about, action] {
        context.update(part.as_bytes());
        context.update(&[0]);
    }
    context.finish().as_ref()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A fault of mailfuse itself the admin must hear of, not an incident
/// (the state cannot be saved, log lines were lost): the alerts tell it
/// through the same channels, once per fault rather than per retry.
#[derive(Clone, Debug, Serialize)]
pub struct Fault {
    /// Its name for programs: `state_not_saved`, `lines_lost`.
    pub kind: &'static str,
    /// One line: what is wrong.
    pub summary: String,
    /// What it means and what to do.
    pub details: String,
}
