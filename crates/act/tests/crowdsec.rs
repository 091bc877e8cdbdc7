//! The CrowdSec action against a real Local API (Debian's crowdsec 1.4.6,
//! extracted by `scripts/install-test-deps`, on a loopback port of its
//! own): bans as `cscli` lists them, once; lifts only its own; logs in
//! again when the API restarted; says clearly why it could not act.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::net::IpAddr;

use mailfuse_act::crowdsec::{Crowdsec, CrowdsecConfig};
use mailfuse_core::Timestamp;

#[path = "../../mailfuse/tests/support/crowdsec.rs"]
mod lapi;
#[path = "../../mailfuse/tests/support/ports.rs"]
mod ports;

use lapi::Lapi;

const PASSWORD: &str = "a-long-machine-password-for-the-tests";
const SCENARIO: &str = "mailfuse/password_guessing";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client(url: &str, machine: &str, password: &str) -> Crowdsec {
    Crowdsec::new(CrowdsecConfig {
        url: url.into(),
        machine_id: machine.into(),
        password: password.into(),
        timeout_secs: 10,
    })
    .unwrap()
}

fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Timestamp(i64::try_from(secs).unwrap())
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn a_ban_is_pushed_once_and_lifted_without_touching_anyone_elses() {
    let mut lapi = Lapi::start(ports::free_port());
    lapi.add_machine("mailfuse", PASSWORD);
    lapi.add_machine("mx2", PASSWORD);
    let crowdsec = client(&lapi.url(), "mailfuse", PASSWORD);
    let other_server = client(&lapi.url(), "mx2", PASSWORD);
    let runtime = runtime();
    let guesser = ip("203.0.113.9");
    let key = "password_guessing:203.0.113.9:1";

    // Another mail server's mailfuse, and the admin by hand, ban it too.
    assert!(runtime
        .block_on(other_server.ban(guesser, 3600, SCENARIO, key, now()))
        .unwrap());
    let by_hand = lapi.cscli(
        &[
            "decisions",
            "add",
            "--ip",
            "203.0.113.9",
            "--duration",
            "4h",
            "--reason",
            "seen by hand",
        ],
        None,
    );
    assert!(by_hand.status.success(), "{by_hand:?}");

    assert!(runtime
        .block_on(crowdsec.ban(guesser, 7200, SCENARIO, key, now()))
        .unwrap());
    // Run again (after a restart): the ban in force is not pushed twice.
    assert!(!runtime
        .block_on(crowdsec.ban(guesser, 7200, SCENARIO, key, now()))
        .unwrap());
    // Another incident kind is another scenario, another ban.
    assert!(runtime
        .block_on(crowdsec.ban(guesser, 7200, "mailfuse/compromised_account", key, now()))
        .unwrap());

    let ours = |lapi: &Lapi| -> Vec<lapi::Decision> {
        lapi.decisions()
            .into_iter()
            .filter(|d| d.machine == "mailfuse")
            .collect()
    };
    let mut bans = ours(&lapi);
    bans.sort_by(|a, b| a.scenario.cmp(&b.scenario));
    assert_eq!(bans.len(), 2, "{bans:?}");
    for ban in &bans {
        assert_eq!(
            (
                ban.value.as_str(),
                ban.scope.as_str(),
                ban.kind.as_str(),
                ban.origin.as_str()
            ),
            ("203.0.113.9", "Ip", "ban", "crowdsec")
        );
        assert!((7000..=7200).contains(&ban.seconds_left), "{ban:?}");
    }
    assert_eq!(bans[0].scenario, "mailfuse/compromised_account");
    assert_eq!(bans[1].scenario, SCENARIO);
    // Shown by plain `cscli decisions list` (one per IP, the newest), which
    // hides origins other than crowdsec and cscli.
    let listed = lapi.listed_decisions();
    assert!(
        listed
            .iter()
            .any(|d| d.machine == "mailfuse" && d.scenario == "mailfuse/compromised_account"),
        "{listed:?}"
    );

    // A restarted API no longer takes the old token: logged in again.
    lapi.stop();
    lapi.resume();
    assert_eq!(runtime.block_on(crowdsec.lift(guesser)).unwrap(), 2);
    assert!(ours(&lapi).is_empty());
    assert_eq!(runtime.block_on(crowdsec.lift(guesser)).unwrap(), 0);
    let left: Vec<(String, String)> = lapi
        .decisions()
        .into_iter()
        .map(|d| (d.machine, d.scenario))
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&("mx2".into(), SCENARIO.into())), "{left:?}");
    assert!(
        left.iter().any(|(_, scenario)| scenario == "seen by hand"),
        "{left:?}"
    );
}

#[test]
fn an_ipv6_address_is_banned_and_lifted() {
    let lapi = Lapi::start(ports::free_port());
    lapi.add_machine("mailfuse", PASSWORD);
    let crowdsec = client(&lapi.url(), "mailfuse", PASSWORD);
    let runtime = runtime();
    let guesser = ip("2001:db8:4::9");
    assert!(runtime
        .block_on(crowdsec.ban(guesser, 600, SCENARIO, "k", now()))
        .unwrap());
    let bans = lapi.decisions();
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0].value, "2001:db8:4::9");
    assert_eq!(runtime.block_on(crowdsec.lift(guesser)).unwrap(), 1);
    assert!(lapi.decisions().is_empty());
}

#[test]
fn a_wrong_password_and_an_api_that_is_down_are_said_clearly() {
    let lapi = Lapi::start(ports::free_port());
    lapi.add_machine("mailfuse", PASSWORD);
    let runtime = runtime();
    let wrong = client(&lapi.url(), "mailfuse", "not-the-password");
    let refused = runtime
        .block_on(wrong.ban(ip("203.0.113.9"), 60, SCENARIO, "k", now()))
        .unwrap_err()
        .to_string();
    assert!(
        refused.starts_with("crowdsec: CrowdSec refused the login of machine `mailfuse`: incorrect Username or Password"),
        "{refused}"
    );
    assert!(refused.contains("cscli machines add mailfuse"), "{refused}");

    let port = ports::free_port();
    let down = client(&format!("http://127.0.0.1:{port}"), "mailfuse", PASSWORD);
    let unreachable = runtime
        .block_on(down.lift(ip("203.0.113.9")))
        .unwrap_err()
        .to_string();
    assert!(
        unreachable.starts_with(&format!(
            "crowdsec: cannot reach CrowdSec's Local API at http://127.0.0.1:{port}/: "
        )),
        "{unreachable}"
    );
    assert!(unreachable.contains("Connection refused"), "{unreachable}");
    assert!(unreachable.contains("is crowdsec running"), "{unreachable}");
    assert!(lapi.decisions().is_empty());
}
