//! End to end on logs written by a real Postfix 3.7 with Dovecot SASL.
//!
//! The harness (`support/`) starts, in a fresh temp dir `mailfuse-e2e-*`:
//! - Postfix with its own `config_directory` (`postfix/main.cf`,
//!   `postfix/master.cf`), `queue/` and `data/`, logging through postlogd
//!   to `postfix.log`; a SASL submission service (`postfix/submission`) on
//!   a free loopback port; loopback is not in `mynetworks`, so relaying
//!   needs a login; everything relays to `[127.0.0.1]:<sink port>`;
//! - Dovecot serving SASL auth to Postfix from a passwd-file
//!   (`dovecot/`), logging to `dovecot.log` (`auth_verbose`);
//! - a relay sink in this process, refusing `nobody…` recipients with
//!   `550 5.1.1` and remembering the rest.
//!
//! swaks plays the users (alice, bob, sales from 127.0.0.1) and the
//! attacker (127.66.6.6: a dozen wrong passwords for sales, the right one,
//! then spam with a forged envelope sender to many unknown recipients).
//! The test then checks the servers logged what it did, compares
//! `mailfuse scan`'s verdict and totals with what happened and with
//! `pflogsumm`'s totals.
//!
//! Needs root and the packages `scripts/install-test-deps` installs (the
//! test fails, naming the script, without them). Servers stop even when
//! the test fails. The temp dir is removed when the test passes and kept,
//! its path printed, when it fails; set `MAILFUSE_E2E_KEEP=1` to keep it
//! anyway (`cargo test -p mailfuse --test postfix_e2e -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use support::postfix::Options;
use support::smtp_sink::is_unknown_user;
use support::{tool, Lab};

const ALICE: (&str, &str) = ("alice@example.test", "Alice-Spring-2024");
const BOB: (&str, &str) = ("bob@example.test", "Bob-Correct-Horse");
const SALES: (&str, &str) = ("sales@example.test", "S4les-Real!pass");
/// Where the users usually log in from.
const USUAL_IP: &str = "127.0.0.1";
const ATTACKER_IP: &str = "127.66.6.6";
const FORGED_FROM: &str = "admin@redbullcarwrap.example";
const GUESSES: usize = 12;
const SPAM_MESSAGES: usize = 25;

/// What the scenario did, to compare the logs and mailfuse with.
struct Story {
    /// Messages Postfix accepted from the clients.
    submitted: usize,
    /// Queue id of the first message the attacker sent.
    first_hijack_queue_id: String,
}

fn to(addresses: &[&str]) -> Vec<String> {
    addresses.iter().map(|a| a.to_string()).collect()
}

fn play_the_scenario(lab: &Lab) -> Story {
    let mut submitted = 0;
    let mut send = |ip: &str, (user, password): (&str, &str), from: &str, rcpts: Vec<String>| {
        submitted += 1;
        lab.client().send(ip, user, password, from, &rcpts)
    };

    // An ordinary morning.
    send(USUAL_IP, ALICE, ALICE.0, to(&["bob@example.test"]));
    send(
        USUAL_IP,
        ALICE,
        ALICE.0,
        to(&[
            "carol@partner.example",
            "dave@partner.example",
            "erin@supplier.example",
        ]),
    );
    send(USUAL_IP, SALES, SALES.0, to(&["orders@customer.example"]));
    // bob mistypes his password twice: not an incident.
    lab.client()
        .fail_login(USUAL_IP, BOB.0, "Bob-Correct-Hrose");
    lab.client()
        .fail_login(USUAL_IP, BOB.0, "bob-correct-horse");
    send(
        USUAL_IP,
        BOB,
        BOB.0,
        to(&["alice@example.test", "grace@partner.example"]),
    );
    send(USUAL_IP, BOB, BOB.0, to(&["heidi@customer.example"]));
    send(USUAL_IP, ALICE, ALICE.0, to(&["frank@partner.example"]));

    // The attacker guesses sales's password, finds it, and spams.
    lab.client().guess_passwords(ATTACKER_IP, SALES.0, GUESSES);
    let spam_to = |i: usize| {
        // Two in three messages name an unknown user (`is_multiple_of`
        // would need Rust 1.87; the workspace supports 1.85).
        let second = match i % 3 {
            0 => format!("lead{i}b@buyers{}.example", i % 5),
            _ => format!("nobody{i}@buyers{}.example", (i + 1) % 5),
        };
        vec![format!("lead{i}@buyers{}.example", i % 5), second]
    };
    let first_hijack_queue_id = send(ATTACKER_IP, SALES, FORGED_FROM, spam_to(0));
    for i in 1..SPAM_MESSAGES {
        send(ATTACKER_IP, SALES, FORGED_FROM, spam_to(i));
    }
    Story {
        submitted,
        first_hijack_queue_id,
    }
}

/// pflogsumm's "Grand Totals" for messages.
#[derive(Debug)]
struct GrandTotals {
    received: u64,
    delivered: u64,
    deferred: u64,
    /// Deferral lines, from "(N deferrals)"; 0 when absent.
    deferrals: u64,
    bounced: u64,
}

fn pflogsumm(log: &Path) -> (GrandTotals, String) {
    let output = Command::new(tool("pflogsumm"))
        .arg(log)
        .stdin(Stdio::null())
        .output()
        .expect("pflogsumm runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "pflogsumm failed:\n{text}");
    let section = text
        .split("Grand Totals")
        .nth(1)
        .and_then(|rest| rest.split("Per-Hour").next())
        .unwrap_or_else(|| panic!("no Grand Totals in pflogsumm's output:\n{text}"));
    let total = |label: &str| -> u64 {
        section
            .lines()
            .find_map(|line| {
                let mut words = line.split_whitespace();
                let count = words.next()?;
                (words.next()? == label).then(|| {
                    count.parse().unwrap_or_else(|_| {
                        panic!("pflogsumm's {label} is not a plain count: {line:?}")
                    })
                })
            })
            .unwrap_or_else(|| panic!("no `{label}` in pflogsumm's Grand Totals:\n{section}"))
    };
    let deferrals = section
        .split_once(" deferrals)")
        .and_then(|(before, _)| before.rsplit('(').next()?.trim().parse().ok())
        .unwrap_or(0);
    let totals = GrandTotals {
        received: total("received"),
        delivered: total("delivered"),
        deferred: total("deferred"),
        deferrals,
        bounced: total("bounced"),
    };
    (totals, text)
}

fn lines_with<'a>(log: &'a str, parts: &'a [&str]) -> impl Iterator<Item = &'a str> {
    log.lines()
        .filter(move |line| parts.iter().all(|part| line.contains(part)))
}

fn mailfuse_scan(postfix_log: &Path, dovecot_log: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(["scan", "--format", "json"])
        .arg(postfix_log)
        .arg(dovecot_log)
        .stdin(Stdio::null())
        .output()
        .expect("mailfuse runs")
}

#[test]
fn real_postfix_and_dovecot_logs_show_the_hijacked_account_and_the_guesser() {
    let mut lab = Lab::start(&[ALICE, BOB, SALES]);
    let story = play_the_scenario(&lab);
    lab.finish();
    let facts = the_servers_logged_the_story(&lab, &story);
    let totals = pflogsumm_agrees(&lab, &story, &facts);
    mailfuse_finds_the_story(&lab, &story, &facts, &totals);
}

/// Behind a loopback content filter that re-injects every message (as
/// amavis does), the hijacked account still owns the bounces that come
/// after the filter, and each message counts once.
#[test]
fn behind_a_content_filter_the_hijacks_bounces_are_its_own() {
    let options = Options {
        content_filter: true,
        ..Options::default()
    };
    let mut lab = Lab::start_with(&[ALICE, SALES], &options);
    let (alice, password) = ALICE;
    lab.client().send(
        USUAL_IP,
        alice,
        password,
        alice,
        &to(&["bob@partner.example"]),
    );
    lab.client().guess_passwords(ATTACKER_IP, SALES.0, GUESSES);
    const SPAM: usize = 12;
    for i in 0..SPAM {
        let rcpts = vec![format!("nobody{i}@buyers.example")];
        lab.client()
            .send(ATTACKER_IP, SALES.0, SALES.1, FORGED_FROM, &rcpts);
    }
    lab.finish();
    let log = std::fs::read_to_string(lab.postfix_log()).unwrap();
    let hops = lines_with(&log, &["postfix/scan/smtp[", "queued as"]).count();
    assert_eq!(
        hops,
        SPAM + 1,
        "every message went through the filter:\n{log}"
    );
    let refused = lines_with(&log, &["status=bounced", "550 5.1.1"]).count();
    assert_eq!(
        refused, SPAM,
        "the sink refused each spam after the filter:\n{log}"
    );

    let output = mailfuse_scan(lab.postfix_log(), lab.dovecot_log());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let sales = report["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["account"] == SALES.0)
        .unwrap_or_else(|| panic!("no row for sales: {report:#}\n{log}"));
    assert_eq!(sales["messages"], SPAM as u64, "{sales:#}\n{log}");
    assert_eq!(sales["failed_recipients"], SPAM as u64, "{sales:#}\n{log}");
    let stats = &report["stats"];
    // pflogsumm counts the copies as received too, and the hops as
    // delivered: mailfuse counts each message once, the hop as none.
    assert_eq!(stats["messages"], SPAM as u64 + 1, "{stats:#}");
    assert_eq!(stats["failed"], SPAM as u64, "{stats:#}");
    assert_eq!(
        stats["delivered"],
        1 + SPAM as u64,
        "alice's + the notices: {stats:#}"
    );
}

/// Counts from the Postfix log, checked against what the sink saw.
struct LogFacts {
    /// `status=sent` lines.
    sent: usize,
    /// `status=bounced` lines with the sink's 550 5.1.1.
    refused: usize,
    /// Bounce messages Postfix generated (to the forged sender).
    bounce_notices: usize,
    /// Names the log files, for failure messages.
    where_: String,
}

fn the_servers_logged_the_story(lab: &Lab, story: &Story) -> LogFacts {
    let postfix_log = std::fs::read_to_string(lab.postfix_log()).unwrap();
    let dovecot_log = std::fs::read_to_string(lab.dovecot_log()).unwrap();
    let where_ = format!(
        "logs: {} and {}",
        lab.postfix_log().display(),
        lab.dovecot_log().display()
    );
    let count = |log: &str, parts: &[&str]| lines_with(log, parts).count();

    let hijacked_login = format!(
        "[{ATTACKER_IP}], sasl_method=LOGIN, sasl_username={}",
        SALES.0
    );
    assert_eq!(
        count(
            &postfix_log,
            &[
                &story.first_hijack_queue_id,
                "postfix/submission/smtpd",
                &hijacked_login
            ]
        ),
        1,
        "the hijacked login is in the log ({where_})"
    );
    let failed_logins = |ip: &str| {
        count(
            &postfix_log,
            &[&format!("[{ip}]: SASL LOGIN authentication failed")],
        )
    };
    assert_eq!(failed_logins(ATTACKER_IP), GUESSES, "{where_}");
    assert_eq!(failed_logins(USUAL_IP), 2, "bob's typos ({where_})");
    let mismatch = format!("passwd-file({},{ATTACKER_IP}): Password mismatch", SALES.0);
    assert_eq!(count(&dovecot_log, &[&mismatch]), GUESSES, "{where_}");

    let sink = lab.sink.log();
    let refused = count(&postfix_log, &["status=bounced", "550 5.1.1"]);
    let spam_recipients = 2 * SPAM_MESSAGES;
    assert!(
        refused * 5 > spam_recipients,
        "over 20% of the spam's recipients are refused: {refused} of {spam_recipients} ({where_})"
    );
    assert!(sink.refused.iter().all(|r| is_unknown_user(r)));
    assert_eq!(sink.refused.len(), refused, "{where_}");
    let sent = count(&postfix_log, &["status=sent"]);
    assert_eq!(sink.delivered_recipients(), sent, "{where_}");
    let bounce_notices = count(&postfix_log, &["sender non-delivery notification"]);
    let bounces_to_forger = sink
        .messages
        .iter()
        .filter(|m| m.from.is_empty() && m.recipients == [FORGED_FROM])
        .count();
    assert!(
        bounce_notices > 0 && bounces_to_forger == bounce_notices,
        "the spam's bounces went back to the forged sender: {bounces_to_forger} of \
         {bounce_notices} ({where_})"
    );
    LogFacts {
        sent,
        refused,
        bounce_notices,
        where_,
    }
}

/// pflogsumm's totals match what happened; returns them.
fn pflogsumm_agrees(lab: &Lab, story: &Story, facts: &LogFacts) -> GrandTotals {
    let (totals, text) = pflogsumm(lab.postfix_log());
    let context = format!("{totals:?} ({})\n{text}", facts.where_);
    assert_eq!(totals.received, story.submitted as u64, "{context}");
    assert_eq!(totals.delivered, facts.sent as u64, "{context}");
    assert_eq!(totals.bounced, facts.refused as u64, "{context}");
    assert_eq!((totals.deferred, totals.deferrals), (0, 0), "{context}");
    totals
}

fn mailfuse_finds_the_story(lab: &Lab, story: &Story, facts: &LogFacts, totals: &GrandTotals) {
    let output = mailfuse_scan(lab.postfix_log(), lab.dovecot_log());
    let context = format!(
        "{}\nmailfuse exit {}\nstdout:\n{}\nstderr:\n{}",
        facts.where_,
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "incidents found: {context}");
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("mailfuse's output is not JSON ({e}): {context}"));
    let incidents = report["incidents"].as_array().expect("incidents array");
    let names_ip = |incident: &Value, ip: &str| {
        incident["ips"]
            .as_array()
            .is_some_and(|ips| ips.iter().any(|v| v == ip))
    };

    let hijack = incidents
        .iter()
        .find(|i| i["kind"] == "compromised_account" && i["account"] == SALES.0)
        .unwrap_or_else(|| panic!("{} is found hijacked: {context}", SALES.0));
    assert!(names_ip(hijack, ATTACKER_IP), "{context}");
    assert!(
        hijack["failed_recipients"].as_u64().unwrap_or(0) > 0,
        "{context}"
    );
    let first_evidence = hijack["evidence"][0].as_str().unwrap_or("");
    assert!(
        first_evidence.contains(&story.first_hijack_queue_id)
            && (first_evidence.contains("/smtpd[") || first_evidence.contains("/qmgr[")),
        "the evidence starts with the first spam message {}: {context}",
        story.first_hijack_queue_id
    );

    let guessing = incidents
        .iter()
        .find(|i| i["kind"] == "password_guessing" && names_ip(i, ATTACKER_IP))
        .unwrap_or_else(|| panic!("{ATTACKER_IP} is found guessing: {context}"));
    assert!(
        guessing["succeeded_as"]
            .as_array()
            .is_some_and(|accounts| accounts.iter().any(|a| a == SALES.0)),
        "the guess that worked is named: {context}"
    );

    for incident in incidents {
        let named = ["account", "ips", "accounts_tried", "succeeded_as"]
            .map(|field| incident[field].to_string())
            .join(" ");
        for innocent in [ALICE.0, BOB.0, USUAL_IP] {
            assert!(
                !named.contains(innocent),
                "{innocent} is innocent, yet named in {incident:#}: {context}"
            );
        }
    }

    // Totals match pflogsumm's. Both count as received only what smtpd or
    // pickup took in: not the bounce notices Postfix wrote itself.
    // pflogsumm's "deferred" counts messages, mailfuse's deferral lines like
    // pflogsumm's "deferrals".
    let stats = &report["stats"];
    let stat = |name: &str| stats[name].as_u64().unwrap_or(u64::MAX);
    let both = format!(
        "{totals:?}, {} bounce notices\n{context}",
        facts.bounce_notices
    );
    assert_eq!(stat("messages"), totals.received, "{both}");
    assert_eq!(stat("delivered"), totals.delivered, "{both}");
    assert_eq!(stat("failed"), totals.bounced, "{both}");
    assert_eq!(stat("deferred"), totals.deferrals, "{both}");
}
