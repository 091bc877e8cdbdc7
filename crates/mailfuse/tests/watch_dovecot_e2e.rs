//! `mailfuse watch` as a real Dovecot 2.3's auth policy server: it counts
//! the failed IMAP logins Dovecot reports as password guessing, with no
//! Dovecot log to read; and when it locks a hijacked account it ends the
//! account's IMAP session and refuses its logins until `mailfuse unlock`.
//!
//! The harness (`support/`) starts, in a fresh temp dir `mailfuse-e2e-*`,
//! Postfix (SASL submission on a free loopback port, logging to
//! `postfix.log` in UTC) and Dovecot serving Postfix's SASL and IMAP on
//! another free loopback port, with the `dovecot.conf` lines of
//! docs/watch.md's "Dovecot" section as written but for the URL (watch's
//! listener on a free port), plus the API key header. The test writes
//! `mailfuse.toml`: watch follows `postfix.log` only — never Dovecot's log
//! —, serves `[watch.auth_policy]` (its key in the secrets file) and runs
//! `[actions.dovecot]` (the lab's doveadm with `-c` the lab's dovecot.conf).
//!
//! Then: a dozen wrong IMAP passwords for alice from 127.77.7.7 must give a
//! `password_guessing` incident for that IP. sales logs in over IMAP from
//! its usual 127.0.0.1; the attacker (127.66.6.6) guesses sales' password
//! over SMTP, finds it and sends spam until watch locks sales: sales' IMAP
//! session must be ended (doveadm kick, journaled), a new IMAP login with
//! the right password refused, and let in again after `mailfuse unlock`
//! (watch still running). Stopped, watch is in no one's way: alice logs in.
//!
//! Needs root and `scripts/install-test-deps` (dovecot-imapd). Postfix,
//! Dovecot and watch stop even when the test fails; the lab's dir is kept
//! (path printed) when it fails or `MAILFUSE_E2E_KEEP=1` is set
//! (`cargo test -p mailfuse --test watch_dovecot_e2e -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::postfix::Options;
use support::watch::{locked_accounts, status, Watch};
use support::{documented_block, dovecot, imap, mailfuse, tool, try_wait_until, Lab};

const ALICE: (&str, &str) = ("alice@example.test", "Alice-Spring-2024");
const SALES: (&str, &str) = ("sales@example.test", "S4les-Real!pass");
const USUAL_IP: &str = "127.0.0.1";
const GUESSER_IP: &str = "127.77.7.7";
const ATTACKER_IP: &str = "127.66.6.6";
const FORGED_FROM: &str = "admin@redbullcarwrap.example";
const GUESSES: usize = 12;
const SPAM_MESSAGES: usize = 60;
const API_KEY: &str = "lab-key-0123456789abcdef";
/// How long watch may take to act, or to show what it did.
const ACT_TIMEOUT: Duration = Duration::from_secs(20);

const DOCS: &str = include_str!("../../../docs/watch.md");
/// The policy server's address in the documented lines.
const DOCUMENTED_URL: &str = "http://127.0.0.1:10041/";

/// The dovecot.conf lines of docs/watch.md's "Dovecot" section, asking
/// watch's listener on `port`.
fn documented_dovecot_conf(port: u16) -> String {
    let block = documented_block(DOCS, "### Dovecot", "Add to `dovecot.conf`");
    assert!(
        block.contains(&format!("auth_policy_server_url = {DOCUMENTED_URL}"))
            && block.contains("auth_policy_reject_on_fail = no"),
        "the documented block points Dovecot at watch and never rejects when it is down:\n{block}"
    );
    block.replace(DOCUMENTED_URL, &format!("http://127.0.0.1:{port}/"))
}

/// Where watch's configuration and log are.
struct Setup {
    config: PathBuf,
    watch_log: PathBuf,
}

fn write_config(lab: &Lab, policy_port: u16) -> Setup {
    let secrets = lab.dir().join("secrets.toml");
    fs::write(
        &secrets,
        format!("[watch.auth_policy]\napi_key = \"{API_KEY}\"\n"),
    )
    .unwrap();
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o600)).unwrap();
    let config = lab.dir().join("mailfuse.toml");
    fs::write(
        &config,
        format!(
            r#"[watch]
logs = ["{log}"]
state = "{state}"
secrets = "{secrets}"
poll_ms = 100
save_every_secs = 1
timezone = "UTC"
hostname = "mail.example.test"

[watch.auth_policy]
listen = "127.0.0.1:{policy_port}"

[actions]
act_within = "1h"

[actions.dovecot]
doveadm = "{doveadm}"
config_file = "{dovecot_conf}"
"#,
            log = lab.postfix_log().display(),
            state = lab.dir().join("state.db").display(),
            secrets = secrets.display(),
            doveadm = tool("doveadm").display(),
            dovecot_conf = lab.dovecot().config_path().display(),
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

/// The incident of `kind` about `subject` in a `status`.
fn incident<'s>(status: &'s Value, kind: &str, subject: &str) -> Option<&'s Value> {
    status["incidents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["kind"] == kind && i["subject"].as_str().is_some_and(|s| s.contains(subject)))
}

#[test]
fn watch_counts_dovecots_failed_logins_ends_a_locked_accounts_sessions_and_refuses_it_until_unlock()
{
    let started = Instant::now();
    // Held until watch starts: the lab takes seconds to start, and other
    // tests on the machine pick free ports too.
    let policy_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let policy_port = policy_listener.local_addr().unwrap().port();
    let mut extra = documented_dovecot_conf(policy_port);
    extra.push_str(&format!(
        "auth_policy_server_api_header = X-API-Key: {API_KEY}\n"
    ));
    let lab = Lab::start_with_dovecot(
        &[ALICE, SALES],
        &Options {
            utc_log: true,
            ..Options::default()
        },
        &dovecot::Options { imap: true, extra },
    );
    let imap_port = lab.dovecot().imap_port().unwrap();
    let setup = write_config(&lab, policy_port);
    let config = setup.config.as_path();
    drop(policy_listener);
    let watch = Watch::start(config, &setup.watch_log);
    let where_ = format!(
        "lab: {}, watch's log: {}",
        lab.dir().display(),
        setup.watch_log.display()
    );

    // (a) Guessing over IMAP, seen only through the auth policy.
    for i in 0..GUESSES {
        let refused = imap::login(imap_port, GUESSER_IP, ALICE.0, &format!("guess{i}"));
        assert!(refused.is_err(), "a wrong password is refused ({where_})");
    }
    let mut last_status = Value::Null;
    let guessing = try_wait_until(ACT_TIMEOUT, || {
        last_status = status(config).unwrap_or(Value::Null);
        incident(&last_status, "password_guessing", GUESSER_IP).is_some()
    });
    assert!(
        guessing,
        "the failed IMAP logins Dovecot reported make a password_guessing incident: {last_status:#} ({where_})"
    );
    let evidence =
        &incident(&last_status, "password_guessing", GUESSER_IP).unwrap()["incident"]["evidence"];
    let from_policy = format!(
        "auth-policy: user=<{}> rip={GUESSER_IP} protocol=imap failed",
        ALICE.0
    );
    assert!(
        evidence
            .as_array()
            .is_some_and(|lines| !lines.is_empty() && lines.iter().all(|l| l == &from_policy)),
        "its evidence is the auth policy's reports: {evidence:#} ({where_})"
    );
    println!("guessing detected after {:?}", started.elapsed());

    // (b) sales reads its mail; its password is guessed over SMTP and spam
    // goes out until watch locks it.
    let mut session = imap::login(imap_port, USUAL_IP, SALES.0, SALES.1)
        .unwrap_or_else(|reply| panic!("sales logs in over IMAP: {reply} ({where_})"));
    lab.client().guess_passwords(ATTACKER_IP, SALES.0, GUESSES);
    for i in 0..SPAM_MESSAGES {
        lab.client()
            .submit(ATTACKER_IP, SALES.0, SALES.1, FORGED_FROM, &spam_to(i));
    }
    let locked = try_wait_until(ACT_TIMEOUT, || {
        last_status = status(config).unwrap_or(Value::Null);
        locked_accounts(&last_status).iter().any(|a| a == SALES.0)
    });
    assert!(
        locked,
        "watch locks {}: {last_status:#} ({where_})",
        SALES.0
    );
    assert!(
        incident(&last_status, "compromised_account", SALES.0).is_some(),
        "for the hijack: {last_status:#} ({where_})"
    );
    assert!(
        session.ended_within(ACT_TIMEOUT),
        "sales' open IMAP session is ended ({where_})"
    );
    let kicked = try_wait_until(ACT_TIMEOUT, || {
        last_status = status(config).unwrap_or(Value::Null);
        last_status["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["action"] == "dovecot.kick" && a["target"] == SALES.0 && a["ok"] == true)
    });
    assert!(kicked, "the kick is journaled: {last_status:#} ({where_})");
    let refused = imap::login(imap_port, USUAL_IP, SALES.0, SALES.1);
    assert!(
        matches!(&refused, Err(reply) if reply.contains("This account is locked")),
        "a locked sales is refused with the right password: {:?} ({where_})",
        refused.as_ref().err()
    );

    // unlock, watch still running, lets sales in again at once.
    let unlock = mailfuse(&["unlock", SALES.0], config);
    assert!(
        unlock.status.success(),
        "unlock: {}{}",
        String::from_utf8_lossy(&unlock.stdout),
        String::from_utf8_lossy(&unlock.stderr)
    );
    let again = imap::login(imap_port, USUAL_IP, SALES.0, SALES.1);
    assert!(
        again.is_ok(),
        "sales logs in again after unlock: {:?} ({where_})",
        again.as_ref().err()
    );

    // With watch down, Dovecot lets logins through.
    watch.stop();
    let without_watch = imap::login(imap_port, USUAL_IP, ALICE.0, ALICE.1);
    assert!(
        without_watch.is_ok(),
        "logins go on while watch is down: {:?} ({where_})",
        without_watch.as_ref().err()
    );
    println!("took {:?}", started.elapsed());
}
