//! `mailfuse watch` bans password-guessing IPs in a real CrowdSec, for the
//! bouncers already on every host, and `mailfuse unblock` lifts the ban.
//!
//! The harness (`support/crowdsec.rs`) starts Debian's CrowdSec 1.4.6 as
//! `scripts/install-test-deps` extracted it (never installed: its postinst
//! would register with the Central API), as the Local API alone
//! (`crowdsec -no-cs`), with its own configuration, SQLite database and
//! loopback port; the machine mailfuse logs in as is added with `cscli
//! machines add`, as docs/watch.md tells the admin. watch follows a Postfix
//! log the test writes failed logins to, with `[actions.crowdsec]` and the
//! machine's password in the secrets file; `cscli` says what CrowdSec holds.
//!
//! Needs `scripts/install-test-deps`. CrowdSec and watch stop even when a
//! test fails; CrowdSec's directory is kept (path printed) when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use support::crowdsec::{Decision, Lapi};
use support::watch::{status, Watch};
use support::{free_port, mailfuse, wait_until};

const MACHINE: &str = "mailfuse";
const PASSWORD: &str = "a-long-random-machine-password";
const GUESSER: &str = "203.0.113.9";
/// In `[allow]`: never blocked, whatever it does.
const OFFICE: &str = "198.51.100.20";
const SCENARIO: &str = "mailfuse/password_guessing";
/// `block_for` of the tests, in seconds (2h).
const BLOCK_SECS: i64 = 7200;
/// How long watch may take to act, or to show what it did.
const ACT_TIMEOUT: Duration = Duration::from_secs(20);

/// watch's files in a temp dir of its own.
struct Setup {
    _dir: tempfile::TempDir,
    log: PathBuf,
    config: PathBuf,
    watch_log: PathBuf,
}

impl Setup {
    /// A configuration following `dir/mail.log`, banning through the Local
    /// API at `url`; `watch_more` is added to `[watch]`.
    fn new(url: &str, watch_more: &str) -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("mailfuse-crowdsec-watch-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        let log = root.join("mail.log");
        fs::write(&log, "").unwrap();
        let secrets = root.join("secrets.toml");
        fs::write(
            &secrets,
            format!("[actions.crowdsec]\npassword = \"{PASSWORD}\"\n"),
        )
        .unwrap();
        fs::set_permissions(&secrets, fs::Permissions::from_mode(0o600)).unwrap();
        let config = root.join("mailfuse.toml");
        fs::write(
            &config,
            format!(
                "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\nsecrets = \"{}\"\npoll_ms = 20\n\
                 save_every_secs = 1\n{watch_more}\n\
                 [allow]\nnetworks = [\"{OFFICE}/32\"]\n\n\
                 [actions]\nact_within = \"3650d\"\nblock_for = \"2h\"\n\n\
                 [actions.crowdsec]\nurl = \"{url}\"\nmachine_id = \"{MACHINE}\"\ntimeout_secs = 5\n",
                log.display(),
                root.join("state.db").display(),
                secrets.display(),
            ),
        )
        .unwrap();
        Setup {
            watch_log: root.join("watch.log"),
            _dir: dir,
            log,
            config,
        }
    }

    fn start_watch(&self) -> Watch {
        Watch::start(&self.config, &self.watch_log)
    }

    /// Appends 30 failed Postfix logins from `ip`: a guessing incident.
    fn guess_from(&self, ip: &str) {
        let lines: String = (0..30)
            .map(|i| {
                format!(
                    "Dec 14 20:00:{i:02} mail postfix/smtpd[{}]: warning: unknown[{ip}]: SASL \
                     LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=user{i}@example.test\n",
                    1000 + i
                )
            })
            .collect();
        let mut file = fs::OpenOptions::new().append(true).open(&self.log).unwrap();
        file.write_all(lines.as_bytes()).unwrap();
    }

    /// `mailfuse ARGS` with this configuration.
    fn mailfuse(&self, args: &[&str]) -> std::process::Output {
        mailfuse(args, &self.config)
    }

    /// The journal's records of `action` on `target` (`crowdsec.ban`), as
    /// `status` shows them once there are any.
    fn records(&self, action: &str, target: &str) -> Vec<Value> {
        let Some(status) = status(&self.config) else {
            return Vec::new();
        };
        status["actions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|record| record["action"] == action && record["target"] == target)
            .cloned()
            .collect()
    }

    /// Waits until the journal has a record of `action` on `target`.
    fn wait_for_record(&self, action: &str, target: &str) -> Value {
        let mut found = None;
        wait_until(
            &format!("{action} {target} in the journal"),
            ACT_TIMEOUT,
            || {
                found = self.records(action, target).into_iter().next();
                found.is_some()
            },
        );
        found.unwrap()
    }

    /// The IPs `status` lists as blocked.
    fn blocked(&self) -> Vec<String> {
        status(&self.config)
            .and_then(|status| status["blocks"].as_array().cloned())
            .into_iter()
            .flatten()
            .filter_map(|block| block["ip"].as_str().map(str::to_string))
            .collect()
    }
}

/// mailfuse's bans of `ip` in force.
fn bans_of(lapi: &Lapi, ip: &str) -> Vec<Decision> {
    lapi.decisions()
        .into_iter()
        .filter(|d| d.machine == MACHINE && d.value == ip)
        .collect()
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_guessing_ip_is_banned_in_crowdsec_until_unblock_lifts_the_ban() {
    let lapi = Lapi::start(free_port());
    lapi.add_machine(MACHINE, PASSWORD);
    // The admin banned the guesser by hand before: not mailfuse's to lift.
    let by_hand = lapi.cscli(
        &[
            "decisions",
            "add",
            "--ip",
            GUESSER,
            "--duration",
            "4h",
            "--reason",
            "seen in nginx's log",
        ],
        None,
    );
    assert!(by_hand.status.success(), "{}", text(&by_hand));
    let setup = Setup::new(&lapi.url(), "");
    let watch = setup.start_watch();
    // The office's guessing first: once the guesser is banned, it was read.
    setup.guess_from(OFFICE);
    setup.guess_from(GUESSER);

    let ban = setup.wait_for_record("crowdsec.ban", GUESSER);
    assert_eq!(ban["ok"], true, "{ban}");
    assert_eq!(
        ban["outcome"],
        format!("{GUESSER} banned by CrowdSec for 2h ({SCENARIO})")
    );
    let bans = bans_of(&lapi, GUESSER);
    assert_eq!(bans.len(), 1, "{bans:?}");
    let ban = &bans[0];
    assert_eq!(
        (
            ban.scope.as_str(),
            ban.kind.as_str(),
            ban.origin.as_str(),
            ban.scenario.as_str()
        ),
        ("Ip", "ban", "crowdsec", SCENARIO)
    );
    // For block_for, less the moments since.
    assert!(
        (BLOCK_SECS - 120..=BLOCK_SECS).contains(&ban.seconds_left),
        "{ban:?}"
    );
    // What the admin sees with plain `cscli decisions list`.
    let listed = lapi.listed_decisions();
    assert!(
        listed
            .iter()
            .any(|d| d.value == GUESSER && d.scenario == SCENARIO),
        "{listed:?}"
    );
    assert!(bans_of(&lapi, OFFICE).is_empty());
    assert!(setup.records("crowdsec.ban", OFFICE).is_empty());

    let unblocked = setup.mailfuse(&["unblock", GUESSER]);
    assert!(unblocked.status.success(), "{}", text(&unblocked));
    assert_eq!(
        String::from_utf8_lossy(&unblocked.stdout),
        format!("{GUESSER} unblocked\n")
    );
    assert!(bans_of(&lapi, GUESSER).is_empty());
    let left = lapi.decisions();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].scenario, "seen in nginx's log");
    let undone = setup.wait_for_record("undo crowdsec.ban", GUESSER);
    assert_eq!(undone["ok"], true, "{undone}");
    assert_eq!(undone["outcome"], "CrowdSec's ban deleted");
    watch.stop();
}

#[test]
fn a_dry_run_pushes_no_ban() {
    let lapi = Lapi::start(free_port());
    lapi.add_machine(MACHINE, PASSWORD);
    let setup = Setup::new(&lapi.url(), "dry_run = true\n");
    let watch = setup.start_watch();
    setup.guess_from(GUESSER);
    let would = setup.wait_for_record("dry run", GUESSER);
    assert_eq!(
        would["outcome"],
        format!("would block {GUESSER} (block, crowdsec.ban)")
    );
    watch.stop();
    assert!(lapi.decisions().is_empty());
    assert!(setup.records("crowdsec.ban", GUESSER).is_empty());
}

#[test]
fn a_local_api_that_is_down_fails_the_ban_clearly_and_unblock_waits_for_it() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let setup = Setup::new(&url, "");
    let watch = setup.start_watch();
    setup.guess_from(GUESSER);
    let failed = setup.wait_for_record("crowdsec.ban", GUESSER);
    assert_eq!(failed["ok"], false, "{failed}");
    let said = failed["outcome"].as_str().unwrap();
    assert!(
        said.starts_with(&format!(
            "crowdsec: cannot reach CrowdSec's Local API at {url}: "
        )),
        "{said}"
    );
    assert!(said.contains("Connection refused"), "{said}");
    // The block itself stands (the state's, and any other block action's).
    assert_eq!(setup.blocked(), [GUESSER]);

    // Unblocking cannot lift a ban it cannot reach: it says so, and the
    // block stays in the state until it can (as at its expiry).
    let refused = setup.mailfuse(&["unblock", GUESSER]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(
        text(&refused).contains(&format!("actions.crowdsec: cannot unblock {GUESSER}")),
        "{}",
        text(&refused)
    );
    assert_eq!(setup.blocked(), [GUESSER]);

    let lapi = Lapi::start(port);
    lapi.add_machine(MACHINE, PASSWORD);
    let unblocked = setup.mailfuse(&["unblock", GUESSER]);
    assert!(unblocked.status.success(), "{}", text(&unblocked));
    assert!(setup.blocked().is_empty());
    watch.stop();
}
