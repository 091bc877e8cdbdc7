//! `mailfuse policy` in front of a real Postfix 3.7 with Dovecot SASL.
//!
//! The lab (`support/`, see `postfix_e2e.rs`) runs Postfix with a SASL
//! submission service, Dovecot and a relay sink on loopback in a temp dir
//! `mailfuse-e2e-*`. The test writes `mailfuse.toml` (`[policy]`, the state
//! database `state.db`, an `[actions.email]` alert to the lab's local
//! mailbox `admin@admin.test`), starts `mailfuse policy` (its log in
//! `policy-N.log`), then adds to main.cf the block under "Postfix
//! configuration" in `docs/policy.md`, as written but for the service's
//! address, and reloads Postfix. swaks plays the users, from 127.0.0.1:
//! - sales (5 recipients per hour) sends up to its limit, a message to 3
//!   recipients counting 3, then is deferred (`450 4.7.1`), also after
//!   `mailfuse policy` restarts on the same state database;
//! - bob sends with a forged envelope sender domain, is locked (`554 5.7.1`
//!   at every attempt, `mailfuse status` lists it, the admin gets one
//!   alert), and sends again after `mailfuse unlock`;
//! - sales then writes to a canary recipient (`[canary]`): refused with
//!   `554 5.7.1` ahead of its limit, locked, one alert however often;
//! - alice sends all along and is never stopped;
//! - with `over_limit = "hold"`, over a unix socket in the queue directory,
//!   the message over the limit goes to Postfix's hold queue.
//!
//! The relay sink and Postfix's queue show where each message went.
//! Needs root and `scripts/install-test-deps`, like `postfix_e2e.rs`.
//! The servers stop even when the test fails; the lab's dir is kept (path
//! printed) when it fails or `MAILFUSE_E2E_KEEP=1` is set
//! (`cargo test -p mailfuse --test policy_postfix_e2e -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::postfix::{LocalMailboxes, Options};
use support::swaks::Submission;
use support::{documented_block, free_port, mailfuse, run_ok, try_wait_until, wait_until, Lab};

const BIN: &str = env!("CARGO_BIN_EXE_mailfuse");
/// The documentation whose Postfix configuration the test uses.
const DOCS: &str = include_str!("../../../docs/policy.md");
/// The service address the documentation's block names.
const DOCUMENTED_SERVICE: &str = "inet:127.0.0.1:10040";

const ALICE: (&str, &str) = ("alice@example.test", "Alice-Spring-2024");
const BOB: (&str, &str) = ("bob@example.test", "Bob-Correct-Horse");
const SALES: (&str, &str) = ("sales@example.test", "S4les-Real!pass");
const ADMIN: &str = "admin@admin.test";
const USUAL_IP: &str = "127.0.0.1";
const FORGED_FROM: &str = "ceo@redbullcarwrap.example";
/// The canary recipient: in a partner's domain, so Postfix would relay it.
const CANARY: &str = "j.kowalski.accounts@partner.example";
/// How long mail may take to reach the sink, or mailfuse to act.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A running `mailfuse policy`, killed when dropped (even when the test
/// fails).
struct PolicyServer {
    child: Child,
    log: PathBuf,
}

impl PolicyServer {
    /// Starts `mailfuse policy` on `listen` and waits until it listens;
    /// `run` numbers its log file.
    fn start(lab: &Lab, config: &Path, listen: &str, run: usize) -> PolicyServer {
        let log = lab.dir().join(format!("policy-{run}.log"));
        let output = File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(["policy", "--listen", listen, "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("mailfuse policy starts");
        let mut server = PolicyServer { child, log };
        wait_until("mailfuse policy to listen", TIMEOUT, || {
            server.assert_running();
            server.log_text().contains("policy service listening on")
        });
        server
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test if the server has exited (a bad config, say).
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("mailfuse policy exited ({status}):\n{}", self.log_text());
        }
    }

    /// SIGTERM, then a clean exit that saved the counters.
    fn stop(mut self) {
        self.assert_running();
        run_ok(Command::new("kill").args(["-TERM", &self.child.id().to_string()]));
        let status = self.child.wait().expect("mailfuse policy exits");
        let log = self.log_text();
        assert!(
            status.success(),
            "mailfuse policy exits cleanly on SIGTERM ({status}):\n{log}"
        );
        assert!(
            log.contains("saving the counters") && !log.contains("cannot save"),
            "mailfuse policy saves its counters at exit:\n{log}"
        );
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The main.cf lines of `docs/policy.md`'s "Postfix configuration", with
/// `service` for the documented address.
fn documented_main_cf(service: &str) -> String {
    let block = documented_block(DOCS, "## Postfix configuration", "");
    assert_eq!(
        block.matches(DOCUMENTED_SERVICE).count(),
        2,
        "the documented block asks {DOCUMENTED_SERVICE} at RCPT and at the end of the message:\n{block}"
    );
    block.replace(DOCUMENTED_SERVICE, service)
}

/// Writes `mailfuse.toml`: sales limited to `sales_limit` recipients an
/// hour, what a message over it gets, the alert by mail to the lab.
fn write_config(
    lab: &Lab,
    alerts_port: Option<u16>,
    sales_limit: u64,
    over_limit: &str,
) -> PathBuf {
    let config = lab.dir().join("mailfuse.toml");
    let alerts = alerts_port.map_or_else(String::new, |port| {
        format!(
            r#"
[actions.email]
server = "127.0.0.1"
port = {port}
security = "none"
from = "mailfuse@mail.example.test"
to = ["{ADMIN}"]
"#
        )
    });
    fs::write(
        &config,
        format!(
            r#"[watch]
logs = ["{log}"]
state = "{state}"
hostname = "mail.example.test"
{alerts}
[policy]
over_limit = "{over_limit}"
local_domains = ["example.test"]

[canary]
recipients = ["{CANARY}"]

[[limits.override]]
account = "{sales}"
window = "1h"
recipients = {sales_limit}
"#,
            log = lab.postfix_log().display(),
            state = lab.dir().join("state.db").display(),
            sales = SALES.0,
        ),
    )
    .unwrap();
    config
}

fn locked_accounts(config: &Path) -> Vec<String> {
    let output = mailfuse(&["status", "--format", "json"], config);
    assert!(
        output.status.success(),
        "mailfuse status: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    status["locks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|lock| lock["account"].as_str().map(str::to_string))
        .collect()
}

/// The mails in a Maildir's `new/` that mention `text`.
fn mails_mentioning(new: &Path, text: &str) -> usize {
    fs::read_dir(new)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| fs::read_to_string(entry.path()).is_ok_and(|mail| mail.contains(text)))
        .count()
}

fn to(addresses: &[&str]) -> Vec<String> {
    addresses.iter().map(|a| a.to_string()).collect()
}

/// Submits as `user` with `from` as envelope sender.
fn submit(lab: &Lab, (user, password): (&str, &str), from: &str, rcpts: &[&str]) -> Submission {
    lab.client()
        .submit(USUAL_IP, user, password, from, &to(rcpts))
}

/// Sends as `user` from its own address, asserting Postfix queued it.
fn send(lab: &Lab, (user, password): (&str, &str), rcpts: &[&str]) -> String {
    lab.client()
        .send(USUAL_IP, user, password, user, &to(rcpts))
}

/// Asserts Postfix refused `submission` with a reply starting `code` and
/// containing `text`.
fn assert_refused(submission: &Submission, code: &str, text: &str, what: &str) {
    assert!(
        matches!(submission, Submission::Refused(reply) if reply.starts_with(code) && reply.contains(text)),
        "{what}: expected {code} … {text} …, got {submission:?}"
    );
}

/// Recipients the sink received from envelope sender `from`.
fn delivered_from(lab: &Lab, from: &str) -> usize {
    lab.sink
        .log()
        .messages
        .iter()
        .filter(|m| m.from == from)
        .map(|m| m.recipients.len())
        .sum()
}

/// Waits until the sink got exactly `count` recipients from `from`.
fn wait_for_delivery(lab: &Lab, from: &str, count: usize) {
    let arrived = try_wait_until(TIMEOUT, || delivered_from(lab, from) >= count);
    assert!(
        arrived && delivered_from(lab, from) == count,
        "the sink got {} recipients from {from}, expected {count}: {:?}",
        delivered_from(lab, from),
        lab.sink.log()
    );
}

#[test]
fn policy_defers_over_limit_locks_forged_senders_and_unlocks_on_a_real_postfix() {
    let started = Instant::now();
    let alerts_port = free_port();
    let options = Options {
        local_mailboxes: Some(LocalMailboxes {
            addresses: vec![ADMIN.to_string()],
            port: alerts_port,
        }),
        ..Options::default()
    };
    let lab = Lab::start_with(&[ALICE, BOB, SALES], &options);
    let config = write_config(&lab, Some(alerts_port), 5, "defer_if_permit");
    let listen = format!("127.0.0.1:{}", free_port());
    let server = PolicyServer::start(&lab, &config, &listen, 1);
    lab.postfix()
        .add_main_cf(&documented_main_cf(&format!("inet:{listen}")));
    let mut alice_sent = 0;

    // 1. Within the limit: 1 + 3 + 1 = 5 recipients, all delivered.
    send(&lab, SALES, &["order1@customer.example"]);
    send(&lab, ALICE, &["carol@partner.example"]);
    alice_sent += 1;
    send(
        &lab,
        SALES,
        &[
            "order2@customer.example",
            "order3@customer.example",
            "order4@customer.example",
        ],
    );
    send(&lab, SALES, &["order5@customer.example"]);
    wait_for_delivery(&lab, SALES.0, 5);

    // 2. Over it: deferred at RCPT (it would pass if the message to 3
    // recipients had counted 1).
    let over = submit(&lab, SALES, SALES.0, &["order6@customer.example"]);
    assert_refused(
        &over,
        "450 4.7.1",
        "sending limit of 5 recipients per 1h",
        "sales over its limit",
    );
    let over = submit(
        &lab,
        SALES,
        SALES.0,
        &["order7@customer.example", "order8@customer.example"],
    );
    assert_refused(
        &over,
        "450 4.7.1",
        "sending limit",
        "sales over its limit, 2 recipients",
    );
    send(
        &lab,
        ALICE,
        &["dave@partner.example", "erin@partner.example"],
    );
    alice_sent += 2;

    // 7. A restart keeps the counts: sales is still over its limit.
    server.stop();
    let server = PolicyServer::start(&lab, &config, &listen, 2);
    assert!(
        server.log_text().contains("counters restored"),
        "the second run restores the counters:\n{}",
        server.log_text()
    );
    let over = submit(&lab, SALES, SALES.0, &["order9@customer.example"]);
    assert_refused(
        &over,
        "450 4.7.1",
        "sending limit",
        "sales after the restart",
    );
    send(&lab, ALICE, &["carol@partner.example"]);
    alice_sent += 1;

    // 4. A forged sender domain locks bob at once, and every attempt after.
    let forged = submit(&lab, BOB, FORGED_FROM, &["victim1@buyers.example"]);
    assert_refused(&forged, "554 5.7.1", "is locked", "bob's forged sender");
    let locked = try_wait_until(TIMEOUT, || {
        locked_accounts(&config).iter().any(|a| a == BOB.0)
    });
    assert!(
        locked,
        "mailfuse status lists bob's lock: {:?}",
        locked_accounts(&config)
    );
    let own = submit(&lab, BOB, BOB.0, &["friend@partner.example"]);
    assert_refused(&own, "554 5.7.1", "is locked", "bob locked, own sender");
    // Later attempts, in other seconds, are the same lock: no new alert.
    std::thread::sleep(Duration::from_millis(1100));
    let forged = submit(&lab, BOB, FORGED_FROM, &["victim2@buyers.example"]);
    assert_refused(
        &forged,
        "554 5.7.1",
        "is locked",
        "bob locked, forged again",
    );
    send(&lab, ALICE, &["carol@partner.example"]);
    alice_sent += 1;

    // 6. Sales writes to a canary: refused before the message is in (ahead
    // of its limit), locked, and again after the lock: one alert.
    let trap = submit(&lab, SALES, SALES.0, &[CANARY]);
    assert_refused(&trap, "554 5.7.1", "is locked", "sales to the canary");
    let locked = try_wait_until(TIMEOUT, || {
        locked_accounts(&config).iter().any(|a| a == SALES.0)
    });
    assert!(locked, "sales locked: {:?}", locked_accounts(&config));
    std::thread::sleep(Duration::from_millis(1100));
    let trap = submit(&lab, SALES, SALES.0, &[CANARY]);
    assert_refused(
        &trap,
        "554 5.7.1",
        "is locked",
        "sales locked, canary again",
    );

    let new_mail = lab.postfix().maildir_new(ADMIN);
    let alerted = try_wait_until(TIMEOUT, || mails_mentioning(&new_mail, BOB.0) > 0);
    assert!(
        alerted,
        "the admin is alerted about bob in {}",
        new_mail.display()
    );
    // Time for any further alert to be sent and delivered.
    std::thread::sleep(Duration::from_secs(2));
    lab.postfix().wait_for_empty_queue(TIMEOUT);
    // Checked last, so that a second alert does not hide how the rest goes.
    let bob_alerts = mails_mentioning(&new_mail, BOB.0);
    let sales_alerts = mails_mentioning(&new_mail, SALES.0);

    // 5. unlock: bob sends again within a second or two.
    let unlock = mailfuse(&["unlock", BOB.0], &config);
    assert!(
        unlock.status.success(),
        "unlock: {}{}",
        String::from_utf8_lossy(&unlock.stdout),
        String::from_utf8_lossy(&unlock.stderr)
    );
    let unlocked_at = Instant::now();
    let mut last = None;
    let sends = try_wait_until(Duration::from_secs(5), || {
        let attempt = submit(&lab, BOB, BOB.0, &["friend@partner.example"]);
        let accepted = matches!(attempt, Submission::Accepted(_));
        last = Some(attempt);
        accepted
    });
    assert!(sends, "bob sends again after unlock: {last:?}");
    println!("bob sent again {:?} after unlock", unlocked_at.elapsed());

    // 3. and where mail went: alice's and bob's last in, none of the refused.
    wait_for_delivery(&lab, ALICE.0, alice_sent);
    wait_for_delivery(&lab, BOB.0, 1);
    wait_for_delivery(&lab, SALES.0, 5);
    assert_eq!(delivered_from(&lab, FORGED_FROM), 0);
    assert!(
        lab.postfix().queue().is_empty(),
        "{:?}",
        lab.postfix().queue()
    );
    server.stop();
    println!("took {:?}", started.elapsed());
    assert_eq!(
        bob_alerts,
        1,
        "exactly one alert for bob's lock, however often bob tries (lab: {})",
        lab.dir().display()
    );
    assert_eq!(
        sales_alerts,
        1,
        "exactly one alert for the canary's lock (lab: {})",
        lab.dir().display()
    );
}

#[test]
fn policy_holds_over_limit_mail_through_a_unix_socket_on_a_real_postfix() {
    let started = Instant::now();
    let lab = Lab::start(&[ALICE, SALES]);
    let config = write_config(&lab, None, 2, "hold");
    // smtpd runs as postfix: the socket (mode 0660) takes the group of its
    // set-group-ID directory, as docs/policy.md says to set it up.
    let socket_dir = lab.postfix().queue_dir().join("mailfuse");
    fs::create_dir(&socket_dir).unwrap();
    run_ok(Command::new("chgrp").arg("postfix").arg(&socket_dir));
    fs::set_permissions(&socket_dir, fs::Permissions::from_mode(0o2750)).unwrap();
    let socket = socket_dir.join("policy");
    let server = PolicyServer::start(&lab, &config, &format!("unix:{}", socket.display()), 1);
    lab.postfix()
        .add_main_cf(&documented_main_cf("unix:mailfuse/policy"));

    send(&lab, SALES, &["order1@customer.example"]);
    send(&lab, SALES, &["order2@customer.example"]);
    let held = send(&lab, SALES, &["order3@customer.example"]);
    send(&lab, ALICE, &["carol@partner.example"]);
    wait_for_delivery(&lab, ALICE.0, 1);
    wait_for_delivery(&lab, SALES.0, 2);

    // The delivered messages leave the queue a moment after the sink has them.
    let mut queue = Vec::new();
    let only_held = try_wait_until(TIMEOUT, || {
        queue = lab.postfix().queue();
        queue.len() == 1
    });
    assert!(
        only_held,
        "only the message over the limit is left: {queue:?}"
    );
    assert_eq!(
        (queue[0].queue_id.as_str(), queue[0].queue_name.as_str()),
        (held.as_str(), "hold"),
        "the message over the limit is on hold"
    );
    let postfix_log = fs::read_to_string(lab.postfix_log()).unwrap();
    assert!(
        postfix_log
            .lines()
            .any(|line| line.contains("NOQUEUE: hold: RCPT")
                && line.contains("sending limit of 2 recipients per 1h")),
        "Postfix logs why it held the message ({})",
        lab.postfix_log().display()
    );

    server.stop();
    assert!(
        !socket.exists(),
        "mailfuse policy removes its socket at exit"
    );
    println!("took {:?}", started.elapsed());
}
