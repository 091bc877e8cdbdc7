//! `mailfuse audit`: the accounts that should not be able to send.
//!
//! The hijacked `sales` of the source story was a real user with a weak
//! password, used only to forward mail, that nobody ever logged into: it
//! should have been an alias, which cannot authenticate. The audit finds
//! such accounts two ways, both pure (the binary does the I/O):
//! - [`audit_directory`]: from a server's list of users (Kerio's Admin API:
//!   forwarding mode, last login, the password policy of the user's
//!   domain);
//! - [`LogAudit`]: from the logs `scan` reads (Postfix + Dovecot, Exim,
//!   Kerio): who receives mail, who logs in, over which protocol, when;
//!   and from the last logins a server records itself (Dovecot's
//!   `last_login` dict), which reach back further than the logs.

use std::collections::{HashMap, HashSet};

use mailfuse_core::{Event, Timestamp};
use serde::Serialize;

use crate::local_domains::{is_local_relay, split_address};

/// Login names that name a role, not a person: the first ones guessed, and
/// often shared, forwarded or forgotten. Compared without case.
pub const ROLE_NAMES: &[&str] = &[
    "sales",
    "info",
    "office",
    "admin",
    "administrator",
    "contact",
    "support",
    "help",
    "billing",
    "accounts",
    "accounting",
    "invoice",
    "invoices",
    "orders",
    "marketing",
    "hr",
    "jobs",
    "reception",
    "enquiries",
    "service",
    "team",
    "webmaster",
    "postmaster",
    "hostmaster",
    "abuse",
    "noreply",
    "no-reply",
    "test",
];

/// Seconds in a day.
const DAY: i64 = 86_400;

/// What is wrong with an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// Forwards its mail without keeping a copy: nobody reads it here.
    ForwardOnly,
    /// The server says nobody ever logged in.
    NeverLoggedIn,
    /// Mail is delivered to it, but the logs show no login at all.
    ReceivesNeverLogsIn,
    /// Logs in to send (SMTP) and never to read (IMAP, POP3, webmail).
    SmtpOnly,
    /// No login for the stale period.
    Stale,
    /// The login is a role name (sales, info, office…).
    RoleName,
    /// The server enforces no complexity on its password, or lets it live
    /// for ever: a weak password set years ago is still valid.
    NoPasswordPolicy,
}

impl Problem {
    /// What to do about it: the concrete change that closes the door.
    pub fn recommendation(self) -> &'static str {
        match self {
            Problem::ForwardOnly | Problem::NeverLoggedIn | Problem::ReceivesNeverLogsIn => {
                "make it an alias (or a group) of the people who read it: an alias cannot log \
                 in, so its password cannot be guessed; until then, restrict its access policy \
                 to no services"
            }
            Problem::SmtpOnly => {
                "find out who sends as it (a scanner, a script, or someone else): if nobody \
                 reads its mail, make it an alias; a device's account should be limited to \
                 SMTP from its own address"
            }
            Problem::Stale => {
                "disable it if nobody uses it any more, or make it an alias; a dormant account \
                 is a hijacker's favourite"
            }
            Problem::RoleName => {
                "rename the login to a personal one (the role address stays, as an alias) and \
                 give it a strong password: role names are the first ones guessed"
            }
            Problem::NoPasswordPolicy => {
                "turn the password policy on where it is set (Kerio: the domain's Security tab: \
                 complexity requirements, and expiry so that passwords chosen before it must be \
                 chosen again under it), then have the user choose a new password; if nobody \
                 logs into the account, make it an alias instead"
            }
        }
    }

    /// The problem in a few words, for the text and HTML reports.
    pub fn words(self) -> &'static str {
        match self {
            Problem::ForwardOnly => "forwards without keeping a mailbox",
            Problem::NeverLoggedIn => "never logged in",
            Problem::ReceivesNeverLogsIn => "receives mail but never logs in",
            Problem::SmtpOnly => "only ever logs in to send (SMTP)",
            Problem::Stale => "no login for a long time",
            Problem::RoleName => "role name",
            Problem::NoPasswordPolicy => "no password policy",
        }
    }

    /// Whether the account looks like one nobody logs into: its first SMTP
    /// login is then strong evidence of a hijack (the `sales` case).
    pub fn never_logs_in(self) -> bool {
        matches!(
            self,
            Problem::ForwardOnly | Problem::NeverLoggedIn | Problem::ReceivesNeverLogsIn
        )
    }
}

/// One problem of one account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The account, as the server or the log names it.
    pub account: String,
    /// What is wrong.
    pub problem: Problem,
    /// The facts behind it (forward target, last login, counts).
    pub detail: String,
    /// [`Problem::recommendation`], in the JSON report too.
    pub recommendation: &'static str,
}

impl Finding {
    fn new(account: &str, problem: Problem, detail: String) -> Finding {
        Finding {
            account: account.to_owned(),
            problem,
            detail,
            recommendation: problem.recommendation(),
        }
    }
}

/// Whether the local part of `account` is a role name.
pub fn is_role_name(account: &str) -> bool {
    let local = account.rsplit_once('@').map_or(account, |(local, _)| local);
    ROLE_NAMES
        .iter()
        .any(|role| local.eq_ignore_ascii_case(role))
}

/// One user as a server's directory describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryUser {
    /// `login@domain`.
    pub address: String,
    /// Disabled users cannot log in: the audit skips them.
    pub enabled: bool,
    /// Forwards mail without delivering it to its own mailbox.
    pub forwards_only: bool,
    /// Where it forwards to.
    pub forward_to: Vec<String>,
    /// The last login and its protocol; `None`: never.
    pub last_login: Option<(Timestamp, String)>,
    /// The rules the server enforces on the user's password; `None` when
    /// it does not say, or another system checks the password (a
    /// directory service: its own policy applies).
    pub password_policy: Option<PasswordPolicy>,
}

/// The rules a server enforces on one user's password (Kerio: those of
/// the user's domain).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Where the rules are set, for the report (`domain example.com`).
    pub scope: String,
    /// New passwords must meet complexity requirements.
    pub complexity: bool,
    /// The shortest password the complexity requirements accept.
    pub minimum_length: u32,
    /// Days a password lasts before it must be changed; `None`: for ever.
    pub expires_after_days: Option<u32>,
    /// How many earlier passwords cannot be chosen again.
    pub history: u32,
    /// The user's password is stored so that it can be decrypted
    /// (Kerio's `isPasswordReversible`): whoever reads the server's files
    /// or backups reads it.
    pub stored_reversibly: bool,
}

impl PasswordPolicy {
    /// The finding when the rules let a weak or old password stand: no
    /// complexity required, or no expiry.
    fn finding(&self, account: &str) -> Option<Finding> {
        if self.complexity && self.expires_after_days.is_some() {
            return None;
        }
        let complexity = match self.complexity {
            true => format!(
                "complexity required (at least {} characters)",
                self.minimum_length
            ),
            false => "no complexity required".to_owned(),
        };
        let expiry = match self.expires_after_days {
            Some(days) => format!("passwords expire after {days} days"),
            None => "passwords never expire".to_owned(),
        };
        let history = match self.history {
            0 => "no history kept".to_owned(),
            n => format!("the last {n} cannot be reused"),
        };
        let mut detail = format!("{}: {complexity}, {expiry}, {history}", self.scope);
        if self.stored_reversibly {
            detail.push_str("; this user's password is stored reversibly");
        }
        Some(Finding::new(account, Problem::NoPasswordPolicy, detail))
    }
}

/// The findings of a directory of users at `now`: disabled users cannot
/// send and are skipped; `stale_days` of no login make a user stale (0:
/// never).
pub fn audit_directory(users: &[DirectoryUser], now: Timestamp, stale_days: u32) -> Vec<Finding> {
    let mut findings = Vec::new();
    for user in users.iter().filter(|user| user.enabled) {
        let account = user.address.as_str();
        if user.forwards_only {
            findings.push(Finding::new(
                account,
                Problem::ForwardOnly,
                format!("forwards to {}", user.forward_to.join(", ")),
            ));
        }
        match &user.last_login {
            None => findings.push(Finding::new(
                account,
                Problem::NeverLoggedIn,
                "no login recorded by the server".to_owned(),
            )),
            Some((at, protocol)) => {
                if let Some(finding) = stale(account, *at, protocol, now, stale_days) {
                    findings.push(finding);
                }
            }
        }
        if is_role_name(account) {
            findings.push(role_name(account));
        }
        if let Some(finding) = user
            .password_policy
            .as_ref()
            .and_then(|policy| policy.finding(account))
        {
            findings.push(finding);
        }
    }
    sorted(findings)
}

fn stale(
    account: &str,
    last: Timestamp,
    how: &str,
    now: Timestamp,
    stale_days: u32,
) -> Option<Finding> {
    let days = (now.as_secs() - last.as_secs()) / DAY;
    (stale_days > 0 && days >= i64::from(stale_days)).then(|| {
        Finding::new(
            account,
            Problem::Stale,
            format!("last login {last} ({how}), {days} days before {now}"),
        )
    })
}

fn role_name(account: &str) -> Finding {
    Finding::new(
        account,
        Problem::RoleName,
        "the login names a role, not a person".to_owned(),
    )
}

fn sorted(mut findings: Vec<Finding>) -> Vec<Finding> {
    sort(&mut findings);
    findings
}

/// Sorts findings by account (without case), then problem, and drops the
/// repeats of a problem (an account both Kerio and its logs reported).
pub fn sort(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| {
        (a.account.to_ascii_lowercase(), a.problem)
            .cmp(&(b.account.to_ascii_lowercase(), b.problem))
    });
    findings.dedup_by(|a, b| a.problem == b.problem && a.account.eq_ignore_ascii_case(&b.account));
}

/// What the logs showed of one account.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    /// Messages delivered into its mailbox.
    received: u64,
    /// Logins (or authenticated submissions) over SMTP.
    smtp: u64,
    /// Logins to read mail: IMAP, POP3, webmail.
    mailbox: u64,
    last_login: Option<Timestamp>,
    /// The last login to read mail the server recorded itself (Dovecot's
    /// `last_login` dict), however long before the logs.
    recorded: Option<Timestamp>,
}

impl Seen {
    fn logged_in(&mut self, at: Timestamp, smtp: bool) {
        if smtp {
            self.smtp += 1;
        } else {
            self.mailbox += 1;
        }
        self.last_login = self.last_login.max(Some(at));
    }

    fn merge(&mut self, other: &Seen) {
        self.received += other.received;
        self.smtp += other.smtp;
        self.mailbox += other.mailbox;
        self.last_login = self.last_login.max(other.last_login);
        self.recorded = self.recorded.max(other.recorded);
    }

    /// The latest login, and where it was seen.
    fn latest_login(&self) -> Option<(Timestamp, &'static str)> {
        let logged = self.last_login.map(|at| (at, "seen in the logs"));
        let recorded = self.recorded.map(|at| (at, RECORDED));
        logged.into_iter().chain(recorded).max_by_key(|(at, _)| *at)
    }
}

/// Where a recorded last login comes from, in the findings' words.
const RECORDED: &str = "recorded by Dovecot's last_login";

/// The audit from the logs: give it every event [`LogAudit::observe`],
/// then ask for the [`LogAudit::findings`]. Memory: one small row per
/// account seen.
#[derive(Debug, Default)]
pub struct LogAudit {
    /// Keyed by the account in lower case.
    accounts: HashMap<String, Seen>,
    /// Given (`--local-domain`), else the domains of the logins.
    local_domains: HashSet<String>,
    configured: bool,
    /// The last event's time: "not for N days" counts back from it.
    end: Option<Timestamp>,
    /// When the server's own record of last logins was read, if it was:
    /// "not for N days" then counts back from then at least.
    recorded_at: Option<Timestamp>,
}

impl LogAudit {
    /// An audit whose local domains are `local_domains`, or, when empty,
    /// the domains of the accounts that log in.
    pub fn new(local_domains: &[String]) -> LogAudit {
        LogAudit {
            local_domains: local_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            configured: !local_domains.is_empty(),
            ..LogAudit::default()
        }
    }

    /// Takes one event: logins, authenticated submissions and deliveries
    /// into mailboxes count; the rest only moves the end of the log.
    pub fn observe(&mut self, event: &Event<'_>) {
        let at = event.at();
        self.end = self.end.max(Some(at));
        match event {
            Event::AuthSuccess(login) => self.login(login.account, at, is_smtp(login.service)),
            Event::Submission(submission) => {
                if let Some(account) = submission.account {
                    let smtp = submission.service.is_none_or(is_smtp);
                    self.login(account, at, smtp);
                }
            }
            Event::Delivery(delivery)
                if delivery.status == mailfuse_core::DeliveryStatus::Delivered =>
            {
                self.delivered(delivery.recipient, delivery.relay);
            }
            _ => {}
        }
    }

    /// Takes the last logins the server recorded itself, read at
    /// `read_at`: Dovecot's `last_login` dict, kept for IMAP and POP3
    /// (`account`, when). They reach back before the logs: an account
    /// with none has not logged in to read its mail since the server began
    /// recording, and staleness counts back from `read_at` (or the end of
    /// the logs, if later).
    pub fn recorded_logins<'a>(
        &mut self,
        logins: impl IntoIterator<Item = (&'a [u8], Timestamp)>,
        read_at: Timestamp,
    ) {
        self.recorded_at = self.recorded_at.max(Some(read_at));
        for (account, at) in logins {
            if let Some(seen) = self.logging_in(account) {
                seen.recorded = seen.recorded.max(Some(at));
            }
        }
    }

    fn login(&mut self, account: &[u8], at: Timestamp, smtp: bool) {
        if let Some(seen) = self.logging_in(account) {
            seen.logged_in(at, smtp);
        }
    }

    /// The row of an account that logs in; its domain is local, unless
    /// the local domains were given.
    fn logging_in(&mut self, account: &[u8]) -> Option<&mut Seen> {
        let key = key(account)?;
        if !self.configured {
            if let Some((_, domain)) = key.rsplit_once('@') {
                if !self.local_domains.contains(domain) {
                    self.local_domains.insert(domain.to_owned());
                }
            }
        }
        Some(self.accounts.entry(key).or_default())
    }

    fn delivered(&mut self, recipient: &[u8], relay: Option<&[u8]>) {
        let Some(key) = key(recipient) else { return };
        let local = is_local_relay(relay)
            || split_address(recipient).is_some_and(|(_, domain)| {
                self.local_domains
                    .contains(&String::from_utf8_lossy(domain).to_ascii_lowercase())
            });
        if local {
            self.accounts.entry(key).or_default().received += 1;
        }
    }

    /// The end of the log: the last event's time.
    pub fn end(&self) -> Option<Timestamp> {
        self.end
    }

    /// The findings: accounts that receive mail but never log in, that only
    /// ever log in to send, that have not logged in for `stale_days` before
    /// the end of the log, and role names that log in. A login without a
    /// domain (Dovecot's `user=<sales>`) is the mailbox of the address with
    /// that local part.
    pub fn findings(&self, stale_days: u32) -> Vec<Finding> {
        let mut merged: HashMap<&str, Seen> = HashMap::new();
        for (account, seen) in &self.accounts {
            let name = self.address_of(account);
            merged.entry(name).or_default().merge(seen);
        }
        let end = self.end.max(self.recorded_at).unwrap_or_default();
        let not_recorded = match self.recorded_at {
            Some(_) => format!(", none {RECORDED} either"),
            None => String::new(),
        };
        let mut findings = Vec::new();
        for (&account, seen) in &merged {
            let Some((last, how)) = seen.latest_login() else {
                if seen.received > 0 {
                    findings.push(Finding::new(
                        account,
                        Problem::ReceivesNeverLogsIn,
                        format!(
                            "{} messages delivered, no login{not_recorded}",
                            seen.received
                        ),
                    ));
                }
                continue;
            };
            if seen.mailbox == 0 && seen.recorded.is_none() {
                findings.push(Finding::new(
                    account,
                    Problem::SmtpOnly,
                    format!(
                        "{} SMTP logins or submissions, no IMAP, POP3 or webmail login{not_recorded}",
                        seen.smtp
                    ),
                ));
            }
            if let Some(finding) = stale(account, last, how, end, stale_days) {
                findings.push(finding);
            }
            if is_role_name(account) {
                findings.push(role_name(account));
            }
        }
        sorted(findings)
    }

    /// The address a bare login belongs to: the one delivered-to address
    /// with that local part, else the login itself.
    fn address_of<'a>(&'a self, account: &'a str) -> &'a str {
        if account.contains('@') {
            return account;
        }
        let mut matches = self.accounts.keys().filter(|other| {
            other
                .rsplit_once('@')
                .is_some_and(|(local, _)| local == account)
        });
        match (matches.next(), matches.next()) {
            (Some(address), None) => address,
            _ => account,
        }
    }
}

/// An account as a key: trimmed, lower case; `None` when empty.
fn key(account: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(account.trim_ascii()).to_ascii_lowercase();
    (!text.is_empty()).then_some(text)
}

/// Whether a login's or submission's service is SMTP (Postfix's `smtpd`,
/// `submission`, `smtps`; Exim's `esmtpsa`; Kerio's `SMTP`), not reading
/// (IMAP, POP3) or webmail (`HTTP`, `Kerio Connect client`, `roundcube`).
fn is_smtp(service: &[u8]) -> bool {
    const SMTP: [&[u8]; 4] = [b"smtp", b"esmtp", b"submission", b"smtps"];
    let lower = service.to_ascii_lowercase();
    SMTP.iter().any(|s| lower.starts_with(s)) || lower.ends_with(b"smtpd")
}

#[cfg(test)]
mod tests {
    use mailfuse_core::event::{AuthSuccess, Client, Delivery, DeliveryStatus, Submission};

    use super::*;

    fn at(day: u8) -> Timestamp {
        Timestamp::from_civil(2026, 5, day, 9, 0, 0).unwrap()
    }

    fn login(audit: &mut LogAudit, account: &str, service: &str, day: u8) {
        audit.observe(&Event::AuthSuccess(AuthSuccess {
            at: at(day),
            client: Client::Unknown,
            account: account.as_bytes(),
            service: service.as_bytes(),
        }));
    }

    fn deliver(audit: &mut LogAudit, recipient: &str, day: u8) {
        audit.observe(&Event::Delivery(Delivery {
            at: at(day),
            queue_id: b"q",
            recipient: recipient.as_bytes(),
            status: DeliveryStatus::Delivered,
            dsn: None,
            detail: b"",
            relay: Some(b"dovecot"),
        }));
    }

    fn problems(findings: &[Finding]) -> Vec<(&str, Problem)> {
        findings
            .iter()
            .map(|f| (f.account.as_str(), f.problem))
            .collect()
    }

    #[test]
    fn logs_find_the_never_logging_in_the_sender_only_and_the_stale() {
        let mut audit = LogAudit::new(&[]);
        login(&mut audit, "anna@example.com", "imap", 1);
        deliver(&mut audit, "anna@example.com", 2);
        deliver(&mut audit, "orders@example.com", 3);
        audit.observe(&Event::Submission(Submission {
            at: at(4),
            queue_id: b"q2",
            account: Some(b"scanner@example.com"),
            service: Some(b"smtpd"),
            ..Submission::default()
        }));
        // A bare Dovecot login is the mailbox delivered to.
        deliver(&mut audit, "bob@example.com", 25);
        login(&mut audit, "bob", "pop3", 25);
        login(&mut audit, "old@example.com", "imap", 1);
        deliver(&mut audit, "anna@example.com", 30);
        let findings = audit.findings(20);
        assert_eq!(
            problems(&findings),
            [
                ("anna@example.com", Problem::Stale),
                ("old@example.com", Problem::Stale),
                ("orders@example.com", Problem::ReceivesNeverLogsIn),
                ("scanner@example.com", Problem::SmtpOnly),
                ("scanner@example.com", Problem::Stale),
            ]
        );
        assert!(audit
            .findings(60)
            .iter()
            .all(|f| f.problem != Problem::Stale));
        assert!(audit
            .findings(0)
            .iter()
            .all(|f| f.problem != Problem::Stale));
    }

    #[test]
    fn recorded_logins_reach_back_before_the_logs() {
        let mut audit = LogAudit::new(&[]);
        // Two days of logs: mail for anna, bob and orders; scanner sends.
        for account in ["anna@example.com", "bob@example.com", "orders@example.com"] {
            deliver(&mut audit, account, 29);
        }
        audit.observe(&Event::Submission(Submission {
            at: at(30),
            queue_id: b"q3",
            account: Some(b"scanner@example.com"),
            service: Some(b"smtpd"),
            ..Submission::default()
        }));
        let recorded: [(&[u8], Timestamp); 3] = [
            (b"anna@example.com", at(28)),
            // A bare login is the mailbox delivered to.
            (b"bob", at(2)),
            (b"scanner@example.com", at(27)),
        ];
        audit.recorded_logins(recorded, at(30));
        let findings = audit.findings(20);
        assert_eq!(
            problems(&findings),
            [
                ("bob@example.com", Problem::Stale),
                ("orders@example.com", Problem::ReceivesNeverLogsIn),
            ]
        );
        assert_eq!(
            findings[0].detail,
            "last login 2026-05-02T09:00:00Z (recorded by Dovecot's last_login), \
             28 days before 2026-05-30T09:00:00Z"
        );
        assert_eq!(
            findings[1].detail,
            "1 messages delivered, no login, none recorded by Dovecot's last_login either"
        );
        // Without the record, the short logs know less.
        let mut logs_only = LogAudit::new(&[]);
        for account in ["anna@example.com", "orders@example.com"] {
            deliver(&mut logs_only, account, 29);
        }
        assert_eq!(
            problems(&logs_only.findings(20)),
            [
                ("anna@example.com", Problem::ReceivesNeverLogsIn),
                ("orders@example.com", Problem::ReceivesNeverLogsIn),
            ]
        );
    }

    #[test]
    fn directory_finds_users_whose_password_policy_lets_a_weak_password_stand() {
        let user = |address: &str, policy: Option<PasswordPolicy>| DirectoryUser {
            address: address.to_owned(),
            enabled: true,
            last_login: Some((at(29), "IMAP".to_owned())),
            password_policy: policy,
            ..DirectoryUser::default()
        };
        let strict = PasswordPolicy {
            scope: "domain example.com".to_owned(),
            complexity: true,
            minimum_length: 10,
            expires_after_days: Some(180),
            history: 5,
            stored_reversibly: false,
        };
        let lax = PasswordPolicy {
            scope: "domain example.org".to_owned(),
            complexity: false,
            expires_after_days: None,
            history: 0,
            stored_reversibly: true,
            ..strict.clone()
        };
        let never_expires = PasswordPolicy {
            expires_after_days: None,
            ..strict.clone()
        };
        let users = [
            user("anna@example.com", Some(strict)),
            user("bob@example.org", Some(lax)),
            user("carl@example.com", Some(never_expires)),
            // Checked by a directory service: its policy, not the server's.
            user("dora@example.com", None),
        ];
        let findings = audit_directory(&users, at(30), 14);
        assert_eq!(
            problems(&findings),
            [
                ("bob@example.org", Problem::NoPasswordPolicy),
                ("carl@example.com", Problem::NoPasswordPolicy),
            ]
        );
        assert_eq!(
            findings[0].detail,
            "domain example.org: no complexity required, passwords never expire, no history \
             kept; this user's password is stored reversibly"
        );
        assert_eq!(
            findings[1].detail,
            "domain example.com: complexity required (at least 10 characters), passwords never \
             expire, the last 5 cannot be reused"
        );
        assert!(findings[0]
            .recommendation
            .starts_with("turn the password policy on"));
    }

    #[test]
    fn directory_finds_forward_only_never_logged_in_stale_and_role_names() {
        let user = |address: &str, last: Option<u8>| DirectoryUser {
            address: address.to_owned(),
            enabled: true,
            last_login: last.map(|day| (at(day), "IMAP".to_owned())),
            ..DirectoryUser::default()
        };
        let mut sales = user("sales@example.com", None);
        sales.forwards_only = true;
        sales.forward_to = vec!["boss@example.org".to_owned()];
        let mut disabled = user("gone@example.com", None);
        disabled.enabled = false;
        let users = [
            sales,
            user("anna@example.com", Some(28)),
            user("old@example.com", Some(1)),
            disabled,
        ];
        let findings = audit_directory(&users, at(30), 14);
        assert_eq!(
            problems(&findings),
            [
                ("old@example.com", Problem::Stale),
                ("sales@example.com", Problem::ForwardOnly),
                ("sales@example.com", Problem::NeverLoggedIn),
                ("sales@example.com", Problem::RoleName),
            ]
        );
        assert!(findings[1].detail.contains("boss@example.org"));
    }
}
