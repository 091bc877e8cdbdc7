//! "Top senders now" for the dashboard: each account's messages within
//! the windows of its sending limits (`[detect.limits]`), or within the
//! last hour when no limit is set, with the limit beside the count.

use mailfuse_detect::LimitsConfig;
use mailfuse_store::SenderWindow;

use super::recent::RecentSubmissions;

/// The window shown when no limit counts messages.
const DEFAULT_WINDOW: i64 = 3600;
/// Rows kept: the busiest accounts only.
const MAX_ROWS: usize = 200;

/// The busiest accounts' windows, busiest first.
pub fn rows(recent: &RecentSubmissions, limits: &LimitsConfig) -> Vec<SenderWindow> {
    let windows = windows(limits);
    let mut rows: Vec<SenderWindow> = recent
        .counts(&windows)
        .into_iter()
        .map(|(account, window_secs, count)| SenderWindow {
            account: account.to_string(),
            window_secs,
            metric: "messages".to_string(),
            count,
            max: message_limit(limits, account, window_secs),
        })
        .collect();
    rows.sort_unstable_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.account.cmp(&b.account))
            .then(a.window_secs.cmp(&b.window_secs))
    });
    rows.truncate(MAX_ROWS);
    rows
}

/// Every window a limit counts messages over, shortest first.
fn windows(limits: &LimitsConfig) -> Vec<i64> {
    let mut windows: Vec<i64> = limits
        .defaults
        .iter()
        .chain(limits.overrides.iter().map(|o| &o.limit))
        .filter(|spec| spec.messages.is_some())
        .map(|spec| spec.window_secs)
        .collect();
    windows.sort_unstable();
    windows.dedup();
    if windows.is_empty() {
        windows.push(DEFAULT_WINDOW);
    }
    windows
}

/// The account's message limit over `window_secs`, as the limits detector
/// applies them: exempt accounts have none, overrides replace the defaults.
fn message_limit(limits: &LimitsConfig, account: &str, window_secs: i64) -> Option<u64> {
    if limits
        .exempt
        .iter()
        .any(|a| a.eq_ignore_ascii_case(account))
    {
        return None;
    }
    let overrides: Vec<_> = limits
        .overrides
        .iter()
        .filter(|o| o.account.eq_ignore_ascii_case(account))
        .map(|o| &o.limit)
        .collect();
    let specs: Vec<_> = if overrides.is_empty() {
        limits.defaults.iter().collect()
    } else {
        overrides
    };
    specs
        .iter()
        .filter(|spec| spec.window_secs == window_secs)
        .filter_map(|spec| spec.messages)
        .min()
        .map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailfuse_core::Timestamp;
    use mailfuse_detect::{AccountLimit, LimitSpec};

    fn spec(window_secs: i64, messages: Option<u32>) -> LimitSpec {
        LimitSpec {
            window_secs,
            messages,
            recipients: Some(1000),
        }
    }

    fn recent() -> RecentSubmissions {
        let mut recent = RecentSubmissions::default();
        for i in 0..5u8 {
            recent.note(
                b"sales@example.com",
                &[b'A', i],
                Timestamp(100 + i64::from(i)),
            );
        }
        recent.note(b"news@example.com", b"N1", Timestamp(104));
        recent.note(b"ceo@example.com", b"C1", Timestamp(104));
        recent
    }

    #[test]
    fn without_limits_the_last_hour_is_shown_with_no_maximum() {
        let rows = rows(&recent(), &LimitsConfig::default());
        let seen: Vec<(&str, i64, u64, Option<u64>)> = rows
            .iter()
            .map(|r| (r.account.as_str(), r.window_secs, r.count, r.max))
            .collect();
        assert_eq!(
            seen,
            [
                ("sales@example.com", 3600, 5, None),
                ("ceo@example.com", 3600, 1, None),
                ("news@example.com", 3600, 1, None),
            ]
        );
    }

    #[test]
    fn limits_give_the_windows_and_each_account_its_own_maximum() {
        let limits = LimitsConfig {
            defaults: vec![spec(60, Some(30)), spec(3600, None)],
            overrides: vec![AccountLimit {
                account: "NEWS@example.com".into(),
                limit: spec(86_400, Some(5000)),
            }],
            exempt: vec!["ceo@example.com".into()],
        };
        let rows = rows(&recent(), &limits);
        let seen: Vec<(&str, i64, u64, Option<u64>)> = rows
            .iter()
            .map(|r| (r.account.as_str(), r.window_secs, r.count, r.max))
            .collect();
        assert_eq!(
            seen,
            [
                ("sales@example.com", 60, 5, Some(30)),
                ("sales@example.com", 86_400, 5, None),
                ("ceo@example.com", 60, 1, None),
                ("ceo@example.com", 86_400, 1, None),
                ("news@example.com", 60, 1, None),
                ("news@example.com", 86_400, 1, Some(5000)),
            ]
        );
    }
}
