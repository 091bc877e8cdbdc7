use super::*;
use crate::config::{LimitsConfig, Override, WindowLimit};

const T0: i64 = 1_700_000_000;

fn limiter(limits: Vec<Limit>) -> Limiter {
    Limiter::new(
        LimitRules::new(&LimitsConfig {
            defaults: limits.into_iter().map(WindowLimit::from).collect(),
            ..LimitsConfig::default()
        })
        .unwrap(),
    )
}

fn over(limit: Limit, count: u64) -> Verdict {
    Verdict::Over { limit, count }
}

/// Every level a record reports.
fn levels(limiter: &mut Limiter, key: &str, at: i64, messages: u64, recipients: u64) -> Vec<Level> {
    let mut levels = Vec::new();
    limiter.record_with(key, at, messages, recipients, |level| levels.push(level));
    levels
}

#[test]
fn thirtieth_passes_thirty_first_is_over_and_slides_out_after_the_window() {
    let per_minute = Limit::new(60, 30, Counting::Messages);
    let mut limiter = limiter(vec![per_minute]);
    for second in 0..29 {
        limiter.record("alice", T0 + second, 1, 1);
    }
    assert_eq!(limiter.check("alice", T0 + 29, 1, 1), Verdict::Allowed);
    limiter.record("alice", T0 + 29, 1, 1);
    assert_eq!(limiter.check("alice", T0 + 30, 1, 1), over(per_minute, 31));
    assert_eq!(limiter.check("alice", T0 + 59, 1, 1), over(per_minute, 31));
    // At T0 + 60 the message sent at T0 is 60 s old: out of the window.
    assert_eq!(limiter.check("alice", T0 + 60, 1, 1), Verdict::Allowed);
    limiter.record("alice", T0 + 60, 1, 1);
    assert_eq!(limiter.check("alice", T0 + 60, 1, 1), over(per_minute, 31));
    assert_eq!(limiter.check("alice", T0 + 61, 1, 1), Verdict::Allowed);
}

#[test]
fn a_burst_in_one_second_is_limited_exactly() {
    let per_minute = Limit::new(60, 30, Counting::Messages);
    let mut limiter = limiter(vec![per_minute]);
    for _ in 0..30 {
        assert_eq!(limiter.check("alice", T0, 1, 1), Verdict::Allowed);
        limiter.record("alice", T0, 1, 1);
    }
    assert_eq!(limiter.check("alice", T0, 1, 1), over(per_minute, 31));
    assert_eq!(limiter.check("alice", T0 + 59, 1, 1), over(per_minute, 31));
    assert_eq!(limiter.check("alice", T0 + 60, 1, 1), Verdict::Allowed);
}

#[test]
fn several_windows_report_the_first_exceeded_in_configured_order() {
    let per_minute = Limit::new(60, 5, Counting::Messages);
    let per_hour = Limit::new(3_600, 8, Counting::Messages);
    let per_day = Limit::new(86_400, 8, Counting::Recipients);
    let mut limiter = limiter(vec![per_minute, per_hour, per_day]);
    for _ in 0..5 {
        limiter.record("alice", T0, 1, 1);
    }
    assert_eq!(limiter.check("alice", T0, 1, 1), over(per_minute, 6));
    for _ in 0..3 {
        limiter.record("alice", T0 + 60, 1, 1);
    }
    // The minute is fine again, the hour and the day are both full: the
    // hour comes first in the configuration.
    assert_eq!(limiter.check("alice", T0 + 120, 1, 1), over(per_hour, 9));
    assert_eq!(limiter.check("alice", T0 + 3_600, 1, 1), over(per_day, 9));
    assert_eq!(limiter.check("alice", T0 + 86_400, 1, 1), Verdict::Allowed);
}

#[test]
fn recipients_and_messages_are_counted_apart() {
    let messages = Limit::new(3_600, 3, Counting::Messages);
    let recipients = Limit::new(3_600, 100, Counting::Recipients);
    let mut limiter = limiter(vec![messages, recipients]);
    // One message to 100 recipients: a single message, a full recipient quota.
    limiter.record("alice", T0, 1, 100);
    assert_eq!(limiter.check("alice", T0 + 1, 1, 1), over(recipients, 101));
    assert_eq!(limiter.check("alice", T0 + 1, 1, 0), Verdict::Allowed);
    for _ in 0..3 {
        limiter.record("bob", T0, 1, 1);
    }
    assert_eq!(limiter.check("bob", T0, 1, 1), over(messages, 4));
}

#[test]
fn a_multi_recipient_message_counts_its_recipient_count() {
    let recipients = Limit::new(60, 10, Counting::Recipients);
    let mut limiter = limiter(vec![recipients]);
    limiter.record("alice", T0, 1, 7);
    assert_eq!(limiter.check("alice", T0, 1, 3), Verdict::Allowed);
    assert_eq!(limiter.check("alice", T0, 1, 4), over(recipients, 11));
    limiter.record("alice", T0 + 1, 1, 3);
    assert_eq!(limiter.check("alice", T0 + 1, 1, 1), over(recipients, 11));
    // The 7 leave at T0 + 60, the 3 at T0 + 61.
    assert_eq!(limiter.check("alice", T0 + 60, 1, 7), Verdict::Allowed);
    assert_eq!(limiter.check("alice", T0 + 60, 1, 8), over(recipients, 11));
}

#[test]
fn check_does_not_count() {
    let per_minute = Limit::new(60, 2, Counting::Messages);
    let mut limiter = limiter(vec![per_minute]);
    for _ in 0..1_000 {
        assert_eq!(limiter.check("alice", T0, 1, 1), Verdict::Allowed);
    }
    assert_eq!(limiter.tracked_keys(), 0);
    limiter.record("alice", T0, 2, 2);
    assert_eq!(limiter.check("alice", T0, 1, 1), over(per_minute, 3));
    assert_eq!(limiter.check("alice", T0, 0, 0), Verdict::Allowed);
}

#[test]
fn overrides_replace_defaults_and_allow_list_skips_case_insensitively() {
    let default = Limit::new(60, 1, Counting::Messages);
    let generous = Limit::new(60, 100, Counting::Messages);
    let rules = LimitRules::new(&LimitsConfig {
        defaults: vec![WindowLimit::from(default)],
        overrides: vec![Override {
            account: "Sales@Example.COM".into(),
            limit: WindowLimit::from(generous),
        }],
        allow: vec!["NEWSLETTER@example.com".into()],
    })
    .unwrap();
    let mut limiter = Limiter::new(rules);

    limiter.record("sales@example.com", T0, 50, 50);
    assert_eq!(
        limiter.check("SALES@example.com", T0, 1, 1),
        Verdict::Allowed
    );
    limiter.record("SALES@EXAMPLE.COM", T0, 50, 50);
    assert_eq!(
        limiter.check("sales@example.com", T0, 1, 1),
        over(generous, 101)
    );
    for _ in 0..10_000 {
        limiter.record("newsletter@EXAMPLE.com", T0, 1, 500);
    }
    assert_eq!(
        limiter.check("Newsletter@Example.Com", T0, 1_000, 1_000_000),
        Verdict::Allowed
    );
    assert_eq!(limiter.tracked_keys(), 1);

    limiter.record("Alice", T0, 1, 1);
    assert_eq!(limiter.check("aLICE", T0, 1, 1), over(default, 2));
    // A lookalike is another key, not the allow-listed one; a spelling of
    // the same name (a trailing space, as a login backend trims) is it.
    assert_eq!(
        limiter.check("newsletter@example.co", T0, 2, 2),
        over(default, 2)
    );
    assert_eq!(
        limiter.check("newsletter@example.com ", T0, 2, 2),
        Verdict::Allowed
    );
}

#[test]
fn prune_releases_keys_idle_longer_than_their_longest_window() {
    let mut limiter = limiter(vec![
        Limit::new(60, 10, Counting::Messages),
        Limit::new(3_600, 100, Counting::Messages),
    ]);
    limiter.record("alice", T0, 1, 1);
    limiter.record("bob", T0 + 1_000, 1, 1);
    limiter.prune(T0 + 3_599);
    assert_eq!(limiter.tracked_keys(), 2);
    limiter.prune(T0 + 3_600);
    assert_eq!(limiter.tracked_keys(), 1);
    assert_eq!(limiter.entries_of("alice"), 0);
    limiter.prune(T0 + 4_600);
    assert_eq!(limiter.tracked_keys(), 0);
}

#[test]
fn keys_without_limits_hold_no_memory() {
    let mut limiter = limiter(vec![]);
    limiter.record("alice", T0, 1, 1);
    assert_eq!(
        limiter.check("alice", T0, u64::MAX, u64::MAX),
        Verdict::Allowed
    );
    assert_eq!(limiter.tracked_keys(), 0);
}

#[test]
fn memory_stays_bounded_per_second_and_by_twice_the_limit() {
    let mut limiter = limiter(vec![Limit::new(86_400, 1_000_000, Counting::Recipients)]);
    for _ in 0..100_000 {
        limiter.record("alice", T0, 1, 3);
    }
    assert_eq!(limiter.entries_of("alice"), 1);
    assert_eq!(
        limiter.check("alice", T0, 1, 700_001),
        over(
            Limit::new(86_400, 1_000_000, Counting::Recipients),
            1_000_001
        )
    );
    // One entry per distinct second, old seconds leave, and never more
    // than twice the limit.
    let mut limiter = self::limiter(vec![Limit::new(60, 100, Counting::Messages)]);
    for second in 0..10_000 {
        limiter.record("bob", T0 + second, 1, 1);
    }
    assert_eq!(limiter.entries_of("bob"), 60);
    let mut limiter = self::limiter(vec![Limit::new(86_400, 10, Counting::Messages)]);
    for second in 0..10_000 {
        limiter.record("carol", T0 + second, 1, 1);
    }
    assert_eq!(limiter.entries_of("carol"), 20);
    assert_eq!(
        limiter.check("carol", T0 + 10_000, 1, 0),
        over(Limit::new(86_400, 10, Counting::Messages), 21),
        "at the cap the count says at least twice the limit"
    );
}

#[test]
fn below_its_cap_a_window_is_exact_and_keeps_the_newest() {
    let per_minute = Limit::new(60, 1, Counting::Messages); // cap 2
    let mut limiter = limiter(vec![per_minute]);
    for s in [0, 0, 1] {
        limiter.record("alice", T0 + s, 1, 0);
    }
    assert_eq!(limiter.usage("alice", T0 + 1), [(per_minute, 2)], "capped");
    assert_eq!(
        limiter.usage("alice", T0 + 60),
        [(per_minute, 1)],
        "second 0 slid out: exact again"
    );
}

#[test]
fn late_seconds_count_in_their_place_and_older_ones_not_at_all() {
    let per_minute = Limit::new(60, 10, Counting::Messages);
    let mut limiter = limiter(vec![per_minute]);
    limiter.record("alice", T0 + 100, 1, 0);
    limiter.record("alice", T0 + 30, 1, 0); // outside (T0 + 40, T0 + 100]
    limiter.record("alice", T0 + 50, 1, 0);
    limiter.record("alice", T0 + 45, 1, 0);
    assert_eq!(limiter.usage("alice", T0 + 100), [(per_minute, 3)]);
    assert_eq!(
        limiter.usage("alice", T0 + 105),
        [(per_minute, 2)],
        "45 left"
    );
    assert_eq!(
        limiter.usage("alice", T0 + 110),
        [(per_minute, 1)],
        "50 left"
    );
}

#[test]
fn a_wall_clock_stepping_back_keeps_counting_without_growing() {
    let per_minute = Limit::new(60, 3, Counting::Messages);
    let mut limiter = limiter(vec![per_minute]);
    limiter.record_now("alice", T0 + 100, 1, 1);
    limiter.record_now("alice", T0, 1, 1);
    limiter.record_now("alice", 0, 1, 1);
    assert_eq!(limiter.entries_of("alice"), 1);
    assert_eq!(limiter.check("alice", T0, 1, 1), over(per_minute, 4));
    assert_eq!(limiter.check("alice", T0 + 160, 1, 1), Verdict::Allowed);
}

#[test]
fn huge_amounts_and_hostile_times_saturate_instead_of_overflowing() {
    let recipients = Limit::new(60, u64::MAX - 1, Counting::Recipients);
    let mut limiter = limiter(vec![recipients]);
    limiter.record("alice", T0, 1, u64::MAX);
    limiter.record("alice", T0, 1, u64::MAX);
    assert_eq!(limiter.check("alice", i64::MAX, 0, 0), Verdict::Allowed);
    limiter.record("alice", i64::MAX, 1, u64::MAX);
    assert_eq!(
        limiter.check("alice", i64::MAX, 0, 1),
        over(recipients, u64::MAX)
    );
    let per_day = Limit::new(86_400, 1, Counting::Messages);
    let mut limiter = self::limiter(vec![per_day]);
    let mut crossings = 0;
    for t in [i64::MAX, i64::MIN, 0, i64::MAX] {
        limiter.record_with("a", t, 1, 0, |level| {
            crossings += usize::from(level.standing == Standing::Crossed);
        });
    }
    assert_eq!(crossings, 1);
}

#[test]
fn catch_up_raises_windows_to_the_shared_totals_and_never_lowers_them() {
    let minute = Limit::new(60, 10, Counting::Recipients);
    let hour = Limit::new(3_600, 100, Counting::Messages);
    let mut limiter = limiter(vec![minute, hour]);
    limiter.record("alice", T0, 1, 4);
    limiter.catch_up("Alice", T0 + 5, &[9, 1]);
    assert_eq!(limiter.usage("alice", T0 + 5), vec![(minute, 9), (hour, 1)]);
    assert_eq!(limiter.check("alice", T0 + 5, 1, 2), over(minute, 11));
    // A lower total (the others' share expired first) changes nothing.
    limiter.catch_up("alice", T0 + 6, &[2, 0]);
    assert_eq!(limiter.usage("alice", T0 + 6), vec![(minute, 9), (hour, 1)]);
    // The learnt 5 leave a minute after they were learnt, not before.
    assert_eq!(
        limiter.usage("alice", T0 + 60),
        vec![(minute, 5), (hour, 1)]
    );
    assert_eq!(
        limiter.usage("alice", T0 + 65),
        vec![(minute, 0), (hour, 1)]
    );
}

#[test]
fn levels_say_which_limit_crossed_once_until_back_under_and_what_went_with_it() {
    let messages = Limit::new(60, 2, Counting::Messages);
    let recipients = Limit::new(60, 5, Counting::Recipients);
    let mut limiter = limiter(vec![messages, recipients]);
    limiter.record("alice", T0, 1, 0);
    limiter.record("alice", T0, 0, 3);
    limiter.record("alice", T0 + 1, 1, 0);
    let crossed = levels(&mut limiter, "alice", T0 + 2, 1, 0);
    assert_eq!(crossed[0].standing, Standing::Crossed);
    assert_eq!(crossed[0].count, 3);
    assert_eq!(crossed[0].since, Some(T0));
    assert_eq!(
        crossed[0].sent,
        Sent {
            messages: 3,
            recipients: 3
        }
    );
    assert_eq!(crossed[1].standing, Standing::Under);
    let still = levels(&mut limiter, "alice", T0 + 3, 0, 1);
    assert_eq!(still[0].standing, Standing::Over, "a recipient, still over");
    // At T0 + 60 the minute holds 2 (T0 + 1, T0 + 2): not under 2.
    let at_the_limit = levels(&mut limiter, "alice", T0 + 60, 0, 1);
    assert_eq!(at_the_limit[0].standing, Standing::Over);
    // At T0 + 61 it holds 1: under, and the next message is no crossing.
    let under = levels(&mut limiter, "alice", T0 + 61, 1, 0);
    assert_eq!((under[0].standing, under[0].count), (Standing::Under, 2));
    let again = levels(&mut limiter, "alice", T0 + 61, 1, 0);
    assert_eq!(again[0].standing, Standing::Crossed);
}

#[test]
fn new_rules_keep_the_counts_of_the_windows_that_stayed() {
    let minute = Limit::new(60, 10, Counting::Messages);
    let hour = Limit::new(3_600, 100, Counting::Messages);
    let mut limiter = limiter(vec![minute, hour]);
    for t in 0..8 {
        limiter.record("alice", T0 + t, 1, 1);
    }
    let stricter = Limit { max: 8, ..minute };
    let day = Limit::new(86_400, 100, Counting::Messages);
    limiter.set_rules(self::limiter(vec![stricter, day]).rules().clone());
    assert_eq!(
        limiter.usage("alice", T0 + 8),
        [(stricter, 8), (day, 0)],
        "a count is what was sent, whatever the maximum"
    );
    assert_eq!(limiter.check("alice", T0 + 8, 1, 0), over(stricter, 9));
    limiter.set_rules(LimitRules::default());
    assert_eq!(limiter.tracked_keys(), 0, "no limits, no counts");
}

#[test]
fn a_saved_limiter_comes_back_under_the_rules_of_the_day() {
    let minute = Limit::new(60, 2, Counting::Messages);
    let hour = Limit::new(3_600, 3, Counting::Recipients);
    let mut before = limiter(vec![minute, hour]);
    before.record("alice", T0 + 100, 1, 2);
    before.record("alice", T0 + 130, 1, 1);
    let bytes = rmp_serde::to_vec(&before).unwrap();

    let mut after = limiter(vec![minute, hour]);
    after.restore(rmp_serde::from_slice(&bytes).unwrap());
    assert_eq!(
        after.usage("alice", T0 + 131),
        before.usage("alice", T0 + 131)
    );
    assert_eq!(after.check("alice", T0 + 160, 1, 1), over(hour, 4));

    // The minute became two: its count starts afresh, the hour's stays.
    let two_minutes = Limit::new(120, 2, Counting::Messages);
    let mut changed = limiter(vec![two_minutes, hour]);
    changed.restore(rmp_serde::from_slice(&bytes).unwrap());
    assert_eq!(
        changed.usage("alice", T0 + 131),
        [(two_minutes, 0), (hour, 3)]
    );
}

#[test]
fn top_lists_the_fullest_keys_first_and_tallies_by_count() {
    let hour = Limit::new(3_600, 3, Counting::Recipients);
    let mut limiter = limiter(vec![hour]);
    limiter.record("quiet", T0, 1, 1);
    limiter.record("busy", T0, 1, 3);
    limiter.record("medium", T0, 1, 2);
    let keys: Vec<String> = limiter.top(T0 + 10, 2).into_iter().map(|u| u.key).collect();
    assert_eq!(keys, ["busy", "medium"]);
    assert!(limiter.top(T0 + 3_600, 5).is_empty(), "all expired");

    let mut tally = Limiter::new(LimitRules::tally(Limit::tally(3_600, Counting::Messages)));
    for (key, n) in [("a", 1), ("b", 5), ("c", 2)] {
        for _ in 0..n {
            tally.record(key, T0, 1, 1);
        }
    }
    let top: Vec<(String, u64)> = tally
        .top(T0, 5)
        .into_iter()
        .map(|u| (u.key, u.windows[0].1))
        .collect();
    assert_eq!(top, [("b".into(), 5), ("c".into(), 2), ("a".into(), 1)]);
}
