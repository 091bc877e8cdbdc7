//! "Top senders now" for the dashboard: the keys closest to their sending
//! limits, each window with its count and limit, as `mailfuse-limits`
//! counts them — watch's detector (accounts; the last hour of messages when
//! no limit is set) and policy's store (logins, senders, client IPs).

use mailfuse_limits::Usage;
use mailfuse_store::SenderWindow;

/// How many keys the dashboard lists, fullest first.
pub const TOP_SENDERS: usize = 50;

/// One row per window of each key, in the order given.
pub fn rows(top: Vec<Usage>) -> Vec<SenderWindow> {
    top.into_iter()
        .flat_map(|usage| {
            let account = usage.key;
            usage
                .windows
                .into_iter()
                .map(move |(limit, count)| SenderWindow {
                    account: account.clone(),
                    window_secs: i64::try_from(limit.window_secs).unwrap_or(i64::MAX),
                    metric: limit.counts.name().to_string(),
                    count,
                    max: limit.maximum(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailfuse_limits::{Counting, Limit};

    #[test]
    fn each_window_is_a_row_with_its_maximum_if_it_has_one() {
        let minute = Limit {
            window_secs: 60,
            max: 30,
            counts: Counting::Recipients,
        };
        let top = vec![
            Usage {
                key: "sales@example.com".into(),
                windows: vec![(minute, 31), (Limit::tally(3600, Counting::Messages), 5)],
            },
            Usage {
                key: "ceo@example.com".into(),
                windows: vec![(minute, 1)],
            },
        ];
        let seen: Vec<(String, i64, String, u64, Option<u64>)> = rows(top)
            .into_iter()
            .map(|r| (r.account, r.window_secs, r.metric, r.count, r.max))
            .collect();
        let row = |account: &str, window, metric: &str, count, max| {
            (account.to_string(), window, metric.to_string(), count, max)
        };
        assert_eq!(
            seen,
            [
                row("sales@example.com", 60, "recipients", 31, Some(30)),
                row("sales@example.com", 3600, "messages", 5, None),
                row("ceo@example.com", 60, "recipients", 1, Some(30)),
            ]
        );
    }
}
