//! An incident put into words for alerts: a one-line subject, a short
//! summary for chat webhooks, and a plain-text body for mail.
//!
//! Everything an incident holds that came from a log (account names,
//! evidence lines, reasons quoting addresses) is attacker-controlled. Every
//! piece goes through [`clean`]: control characters, terminal escapes and bidi
//! overrides become visible escapes (so no CR/LF can reach a mail header or
//! start a new line in the body), and lengths are capped (so one hostile
//! 2 KiB account name cannot bury the alert).

use std::fmt::Write;

use mailfuse_core::text::sanitize;
use mailfuse_detect::{GuessingPattern, Incident, IncidentKind};

use crate::capability::Fault;

/// Longest subject, in characters (RFC 5322 recommends lines under 78; mail
/// clients show about 100; the rest is in the body).
const SUBJECT_MAX: usize = 160;
/// Longest account name, host or action shown.
const NAME_MAX: usize = 120;
/// Longest reason shown.
const REASON_MAX: usize = 400;
/// Longest evidence line shown: enough for any real log line's key part.
const EVIDENCE_MAX: usize = 600;
/// How many items of a list (reasons, evidence, accounts, IPs) are shown.
const LIST_MAX: usize = 20;
/// How many reasons the chat summary shows.
const SUMMARY_REASONS: usize = 3;

/// An incident in words, every piece already made safe to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertText {
    /// One line, no control characters: safe as a mail `Subject:`.
    pub subject: String,
    /// A few lines for chat: the subject, the server, the main reasons and
    /// what was done.
    pub summary: String,
    /// The whole story for mail: what, when, figures, why, evidence, actions.
    pub body: String,
}

/// Untrusted text made inert (see [`sanitize`]) and cut to `max` characters,
/// with `…` marking the cut.
pub fn clean(text: &str, max: usize) -> String {
    let safe = sanitize(text.as_bytes());
    match safe.char_indices().nth(max) {
        Some((cut, _)) => {
            let mut short = safe.get(..cut).unwrap_or_default().to_string();
            short.push('…');
            short
        }
        None => safe,
    }
}

/// Words for `incident` seen on the mail server `host`; `done` lists what
/// mailfuse did about it (e.g. "account disabled in Kerio"). With nothing
/// done, the body suggests what the admin should do.
pub fn compose(incident: &Incident, host: &str, done: &[String]) -> AlertText {
    let subject = clean(&headline(incident), SUBJECT_MAX);
    let host = clean(host, NAME_MAX);
    let actions = actions(incident, done);
    AlertText {
        summary: summary(incident, &subject, &host, &actions),
        body: body(incident, &host, &actions),
        subject,
    }
}

/// Words for `fault`, a fault of mailfuse itself on `host`.
pub fn compose_fault(fault: &Fault, host: &str) -> AlertText {
    let host = clean(host, NAME_MAX);
    let subject = clean(
        &format!("mailfuse on {host}: {}", fault.summary),
        SUBJECT_MAX,
    );
    let details: Vec<String> = fault
        .details
        .lines()
        .take(LIST_MAX)
        .map(|line| clean(line, EVIDENCE_MAX))
        .collect();
    let details = details.join("\n");
    AlertText {
        summary: format!("{subject}\n{details}"),
        body: format!("{subject}\n\n{details}\n"),
        subject,
    }
}

/// The subject before cleaning: who does what, with the figure that says
/// how bad.
fn headline(incident: &Incident) -> String {
    match incident.kind {
        IncidentKind::CompromisedAccount => format!(
            "mailfuse: {} is sending spam from {} (score {})",
            incident.account.as_deref().unwrap_or("an account"),
            who(incident),
            incident.score
        ),
        IncidentKind::SuspiciousActivity => format!(
            "mailfuse: mail of {} from {} looks suspicious (score {}, {} confidence)",
            incident.account.as_deref().unwrap_or("an account"),
            who(incident),
            incident.score,
            incident.confidence.name()
        ),
        IncidentKind::MisconfiguredClient => format!(
            "mailfuse: a mail client of {} at {} keeps failing with an old password ({} failed logins)",
            incident.account.as_deref().unwrap_or("an account"),
            who(incident),
            incident.failed_logins
        ),
        IncidentKind::LimitExceeded => format!(
            "mailfuse: {} went over its sending limit ({} messages, {} recipients)",
            incident.account.as_deref().unwrap_or("an account"),
            incident.messages,
            incident.recipients
        ),
        IncidentKind::PasswordGuessing => match incident.succeeded_as.as_slice() {
            [] => format!(
                "mailfuse: {} is guessing passwords ({} failed logins)",
                who(incident),
                incident.failed_logins
            ),
            [first, rest @ ..] => format!(
                "mailfuse: {} guessed the password of {}{} ({} failed logins)",
                who(incident),
                first,
                more(rest.len()),
                incident.failed_logins
            ),
        },
    }
}

/// Who guessed: the IP or network, or for guessing spread over many
/// networks its shape (`a brute force at jdoe@example.com from 60 IPs`).
fn who(incident: &Incident) -> String {
    match (incident.pattern, &incident.network, incident.ips.as_slice()) {
        (Some(GuessingPattern::Campaign | GuessingPattern::CredentialStuffing), _, ips) => format!(
            "a {} from {} IPs",
            incident.title().to_lowercase(),
            ips.len()
        ),
        (Some(GuessingPattern::BruteForce), _, _) => {
            format!("a brute force {}", incident.subject())
        }
        (_, Some(network), ips) => format!("network {network} ({} IPs)", ips.len()),
        (_, None, []) => "a host with no IP in the log".to_string(),
        (_, None, [first, rest @ ..]) => format!("{first}{}", more(rest.len())),
    }
}

fn more(count: usize) -> String {
    match count {
        0 => String::new(),
        n => format!(" and {n} more"),
    }
}

/// What was done, cleaned; or what the admin should do, when nothing was.
fn actions(incident: &Incident, done: &[String]) -> Actions {
    if !done.is_empty() {
        return Actions::Done(done.iter().map(|a| clean(a, NAME_MAX)).collect());
    }
    // Never advise blocking what the safety rules protect (this server,
    // private networks…): `not_blocked` says why instead.
    let any_to_block = !incident.blockable_ips().is_empty();
    let mut suggested = match incident.kind {
        IncidentKind::CompromisedAccount => vec![
            "disable the account or change its password, then tell its owner",
            "hold or delete the spam still in the queue",
            "check the account for forwarding rules and app passwords the attacker added",
            "block the sending IPs",
        ],
        IncidentKind::SuspiciousActivity => vec![
            "ask the account's owner whether this mail from these IPs is theirs",
            "if it is not, change the password and hold the queued messages",
        ],
        IncidentKind::MisconfiguredClient => vec![
            "ask the account's owner to update the password saved in the mail client at this IP",
        ],
        IncidentKind::LimitExceeded => vec![
            "ask the account's owner whether this mail is theirs",
            "if it is not, change the password and hold the queued messages",
            "if it is (a mailing), raise the account's limit with a [[limits.override]]",
        ],
        IncidentKind::PasswordGuessing if !incident.succeeded_as.is_empty() => vec![
            "change the passwords of the accounts the guesser got into",
            "block the guessing IPs",
        ],
        IncidentKind::PasswordGuessing => vec![
            "block the guessing IPs",
            "check that the accounts tried have strong passwords",
        ],
    };
    if !any_to_block {
        suggested.retain(|step| !step.starts_with("block "));
    }
    Actions::Suggested(suggested.into_iter().map(String::from).collect())
}

enum Actions {
    Done(Vec<String>),
    Suggested(Vec<String>),
}

impl Actions {
    fn heading(&self) -> &'static str {
        match self {
            Actions::Done(_) => "What mailfuse did",
            Actions::Suggested(_) => "mailfuse did nothing; suggested",
        }
    }

    fn items(&self) -> &[String] {
        match self {
            Actions::Done(items) | Actions::Suggested(items) => items,
        }
    }
}

fn summary(incident: &Incident, subject: &str, host: &str, actions: &Actions) -> String {
    let mut text = format!(
        "{subject}\nserver: {host}, detected {}",
        incident.detected_at
    );
    for reason in incident.reasons.iter().take(SUMMARY_REASONS) {
        let _ = write!(text, "\n- {}", clean(reason, REASON_MAX));
    }
    for why in incident.not_blocked() {
        let _ = write!(text, "\n- {}", clean(&why, REASON_MAX));
    }
    let _ = write!(
        text,
        "\n{}: {}",
        actions.heading(),
        actions.items().join("; ")
    );
    text
}

fn body(incident: &Incident, host: &str, actions: &Actions) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "mailfuse found an incident on {host}.\n");
    let _ = writeln!(text, "{}\n", what_happened(incident));
    let _ = writeln!(
        text,
        "Score:       {}/100 ({} confidence)",
        incident.score,
        incident.confidence.name()
    );
    let _ = writeln!(text, "First seen:  {}", incident.first_seen);
    let _ = writeln!(text, "Last seen:   {}", incident.last_seen);
    let _ = writeln!(text, "Detected at: {}", incident.detected_at);
    let _ = writeln!(text, "IPs:         {}", listed(&incident.ips));
    if let Some(network) = &incident.network {
        let _ = writeln!(text, "Network:     {network}");
    }
    if !incident.hosts.is_empty() {
        let hosts: Vec<String> = incident.hosts.iter().map(|h| clean(h, NAME_MAX)).collect();
        let _ = writeln!(text, "Seen on:     {}", hosts.join(", "));
    }
    if incident.messages > 0 {
        let _ = writeln!(
            text,
            "Messages:    {} to {} recipients ({} external, {} refused permanently)",
            incident.messages,
            incident.recipients,
            incident.external_recipients,
            incident.failed_recipients
        );
    }
    if incident.failed_logins > 0 {
        let _ = writeln!(text, "Failed logins: {}", incident.failed_logins);
    }
    if incident.accounts_tried_total > 0 {
        let shown: Vec<String> = incident
            .accounts_tried
            .iter()
            .map(|a| clean(a, NAME_MAX))
            .collect();
        let _ = writeln!(
            text,
            "Accounts tried: {}{} ({})",
            incident.accounts_tried_bound(),
            incident.accounts_tried_total,
            listed(&shown)
        );
    }
    if !incident.succeeded_as.is_empty() {
        let who: Vec<String> = incident
            .succeeded_as
            .iter()
            .map(|a| clean(a, NAME_MAX))
            .collect();
        let _ = writeln!(text, "LOGGED IN AS: {}", listed(&who));
    }
    section(&mut text, "Why", &incident.reasons, REASON_MAX);
    section(&mut text, "To confirm", &incident.to_confirm, REASON_MAX);
    section(
        &mut text,
        "Evidence (log lines)",
        &incident.evidence,
        EVIDENCE_MAX,
    );
    section(&mut text, actions.heading(), actions.items(), NAME_MAX);
    section(
        &mut text,
        "Not blocked",
        &incident.not_blocked(),
        REASON_MAX,
    );
    text
}

/// One sentence on what is going on.
fn what_happened(incident: &Incident) -> String {
    let account = clean(
        incident.account.as_deref().unwrap_or("an account"),
        NAME_MAX,
    );
    let who = who(incident);
    match incident.kind {
        IncidentKind::CompromisedAccount => {
            format!("Someone else appears to be sending mail as {account}, from {who}.")
        }
        IncidentKind::SuspiciousActivity => format!(
            "Mail of {account} from {who} shows some marks of a hijack, not enough to lock the account."
        ),
        IncidentKind::MisconfiguredClient => format!(
            "A mail client of {account} at {who} keeps failing to log in with an old password; the account logs in fine from there."
        ),
        IncidentKind::LimitExceeded => {
            format!("{account} sent more than its limit allows, from {who}.")
        }
        IncidentKind::PasswordGuessing => format!(
            "{who} is guessing passwords: {} failed logins.",
            incident.failed_logins
        ),
    }
}

/// Up to [`LIST_MAX`] items, comma-separated, with a count of the rest.
fn listed<T: std::fmt::Display>(items: &[T]) -> String {
    let shown: Vec<String> = items.iter().take(LIST_MAX).map(T::to_string).collect();
    let rest = items.len().saturating_sub(LIST_MAX);
    format!("{}{}", shown.join(", "), more(rest))
}

/// A titled list, one cleaned item per line.
fn section(text: &mut String, title: &str, items: &[String], max: usize) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(text, "\n{title}:");
    for item in items.iter().take(LIST_MAX) {
        let _ = writeln!(text, "  - {}", clean(item, max));
    }
    if items.len() > LIST_MAX {
        let _ = writeln!(text, "  ({} more)", items.len() - LIST_MAX);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mailfuse_core::Timestamp;

    /// A hijacked account as the accounts detector reports it.
    pub(crate) fn hijacked() -> Incident {
        Incident {
            account: Some("sales@example.com".into()),
            ips: vec!["173.16.65.213".parse().unwrap()],
            messages: 120,
            recipients: 4000,
            failed_recipients: 900,
            external_recipients: 3990,
            failed_logins: 12,
            score: 100,
            reasons: vec![
                "new sending IP 173.16.65.213 for an account active since 2024-01-02".into(),
                "900 of 4000 recipients refused permanently (22%)".into(),
            ],
            evidence: vec![
                "[30/Aug/2024 00:10:57] Recv: Queue-ID: 66d1, Service: SMTP, From: <sales@example.com>, To: <a@b.example>, Size: 2120, Sender-Host: 173.16.65.213, User: sales@example.com".into(),
            ],
            ..Incident::new(
                IncidentKind::CompromisedAccount,
                Timestamp(1_725_000_000)..=Timestamp(1_725_003_600),
                Timestamp(1_725_000_600),
            )
        }
    }

    /// Password guessing by one IP.
    pub(crate) fn guessing() -> Incident {
        let hijacked = hijacked();
        Incident {
            ips: vec!["45.155.205.99".parse().unwrap()],
            failed_logins: 380,
            accounts_tried: vec!["admin".into(), "info@example.com".into()],
            accounts_tried_total: 2,
            score: hijacked.score,
            reasons: vec!["380 failed logins in an hour".into()],
            evidence: vec![
                "Aug 30 00:10:57 mail dovecot: auth: sql(admin,45.155.205.99): unknown user".into(),
            ],
            ..Incident::new(
                IncidentKind::PasswordGuessing,
                hijacked.first_seen..=hijacked.last_seen,
                hijacked.detected_at,
            )
        }
    }

    #[test]
    fn the_hosts_that_logged_it_are_named_inert() {
        let mut incident = hijacked();
        assert!(!compose(&incident, "mx", &[]).body.contains("Seen on"));
        incident.hosts = vec!["mx1.example.com".into(), "mx2\nBcc: x".into()];
        let body = compose(&incident, "mx", &[]).body;
        assert!(
            body.contains("Seen on:     mx1.example.com, mx2\\x0aBcc: x"),
            "{body}"
        );
    }

    #[test]
    fn hijack_subject_names_account_ip_and_score() {
        let text = compose(&hijacked(), "mail.example.com", &[]);
        assert_eq!(
            text.subject,
            "mailfuse: sales@example.com is sending spam from 173.16.65.213 (score 100)"
        );
        assert!(text.body.contains("mail.example.com"));
        assert!(text
            .body
            .contains("120 to 4000 recipients (3990 external, 900 refused"));
        assert!(text.body.contains("  - 900 of 4000 recipients refused"));
        assert!(text
            .body
            .contains("Sender-Host: 173.16.65.213, User: sales@example.com"));
        assert!(text.body.contains("suggested:\n  - disable the account"));
    }

    #[test]
    fn a_hijack_through_the_servers_own_webmail_never_advises_blocking_the_server() {
        let mut incident = hijacked();
        incident.ips = vec!["127.0.0.1".parse().unwrap()];
        incident.note_protected(&mailfuse_core::safety::Safety::default());
        let text = compose(&incident, "mail", &[]);
        assert!(!text.body.contains("block the"), "{}", text.body);
        assert!(
            text.body.contains(
                "Not blocked:\n  - 127.0.0.1 is this server (loopback: its webmail, content filter or scripts): not blocked; lock the account instead"
            ),
            "{}",
            text.body
        );
        assert!(text.summary.contains("- 127.0.0.1 is this server"));
        // A guesser on the office network is not advised blocked either.
        let mut guesser = guessing();
        guesser.ips = vec!["192.168.1.20".parse().unwrap()];
        guesser.note_protected(&mailfuse_core::safety::Safety::default());
        let text = compose(&guesser, "mail", &[]);
        assert!(!text.body.contains("block the"), "{}", text.body);
        assert!(text.body.contains(
            "192.168.1.20 is a private address (your own network): not blocked; find the machine on your network that does it"
        ));
        // Of a public and a protected IP, blocking is advised (the public).
        incident.ips.push("173.16.65.213".parse().unwrap());
        incident.note_protected(&mailfuse_core::safety::Safety::default());
        assert!(compose(&incident, "mail", &[])
            .body
            .contains("  - block the sending IPs"));
    }

    #[test]
    fn guessing_subject_counts_failed_logins() {
        let text = compose(
            &guessing(),
            "mail",
            &["45.155.205.99 blocked for 24 h".into()],
        );
        assert_eq!(
            text.subject,
            "mailfuse: 45.155.205.99 is guessing passwords (380 failed logins)"
        );
        assert!(text
            .body
            .contains("Accounts tried: 2 (admin, info@example.com)"));
        assert!(text
            .body
            .contains("What mailfuse did:\n  - 45.155.205.99 blocked for 24 h"));
        assert!(text.summary.contains("- 380 failed logins in an hour"));
        assert!(text
            .summary
            .ends_with("What mailfuse did: 45.155.205.99 blocked for 24 h"));
    }

    #[test]
    fn a_count_past_the_cap_of_names_says_at_least() {
        let mut incident = guessing();
        assert!(compose(&incident, "mail", &[])
            .body
            .contains("Accounts tried: 2 ("));
        incident.accounts_tried_exact = false;
        let text = compose(&incident, "mail", &[]);
        assert!(
            text.body.contains("Accounts tried: at least 2 ("),
            "{}",
            text.body
        );
    }

    #[test]
    fn successful_guess_is_the_headline() {
        let mut incident = guessing();
        incident.succeeded_as = vec!["info@example.com".into(), "admin".into()];
        let text = compose(&incident, "mail", &[]);
        assert_eq!(
            text.subject,
            "mailfuse: 45.155.205.99 guessed the password of info@example.com and 1 more (380 failed logins)"
        );
        assert!(text.body.contains("LOGGED IN AS: info@example.com, admin"));
    }

    #[test]
    fn distributed_guessing_names_the_network() {
        let mut incident = guessing();
        incident.ips = (1..=12)
            .map(|n| format!("203.0.113.{n}").parse().unwrap())
            .collect();
        incident.network = Some("203.0.113.0/24".parse().unwrap());
        let text = compose(&incident, "mail", &[]);
        assert!(text
            .subject
            .starts_with("mailfuse: network 203.0.113.0/24 (12 IPs) is guessing"));
        assert!(text.body.contains("Network:     203.0.113.0/24"));
    }

    #[test]
    fn hostile_text_cannot_break_the_subject_or_keep_escapes() {
        let mut incident = hijacked();
        incident.account = Some("x@y\r\nBcc: victim@x\x1b[2J\u{202e}".into());
        incident.evidence = vec!["line\r\nBcc: victim@x\x1b]0;pwned\x07".into()];
        incident.reasons = vec!["\x1b[31mred".into()];
        let text = compose(&incident, "mail\nX-Evil: 1", &["done\r\n.\r\nQUIT".into()]);
        assert!(!text.subject.contains(['\r', '\n', '\x1b']));
        assert!(text
            .subject
            .contains("x@y\\x0d\\x0aBcc: victim@x\\x1b[2J\\u{202e}"));
        for part in [&text.body, &text.summary] {
            assert!(!part.contains(['\r', '\x1b', '\x07', '\u{202e}']), "{part}");
            assert!(!part
                .lines()
                .any(|l| l.starts_with("Bcc:") || l.starts_with("X-Evil")));
            assert!(!part.lines().any(|l| l == "." || l == "QUIT"));
        }
        assert!(text
            .body
            .contains("line\\x0d\\x0aBcc: victim@x\\x1b]0;pwned\\x07"));
    }

    #[test]
    fn huge_values_are_capped() {
        let mut incident = hijacked();
        incident.account = Some("a".repeat(100_000));
        incident.evidence = vec!["e".repeat(2048); 500];
        incident.reasons = vec!["r".repeat(10_000); 100];
        let text = compose(&incident, "mail", &[]);
        assert!(text.subject.chars().count() <= SUBJECT_MAX + 1);
        assert!(text.subject.ends_with('…'));
        assert!(text.body.len() < 40_000, "{}", text.body.len());
        assert!(text.body.contains("  (480 more)"));
    }

    #[test]
    fn a_fault_reads_in_one_subject_line_and_a_body_saying_what_to_do() {
        let fault = Fault {
            kind: "state_not_saved",
            summary: "the state cannot be saved".into(),
            details: "Saving failed: disk full.\nFree space.".into(),
        };
        let text = compose_fault(&fault, "mx1\r\nBcc: x@y");
        assert!(
            text.subject.starts_with("mailfuse on mx1") && !text.subject.contains('\n'),
            "{}",
            text.subject
        );
        assert!(
            text.subject.ends_with(": the state cannot be saved"),
            "{}",
            text.subject
        );
        assert!(
            text.body.contains("disk full.\nFree space."),
            "{}",
            text.body
        );
    }

    #[test]
    fn clean_cuts_on_character_boundaries() {
        assert_eq!(clean("žluťoučký", 4), "žluť…");
        assert_eq!(clean("kůň", 3), "kůň");
        assert_eq!(clean("", 3), "");
        assert_eq!(clean("a\u{0}b", 10), "a\\x00b");
    }

    #[test]
    fn missing_account_and_ips_still_read() {
        let mut incident = hijacked();
        incident.account = None;
        incident.ips.clear();
        let text = compose(&incident, "", &[]);
        assert_eq!(
            text.subject,
            "mailfuse: an account is sending spam from a host with no IP in the log (score 100)"
        );
    }
}
