//! The limit policies a replay compares: what each counts, its limits, what
//! it does over them, and the `--limit` flag that writes one.

use mailfuse_core::time::{describe_duration, parse_duration};
use mailfuse_limits::{Counting, LimitsConfig, WindowLimit};
use serde::Serialize;

/// Which recipients a policy's recipient limits count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Recipients {
    /// Every recipient, as `mailfuse policy` counts them.
    All,
    /// Recipients outside the server's domains (as the account table's
    /// `external` column tells them apart).
    External,
    /// Recipients refused permanently (5.x.x): known only once the mail
    /// went, so such a policy locks the account rather than defer.
    Failed,
}

impl Recipients {
    /// What its limits count, in words.
    fn noun(self) -> &'static str {
        match self {
            Recipients::All => "recipients",
            Recipients::External => "external recipients",
            Recipients::Failed => "failed recipients",
        }
    }
}

/// What a policy does to mail over a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnOver {
    /// Defers what would pass the limit (`mailfuse policy`'s
    /// `over_limit`): mail flows again when the window has room.
    Defer,
    /// Locks the account at the first crossing: nothing more goes out.
    Lock,
    /// Locks the account until the next UTC midnight (Microsoft 365's
    /// `BlockUserForToday`).
    LockForToday,
}

impl OnOver {
    /// What it does, in words.
    pub fn words(self) -> &'static str {
        match self {
            OnOver::Defer => "defers mail over the limit",
            OnOver::Lock => "locks the account at the first crossing",
            OnOver::LockForToday => "locks the account until the next UTC midnight",
        }
    }
}

/// One policy to replay the logs against.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Its name in the reports.
    pub name: String,
    /// Where it comes from: a configuration file, a flag, mailfuse's
    /// defaults, or the published setting it approximates.
    pub source: String,
    /// A reference setting modelled here, not the product itself.
    pub approximation: bool,
    /// The limits, in `[limits]`' form (defaults, overrides, allow-list).
    pub limits: LimitsConfig,
    /// Which recipients the recipient limits count.
    pub recipients: Recipients,
    /// What it does over a limit.
    pub on_over: OnOver,
}

impl Policy {
    /// Its limits in words: `100 messages per 1h`, then overrides and
    /// allowed accounts counted.
    pub fn words(&self) -> Vec<String> {
        let mut words: Vec<String> = self
            .limits
            .defaults
            .iter()
            .flat_map(WindowLimit::limits)
            .map(|limit| {
                let noun = match limit.counts {
                    Counting::Messages => "messages",
                    Counting::Recipients => self.recipients.noun(),
                };
                format!(
                    "{} {noun} per {}",
                    limit.max,
                    describe_duration(limit.window_secs)
                )
            })
            .collect();
        let mut overridden: Vec<&str> = self
            .limits
            .overrides
            .iter()
            .map(|o| o.account.as_str())
            .collect();
        overridden.sort_unstable();
        overridden.dedup();
        if !overridden.is_empty() {
            words.push(format!("own limits for {} account(s)", overridden.len()));
        }
        if !self.limits.allow.is_empty() {
            words.push(format!(
                "{} account(s) never limited",
                self.limits.allow.len()
            ));
        }
        words
    }
}

/// Reads a `--limit` flag: `KIND:MAX/WINDOW`, several joined by commas,
/// and optionally `lock` (lock the account at the first crossing instead of
/// deferring). KIND is `messages`, `recipients`, `external-recipients` or
/// `failed-recipients` (which always locks); one flag counts one kind of
/// recipients.
pub fn parse_limit(text: &str) -> Result<Policy, String> {
    let mut defaults: Vec<WindowLimit> = Vec::new();
    let mut recipients: Option<Recipients> = None;
    let mut lock = false;
    for part in text.split(',').map(str::trim) {
        if part == "lock" {
            lock = true;
            continue;
        }
        let (kind, amount) = part.split_once(':').ok_or_else(|| {
            format!("{part:?} is not KIND:MAX/WINDOW (e.g. messages:100/1h, recipients:500/1h)")
        })?;
        let (max, window) = amount.split_once('/').ok_or_else(|| {
            format!("{part:?}: write the maximum and the window as MAX/WINDOW, e.g. {kind}:100/1h")
        })?;
        let max: u64 = max
            .trim()
            .parse()
            .map_err(|_| format!("{part:?}: the maximum {max:?} is not a whole number"))?;
        let window_secs = parse_duration(window.trim())
            .map_err(|e| format!("{part:?}: the window is {e}"))?
            .unsigned_abs();
        let (counting, kind) = match kind.trim() {
            "messages" => (Counting::Messages, None),
            "recipients" => (Counting::Recipients, Some(Recipients::All)),
            "external-recipients" => (Counting::Recipients, Some(Recipients::External)),
            "failed-recipients" => (Counting::Recipients, Some(Recipients::Failed)),
            other => {
                return Err(format!(
                    "{other:?} is not a kind of limit: use messages, recipients, \
                     external-recipients or failed-recipients"
                ))
            }
        };
        if let (Some(kind), Some(before)) = (kind, recipients) {
            if kind != before {
                return Err(format!(
                    "{text:?} counts both {} and {}: give each its own --limit",
                    before.noun(),
                    kind.noun()
                ));
            }
        }
        recipients = recipients.or(kind);
        // Limits over one window share an entry, as in `[limits]`.
        let index = match defaults.iter().position(|l| l.window_secs == window_secs) {
            Some(index) => index,
            None => {
                defaults.push(WindowLimit {
                    window_secs,
                    messages: None,
                    recipients: None,
                });
                defaults.len() - 1
            }
        };
        let limit = &mut defaults[index];
        let slot = match counting {
            Counting::Messages => &mut limit.messages,
            Counting::Recipients => &mut limit.recipients,
        };
        if slot.replace(max).is_some() {
            return Err(format!(
                "{text:?} limits {} over {} twice: keep one",
                counting.name(),
                describe_duration(window_secs)
            ));
        }
    }
    if defaults.is_empty() {
        return Err(format!(
            "{text:?} sets no limit: write KIND:MAX/WINDOW, e.g. messages:100/1h"
        ));
    }
    let recipients = recipients.unwrap_or(Recipients::All);
    let on_over = if lock || recipients == Recipients::Failed {
        OnOver::Lock
    } else {
        OnOver::Defer
    };
    Ok(Policy {
        name: text.trim().to_string(),
        source: "--limit".into(),
        approximation: false,
        limits: LimitsConfig {
            defaults,
            ..LimitsConfig::default()
        },
        recipients,
        on_over,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_flag_reads_kinds_windows_and_lock() {
        let policy = parse_limit("messages:100/1h, external-recipients:500/1h,lock").unwrap();
        assert_eq!(policy.recipients, Recipients::External);
        assert_eq!(policy.on_over, OnOver::Lock);
        assert_eq!(
            policy.limits.defaults,
            vec![WindowLimit {
                window_secs: 3600,
                messages: Some(100),
                recipients: Some(500)
            }]
        );
        assert_eq!(
            policy.words(),
            ["100 messages per 1h", "500 external recipients per 1h"]
        );
        let failed = parse_limit("failed-recipients:100/1h").unwrap();
        assert_eq!(
            failed.on_over,
            OnOver::Lock,
            "a failure is known too late to defer"
        );
        assert_eq!(
            parse_limit("recipients:50/1m").unwrap().on_over,
            OnOver::Defer
        );
    }

    #[test]
    fn a_wrong_limit_flag_says_what_to_write() {
        for (text, expected) in [
            ("100/1h", "is not KIND:MAX/WINDOW"),
            ("messages:100", "MAX/WINDOW"),
            ("messages:many/1h", "not a whole number"),
            ("messages:100/1y", "not a duration"),
            ("mails:100/1h", "not a kind of limit"),
            (
                "recipients:5/1h,failed-recipients:5/1h",
                "give each its own --limit",
            ),
            ("messages:1/1h,messages:2/1h", "twice"),
            ("lock", "sets no limit"),
        ] {
            let error = parse_limit(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
