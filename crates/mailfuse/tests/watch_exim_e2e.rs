//! `mailfuse watch` stops a hijacked account on a real Exim 4 while the
//! attack goes on, and `mailfuse unlock` gives it back.
//!
//! The harness (`support/exim.rs`) starts, in a fresh temp dir
//! `mailfuse-e2e-*`, Debian's Exim as `scripts/install-test-deps` extracted
//! it (never installed as the system MTA), with its own configuration,
//! spool and log, on a free loopback port: SMTP AUTH LOGIN against a
//! password list, `dist/exim/mailfuse-acl.conf` as shipped at the top of
//! the MAIL ACL, and a router that defers every recipient, so that all mail
//! stays queued and nothing leaves the machine.
//!
//! The test writes `mailfuse.toml` (watch follows Exim's `mainlog`;
//! `[actions.exim]` locks through the ACL's list and freezes, with Exim's
//! binary and `-C` configuration) and starts `mailfuse watch`. swaks then
//! plays alice (ordinary mail, and one with sales' address as its envelope
//! sender) and the attacker (127.66.6.6: a dozen wrong passwords for
//! sales, the right one, then a burst of spam with a forged sender). It
//! checks that watch put sales in the lock list within two seconds of the
//! log line that tripped the detector, that Exim refused sales from then on
//! (550 5.7.1 at MAIL), that the spam Exim accepted is frozen and alice's
//! mail is not (even the message naming sales as its sender), and that
//! `mailfuse unlock` lets sales send again and thaws the spam.
//!
//! Needs root and `scripts/install-test-deps`. Exim and watch stop even
//! when the test fails; the lab's dir is kept (path printed) when it fails
//! or `MAILFUSE_E2E_KEEP=1` is set
//! (`cargo test -p mailfuse --test watch_exim_e2e -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mailfuse_core::Timestamp;
use serde_json::Value;
use support::exim::{EximLab, Queued};
use support::swaks::Submission;
use support::watch::{locked_accounts, status, Watch};
use support::{mailfuse, try_wait_until};

const ALICE: (&str, &str) = ("alice@example.test", "Alice-Spring-2024");
const SALES: (&str, &str) = ("sales@example.test", "S4les-Real!pass");
const USUAL_IP: &str = "127.0.0.1";
const ATTACKER_IP: &str = "127.66.6.6";
const FORGED_FROM: &str = "admin@redbullcarwrap.example";
const GUESSES: usize = 12;
const SPAM_MESSAGES: usize = 30;
/// The longest time from the log line that trips the detector to the
/// account in the lock list.
const LOCK_WITHIN: Duration = Duration::from_secs(2);
/// How long watch may take to act, or to show what it did.
const ACT_TIMEOUT: Duration = Duration::from_secs(20);

/// Where watch's configuration and log are.
struct Setup {
    config: PathBuf,
    watch_log: PathBuf,
}

fn write_config(lab: &EximLab) -> Setup {
    let exim = lab.exim();
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
dry_run = false

[actions]
act_within = "1h"

[actions.exim]
exim = "{binary}"
config_file = "{config_file}"
lock_list = "{lock_list}"
queued = "freeze"
"#,
            log = exim.mainlog().display(),
            state = lab.dir().join("state.db").display(),
            binary = exim.binary().display(),
            config_file = exim.config_file().display(),
            lock_list = exim.lock_list().display(),
        ),
    )
    .unwrap();
    Setup {
        config,
        watch_log: lab.dir().join("watch.log"),
    }
}

fn spam_to(i: usize) -> Vec<String> {
    vec![
        format!("lead{i}@buyers{}.example", i % 5),
        format!("lead{i}b@buyers{}.example", (i + 1) % 5),
    ]
}

fn is_locked_in(list: &Path, account: &str) -> bool {
    fs::read_to_string(list).is_ok_and(|text| text.lines().any(|line| line == account))
}

fn frozen_of(queue: &[Queued], id: &str) -> Option<bool> {
    queue.iter().find(|q| q.id == id).map(|q| q.frozen)
}

/// A 550 5.7.1 refusal, as the shipped ACL gives.
fn refused_as_locked(submission: &Submission) -> bool {
    matches!(submission, Submission::Refused(reply) if reply.starts_with("550") && reply.contains("5.7.1"))
}

/// The journal entry of `action` in a `status`, with what it says.
fn action<'s>(status: &'s Value, action: &str) -> Option<&'s Value> {
    status["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["action"] == action && a["target"] == SALES.0)
}

#[test]
fn watch_locks_the_hijacked_account_on_a_real_exim_freezes_its_spam_and_unlock_gives_it_back() {
    let started = Instant::now();
    let lab = EximLab::start(&[ALICE, SALES]);
    let exim = lab.exim();
    let client = lab.client();
    let setup = write_config(&lab);
    let config = setup.config.as_path();
    let watch = Watch::start(config, &setup.watch_log);
    let where_ = format!(
        "lab: {}, watch's log: {}",
        lab.dir().display(),
        setup.watch_log.display()
    );

    // An ordinary morning — alice's mail to a partner, and one she sends
    // for the sales team (its envelope sender is sales') — then the attack.
    let alice_mail = [
        client.send(
            USUAL_IP,
            ALICE.0,
            ALICE.1,
            ALICE.0,
            &["carol@partner.example".to_string()],
        ),
        client.send(
            USUAL_IP,
            ALICE.0,
            ALICE.1,
            SALES.0,
            &["dave@partner.example".to_string()],
        ),
    ];
    client.guess_passwords(ATTACKER_IP, SALES.0, GUESSES);
    let mut locked_seen_at = None;
    let burst: Vec<Submission> = (0..SPAM_MESSAGES)
        .map(|i| {
            let submission = client.submit(ATTACKER_IP, SALES.0, SALES.1, FORGED_FROM, &spam_to(i));
            if locked_seen_at.is_none() && is_locked_in(exim.lock_list(), SALES.0) {
                locked_seen_at = Some(SystemTime::now());
            }
            submission
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

    // Locked in mailfuse's state, for the hijack, and in the lock list soon
    // after the line that tripped the detector.
    let mut last_status = Value::Null;
    let recorded = try_wait_until(ACT_TIMEOUT, || {
        last_status = status(config).unwrap_or(Value::Null);
        locked_accounts(&last_status).iter().any(|a| a == SALES.0)
            && action(&last_status, "exim.freeze").is_some()
    });
    assert!(
        recorded,
        "watch locks {} and freezes its mail: {last_status:#} ({where_})",
        SALES.0
    );
    let hijack = last_status["incidents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["kind"] == "compromised_account" && i["subject"] == SALES.0)
        .unwrap_or_else(|| panic!("the hijack is recorded: {last_status:#} ({where_})"));
    for name in ["exim.lock", "exim.freeze"] {
        let entry = action(&last_status, name).unwrap();
        assert_eq!(entry["ok"], true, "{name} succeeded: {entry:#} ({where_})");
    }
    let tripped: Timestamp = hijack["detected_at"].as_str().unwrap().parse().unwrap();
    let locked_seen_at = locked_seen_at
        .unwrap_or_else(|| panic!("sales was locked during the burst: {burst:?} ({where_})"));
    let seen = locked_seen_at.duration_since(UNIX_EPOCH).unwrap();
    // The log's time has whole seconds: the line was written within the
    // second after `tripped`.
    let delay = seen.saturating_sub(Duration::from_secs(tripped.as_secs().try_into().unwrap()));
    println!("sales in the lock list {delay:?} after the start of the tripping line's second");
    assert!(
        delay <= LOCK_WITHIN + Duration::from_secs(1),
        "sales is in the lock list {delay:?} after the second of the tripping line ({where_})"
    );

    // Exim refused the rest of the burst once sales was locked, and
    // refuses sales from its usual IP too.
    let first_refused = burst
        .iter()
        .position(|s| matches!(s, Submission::Refused(_)))
        .unwrap_or_else(|| panic!("the lock cut the burst short: {burst:?} ({where_})"));
    assert!(
        burst[first_refused..].iter().all(refused_as_locked),
        "once refused, sales stays refused (550 5.7.1 at MAIL): {burst:?} ({where_})"
    );
    let again = client.submit(
        USUAL_IP,
        SALES.0,
        SALES.1,
        SALES.0,
        &["orders@customer.example".to_string()],
    );
    assert!(
        refused_as_locked(&again),
        "sales is refused from its usual IP too: {again:?} ({where_})"
    );

    // The spam that got in is frozen (what slipped in as the lock was
    // written is frozen at watch's next poll); alice's mail is not.
    let mut queue = Vec::new();
    let all_frozen = try_wait_until(ACT_TIMEOUT, || {
        queue = exim.queue();
        accepted
            .iter()
            .all(|id| frozen_of(&queue, id) == Some(true))
    });
    assert!(
        all_frozen,
        "the accepted spam {accepted:?} is frozen: {queue:?} ({where_})"
    );
    for id in &alice_mail {
        assert_eq!(
            frozen_of(&queue, id),
            Some(false),
            "alice's {id} stays queued, not frozen: {queue:?} ({where_})"
        );
    }

    // unlock lets sales send again and thaws its spam.
    watch.stop();
    let unlock = mailfuse(&["unlock", SALES.0], config);
    assert!(
        unlock.status.success(),
        "unlock: {}{}",
        String::from_utf8_lossy(&unlock.stdout),
        String::from_utf8_lossy(&unlock.stderr)
    );
    assert!(
        !is_locked_in(exim.lock_list(), SALES.0),
        "unlock empties the lock list ({where_})"
    );
    let after_unlock = client.submit(
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
    let queue = exim.queue();
    for id in accepted
        .iter()
        .copied()
        .chain(alice_mail.iter().map(String::as_str))
    {
        assert_eq!(
            frozen_of(&queue, id),
            Some(false),
            "{id} is thawed, still queued: {queue:?} ({where_})"
        );
    }
    println!("took {:?}", started.elapsed());
}
