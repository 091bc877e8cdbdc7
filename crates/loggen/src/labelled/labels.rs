//! The ground truth of a labelled week (`labels.json`): what each scenario
//! is, whose account it concerns, which addresses are the attacker's and
//! when every spam message was accepted, so the scorer can judge a report
//! without reading the logs.

use std::fmt;
use std::net::Ipv4Addr;

use mailfuse_core::Timestamp;
use serde::{Deserialize, Serialize};

use crate::kerio::{Addr, Ip};

/// Whether a scenario must be found, must not be, or must be reported as
/// password guessing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Someone else sends mail as the account: a `compromised_account`.
    Hijack,
    /// Unusual but legitimate: must never be a `compromised_account`.
    Lookalike,
    /// Password guessing that must be reported.
    Attack,
}

impl Class {
    /// The name used in `labels.json` and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Class::Hijack => "hijack",
            Class::Lookalike => "lookalike",
            Class::Attack => "attack",
        }
    }
}

/// Every kind of scenario a labelled week can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A forward-only role account's password guessed, then spam with a
    /// forged From and many bounces.
    GuessedRole,
    /// A phished user's account sending with the user's own From (~12 %
    /// bounces) from a new foreign address.
    PhishedOwnFrom,
    /// About 40 messages in a minute (~46 % bounces) from a new address,
    /// a few hours after the log starts: the account has little history.
    ShortHistory,
    /// Spam through 30–200 rotating proxies, each sending a handful.
    ProxiesLowAndSlow,
    /// An infected office computer sending spam as its user from the
    /// office's usual address.
    InfectedPc,
    /// Phishing sent through the webmail after a login from abroad.
    WebmailPhish,
    /// The marketing mailbox, quiet for days, sends a clean newsletter.
    Newsletter,
    /// An application account sending daily with a second domain's From.
    ApplicationAccount,
    /// A user mistyping the password from the office, colleagues sending
    /// from the same address.
    MistypedPassword,
    /// A traveller reading and sending mail from abroad.
    Traveller,
    /// A phone that changes carrier addresses all the time.
    MobileCarrier,
    /// A user's end-of-quarter mailing: many more messages than usual,
    /// to real correspondents.
    QuarterEnd,
    /// A mail client with an old password failing every few minutes
    /// beside working clients on the same address.
    StalePassword,
    /// One account guessed from 100–400 addresses, 1–3 tries each.
    BruteForce,
    /// Leaked credentials tried against 100+ accounts from 300+ addresses
    /// over a day, one try each.
    CredentialStuffing,
    /// About 150 addresses making ~7 tries each within an hour.
    Campaign,
    /// One address trying many accounts.
    Spray,
}

impl Kind {
    /// Every kind, hijacks first, in table order.
    pub const ALL: [Kind; 17] = [
        Kind::GuessedRole,
        Kind::PhishedOwnFrom,
        Kind::ShortHistory,
        Kind::ProxiesLowAndSlow,
        Kind::InfectedPc,
        Kind::WebmailPhish,
        Kind::Newsletter,
        Kind::ApplicationAccount,
        Kind::MistypedPassword,
        Kind::Traveller,
        Kind::MobileCarrier,
        Kind::QuarterEnd,
        Kind::StalePassword,
        Kind::BruteForce,
        Kind::CredentialStuffing,
        Kind::Campaign,
        Kind::Spray,
    ];

    /// Whether the kind is a hijack, a look-alike or an attack.
    pub fn class(self) -> Class {
        match self {
            Kind::GuessedRole
            | Kind::PhishedOwnFrom
            | Kind::ShortHistory
            | Kind::ProxiesLowAndSlow
            | Kind::InfectedPc
            | Kind::WebmailPhish => Class::Hijack,
            Kind::Newsletter
            | Kind::ApplicationAccount
            | Kind::MistypedPassword
            | Kind::Traveller
            | Kind::MobileCarrier
            | Kind::QuarterEnd
            | Kind::StalePassword => Class::Lookalike,
            Kind::BruteForce | Kind::CredentialStuffing | Kind::Campaign | Kind::Spray => {
                Class::Attack
            }
        }
    }

    /// The kinds of one class, in table order.
    pub fn of(class: Class) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |k| k.class() == class)
    }

    /// The snake-case name of `labels.json` and the tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::GuessedRole => "guessed_role",
            Kind::PhishedOwnFrom => "phished_own_from",
            Kind::ShortHistory => "short_history",
            Kind::ProxiesLowAndSlow => "proxies_low_and_slow",
            Kind::InfectedPc => "infected_pc",
            Kind::WebmailPhish => "webmail_phish",
            Kind::Newsletter => "newsletter",
            Kind::ApplicationAccount => "application_account",
            Kind::MistypedPassword => "mistyped_password",
            Kind::Traveller => "traveller",
            Kind::MobileCarrier => "mobile_carrier",
            Kind::QuarterEnd => "quarter_end",
            Kind::StalePassword => "stale_password",
            Kind::BruteForce => "brute_force",
            Kind::CredentialStuffing => "credential_stuffing",
            Kind::Campaign => "campaign",
            Kind::Spray => "spray",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One scenario of the week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// What happened.
    pub kind: Kind,
    /// Its class (also implied by `kind`; written for readers of the file).
    pub class: Class,
    /// The account(s) concerned: the hijacked one, the look-alike's, the
    /// brute-forced target; empty for attacks on many accounts.
    pub accounts: Vec<String>,
    /// Hijacks: every address that sent mail as the account (what a
    /// `compromised_account` incident must name); look-alikes: the unusual
    /// addresses the account used; attacks: every guessing address.
    pub ips: Vec<Ipv4Addr>,
    /// Hijacks: addresses that guessed the password first (not required in
    /// the hijack's incident).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guess_ips: Vec<Ipv4Addr>,
    /// The first spam message, the first refused login, or the start of
    /// the unusual behaviour.
    pub start: Timestamp,
    /// The last of it.
    pub end: Timestamp,
    /// Hijacks: when each spam message was accepted by the server (queued).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spam: Vec<Timestamp>,
    /// Refused logins (attacks, and the guessing before a hijack).
    #[serde(default)]
    pub failed_logins: u64,
    /// Messages the scenario sent (spam, newsletter, mailing).
    #[serde(default)]
    pub messages: u64,
    /// In words, with the figures that matter.
    pub summary: String,
}

/// The ground truth of one labelled week.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    /// `kerio8`, `kerio10` or `postfix`.
    pub form: String,
    /// The seed the week was drawn from.
    pub seed: u64,
    /// The organisation's domain.
    pub domain: String,
    /// Mailboxes in the organisation.
    pub mailboxes: usize,
    /// Where the organisation is.
    pub region: String,
    /// The server's offset from UTC, `+07:00`.
    pub utc_offset: String,
    /// The log's first moment (UTC).
    pub start: Timestamp,
    /// The log's end (UTC).
    pub end: Timestamp,
    /// The log files written beside `labels.json`.
    pub files: Vec<String>,
    /// Options `mailfuse scan` needs besides the files (`--timezone=-03:00`):
    /// the time zone of
    /// syslog's local stamps, which an admin knows and Kerio's queue ids
    /// tell by themselves.
    pub scan_options: Vec<String>,
    /// The scenarios, in the order they were planned.
    pub scenarios: Vec<Scenario>,
}

/// An address as `labels.json` holds it.
pub fn ipv4(ip: Ip) -> Ipv4Addr {
    Ipv4Addr::from(ip)
}

/// An account as the server logs its login.
pub fn account(addr: Addr<'_>) -> String {
    addr.to_string()
}

/// `+07:00` for an offset in seconds.
pub fn offset_text(secs: i64) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}:{:02}", secs / 3_600, secs % 3_600 / 60)
}
