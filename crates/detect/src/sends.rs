//! What each account sent, event by event, for `mailfuse simulate`: the
//! messages the detector counts (the same ones its `limit_exceeded`
//! detector and the account table count) and their recipients as lines
//! name them, each at its line's time, so a replay can feed them to a limiter as the policy
//! server would have seen them.
//!
//! Only `simulate` collects them ([`crate::Detector::collect_sends`]); they
//! are not part of the stored snapshot. The caller drains them after each
//! event ([`crate::Detector::take_sends`]), so memory holds one line's worth.

use std::net::IpAddr;

use mailfuse_core::Timestamp;

use crate::account_id::AccountId;

/// What one line added to an account's sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendKind {
    /// A message counted as submitted (its envelope sender is known).
    Message,
    /// A recipient of a counted message, when a line first names it (a
    /// recipient Postfix's `nrcpt` counted comes with its delivery line).
    Recipient {
        /// Its domain is not local.
        external: bool,
    },
    /// A recipient of a counted message failed permanently (5.x.x).
    Failure,
}

/// One sending event of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Send {
    /// The account that submitted the message.
    pub account: AccountId,
    /// The IP the message is attributed to (its stream, as the incidents
    /// name them; webmail's mail, its login's IP).
    pub ip: IpAddr,
    /// The line's time.
    pub at: Timestamp,
    /// The message, numbered from 1 in the order messages were counted, so
    /// a replay tells which message a recipient belongs to.
    pub message: u64,
    /// What happened.
    pub kind: SendKind,
}

/// The events not yet taken, and the last message number handed out.
#[derive(Debug, Default)]
pub(crate) struct SendLog {
    pub(crate) pending: Vec<Send>,
    pub(crate) messages: u64,
}

impl SendLog {
    /// Numbers a newly counted message and notes it.
    pub(crate) fn message(&mut self, account: AccountId, ip: IpAddr, at: Timestamp) -> u64 {
        self.messages += 1;
        self.pending.push(Send {
            account,
            ip,
            at,
            message: self.messages,
            kind: SendKind::Message,
        });
        self.messages
    }
}
