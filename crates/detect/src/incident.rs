//! What the detectors conclude: incidents, with their reasons and evidence.

use std::borrow::Cow;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::LazyLock;

use mailfuse_core::net::Network;
use mailfuse_core::safety::{Protected, Safety};
use mailfuse_core::Timestamp;
use memchr::memmem;
use serde::{Deserialize, Serialize};

/// The kinds of incident mailfuse raises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    /// Someone else is sending mail as this account: confident enough for
    /// `watch` to lock it.
    CompromisedAccount,
    /// An account's mail shows some of a hijack's marks, not enough to
    /// lock: alerts and reports, never a lock or a block.
    SuspiciousActivity,
    /// An IP or a network is guessing passwords.
    PasswordGuessing,
    /// A mail client keeps failing with an old password of an account that
    /// logs in fine from the same IP: the owner's own device, not an attack.
    MisconfiguredClient,
    /// An account sent more than a configured limit allows.
    LimitExceeded,
}

impl IncidentKind {
    /// Every kind, in the order findings list them.
    pub const ALL: [IncidentKind; 5] = [
        IncidentKind::CompromisedAccount,
        IncidentKind::SuspiciousActivity,
        IncidentKind::PasswordGuessing,
        IncidentKind::MisconfiguredClient,
        IncidentKind::LimitExceeded,
    ];

    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            IncidentKind::CompromisedAccount => "compromised_account",
            IncidentKind::SuspiciousActivity => "suspicious_activity",
            IncidentKind::PasswordGuessing => "password_guessing",
            IncidentKind::MisconfiguredClient => "misconfigured_client",
            IncidentKind::LimitExceeded => "limit_exceeded",
        }
    }

    /// The kind called `name` ([`IncidentKind::name`]), if there is one.
    pub fn named(name: &str) -> Option<IncidentKind> {
        IncidentKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }

    /// Whether incidents of this kind may lock an account or block an IP
    /// (`compromised_account`, `password_guessing`; a limit only when the
    /// admin lists a lock action): the lower tiers only alert.
    pub fn may_act(self) -> bool {
        !matches!(
            self,
            IncidentKind::SuspiciousActivity | IncidentKind::MisconfiguredClient
        )
    }
}

/// How sure mailfuse is of an incident.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Some marks, which may be innocent: look before acting.
    Low,
    /// Clear marks, one of them weaker: likely.
    Medium,
    /// Several strong marks (a guessed password, a spam list): act.
    #[default]
    High,
}

impl Confidence {
    /// From an incident's kind and score: a lower tier is never more than
    /// medium; a score of 80 or more is high.
    pub fn of(kind: IncidentKind, score: u32) -> Confidence {
        match (kind, score) {
            (IncidentKind::MisconfiguredClient, _) => Confidence::Low,
            (IncidentKind::SuspiciousActivity, 40..) => Confidence::Medium,
            (IncidentKind::SuspiciousActivity, _) => Confidence::Low,
            (_, 80..) => Confidence::High,
            (_, 50..) => Confidence::Medium,
            _ => Confidence::Low,
        }
    }

    /// `high`, `medium`, `low`.
    pub fn name(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// The shape of a password-guessing incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuessingPattern {
    /// One IP, many failures within an hour.
    Ip,
    /// One /24 (or /64), its IPs each under the per-IP limit.
    Network,
    /// Many IPs in many networks at whatever accounts, each under the
    /// per-IP limit.
    Campaign,
    /// Many accounts tried about once each from many IPs: a leaked list.
    CredentialStuffing,
    /// One account tried from many IPs in many networks.
    BruteForce,
}

impl GuessingPattern {
    /// Words for titles: "credential stuffing".
    pub fn words(self) -> &'static str {
        match self {
            GuessingPattern::Ip => "one IP",
            GuessingPattern::Network => "one network",
            GuessingPattern::Campaign => "campaign",
            GuessingPattern::CredentialStuffing => "credential stuffing",
            GuessingPattern::BruteForce => "brute force",
        }
    }
}

/// One finding, with everything an admin needs to act on it.
///
/// Text fields that came from a log (account names, addresses, evidence lines)
/// are untrusted: outputs must escape them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Which detector raised it; findings list compromised accounts first,
    /// then guessing, then limits.
    pub kind: IncidentKind,
    /// The hijacked account, the account over its limit, or the one account
    /// a brute force was aimed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The IPs involved: the spammer's sending IPs, the guessing IPs, or
    /// the IPs the account sent from within the window over its limit.
    pub ips: Vec<IpAddr>,
    /// Of `ips`, those the safety rules forbid to block or to advise
    /// blocking (loopback, private, the server's own…), with why: outputs
    /// say why they are not blocked, and what to do instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protected_ips: Vec<ProtectedIp>,
    /// The attacking network, for distributed guessing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// How the guessing was spread (password guessing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<GuessingPattern>,
    /// How sure mailfuse is (from the kind and score).
    #[serde(default)]
    pub confidence: Confidence,
    /// What the admin can check to confirm it (or clear it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_confirm: Vec<String>,
    /// When the activity behind it began (UTC seconds): the first message of
    /// the account's tripped streams, the guesser's first failed login, or
    /// the start of the window that crossed the limit. With `kind` and the
    /// subject it keys the incident, so `watch` acts on it once.
    pub first_seen: Timestamp,
    /// When it was last seen (UTC seconds): the tripped streams' latest
    /// message, the guesser's latest failed login, or the latest message or
    /// recipient sent while over the limit. It moves on while the activity
    /// goes on.
    pub last_seen: Timestamp,
    /// When the evidence first crossed the threshold (what `watch` would alert at).
    pub detected_at: Timestamp,
    /// Messages submitted: by the tripped streams (compromised account), or
    /// from the start of the window that crossed the limit until the account
    /// fell back under it; 0 for guessing.
    pub messages: u64,
    /// Distinct recipients of those messages, each once per message.
    pub recipients: u64,
    /// Of those, recipients refused permanently (5.x.x) (compromised
    /// account only).
    pub failed_recipients: u64,
    /// Of those, recipients outside the local domains (compromised account
    /// only).
    pub external_recipients: u64,
    /// Failed logins (guessing), or failed logins of the sending IPs before they sent.
    pub failed_logins: u64,
    /// Accounts the guesser tried (at most a few hundred are listed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts_tried: Vec<String>,
    /// How many distinct accounts were tried in all.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub accounts_tried_total: u64,
    /// Whether `accounts_tried_total` is exact; false when more names were
    /// tried than the detector remembers, and the total is a lower bound
    /// ("at least").
    #[serde(default = "exact")]
    pub accounts_tried_exact: bool,
    /// Accounts a guessing IP later logged in or sent as: the guess succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub succeeded_as: Vec<String>,
    /// 0–100: how sure mailfuse is.
    pub score: u32,
    /// Why, in plain words, with figures.
    pub reasons: Vec<String>,
    /// Log lines to look at, first the one that starts the story.
    pub evidence: Vec<String>,
    /// The mail servers that logged the account's mail and logins (or the
    /// guesser's attempts), when several send their logs to one `watch`
    /// over syslog; empty for the files of one server. Log text: escape it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

impl Incident {
    /// `"at least "` before the number of accounts tried when it stopped
    /// being exact (past the cap of names kept), else nothing: every output
    /// says the same.
    pub fn accounts_tried_bound(&self) -> &'static str {
        if self.accounts_tried_exact {
            ""
        } else {
            "at least "
        }
    }

    /// The incident's title in reports: "Compromised account", "Credential
    /// stuffing"…
    pub fn title(&self) -> &'static str {
        match (self.kind, self.pattern) {
            (IncidentKind::CompromisedAccount, _) => "Compromised account",
            (IncidentKind::SuspiciousActivity, _) => "Suspicious activity",
            (IncidentKind::MisconfiguredClient, _) => "Misconfigured client",
            (IncidentKind::LimitExceeded, _) => "Over its sending limit",
            (IncidentKind::PasswordGuessing, Some(GuessingPattern::Campaign)) => {
                "Guessing campaign"
            }
            (IncidentKind::PasswordGuessing, Some(GuessingPattern::CredentialStuffing)) => {
                "Credential stuffing"
            }
            (IncidentKind::PasswordGuessing, Some(GuessingPattern::BruteForce)) => "Brute force",
            (IncidentKind::PasswordGuessing, _) => "Password guessing",
        }
    }

    /// Who the incident is about, in a few words: the account, or the
    /// guessing IP, network or spread (`at a@b from 212 IPs`). Holds log
    /// text: escape it where shown.
    pub fn subject(&self) -> String {
        let many = format!("{} IPs", self.ips.len());
        match (self.kind, &self.network, &self.account) {
            (IncidentKind::PasswordGuessing, Some(network), _) => {
                format!("network {network} ({many})")
            }
            (IncidentKind::PasswordGuessing, None, Some(account)) => {
                format!("at {account} from {many}")
            }
            (IncidentKind::PasswordGuessing, None, None) => match self.ips.as_slice() {
                [] => "a host with no IP in the log".into(),
                [ip] => ip.to_string(),
                _ => many,
            },
            (_, _, account) => account.clone().unwrap_or_default(),
        }
    }

    /// An incident of `kind` seen over `seen`, detected at `detected_at`,
    /// with every figure at zero and no reasons yet: detectors fill in what
    /// their kind has with struct update syntax (`..Incident::new(…)`), so
    /// no one writes out the fields a kind does not use.
    pub fn new(
        kind: IncidentKind,
        seen: RangeInclusive<Timestamp>,
        detected_at: Timestamp,
    ) -> Self {
        let (first_seen, last_seen) = seen.into_inner();
        Incident {
            kind,
            account: None,
            ips: Vec::new(),
            protected_ips: Vec::new(),
            network: None,
            pattern: None,
            confidence: Confidence::of(kind, 0),
            to_confirm: Vec::new(),
            first_seen,
            last_seen,
            detected_at,
            messages: 0,
            recipients: 0,
            failed_recipients: 0,
            external_recipients: 0,
            failed_logins: 0,
            accounts_tried: Vec::new(),
            accounts_tried_total: 0,
            accounts_tried_exact: true,
            succeeded_as: Vec::new(),
            score: 0,
            reasons: Vec::new(),
            evidence: Vec::new(),
            hosts: Vec::new(),
        }
    }
}

/// An address of an incident that must not be blocked, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedIp {
    /// The address, as in [`Incident::ips`].
    pub ip: IpAddr,
    /// What it is (this server, a private address…).
    pub why: Protected,
}

impl Incident {
    /// Sets how sure mailfuse is, from the kind and final score, and what
    /// would confirm it: every incident handed out carries both.
    pub fn assess(&mut self) {
        self.confidence = Confidence::of(self.kind, self.score);
        let ips = self
            .ips
            .iter()
            .take(3)
            .map(IpAddr::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let account = self.account.as_deref().unwrap_or("the account");
        self.to_confirm = match self.kind {
            IncidentKind::CompromisedAccount | IncidentKind::SuspiciousActivity => vec![
                format!(
                    "ask the owner of {account} whether they sent mail from {ips} since {}",
                    self.first_seen
                ),
                format!("look at the subjects and recipients of its queued and sent messages (`mailfuse trace` a queue id from the evidence)"),
            ],
            IncidentKind::PasswordGuessing if !self.succeeded_as.is_empty() => vec![format!(
                "ask the owners of {} whether the logins from these IPs were theirs",
                self.succeeded_as.join(", ")
            )],
            IncidentKind::PasswordGuessing => vec![
                "check that the accounts tried have strong passwords; none logged in from these IPs".to_string(),
            ],
            IncidentKind::MisconfiguredClient => vec![format!(
                "ask the owner of {account} which device at {ips} still has an old password"
            )],
            IncidentKind::LimitExceeded => vec![format!(
                "ask the owner of {account} whether the mailing was theirs"
            )],
        };
    }

    /// Notes which of its IPs `safety` forbids to block (replacing what an
    /// earlier judgement noted: the responder judges again with the
    /// server's own addresses).
    pub fn note_protected(&mut self, safety: &Safety) {
        self.protected_ips = self
            .ips
            .iter()
            .filter_map(|&ip| {
                Some(ProtectedIp {
                    ip,
                    why: safety.protection(ip)?,
                })
            })
            .collect();
    }

    /// The IPs an admin may be advised to block: [`Incident::ips`] but the
    /// protected ones.
    pub fn blockable_ips(&self) -> Vec<IpAddr> {
        self.ips
            .iter()
            .copied()
            .filter(|ip| !self.protected_ips.iter().any(|p| p.ip == *ip))
            .collect()
    }

    /// For each protected IP, why it is not blocked and what to do instead,
    /// in one sentence (`127.0.0.1 is this server (…): not blocked; lock
    /// the account instead`): every output says it in these words.
    pub fn not_blocked(&self) -> Vec<String> {
        self.protected_ips
            .iter()
            .map(|p| {
                let instead = match (self.kind, p.why.is_this_server()) {
                    (IncidentKind::PasswordGuessing, true) => {
                        "the guesser is behind the webmail or a local program: its own log names the real IP"
                    }
                    (IncidentKind::PasswordGuessing, false) => {
                        "find the machine on your network that does it"
                    }
                    _ => "lock the account instead",
                };
                format!("{} is {}: not blocked; {instead}", p.ip, p.why)
            })
            .collect()
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Text of a log line kept as evidence: lossy UTF-8, capped in length so one
/// hostile 10 MB line cannot bloat a report.
pub fn evidence_line(line: &[u8]) -> String {
    const MAX: usize = 2048;
    let (line, redacted) = without_password(line);
    let clipped = &line[..line.len().min(MAX)];
    let mut text = lossy_cow(clipped).into_owned();
    if line.len() > MAX {
        text.push('…');
    }
    if redacted {
        text.push_str(REDACTED);
    }
    text
}

/// What Dovecot writes before the password a client tried, with
/// `auth_verbose_passwords` (2.4 shows it in its default failure lines).
const PASSWORD_MARKER: &[u8] = b"given password: ";
/// The marker's searcher, built once: every message's evidence line is
/// searched, and a searcher per call cost more than the search.
static PASSWORD_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(PASSWORD_MARKER));
/// What stands in for the password in reports.
const REDACTED: &str = "[password removed by mailfuse])";

/// The line cut before a password it shows, and whether it was cut: a
/// report must never spread a password, even a wrong one (it is often a
/// typo of the right one, or the right one of another account).
fn without_password(line: &[u8]) -> (&[u8], bool) {
    match PASSWORD_FINDER.find(line) {
        Some(at) => (&line[..at + PASSWORD_MARKER.len()], true),
        None => (line, false),
    }
}

/// Log bytes as an owned lossy string (account names, addresses).
pub fn lossy(bytes: &[u8]) -> String {
    lossy_cow(bytes).into_owned()
}

/// `bytes` as text, invalid UTF-8 replaced: what `String::from_utf8_lossy`
/// gives, but valid text (nearly every log line) is checked by
/// `str::from_utf8`, which skips ASCII a word at a time where the lossy
/// decoder goes byte by byte.
fn lossy_cow(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Counts are exact unless a detector says otherwise.
fn exact() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_never_shows_a_password_dovecot_logged() {
        let line = b"Aug 30 00:10:57 auth(info@example.com,192.0.2.110,sasl:login)<CvN+E95Uf4e7eEnj>: Info: sql: Password mismatch (given password: Summer2024!)";
        let shown = evidence_line(line);
        assert!(!shown.contains("Summer2024"), "{shown}");
        assert!(shown.ends_with("(given password: [password removed by mailfuse])"));
        let sha = b"auth: sql(u,1.2.3.4): unknown user (SHA1 of given password: 5baa61e4)";
        assert!(!evidence_line(sha).contains("5baa61e4"));
        assert_eq!(evidence_line(b"plain line"), "plain line");
    }

    #[test]
    fn evidence_of_bytes_that_are_not_utf8_is_what_the_lossy_decoder_makes() {
        let mut long = vec![b'a'; 2047];
        long.extend("é and more".as_bytes()); // cut inside the é
        for line in [
            &b"from \xff\xfe<x@y>"[..],
            b"caf\xc3",
            "naïve ✓".as_bytes(),
            &long,
        ] {
            let expected = String::from_utf8_lossy(&line[..line.len().min(2048)]);
            let shown = evidence_line(line);
            assert_eq!(shown.trim_end_matches('…'), expected, "{line:?}");
            assert_eq!(lossy(line), String::from_utf8_lossy(line));
        }
    }
}
