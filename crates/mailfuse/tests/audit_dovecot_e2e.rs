//! `mailfuse audit --dovecot-last-login` against a real Dovecot 2.3's
//! `last_login` plugin.
//!
//! The lab (`support/`, see `postfix_e2e.rs`) runs Postfix (SASL
//! submission, local Maildir delivery for alice and bob, logging in UTC)
//! and Dovecot serving Postfix's SASL and IMAP, with the `dovecot.conf`
//! lines of docs/audit.md's "Dovecot's last logins" section as written but
//! for the dict file's path (in the lab, its directory owned by the user
//! the IMAP processes run as). alice mails bob and herself, then logs in
//! over IMAP; bob never logs in. The audit of Postfix's log alone sees
//! alice only send (SMTP) and bob only receive; with Dovecot's dict, alice
//! has read her mail and is not reported, and bob is reported as never
//! logging in, nor recorded by Dovecot.
//!
//! Needs root and `scripts/install-test-deps`. Postfix and Dovecot stop
//! even when the test fails; the lab's dir is kept (path printed) when it
//! fails or `MAILFUSE_E2E_KEEP=1` is set
//! (`cargo test -p mailfuse --test audit_dovecot_e2e -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::audit::{pairs, problems, report as audit};
use support::postfix::{LocalMailboxes, Options};
use support::{documented_block, dovecot, free_port, imap, run_ok, wait_until, Lab};

const ALICE: (&str, &str) = ("alice@example.test", "Alice-Spring-2024");
const BOB: (&str, &str) = ("bob@example.test", "Bob-Correct-Horse");
const USUAL_IP: &str = "127.0.0.1";

const DOCS: &str = include_str!("../../../docs/audit.md");
/// The dict file the documented lines name.
const DOCUMENTED_DICT: &str = "/var/lib/dovecot/last-login/last-login.dict";

/// The dovecot.conf lines of docs/audit.md's "Dovecot's last logins"
/// section, the dict at `dict`.
fn documented_dovecot_conf(dict: &Path) -> String {
    let block = documented_block(DOCS, "## Dovecot's last logins", "Add to `dovecot.conf`");
    assert!(
        block.contains(&format!("last_login_dict = file:{DOCUMENTED_DICT}")),
        "the documented block keeps the dict in a file:\n{block}"
    );
    block.replace(DOCUMENTED_DICT, &dict.display().to_string())
}

#[test]
fn dovecots_last_login_dict_tells_who_reads_their_mail_and_who_never_logs_in() {
    let dict_dir = tempfile::tempdir().unwrap();
    // The IMAP processes run as nobody (the lab's userdb): Dovecot writes
    // the dict, and its lock file, in a directory of theirs.
    run_ok(
        Command::new("chown")
            .arg("nobody:nogroup")
            .arg(dict_dir.path()),
    );
    let dict = dict_dir.path().join("last-login.dict");
    let options = Options {
        local_mailboxes: Some(LocalMailboxes {
            addresses: vec![ALICE.0.to_owned(), BOB.0.to_owned()],
            port: free_port(),
        }),
        utc_log: true,
        ..Options::default()
    };
    let mut lab = Lab::start_with_dovecot(
        &[ALICE, BOB],
        &options,
        &dovecot::Options {
            imap: true,
            extra: documented_dovecot_conf(&dict),
        },
    );
    let imap_port = lab.dovecot().imap_port().unwrap();

    // alice writes to bob and herself; both messages land in Maildirs.
    lab.client().send(
        USUAL_IP,
        ALICE.0,
        ALICE.1,
        ALICE.0,
        &[BOB.0.to_owned(), ALICE.0.to_owned()],
    );
    wait_until("the mail is delivered", Duration::from_secs(20), || {
        [ALICE.0, BOB.0].iter().all(|address| {
            fs::read_dir(lab.postfix().maildir_new(address)).is_ok_and(|mut d| d.next().is_some())
        })
    });
    // alice reads hers over IMAP: Dovecot records the login.
    let session = imap::login(imap_port, USUAL_IP, ALICE.0, ALICE.1)
        .unwrap_or_else(|refused| panic!("alice logs in: {refused}"));
    drop(session);
    wait_until(
        "Dovecot to record alice's login",
        Duration::from_secs(10),
        || {
            fs::read_to_string(&dict)
                .is_ok_and(|text| text.contains(&format!("shared/last-login/{}\n", ALICE.0)))
        },
    );
    lab.finish();
    let log = lab.postfix_log().to_str().unwrap().to_owned();
    let dict = dict.to_str().unwrap();

    // Postfix's log alone: alice only sends, bob only receives.
    let (status, logs_only) = audit(&["--local-domain", "example.test", &log]);
    assert_eq!(status, Some(1), "{logs_only}");
    assert_eq!(
        problems(&logs_only),
        pairs(&[(ALICE.0, "smtp_only"), (BOB.0, "receives_never_logs_in")])
    );

    // With Dovecot's record: alice reads her mail; bob never logs in.
    let (status, report) = audit(&[
        "--local-domain",
        "example.test",
        "--dovecot-last-login",
        dict,
        &log,
    ]);
    assert_eq!(status, Some(1), "{report}");
    assert_eq!(
        problems(&report),
        pairs(&[(BOB.0, "receives_never_logs_in")])
    );
    assert_eq!(
        report["findings"][0]["detail"],
        "1 messages delivered, no login, none recorded by Dovecot's last_login either"
    );
    assert!(
        report["sources"][1]
            .as_str()
            .unwrap()
            .starts_with("Dovecot's last logins ("),
        "{report}"
    );

    // The dict alone: alice logged in just now, so nothing is stale.
    let (status, report) = audit(&["--dovecot-last-login", dict, "--stale-days", "1"]);
    assert_eq!(status, Some(0), "{report}");
    assert_eq!(problems(&report), []);
}
