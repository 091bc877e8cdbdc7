//! The queue ids each account submitted lately, so that when it is locked
//! its messages still in the queue can be put on hold by id — the spammer
//! forges the sender address, so the queue cannot be searched by sender.

use std::collections::{HashMap, VecDeque};

use mailfuse_core::Timestamp;

/// Most ids kept per account (a burst beyond this is held as it goes on:
/// every later message of a locked account is held as it is seen).
const PER_ACCOUNT: usize = 20_000;
/// Ids older than this are forgotten: such mail has left the queue, or
/// bounced back.
const KEEP_SECS: i64 = 2 * 86_400;

/// Recent submissions by account (lower-case).
#[derive(Debug, Default)]
pub struct RecentSubmissions {
    by_account: HashMap<String, VecDeque<(Timestamp, String)>>,
    /// The latest submission's time: the log's clock, not the wall's (a log
    /// read while catching up is hours behind).
    newest: Timestamp,
}

impl RecentSubmissions {
    /// Notes that `account` submitted `queue_id` at `at` (a message seen in
    /// several lines is noted once).
    pub fn note(&mut self, account: &[u8], queue_id: &[u8], at: Timestamp) {
        self.newest = self.newest.max(at);
        let account = String::from_utf8_lossy(account).to_lowercase();
        let ids = self.by_account.entry(account).or_default();
        if ids
            .back()
            .is_some_and(|(_, last)| last.as_bytes() == queue_id)
        {
            return;
        }
        while ids
            .front()
            .is_some_and(|(t, _)| at.as_secs() - t.as_secs() > KEEP_SECS)
            || ids.len() >= PER_ACCOUNT
        {
            ids.pop_front();
        }
        ids.push_back((at, String::from_utf8_lossy(queue_id).into_owned()));
    }

    /// The ids `account` submitted lately, oldest first.
    pub fn of(&self, account: &str) -> Vec<String> {
        self.by_account
            .get(&account.to_lowercase())
            .map(|ids| ids.iter().map(|(_, id)| id.clone()).collect())
            .unwrap_or_default()
    }

    /// Forgets accounts with nothing recent (called now and then, so the
    /// map does not keep every account that ever sent).
    pub fn forget_idle(&mut self) {
        let now = self.newest;
        self.by_account.retain(|_, ids| {
            ids.back()
                .is_some_and(|(t, _)| now.as_secs() - t.as_secs() <= KEEP_SECS)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kept_per_account_once_and_forgotten_when_old() {
        let mut recent = RecentSubmissions::default();
        recent.note(b"Sales@Example.com", b"A1", Timestamp(0));
        recent.note(b"sales@example.com", b"A1", Timestamp(1));
        recent.note(b"sales@example.com", b"B2", Timestamp(2));
        recent.note(b"alice@example.com", b"C3", Timestamp(3));
        assert_eq!(recent.of("SALES@example.com"), ["A1", "B2"]);
        recent.note(b"sales@example.com", b"D4", Timestamp(KEEP_SECS + 1));
        assert_eq!(recent.of("sales@example.com"), ["B2", "D4"]);
        recent.note(b"bob@example.com", b"E5", Timestamp(KEEP_SECS + 10));
        recent.forget_idle();
        assert!(recent.of("alice@example.com").is_empty());
        assert_eq!(recent.of("sales@example.com").len(), 2);
    }
}
