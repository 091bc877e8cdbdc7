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

    /// How many messages each account submitted within each of `windows`
    /// (seconds) up to the latest submission, as `(account, window, count)`.
    /// Windows longer than two days count the last two days; a burst
    /// beyond the per-account cap counts as the cap.
    pub fn counts(&self, windows: &[i64]) -> Vec<(&str, i64, u64)> {
        let now = self.newest.as_secs();
        let mut counts = Vec::new();
        for (account, ids) in &self.by_account {
            for &window in windows {
                let within = ids
                    .iter()
                    .rev()
                    .take_while(|(t, _)| now - t.as_secs() < window)
                    .count() as u64;
                if within > 0 {
                    counts.push((account.as_str(), window, within));
                }
            }
        }
        counts
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

    #[test]
    fn counts_per_window_end_at_the_latest_submission() {
        let mut recent = RecentSubmissions::default();
        for (i, id) in [b"A1", b"B2", b"C3"].iter().enumerate() {
            recent.note(b"sales@example.com", *id, Timestamp(1000 + 30 * i as i64));
        }
        recent.note(b"Alice@example.com", b"D4", Timestamp(1100));
        let mut counts = recent.counts(&[60, 3600]);
        counts.sort_unstable();
        assert_eq!(
            counts,
            [
                ("alice@example.com", 60, 1),
                ("alice@example.com", 3600, 1),
                // At 1100 a minute holds (1040, 1100]: sales's last only.
                ("sales@example.com", 60, 1),
                ("sales@example.com", 3600, 3),
            ]
        );
        assert!(RecentSubmissions::default().counts(&[60]).is_empty());
    }
}
