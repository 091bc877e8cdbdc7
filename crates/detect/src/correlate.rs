//! Joining the lines of one message by queue id.
//!
//! A message shows up in several lines (Kerio: one `Recv:` then a `Sent:` per
//! recipient; Postfix: `smtpd`, `qmgr`, then one delivery line per
//! recipient). The table keeps what is needed to attribute each recipient's
//! fate to the account and IP that submitted the message. Memory is bounded by
//! the messages still open: an entry is dropped once it is older than the
//! configured time to live (deliveries after that are counted as orphans).

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use mailfuse_core::Timestamp;
use rustc_hash::{FxHashMap, FxHasher};

use crate::accounts::AccountId;

/// Most recipients remembered per message for de-duplication; a larger
/// message still counts each delivery line, without de-duplication.
const MAX_TRACKED_RECIPIENTS: usize = 4096;

/// What the table knows of one message still in flight.
#[derive(Debug, Default)]
pub struct OpenMessage {
    pub first_seen: Timestamp,
    pub account: Option<AccountId>,
    pub ip: Option<IpAddr>,
    /// The message was counted as submitted (its envelope sender is known).
    pub counted: bool,
    /// Recipients seen so far: a hash of the address and whether it failed.
    recipients: Vec<(u64, bool)>,
}

/// What a newly seen recipient line changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecipientChange {
    /// The recipient had not been seen for this message before.
    pub new_recipient: bool,
    /// The recipient failed permanently for the first time.
    pub new_failure: bool,
}

impl OpenMessage {
    /// Records `recipient` (and whether this line says it failed permanently).
    pub fn note_recipient(&mut self, recipient: &[u8], failed: bool) -> RecipientChange {
        let key = recipient_hash(recipient);
        if let Some(entry) = self.recipients.iter_mut().find(|(k, _)| *k == key) {
            let new_failure = failed && !entry.1;
            entry.1 |= failed;
            return RecipientChange {
                new_recipient: false,
                new_failure,
            };
        }
        if self.recipients.len() < MAX_TRACKED_RECIPIENTS {
            self.recipients.push((key, failed));
        }
        RecipientChange {
            new_recipient: true,
            new_failure: failed,
        }
    }

    /// Distinct recipients seen so far.
    pub fn recipient_count(&self) -> u32 {
        self.recipients.len() as u32
    }

    /// Distinct recipients that failed permanently so far.
    pub fn failed_count(&self) -> u32 {
        self.recipients.iter().filter(|(_, f)| *f).count() as u32
    }
}

/// Case-insensitive hash of an address (mail domains are case-insensitive,
/// and local parts are in practice).
fn recipient_hash(address: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    for b in address {
        b.to_ascii_lowercase().hash(&mut h);
    }
    h.finish()
}

/// Open messages by queue id, expiring after a time to live.
#[derive(Debug)]
pub struct MessageTable {
    open: FxHashMap<Box<[u8]>, OpenMessage>,
    /// Queue ids in order of first sighting, for expiry.
    by_age: VecDeque<(Timestamp, Box<[u8]>)>,
    ttl_secs: i64,
    expired: u64,
}

impl MessageTable {
    /// A table that forgets messages `ttl_secs` after their first line.
    pub fn new(ttl_secs: i64) -> Self {
        MessageTable {
            open: FxHashMap::default(),
            by_age: VecDeque::new(),
            ttl_secs,
            expired: 0,
        }
    }

    /// The message with `queue_id`, created if unknown.
    pub fn entry(&mut self, queue_id: &[u8], at: Timestamp) -> &mut OpenMessage {
        self.expire(at);
        if !self.open.contains_key(queue_id) {
            let key: Box<[u8]> = queue_id.into();
            self.by_age.push_back((at, key.clone()));
            self.open.insert(
                key,
                OpenMessage {
                    first_seen: at,
                    ..OpenMessage::default()
                },
            );
        }
        // The entry exists: it was found or inserted just above.
        self.open.get_mut(queue_id).expect("entry present")
    }

    /// The message with `queue_id`, if it is open.
    pub fn get(&mut self, queue_id: &[u8], at: Timestamp) -> Option<&mut OpenMessage> {
        self.expire(at);
        self.open.get_mut(queue_id)
    }

    /// Messages currently open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether no message is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Messages forgotten because they outlived the time to live.
    pub fn expired(&self) -> u64 {
        self.expired
    }

    fn expire(&mut self, now: Timestamp) {
        while let Some((first_seen, _)) = self.by_age.front() {
            if now.as_secs() - first_seen.as_secs() <= self.ttl_secs {
                break;
            }
            if let Some((_, key)) = self.by_age.pop_front() {
                if self.open.remove(&key).is_some() {
                    self.expired += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_counted_once_and_failures_once() {
        let mut table = MessageTable::new(3600);
        let m = table.entry(b"q1", Timestamp(100));
        assert!(m.note_recipient(b"a@x.test", false).new_recipient);
        let again = m.note_recipient(b"A@X.test", true);
        assert_eq!(
            again,
            RecipientChange {
                new_recipient: false,
                new_failure: true
            }
        );
        assert!(!m.note_recipient(b"a@x.test", true).new_failure);
        assert_eq!((m.recipient_count(), m.failed_count()), (1, 1));
    }

    #[test]
    fn memory_is_bounded_by_open_messages() {
        let mut table = MessageTable::new(60);
        for i in 0..1000i64 {
            table.entry(format!("q{i}").as_bytes(), Timestamp(i));
        }
        assert!(
            table.len() <= 61,
            "only the last minute stays open: {}",
            table.len()
        );
        assert_eq!(table.expired(), 1000 - table.len() as u64);
        assert!(table.get(b"q0", Timestamp(1000)).is_none());
        assert!(table.get(b"q999", Timestamp(1000)).is_some());
    }
}
