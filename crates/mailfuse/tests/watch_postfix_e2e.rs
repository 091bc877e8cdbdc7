//! `mailfuse watch` stops a hijacked account on a real Postfix 3.7 with
//! Dovecot SASL, while the attack goes on.
//!
//! The harness (`support/`, see `postfix_e2e.rs`) starts, in a fresh temp
//! dir `mailfuse-e2e-*`, Postfix with a SASL submission service on a free
//! loopback port (Dovecot checks the passwords) and logging to
//! `postfix.log` in UTC, set up as `mailfuse watch`'s Postfix action
//! expects:
//! - `smtpd_relay_restrictions = check_sasl_access hash:postfix/mailfuse_locked,
//!   permit_sasl_authenticated, reject` (the map created empty);
//! - `defer_transports = smtp`: relayed mail stays queued, so the spam
//!   accepted before the lock is still there to be held;
//! - a virtual mailbox `admin@admin.test` (Maildir under `mail/`) and a
//!   plain smtpd on another free loopback port taking mail for it, where
//!   watch mails its alert.
//!
//! The test writes `mailfuse.toml` (watch follows `postfix.log`, state in
//! `state.db`; `[actions.postfix]` locks and holds, `[actions.email]`
//! alerts the admin) and starts `mailfuse watch` (its log in `watch.log`).
//! swaks then plays alice (ordinary mail from 127.0.0.1) and the attacker
//! (127.66.6.6: a dozen wrong passwords for sales, the right one, then a
//! burst of one-message spam runs with a forged sender). It counts the spam
//! Postfix accepted before it refused sales (goal: at most 25), and checks
//! that sales is locked in mailfuse's state and in Postfix, that the admin
//! got one alert, that the accepted spam sits in the hold queue (alice's
//! mail does not), and that `mailfuse unlock` lets sales send again.
//!
//! Needs root and `scripts/install-test-deps`, like `postfix_e2e.rs`.
//! Postfix, Dovecot and watch stop even when the test fails; the lab's dir
//! is kept (path printed) when it fails or `MAILFUSE_E2E_KEEP=1` is set
//! (`cargo test -p mailfuse --test watch_postfix_e2e -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::postfix::{LocalMailboxes, Options, Queued};
use support::swaks::Submission;
use support::watch::{locked_accounts, status, Watch};
use support::{free_port, mailfuse, try_wait_until, Lab};

const ALICE: (&str, &str) = ("alice@example.test", "Alice-Spring-2024");
const SALES: (&str, &str) = ("sales@example.test", "S4les-Real!pass");
const ADMIN: &str = "admin@admin.test";
const USUAL_IP: &str = "127.0.0.1";
const ATTACKER_IP: &str = "127.66.6.6";
const FORGED_FROM: &str = "admin@redbullcarwrap.example";
const GUESSES: usize = 12;
const SPAM_MESSAGES: usize = 60;
/// The most spam messages Postfix may accept before the lock stops them.
const MOST_ACCEPTED: usize = 25;
/// How long watch may take to act once the spam is in the log.
const ACT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where watch's configuration and log are.
struct Setup {
    config: PathBuf,
    watch_log: PathBuf,
}

fn write_config(lab: &Lab, alerts_port: u16) -> Setup {
    let postfix = lab.postfix();
    let config = lab.dir().join("mailfuse.toml");
    fs::write(
        &config,
        format!(
            r#"[watch]
logs = ["{log}"]
state = "{state}"
poll_ms = 100
save_every_secs = 1
timezone = "UTC"
hostname = "mail.example.test"

[actions]
act_within = "1h"

[actions.postfix]
config_directory = "{config_dir}"
lock_map = "{lock_map}"
map_type = "hash"
hold = true

[actions.email]
server = "127.0.0.1"
port = {alerts_port}
security = "none"
from = "mailfuse@mail.example.test"
to = ["{ADMIN}"]
"#,
            log = lab.postfix_log().display(),
            state = lab.dir().join("state.db").display(),
            config_dir = postfix.config_dir().display(),
            lock_map = postfix.lock_map().display(),
        ),
    )
    .unwrap();
    Setup {
        config,
        watch_log: lab.dir().join("watch.log"),
    }
}

/// The `Subject:` of a mail file, unfolded.
fn subject(mail: &Path) -> String {
    let text = fs::read_to_string(mail).unwrap_or_default();
    let headers = text.split("\n\n").next().unwrap_or("").replace("\r", "");
    let unfolded = headers.replace("\n ", " ").replace("\n\t", " ");
    unfolded
        .lines()
        .find_map(|line| line.strip_prefix("Subject: "))
        .unwrap_or("")
        .to_string()
}

/// Subjects of the mails in a Maildir's `new/`.
fn subjects(new: &Path) -> Vec<String> {
    fs::read_dir(new)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| subject(&entry.path()))
        .collect()
}

fn spam_to(i: usize) -> Vec<String> {
    // Two in three messages name an unknown user, as spam lists do.
    let second = match i % 3 {
        0 => format!("lead{i}b@buyers{}.example", i % 5),
        _ => format!("nobody{i}@buyers{}.example", (i + 1) % 5),
    };
    vec![format!("lead{i}@buyers{}.example", i % 5), second]
}

fn queue_name<'q>(queue: &'q [Queued], id: &str) -> Option<&'q str> {
    queue
        .iter()
        .find(|q| q.queue_id == id)
        .map(|q| q.queue_name.as_str())
}

#[test]
fn watch_locks_the_hijacked_account_on_a_real_postfix_holds_its_spam_and_alerts() {
    let started = Instant::now();
    let alerts_port = free_port();
    let options = Options {
        lock_map: true,
        local_mailboxes: Some(LocalMailboxes {
            addresses: vec![ADMIN.to_string()],
            port: alerts_port,
        }),
        defer_relay: true,
        utc_log: true,
        ..Options::default()
    };
    let lab = Lab::start_with(&[ALICE, SALES], &options);
    let setup = write_config(&lab, alerts_port);
    let config = setup.config.as_path();
    let watch = Watch::start(config, &setup.watch_log);

    // An ordinary morning, then the attack.
    let alice_mail = lab.client().send(
        USUAL_IP,
        ALICE.0,
        ALICE.1,
        ALICE.0,
        &["carol@partner.example".to_string()],
    );
    lab.client().guess_passwords(ATTACKER_IP, SALES.0, GUESSES);
    let burst: Vec<Submission> = (0..SPAM_MESSAGES)
        .map(|i| {
            lab.client()
                .submit(ATTACKER_IP, SALES.0, SALES.1, FORGED_FROM, &spam_to(i))
        })
        .collect();
    let accepted: Vec<&str> = burst
        .iter()
        .filter_map(|s| match s {
            Submission::Accepted(id) => Some(id.as_str()),
            Submission::Refused(_) => None,
        })
        .collect();
    println!(
        "spam accepted before the lock: {} of {SPAM_MESSAGES}",
        accepted.len()
    );
    let where_ = format!(
        "lab: {}, watch's log: {}",
        lab.dir().display(),
        setup.watch_log.display()
    );

    // mailfuse's state: sales locked, the incident recorded.
    let mut last_status = Value::Null;
    let locked = try_wait_until(ACT_TIMEOUT, || {
        last_status = status(config).unwrap_or(Value::Null);
        locked_accounts(&last_status).iter().any(|a| a == SALES.0)
    });
    assert!(
        locked,
        "watch locks {}: {last_status:#} ({where_})",
        SALES.0
    );
    let hijack = last_status["incidents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["kind"] == "compromised_account" && i["subject"] == SALES.0);
    assert!(
        hijack.is_some(),
        "the hijack is recorded: {last_status:#} ({where_})"
    );

    // The admin's alert, delivered by the same Postfix. (The guessing
    // incident's alert trips before the right password: it names the IP.)
    let new_mail = lab.postfix().maildir_new(ADMIN);
    let naming_sales = |subjects: Vec<String>| -> Vec<String> {
        subjects
            .into_iter()
            .filter(|s| s.contains(SALES.0))
            .collect()
    };
    let arrived = try_wait_until(ACT_TIMEOUT, || {
        !naming_sales(subjects(&new_mail)).is_empty()
    });
    assert!(
        arrived,
        "the alert arrives in {} ({where_})",
        new_mail.display()
    );
    let alerts = naming_sales(subjects(&new_mail));
    assert!(
        alerts.len() == 1 && alerts[0].contains("is sending spam"),
        "one alert names {}, the hijack's: {alerts:?} of {:?} ({where_})",
        SALES.0,
        subjects(&new_mail)
    );

    // Postfix refused the rest of the burst once sales was locked.
    let first_refused = burst
        .iter()
        .position(|s| matches!(s, Submission::Refused(_)));
    assert!(
        accepted.len() <= MOST_ACCEPTED,
        "at most {MOST_ACCEPTED} spam messages get through, not {}: {burst:?} ({where_})",
        accepted.len()
    );
    let after_lock = first_refused.map_or(&[][..], |i| &burst[i..]);
    assert!(
        after_lock
            .iter()
            .all(|s| matches!(s, Submission::Refused(reply) if reply.starts_with("554 5.7.1"))),
        "once refused, sales stays refused (554 5.7.1 at RCPT): {burst:?} ({where_})"
    );
    let again = lab.client().submit(
        USUAL_IP,
        SALES.0,
        SALES.1,
        SALES.0,
        &["orders@customer.example".to_string()],
    );
    assert!(
        matches!(&again, Submission::Refused(reply) if reply.starts_with("554 5.7.1")),
        "sales is refused from its usual IP too: {again:?} ({where_})"
    );

    // The spam that got in is on hold; alice's mail is not.
    let mut queue = Vec::new();
    let all_held = try_wait_until(ACT_TIMEOUT, || {
        queue = lab.postfix().queue();
        accepted
            .iter()
            .all(|id| queue_name(&queue, id) == Some("hold"))
    });
    assert!(
        all_held,
        "the accepted spam {accepted:?} is on hold: {queue:?} ({where_})"
    );
    assert!(
        accepted.iter().all(|id| !matches!(
            queue_name(&queue, id),
            Some("active" | "deferred" | "incoming")
        )),
        "{queue:?}"
    );
    assert_eq!(
        queue_name(&queue, &alice_mail),
        Some("deferred"),
        "alice's mail waits for the relay, not on hold: {queue:?} ({where_})"
    );

    // unlock lets sales send again.
    watch.stop();
    let unlock = mailfuse(&["unlock", SALES.0], config);
    assert!(
        unlock.status.success(),
        "unlock: {}{}",
        String::from_utf8_lossy(&unlock.stdout),
        String::from_utf8_lossy(&unlock.stderr)
    );
    let after_unlock = lab.client().submit(
        USUAL_IP,
        SALES.0,
        SALES.1,
        SALES.0,
        &["orders@customer.example".to_string()],
    );
    assert!(
        matches!(after_unlock, Submission::Accepted(_)),
        "sales sends again after unlock: {after_unlock:?} ({where_})"
    );
    println!("took {:?}", started.elapsed());
}
