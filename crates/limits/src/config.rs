//! The `[limits]` section, one syntax for `scan`, `watch` and `policy`,
//! and the rules it resolves to.
//!
//! ```toml
//! [limits]
//! allow = ["scanner@example.com"]
//!
//! [[limits.default]]
//! window = "1m"
//! messages = 30
//!
//! [[limits.default]]
//! window = "1h"
//! messages = 200
//! recipients = 500
//!
//! [[limits.override]]
//! account = "newsletter@example.com"
//! window = "1d"
//! recipients = 20000
//! ```

use mailfuse_core::time::{describe_duration, deserialize_duration};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

/// The limits as written: defaults for every key, per-key overrides, keys
/// never limited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Keys never limited (this wins over an override).
    pub allow: Vec<String>,
    /// Limits of every key that has no override.
    #[serde(rename = "default")]
    pub defaults: Vec<WindowLimit>,
    /// Limits of one key; all the entries naming a key replace the
    /// defaults for it.
    #[serde(rename = "override")]
    pub overrides: Vec<Override>,
}

/// At most `messages` messages and/or `recipients` recipients within
/// `window_secs` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawLimit")]
pub struct WindowLimit {
    /// The window's length in seconds (`window = "1h"` is 3600): at any
    /// second, what was sent in the `window_secs` seconds up to it counts.
    pub window_secs: u64,
    /// At most this many messages in the window, each counting once
    /// whatever its recipients; `None`: messages are not limited over it.
    pub messages: Option<u64>,
    /// At most this many recipients in the window, summed over the
    /// messages (a message to 50 people counts 50); `None`: recipients are
    /// not limited over it.
    pub recipients: Option<u64>,
}

impl From<Limit> for WindowLimit {
    /// One limit as the configuration writes it: a window with one maximum.
    fn from(limit: Limit) -> WindowLimit {
        let max = Some(limit.max);
        WindowLimit {
            window_secs: limit.window_secs,
            messages: max.filter(|_| limit.counts == Counting::Messages),
            recipients: max.filter(|_| limit.counts == Counting::Recipients),
        }
    }
}

/// A limit of one key (an account; for `policy`, also the sender or
/// client IP of relayed mail), compared case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawLimit")]
pub struct Override {
    /// The key limited, as written: an account (a SASL login), or for
    /// `policy`'s relayed mail the envelope sender or client IP its
    /// `relay_key` picks. Trimmed and lower-cased when the rules are built.
    pub account: String,
    /// The limit; with every other entry naming the same key, it replaces
    /// all the defaults for that key (a default window no override names
    /// is then not limited for it).
    pub limit: WindowLimit,
}

/// A limit as written in the configuration, before it is checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimit {
    account: Option<String>,
    #[serde(deserialize_with = "deserialize_duration")]
    window: u64,
    messages: Option<u64>,
    recipients: Option<u64>,
}

impl RawLimit {
    fn spec(&self) -> Result<WindowLimit, String> {
        if self.messages.is_none() && self.recipients.is_none() {
            return Err(format!(
                "the limit over {} sets neither messages nor recipients",
                describe_duration(self.window)
            ));
        }
        Ok(WindowLimit {
            window_secs: self.window,
            messages: self.messages,
            recipients: self.recipients,
        })
    }
}

impl TryFrom<RawLimit> for WindowLimit {
    type Error = String;

    fn try_from(raw: RawLimit) -> Result<Self, String> {
        if raw.account.is_some() {
            return Err("a limit naming an account belongs in [[limits.override]]".into());
        }
        raw.spec()
    }
}

impl TryFrom<RawLimit> for Override {
    type Error = String;

    fn try_from(raw: RawLimit) -> Result<Self, String> {
        let limit = raw.spec()?;
        match raw.account {
            Some(account) if !account.trim().is_empty() => Ok(Override { account, limit }),
            _ => Err("an override needs the account it applies to".into()),
        }
    }
}

/// What a limit counts: messages, or their recipients (a message to 50
/// people counts 50).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Counting {
    /// A message counts 1, whatever its recipients.
    Messages,
    /// A message counts its recipients (Postfix's `recipient_count`).
    Recipients,
}

impl Counting {
    /// `messages` or `recipients`.
    pub fn name(self) -> &'static str {
        match self {
            Counting::Messages => "messages",
            Counting::Recipients => "recipients",
        }
    }

    /// The other one: what went along with a crossing.
    pub fn other(self) -> Counting {
        match self {
            Counting::Messages => Counting::Recipients,
            Counting::Recipients => Counting::Messages,
        }
    }
}

/// One number to keep under: at most `max` of what `counts` counts within
/// any `window_secs` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limit {
    /// The sliding window, in seconds: at second `t` it holds what was sent
    /// in `(t - window_secs, t]`.
    pub window_secs: u64,
    /// The most the window may hold; one more is over the limit.
    /// `u64::MAX` for a [`Limit::tally`], which counts without limiting.
    pub max: u64,
    /// Whether messages or their recipients fill the window.
    pub counts: Counting,
}

impl Limit {
    /// At most `max` of what `counts` counts within `window_secs` seconds.
    pub fn new(window_secs: u64, max: u64, counts: Counting) -> Limit {
        Limit {
            window_secs,
            max,
            counts,
        }
    }

    /// A window counted for display, with no maximum (watch's top senders
    /// when no limit is set).
    pub fn tally(window_secs: u64, counts: Counting) -> Limit {
        Limit {
            window_secs,
            max: u64::MAX,
            counts,
        }
    }

    /// The maximum, `None` for a [`Limit::tally`].
    pub fn maximum(&self) -> Option<u64> {
        (self.max != u64::MAX).then_some(self.max)
    }

    /// What a window holds at most: enough to see the limit crossed and
    /// twice the limit reached (the detector's top score). Below it the
    /// count is exact.
    pub fn cap(&self) -> u64 {
        self.max.saturating_mul(2).max(self.max.saturating_add(1))
    }

    /// Of `messages` messages to `recipients` recipients, what this limit
    /// counts.
    pub fn amount(&self, messages: u64, recipients: u64) -> u64 {
        match self.counts {
            Counting::Messages => messages,
            Counting::Recipients => recipients,
        }
    }

    /// `50 recipients per 1m`.
    pub fn per(&self) -> String {
        format!(
            "{} {} per {}",
            self.max,
            self.counts.name(),
            describe_duration(self.window_secs)
        )
    }
}

impl WindowLimit {
    /// Its limits, messages first.
    pub fn limits(&self) -> impl Iterator<Item = Limit> + '_ {
        let limit = |counts, max: Option<u64>| {
            max.map(|max| Limit {
                window_secs: self.window_secs,
                max,
                counts,
            })
        };
        limit(Counting::Messages, self.messages)
            .into_iter()
            .chain(limit(Counting::Recipients, self.recipients))
    }
}

/// Why a configuration cannot be used (it parsed, but is ambiguous).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// Two `[[limits.default]]` entries set a maximum for the same count
    /// over the same window: which one applies would be a guess.
    #[error("two [[limits.default]] entries limit {counts} over {window}: keep one")]
    DuplicateDefault {
        /// `messages` or `recipients`.
        counts: &'static str,
        /// The window in words (`1m`, `90s`).
        window: String,
    },
    /// Two `[[limits.override]]` entries for one key (compared
    /// case-insensitively) set a maximum for the same count over the same
    /// window.
    #[error(
        "two [[limits.override]] entries for {account:?} limit {counts} over {window}: keep one"
    )]
    DuplicateOverride {
        /// The key as the second of the two entries writes it.
        account: String,
        /// `messages` or `recipients`.
        counts: &'static str,
        /// The window in words (`1m`, `90s`).
        window: String,
    },
}

/// The one form of a key every lookup uses, so that the spellings a login
/// backend takes for one account count as one: Unicode NFKC (fullwidth
/// `ａｌｉｃｅ` is `alice`), lower-cased, without invisible format
/// characters (zero-width space and joiners, bidi marks, soft hyphen), and
/// trimmed of whitespace around and dots at the end (`alice@example.com. `).
/// A key already in that form, the usual ASCII one, is not copied.
pub fn normalize(key: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    use unicode_normalization::UnicodeNormalization;
    let trimmed = trim_key(key);
    if trimmed.is_ascii() {
        return if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(trimmed.to_ascii_lowercase())
        } else {
            Cow::Borrowed(trimmed)
        };
    }
    let visible: String = trimmed.nfkc().filter(|&c| !is_format(c)).collect();
    // Lower-casing may leave text NFKC does not keep; once more makes the
    // result its own normal form.
    let folded: String = visible.to_lowercase().nfkc().collect();
    let folded_trimmed = trim_key(&folded);
    if folded_trimmed == key {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(folded_trimmed.to_owned())
    }
}

/// Whitespace around and dots at the end are no part of a name.
fn trim_key(key: &str) -> &str {
    // The usual key, checked without decoding characters.
    let visible = |b: Option<&u8>| b.is_some_and(u8::is_ascii_graphic);
    let bytes = key.as_bytes();
    if visible(bytes.first()) && visible(bytes.last()) && bytes.last() != Some(&b'.') {
        return key;
    }
    key.trim_start_matches(char::is_whitespace)
        .trim_end_matches(|c: char| c.is_whitespace() || c == '.')
}

/// Invisible characters that change no name a person reads (Unicode's
/// format characters a login could hide).
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// A key as the configuration names it.
fn config_key(key: &str) -> Box<str> {
    normalize(key).into()
}

/// Adds `entry`'s limits to `limits`; the first that limits a window and
/// metric already limited, if any (two maxima for one count).
fn add_limits(limits: &mut Vec<Limit>, entry: &WindowLimit) -> Option<Limit> {
    for limit in entry.limits() {
        let same = |l: &Limit| l.window_secs == limit.window_secs && l.counts == limit.counts;
        if limits.iter().any(same) {
            return Some(limit);
        }
        limits.push(limit);
    }
    None
}

/// The configuration in the form lookups need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitRules {
    defaults: Vec<Limit>,
    /// Lower-cased key → its limits.
    overrides: FxHashMap<Box<str>, Vec<Limit>>,
    /// Lower-cased keys never limited.
    allow: FxHashSet<Box<str>>,
}

impl LimitRules {
    /// Resolves the section: keys trimmed and lower-cased, a key's override
    /// entries gathered into one list that replaces the defaults for it,
    /// limits kept in the order written (the order in which a [`Verdict`]
    /// names the first one passed). Two maxima for one count over one
    /// window are refused.
    ///
    /// [`Verdict`]: crate::Verdict
    pub fn new(config: &LimitsConfig) -> Result<Self, LimitsError> {
        let mut defaults: Vec<Limit> = Vec::new();
        for entry in &config.defaults {
            if let Some(limit) = add_limits(&mut defaults, entry) {
                return Err(LimitsError::DuplicateDefault {
                    counts: limit.counts.name(),
                    window: describe_duration(limit.window_secs),
                });
            }
        }
        let mut overrides: FxHashMap<Box<str>, Vec<Limit>> = FxHashMap::default();
        for entry in &config.overrides {
            let limits = overrides.entry(config_key(&entry.account)).or_default();
            if let Some(limit) = add_limits(limits, &entry.limit) {
                return Err(LimitsError::DuplicateOverride {
                    account: entry.account.clone(),
                    counts: limit.counts.name(),
                    window: describe_duration(limit.window_secs),
                });
            }
        }
        Ok(LimitRules {
            defaults,
            overrides,
            allow: config.allow.iter().map(|key| config_key(key)).collect(),
        })
    }

    /// Rules with one window counted for every key, no maximum.
    pub fn tally(limit: Limit) -> Self {
        LimitRules {
            defaults: vec![limit],
            ..LimitRules::default()
        }
    }

    /// Whether every key has the defaults: no override, no allow-listed key
    /// (a key's limits are then known without normalising it).
    pub fn same_for_every_key(&self) -> bool {
        self.overrides.is_empty() && self.allow.is_empty()
    }

    /// The limits of a lower-cased key; `None` when it is allow-listed.
    pub fn limits_of(&self, key: &str) -> Option<&[Limit]> {
        if self.allow.contains(key) {
            return None;
        }
        Some(self.overrides.get(key).unwrap_or(&self.defaults))
    }

    /// Whether no key has any limit: nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.defaults.is_empty() && self.overrides.values().all(Vec::is_empty)
    }

    /// The longest window of any key (0 without limits).
    pub fn longest_window(&self) -> u64 {
        self.defaults
            .iter()
            .chain(self.overrides.values().flatten())
            .map(|l| l.window_secs)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LimitsConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_forms_of_one_name_normalise_alike_and_others_stay_apart() {
        for form in [
            "alice@example.com",
            "Alice@Example.COM",
            "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "alice@example.com.",
            "alice@example.com \t",
            " alice@example.com",
            "ali\u{200b}ce@example.com",
            "\u{feff}alice@exam\u{ad}ple.com\u{2060}",
            "alice@example.com．",
        ] {
            assert_eq!(normalize(form), "alice@example.com", "{form:?}");
        }
        for (a, b) in [
            ("alice@example.com", "alice2@example.com"),
            ("alice@example.com", "alice"),
            ("a.lice@example.com", "alice@example.com"),
            ("\\xff", "\\xfe"),
        ] {
            assert_ne!(normalize(a), normalize(b));
        }
        for key in ["ǅemo", "ΣΑΣ", "ﬁ@x", "İstanbul", "Straße", "x\u{0301}"] {
            let once = normalize(key).into_owned();
            assert_eq!(normalize(&once), once, "{key:?} is not stable");
        }
        assert!(matches!(
            normalize("bob@example.com"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    fn spec(window_secs: u64, messages: Option<u64>, recipients: Option<u64>) -> WindowLimit {
        WindowLimit {
            window_secs,
            messages,
            recipients,
        }
    }

    #[test]
    fn defaults_overrides_and_allow_read_from_toml() {
        let config = parse(
            r#"
            allow = ["scanner@example.com"]

            [[default]]
            window = "1m"
            messages = 30

            [[default]]
            window = " 1h "
            messages = 200
            recipients = 500

            [[override]]
            account = "newsletter@example.com"
            window = "1d"
            recipients = 20000
            "#,
        )
        .unwrap();
        assert_eq!(
            config,
            LimitsConfig {
                allow: vec!["scanner@example.com".into()],
                defaults: vec![spec(60, Some(30), None), spec(3600, Some(200), Some(500))],
                overrides: vec![Override {
                    account: "newsletter@example.com".into(),
                    limit: spec(86_400, None, Some(20000)),
                }],
            }
        );
        assert_eq!(parse("").unwrap(), LimitsConfig::default());
        assert!(LimitRules::new(&config).is_ok());
    }

    #[test]
    fn mistakes_are_refused_with_their_reason() {
        for (text, expected) in [
            (
                "[[default]]\nwindow = \"1m\"",
                "neither messages nor recipients",
            ),
            (
                "[[default]]\nwindow = \"1 week\"\nmessages = 3",
                "not a duration",
            ),
            (
                "[[default]]\nwindow = \"0s\"\nmessages = 3",
                "not a duration",
            ),
            ("[[default]]\nwindow = 60\nmessages = 3", "invalid type"),
            (
                "[[default]]\nwindow = \"1m\"\nmessages = -3",
                "invalid value",
            ),
            ("[[default]]\nwindow = \"1m\"\nmesages = 3", "unknown field"),
            (
                "[[default]]\naccount = \"a\"\nwindow = \"1m\"\nmessages = 3",
                "[[limits.override]]",
            ),
            (
                "[[override]]\nwindow = \"1m\"\nmessages = 3",
                "needs the account",
            ),
            (
                "[[override]]\naccount = \" \"\nwindow = \"1m\"\nmessages = 3",
                "needs the account",
            ),
            ("limits = 3", "unknown field"),
            ("exempt = []", "unknown field"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn one_window_twice_is_refused_as_ambiguous() {
        let twice = |table: &str, account: &str| {
            let entry = format!("[[{table}]]\n{account}window = \"60s\"\nmessages = 1\n");
            LimitRules::new(&parse(&entry.repeat(2)).unwrap()).unwrap_err()
        };
        assert_eq!(
            twice("default", "").to_string(),
            "two [[limits.default]] entries limit messages over 1m: keep one"
        );
        let error = twice("override", "account = \"A\"\n").to_string();
        assert!(
            error.contains("for \"A\" limit messages over 1m"),
            "{error}"
        );
        let apart = "[[default]]\nwindow = \"1m\"\nmessages = 1\n[[default]]\nwindow = \"1m\"\nrecipients = 1\n";
        assert!(
            LimitRules::new(&parse(apart).unwrap()).is_ok(),
            "two counts, one window"
        );
    }

    #[test]
    fn allow_wins_over_an_override_and_names_match_in_any_case() {
        let rules = LimitRules::new(&LimitsConfig {
            defaults: vec![spec(60, Some(1), None)],
            overrides: vec![Override {
                account: " User1@Example.COM".into(),
                limit: spec(60, Some(3), Some(9)),
            }],
            allow: vec!["USER2@example.com".into(), "user1@example.com".into()],
        })
        .unwrap();
        assert_eq!(rules.limits_of("user1@example.com"), None);
        assert_eq!(rules.limits_of("user2@example.com"), None);
        assert_eq!(
            rules.limits_of("user3@example.com").map(<[_]>::len),
            Some(1)
        );
        assert_eq!(rules.longest_window(), 60);
        assert!(!rules.is_empty() && LimitRules::default().is_empty());
    }

    #[test]
    fn limits_say_their_maximum_in_words() {
        let limit = Limit {
            window_secs: 60,
            max: 50,
            counts: Counting::Recipients,
        };
        assert_eq!(limit.per(), "50 recipients per 1m");
        assert_eq!(limit.cap(), 100);
        assert_eq!(Limit { max: 0, ..limit }.cap(), 1);
        assert_eq!(Limit::tally(3600, Counting::Messages).maximum(), None);
    }
}
