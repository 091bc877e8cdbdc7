//! Judging a `mailfuse scan --format json` report against a week's labels.
//!
//! The rules (`docs/benchmark.md` says the same):
//!
//! * **Tiers.** `compromised_account` is the *lock* tier. A kind naming
//!   guessing (`password_guessing`, or any containing `guess`, `brute`,
//!   `stuff`, `campaign`, `spray`), or any incident without an account that
//!   lists addresses, is the *guessing* tier. `limit_exceeded` incidents are
//!   ignored (they come from configured limits; the benchmark sets none).
//!   Every other kind (a future `suspicious_activity`) is the *alert* tier.
//! * **Hijack.** *Found* when a lock incident names its account;
//!   *found with its attacker IPs* when those incidents' `ips` together
//!   hold every address that sent its spam (the fraction named is reported
//!   too). Not found but named by any other incident (as `account` or in
//!   `succeeded_as`): *alerted*. Detection delay: the earliest such lock
//!   incident's `detected_at` minus the first spam message; spam before
//!   detection: labelled spam messages accepted at or before that
//!   `detected_at` — all of them for a hijack not found.
//! * **Look-alike.** Its account in a lock incident: a *false lock*. In any
//!   other incident (as `account` or in `succeeded_as`), or one of its
//!   addresses in a guessing incident: a *false alert*. A lock incident on
//!   an account no scenario labels is a false lock of *other accounts*.
//! * **Attack.** The guessing incidents sharing an address with it are its
//!   *fragments*. *Reported* when they together list at least half of its
//!   addresses, or one names its target account (brute force) in
//!   `accounts_tried`, `succeeded_as` or `account`; *as one* when a single
//!   fragment does so by itself. Detection delay: the earliest fragment's
//!   `detected_at` minus the first attempt.
//! * Medians are the middle value (the upper one of two).

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use mailfuse_core::Timestamp;
use serde::{Deserialize, Serialize};

use super::labels::{Class, Kind, Labels, Scenario};
use super::Form;

/// The part of a report the scorer reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Report {
    /// The report's incidents.
    #[serde(default)]
    pub incidents: Vec<Incident>,
}

/// The fields of an incident the scorer reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Incident {
    /// `compromised_account`, `password_guessing`…
    pub kind: String,
    /// The account, for account incidents.
    #[serde(default)]
    pub account: Option<String>,
    /// The addresses the incident names.
    #[serde(default)]
    pub ips: Vec<IpAddr>,
    /// When the evidence crossed the threshold.
    pub detected_at: Timestamp,
    /// Accounts a guesser tried (as many as the report lists).
    #[serde(default)]
    pub accounts_tried: Vec<String>,
    /// Accounts a guesser then logged in or sent as.
    #[serde(default)]
    pub succeeded_as: Vec<String>,
}

/// How much an incident says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// `compromised_account`: the account is locked.
    Lock,
    /// Password guessing by addresses.
    Guessing,
    /// Anything else: an alert about an account, nothing locked.
    Alert,
    /// Not scored (`limit_exceeded`).
    Ignored,
}

impl Incident {
    /// The incident's tier (see the module's rules).
    pub fn tier(&self) -> Tier {
        let kind = self.kind.to_ascii_lowercase();
        if kind == "compromised_account" {
            Tier::Lock
        } else if kind.starts_with("limit") {
            Tier::Ignored
        } else if ["guess", "brute", "stuff", "campaign", "spray"]
            .iter()
            .any(|word| kind.contains(word))
            || (self.account.is_none() && !self.ips.is_empty())
        {
            Tier::Guessing
        } else {
            Tier::Alert
        }
    }

    fn is_about(&self, account: &str) -> bool {
        self.account
            .as_deref()
            .is_some_and(|a| a.eq_ignore_ascii_case(account))
    }

    /// Names `account` as its subject or as an account a guess worked for.
    fn names(&self, account: &str) -> bool {
        self.is_about(account)
            || self
                .succeeded_as
                .iter()
                .any(|a| a.eq_ignore_ascii_case(account))
    }
}

/// How one hijack was judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HijackScore {
    /// Its kind.
    pub kind: Kind,
    /// The hijacked account.
    pub account: String,
    /// A `compromised_account` incident names the account.
    pub found: bool,
    /// Not found, but another incident names it.
    pub alerted: bool,
    /// Attacker addresses the lock incidents name.
    pub ips_named: usize,
    /// Attacker addresses in all.
    pub ips_total: usize,
    /// Seconds from the first spam message to detection.
    pub delay_secs: Option<i64>,
    /// Spam messages accepted in all.
    pub spam: usize,
    /// Spam messages accepted at or before detection (all when not found).
    pub spam_before: usize,
}

impl HijackScore {
    /// Found, and every attacker address named.
    pub fn found_with_ips(&self) -> bool {
        self.found && self.ips_named == self.ips_total
    }
}

/// How one look-alike was judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookalikeScore {
    /// Its kind.
    pub kind: Kind,
    /// The legitimate account.
    pub account: String,
    /// Named by a `compromised_account` incident.
    pub false_lock: bool,
    /// Named by another incident, or its address in a guessing incident.
    pub false_alert: bool,
}

/// How one attack was judged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackScore {
    /// Its kind.
    pub kind: Kind,
    /// At least half its addresses, or its target, in guessing incidents.
    pub reported: bool,
    /// One incident alone would have reported it.
    pub as_one: bool,
    /// Guessing incidents sharing an address with it.
    pub fragments: usize,
    /// Its addresses those incidents list.
    pub ips_covered: usize,
    /// Its addresses in all.
    pub ips_total: usize,
    /// Seconds from the first attempt to the first fragment's detection.
    pub delay_secs: Option<i64>,
}

/// One week's judgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekScore {
    /// The week's form.
    pub form: String,
    /// The week's seed.
    pub seed: u64,
    /// Its hijacks.
    pub hijacks: Vec<HijackScore>,
    /// Its look-alikes.
    pub lookalikes: Vec<LookalikeScore>,
    /// Its attacks.
    pub attacks: Vec<AttackScore>,
    /// Accounts no scenario labels that a `compromised_account` names.
    pub other_false_locks: Vec<String>,
}

/// Judges `report` against `labels`.
pub fn score_week(labels: &Labels, report: &Report) -> WeekScore {
    let by_class = |class: Class| labels.scenarios.iter().filter(move |s| s.class == class);
    let labelled: HashSet<String> = labels
        .scenarios
        .iter()
        .filter(|s| s.class != Class::Attack)
        .flat_map(|s| s.accounts.iter().map(|a| a.to_ascii_lowercase()))
        .collect();
    let mut other_false_locks: Vec<String> = report
        .incidents
        .iter()
        .filter(|i| i.tier() == Tier::Lock)
        .filter_map(|i| i.account.clone())
        .filter(|a| !labelled.contains(&a.to_ascii_lowercase()))
        .collect();
    other_false_locks.sort();
    other_false_locks.dedup();
    WeekScore {
        form: labels.form.clone(),
        seed: labels.seed,
        hijacks: by_class(Class::Hijack).map(|s| hijack(s, report)).collect(),
        lookalikes: by_class(Class::Lookalike)
            .map(|s| lookalike(s, report))
            .collect(),
        attacks: by_class(Class::Attack).map(|s| attack(s, report)).collect(),
        other_false_locks,
    }
}

fn hijack(scenario: &Scenario, report: &Report) -> HijackScore {
    let account = scenario.accounts.first().cloned().unwrap_or_default();
    let locks: Vec<&Incident> = report
        .incidents
        .iter()
        .filter(|i| i.tier() == Tier::Lock && i.is_about(&account))
        .collect();
    let named: HashSet<IpAddr> = locks.iter().flat_map(|i| i.ips.iter().copied()).collect();
    let detected = locks.iter().map(|i| i.detected_at).min();
    let alerted = locks.is_empty()
        && report
            .incidents
            .iter()
            .any(|i| !matches!(i.tier(), Tier::Lock | Tier::Ignored) && i.names(&account));
    HijackScore {
        kind: scenario.kind,
        found: !locks.is_empty(),
        alerted,
        ips_named: scenario
            .ips
            .iter()
            .filter(|ip| named.contains(&IpAddr::V4(**ip)))
            .count(),
        ips_total: scenario.ips.len(),
        delay_secs: detected.map(|at| at.as_secs() - scenario.start.as_secs()),
        spam: scenario.spam.len(),
        spam_before: match detected {
            Some(at) => scenario.spam.iter().filter(|t| **t <= at).count(),
            None => scenario.spam.len(),
        },
        account,
    }
}

fn lookalike(scenario: &Scenario, report: &Report) -> LookalikeScore {
    let account = scenario.accounts.first().cloned().unwrap_or_default();
    let false_lock = report
        .incidents
        .iter()
        .any(|i| i.tier() == Tier::Lock && i.is_about(&account));
    // A stale password reported as what it is is no false alert.
    let told_as_such =
        |i: &&Incident| scenario.kind == Kind::StalePassword && i.kind == "misconfigured_client";
    let false_alert = report
        .incidents
        .iter()
        .filter(|i| !told_as_such(i))
        .any(|i| match i.tier() {
            Tier::Lock | Tier::Ignored => false,
            Tier::Alert => i.names(&account),
            Tier::Guessing => {
                i.names(&account)
                    || scenario
                        .ips
                        .iter()
                        .any(|ip| i.ips.contains(&IpAddr::V4(*ip)))
            }
        });
    LookalikeScore {
        kind: scenario.kind,
        account,
        false_lock,
        false_alert,
    }
}

fn attack(scenario: &Scenario, report: &Report) -> AttackScore {
    let ips: HashSet<IpAddr> = scenario.ips.iter().map(|ip| IpAddr::V4(*ip)).collect();
    let fragments: Vec<&Incident> = report
        .incidents
        .iter()
        .filter(|i| i.tier() == Tier::Guessing && i.ips.iter().any(|ip| ips.contains(ip)))
        .collect();
    let half = |covered: usize| covered * 2 >= ips.len() && !ips.is_empty();
    let names_target = |i: &Incident| {
        scenario.accounts.iter().any(|target| {
            i.names(target)
                || i.accounts_tried
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(target))
        })
    };
    let covered_by = |i: &Incident| i.ips.iter().filter(|ip| ips.contains(ip)).count();
    let covered: HashSet<&IpAddr> = fragments
        .iter()
        .flat_map(|i| i.ips.iter().filter(|ip| ips.contains(ip)))
        .collect();
    let reported = half(covered.len()) || fragments.iter().any(|i| names_target(i));
    AttackScore {
        kind: scenario.kind,
        reported,
        as_one: fragments
            .iter()
            .any(|i| half(covered_by(i)) || names_target(i)),
        fragments: fragments.len(),
        ips_covered: covered.len(),
        ips_total: ips.len(),
        delay_secs: fragments
            .iter()
            .map(|i| i.detected_at)
            .min()
            .filter(|_| reported)
            .map(|at| at.as_secs() - scenario.start.as_secs()),
    }
}

/// The upper median of `values` (`None` when empty).
fn median<T: Ord + Copy>(values: &mut [T]) -> Option<T> {
    values.sort_unstable();
    values.get(values.len() / 2).copied()
}

/// A hijack kind's line of a table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HijackRow {
    /// The kind, or `all`.
    pub kind: String,
    /// Hijacks of the kind.
    pub n: usize,
    /// Found (a `compromised_account` names the account).
    pub found: usize,
    /// Found with every attacker address named.
    pub found_with_ips: usize,
    /// Attacker addresses named, of all.
    pub ips_named: usize,
    /// Attacker addresses in all.
    pub ips_total: usize,
    /// Not found but named by a lower tier.
    pub alerted: usize,
    /// Median seconds from the first spam to detection, of those found.
    pub median_delay_secs: Option<i64>,
    /// Median spam messages accepted before detection (missed hijacks
    /// count all theirs).
    pub median_spam_before: Option<usize>,
    /// The most spam accepted before detection.
    pub max_spam_before: Option<usize>,
}

/// A look-alike kind's line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LookalikeRow {
    /// The kind, `other accounts` (unlabelled accounts locked) or `all`.
    pub kind: String,
    /// Look-alikes of the kind.
    pub n: usize,
    /// Locked as `compromised_account`.
    pub false_locks: usize,
    /// Named by a lower tier.
    pub false_alerts: usize,
}

/// An attack kind's line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AttackRow {
    /// The kind, or `all`.
    pub kind: String,
    /// Attacks of the kind.
    pub n: usize,
    /// Reported.
    pub reported: usize,
    /// Reported by one incident.
    pub as_one: usize,
    /// Median guessing incidents per attack.
    pub median_fragments: Option<usize>,
    /// Median seconds from the first attempt to the first incident, of
    /// those reported.
    pub median_delay_secs: Option<i64>,
}

/// The tables of some weeks (one form's, or all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// `kerio8`…, or `all`.
    pub name: String,
    /// Weeks judged.
    pub weeks: usize,
    /// Seeds judged, in order.
    pub seeds: Vec<u64>,
    /// One row per hijack kind present, then `all`.
    pub hijacks: Vec<HijackRow>,
    /// One row per look-alike kind present, `other accounts`, then `all`.
    pub lookalikes: Vec<LookalikeRow>,
    /// One row per attack kind present, then `all`.
    pub attacks: Vec<AttackRow>,
}

impl Summary {
    /// The tables of `weeks`.
    pub fn of(name: &str, weeks: &[&WeekScore]) -> Summary {
        let mut seeds: Vec<u64> = weeks.iter().map(|w| w.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let hijacks: Vec<&HijackScore> = weeks.iter().flat_map(|w| &w.hijacks).collect();
        let lookalikes: Vec<&LookalikeScore> = weeks.iter().flat_map(|w| &w.lookalikes).collect();
        let attacks: Vec<&AttackScore> = weeks.iter().flat_map(|w| &w.attacks).collect();
        let others = weeks.iter().map(|w| w.other_false_locks.len()).sum();
        Summary {
            name: name.to_owned(),
            weeks: weeks.len(),
            seeds,
            hijacks: rows(&hijacks, |h| h.kind, hijack_row),
            lookalikes: {
                let mut rows = rows(&lookalikes, |l| l.kind, lookalike_row);
                let all = rows.pop().unwrap_or_default();
                rows.push(LookalikeRow {
                    kind: "other accounts".into(),
                    n: 0,
                    false_locks: others,
                    false_alerts: 0,
                });
                rows.push(LookalikeRow {
                    false_locks: all.false_locks + others,
                    ..all
                });
                rows
            },
            attacks: rows(&attacks, |a| a.kind, attack_row),
        }
    }

    /// The `all` row of the hijacks.
    pub fn all_hijacks(&self) -> HijackRow {
        self.hijacks.last().cloned().unwrap_or_default()
    }

    /// Whether these weeks meet issue #13's acceptance bar, and what falls
    /// short.
    pub fn acceptance(&self) -> Acceptance {
        let mut failures = Vec::new();
        let all = self.all_hijacks();
        if all.found_with_ips < all.n {
            failures.push(format!(
                "hijacks found with all their attacker IPs: {} of {}",
                all.found_with_ips, all.n
            ));
        }
        let locks = self.lookalikes.last().map_or(0, |r| r.false_locks);
        if locks > 0 {
            failures.push(format!("legitimate accounts locked: {locks} (must be 0)"));
        }
        let (reported, n) = self
            .attacks
            .iter()
            .filter(|r| {
                r.kind == Kind::BruteForce.name() || r.kind == Kind::CredentialStuffing.name()
            })
            .fold((0, 0), |(reported, n), r| (reported + r.reported, n + r.n));
        if reported < n {
            failures.push(format!(
                "brute force and credential stuffing reported: {reported} of {n}"
            ));
        }
        let median = all.median_spam_before.unwrap_or(0);
        let max = all.max_spam_before.unwrap_or(0);
        if median > MEDIAN_SPAM || max > MAX_SPAM {
            failures.push(format!(
                "spam accepted before detection: median {median} (at most {MEDIAN_SPAM}), \
                 max {max} (at most {MAX_SPAM})"
            ));
        }
        Acceptance {
            met: failures.is_empty(),
            failures,
        }
    }
}

/// The acceptance bar's median of spam messages accepted before detection.
pub const MEDIAN_SPAM: usize = 15;
/// The acceptance bar's most spam messages accepted before detection.
pub const MAX_SPAM: usize = 50;

/// Whether the acceptance bar is met.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Acceptance {
    /// Every point met.
    pub met: bool,
    /// The points not met, in words.
    pub failures: Vec<String>,
}

/// One row per kind present (in table order), then `all`.
fn rows<S, R>(scores: &[&S], kind: impl Fn(&S) -> Kind, row: impl Fn(&str, &[&S]) -> R) -> Vec<R> {
    let mut by_kind: BTreeMap<Kind, Vec<&S>> = BTreeMap::new();
    for score in scores {
        by_kind.entry(kind(score)).or_default().push(score);
    }
    let mut out: Vec<R> = by_kind
        .iter()
        .map(|(kind, scores)| row(kind.name(), scores))
        .collect();
    out.push(row("all", scores));
    out
}

fn hijack_row(kind: &str, hijacks: &[&HijackScore]) -> HijackRow {
    let mut delays: Vec<i64> = hijacks.iter().filter_map(|h| h.delay_secs).collect();
    let mut spam: Vec<usize> = hijacks.iter().map(|h| h.spam_before).collect();
    HijackRow {
        kind: kind.to_owned(),
        n: hijacks.len(),
        found: hijacks.iter().filter(|h| h.found).count(),
        found_with_ips: hijacks.iter().filter(|h| h.found_with_ips()).count(),
        ips_named: hijacks.iter().map(|h| h.ips_named).sum(),
        ips_total: hijacks.iter().map(|h| h.ips_total).sum(),
        alerted: hijacks.iter().filter(|h| h.alerted).count(),
        median_delay_secs: median(&mut delays),
        median_spam_before: median(&mut spam),
        max_spam_before: spam.iter().max().copied(),
    }
}

fn lookalike_row(kind: &str, lookalikes: &[&LookalikeScore]) -> LookalikeRow {
    LookalikeRow {
        kind: kind.to_owned(),
        n: lookalikes.len(),
        false_locks: lookalikes.iter().filter(|l| l.false_lock).count(),
        false_alerts: lookalikes.iter().filter(|l| l.false_alert).count(),
    }
}

fn attack_row(kind: &str, attacks: &[&AttackScore]) -> AttackRow {
    let mut fragments: Vec<usize> = attacks.iter().map(|a| a.fragments).collect();
    let mut delays: Vec<i64> = attacks.iter().filter_map(|a| a.delay_secs).collect();
    AttackRow {
        kind: kind.to_owned(),
        n: attacks.len(),
        reported: attacks.iter().filter(|a| a.reported).count(),
        as_one: attacks.iter().filter(|a| a.as_one).count(),
        median_fragments: median(&mut fragments),
        median_delay_secs: median(&mut delays),
    }
}

/// The judgement of many weeks: per form, overall, and the acceptance bar.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Scores {
    /// Each week's judgement, in the order scored.
    pub weeks: Vec<WeekScore>,
}

/// What `score --json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct ScoresJson {
    /// One summary per form present.
    pub forms: Vec<Summary>,
    /// All weeks together.
    pub overall: Summary,
    /// The acceptance bar over all weeks.
    pub acceptance: Acceptance,
    /// Each week's judgement.
    pub weeks: Vec<WeekScore>,
}

impl Scores {
    /// Adds a week's judgement.
    pub fn push(&mut self, week: WeekScore) {
        self.weeks.push(week);
    }

    /// Adds another set's weeks.
    pub fn extend(&mut self, other: Scores) {
        self.weeks.extend(other.weeks);
    }

    /// One summary per form present, in form order.
    pub fn per_form(&self) -> Vec<Summary> {
        Form::ALL
            .iter()
            .map(|form| {
                let weeks: Vec<&WeekScore> = self
                    .weeks
                    .iter()
                    .filter(|w| w.form == form.name())
                    .collect();
                Summary::of(form.name(), &weeks)
            })
            .filter(|s| s.weeks > 0)
            .collect()
    }

    /// All weeks together.
    pub fn overall(&self) -> Summary {
        let weeks: Vec<&WeekScore> = self.weeks.iter().collect();
        Summary::of("all", &weeks)
    }

    /// The acceptance bar over all weeks.
    pub fn acceptance(&self) -> Acceptance {
        self.overall().acceptance()
    }

    /// Everything, for machines.
    pub fn to_json(&self) -> ScoresJson {
        ScoresJson {
            forms: self.per_form(),
            overall: self.overall(),
            acceptance: self.acceptance(),
            weeks: self.weeks.clone(),
        }
    }

    /// The tables for people: one per form, the overall one, and the
    /// acceptance bar.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let forms = self.per_form();
        for summary in &forms {
            write_summary(&mut out, summary);
        }
        if forms.len() != 1 {
            write_summary(&mut out, &self.overall());
        }
        let acceptance = self.acceptance();
        let verdict = if acceptance.met { "met" } else { "NOT met" };
        let _ = writeln!(out, "acceptance bar (issue #13): {verdict}");
        for failure in &acceptance.failures {
            let _ = writeln!(out, "  - {failure}");
        }
        out
    }
}

/// `1h05m`, `42s`, `-` for none.
fn duration(secs: Option<i64>) -> String {
    let Some(secs) = secs else {
        return "-".into();
    };
    let sign = if secs < 0 { "-" } else { "" };
    let s = secs.unsigned_abs();
    match s {
        0..=59 => format!("{sign}{s}s"),
        60..=3_599 => format!("{sign}{}m{:02}s", s / 60, s % 60),
        _ => format!("{sign}{}h{:02}m", s / 3_600, s % 3_600 / 60),
    }
}

fn opt(value: Option<usize>) -> String {
    value.map_or_else(|| "-".into(), |v| v.to_string())
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / whole as f64)
    }
}

/// A seed list as ranges: `1-20`, `1-5, 9`.
fn seed_ranges(seeds: &[u64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seeds.len() {
        let mut j = i;
        while j + 1 < seeds.len() && seeds[j + 1] == seeds[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            seeds[i].to_string()
        } else {
            format!("{}-{}", seeds[i], seeds[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

fn write_summary(out: &mut String, s: &Summary) {
    let all = s.all_hijacks();
    let _ = writeln!(
        out,
        "== {}: {} weeks (seeds {}) ==",
        s.name,
        s.weeks,
        seed_ranges(&s.seeds)
    );
    let _ = writeln!(
        out,
        "{:<22} {:>4} {:>6} {:>9} {:>10} {:>8} {:>9} {:>13}",
        "hijack", "n", "found", "with IPs", "IPs named", "alerted", "delay", "spam med/max"
    );
    for r in &s.hijacks {
        let _ = writeln!(
            out,
            "{:<22} {:>4} {:>6} {:>9} {:>10} {:>8} {:>9} {:>13}",
            r.kind,
            r.n,
            r.found,
            r.found_with_ips,
            percent(r.ips_named, r.ips_total),
            r.alerted,
            duration(r.median_delay_secs),
            format!("{}/{}", opt(r.median_spam_before), opt(r.max_spam_before)),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<22} {:>4} {:>12} {:>13}",
        "look-alike", "n", "false locks", "false alerts"
    );
    for r in &s.lookalikes {
        let n = if r.kind == "other accounts" {
            "-".to_owned()
        } else {
            r.n.to_string()
        };
        let _ = writeln!(
            out,
            "{:<22} {:>4} {:>12} {:>13}",
            r.kind, n, r.false_locks, r.false_alerts
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<22} {:>4} {:>9} {:>7} {:>10} {:>9}",
        "attack", "n", "reported", "as one", "fragments", "delay"
    );
    for r in &s.attacks {
        let _ = writeln!(
            out,
            "{:<22} {:>4} {:>9} {:>7} {:>10} {:>9}",
            r.kind,
            r.n,
            r.reported,
            r.as_one,
            opt(r.median_fragments),
            duration(r.median_delay_secs),
        );
    }
    let _ = writeln!(
        out,
        "\nspam accepted before detection: median {}, max {} (of {} hijacks; a missed \
         hijack counts all its spam)\n",
        opt(all.median_spam_before),
        opt(all.max_spam_before),
        all.n
    );
}

/// Reads a report's JSON.
pub fn parse_report(json: &str) -> Result<Report, String> {
    serde_json::from_str(json).map_err(|e| format!("not a mailfuse JSON report: {e}"))
}

/// Reads a `labels.json`.
pub fn parse_labels(json: &str) -> Result<Labels, String> {
    serde_json::from_str(json).map_err(|e| format!("not a labels.json: {e}"))
}
