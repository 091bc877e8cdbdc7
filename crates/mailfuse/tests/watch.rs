//! `mailfuse watch` as a daemon: it follows logs that grow, survives
//! `kill -9` without losing or double-counting a line, and reports through
//! `status`; it never blocks the server itself, and names the webmail's
//! client as the sender of mail the webmail submitted over loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use metrics::{metric, metrics_text};
use serde_json::Value;

#[path = "support/metrics.rs"]
mod metrics;
#[path = "support/ports.rs"]
mod ports;
#[path = "support/webhook.rs"]
mod webhook;

const BIN: &str = env!("CARGO_BIN_EXE_mailfuse");

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/kerio")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("mailfuse runs")
}

/// A watch daemon, killed when dropped (even when the test fails).
struct Daemon(Child);

impl Daemon {
    fn start(config: &Path) -> Daemon {
        Daemon::start_with_path(config, None)
    }

    /// Started with `bin` first on its PATH (fake system tools).
    fn start_with_path(config: &Path, bin: Option<&Path>) -> Daemon {
        let mut command = Command::new(BIN);
        if let Some(bin) = bin {
            let path = std::env::var("PATH").unwrap_or_default();
            command.env("PATH", format!("{}:{path}", bin.display()));
        }
        let child = command
            .args(["watch", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("watch starts");
        Daemon(child)
    }

    fn kill_9(mut self) {
        self.0.kill().expect("kill -9");
        self.0.wait().expect("reaped");
    }

    /// SIGTERM, then wait for a clean exit.
    fn stop(mut self) {
        let pid = self.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let status = self.0.wait().expect("exits");
        assert!(status.success(), "watch exits cleanly on SIGTERM: {status}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An executable `/bin/sh` script at `path` running `body` (a fake tool,
/// a hook that notes its calls).
fn shell_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// What `mailfuse status --format json` says of `config`'s state.
fn status(config: &Path) -> Value {
    json(&run(&[
        "status",
        "--format",
        "json",
        "--config",
        config.to_str().unwrap(),
    ]))
}

/// The `field` of each entry of `status`'s `list` (`locks`, `account`).
fn listed<'a>(status: &'a Value, list: &str, field: &str) -> Vec<&'a str> {
    status[list]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry[field].as_str())
        .collect()
}

/// What `scan` says of the logs as they are now.
fn scan(logs: &Path) -> Value {
    let args = ["scan", "--format", "json", "--timezone", "+01:00"];
    let output = Command::new(BIN)
        .args(args)
        .arg(logs)
        .output()
        .expect("scan runs");
    json(&output)
}

/// Waits until watch's saved progress has read `events` events.
fn wait_for_events(config: &Path, events: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = run(&[
            "status",
            "--format",
            "json",
            "--config",
            config.to_str().unwrap(),
        ]);
        if output.status.success() {
            let status = json(&output);
            let seen = status["progress"]["stats"]["events"].as_u64().unwrap_or(0);
            assert!(
                seen <= events,
                "counted twice: {seen} events saved, {events} in the logs"
            );
            if seen == events {
                return status;
            }
        }
        assert!(
            Instant::now() < deadline,
            "watch did not catch up with {events} events"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn watch_survives_kill_9_without_losing_or_double_counting_and_finds_the_hijack() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let names = ["mail.log", "security.log", "audit.log"];
    let contents: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(example(n)).unwrap())
        .collect();
    for name in names {
        std::fs::write(logs.join(name), b"").unwrap();
    }
    // The alert hook: one line per call, to count alerts.
    let alerts = dir.path().join("alerts.txt");
    let hook = dir.path().join("hook.sh");
    shell_script(&hook, &format!("echo \"$1 $2 $3\" >> {}", alerts.display()));
    let config = dir.path().join("mailfuse.toml");
    // Every account and guessing IP packed after each event (a provider's
    // idle entries are, after an hour): the restarts then restore packed
    // rows, compressed with a dictionary an earlier process trained.
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\ntimezone = \"+01:00\"\n\n\
             [detect.compromise]\npack_idle_secs = 0\n\n[detect.guessing]\npack_idle_secs = 0\n\n\
             [actions]\nact_within = \"3650d\"\n\n[actions.command]\nprogram = \"{}\"\nargs = [\"{{kind}}\", \"{{account}}\", \"{{ip}}\"]\n",
            logs.display(),
            dir.path().join("state.db").display(),
            hook.display()
        ),
    )
    .unwrap();

    const CHUNKS: usize = 5;
    // The chunks after which watch is killed with SIGKILL.
    const KILLED_AFTER: [usize; 2] = [1, 3];
    let mut daemon = Some(Daemon::start(&config));
    for chunk in 0..CHUNKS {
        for (name, content) in names.iter().zip(&contents) {
            let lines: Vec<&[u8]> = content.split_inclusive(|&b| b == b'\n').collect();
            let per_chunk = lines.len().div_ceil(CHUNKS);
            let part: Vec<u8> = lines
                .iter()
                .skip(chunk * per_chunk)
                .take(per_chunk)
                .copied()
                .flatten()
                .copied()
                .collect();
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(logs.join(name))
                .unwrap();
            file.write_all(&part).unwrap();
        }
        if KILLED_AFTER.contains(&chunk) {
            // Crash while the chunk may be half read and unsaved.
            std::thread::sleep(Duration::from_millis(30 * chunk as u64));
            daemon.take().expect("running").kill_9();
            daemon = Some(Daemon::start(&config));
        }
        let events = scan(&logs)["stats"]["events"].as_u64().expect("events");
        wait_for_events(&config, events);
    }
    daemon.take().expect("running").stop();
    let dictionaries = mailfuse_store::Store::open(&dir.path().join("state.db"))
        .and_then(|store| store.row_dictionaries())
        .expect("the state reads");
    assert!(
        dictionaries.iter().any(|d| d.table == "accounts"),
        "the accounts' rows were compressed: {:?}",
        dictionaries.iter().map(|d| &d.table).collect::<Vec<_>>()
    );

    let output = run(&[
        "status",
        "--format",
        "json",
        "--config",
        config.to_str().unwrap(),
    ]);
    let status = json(&output);
    let full = scan(&logs);
    for counter in [
        "events",
        "messages",
        "deliveries",
        "auth_failures",
        "auth_successes",
    ] {
        assert_eq!(
            status["progress"]["stats"][counter], full["stats"][counter],
            "{counter}: watch and scan agree"
        );
    }
    let subjects: Vec<&str> = listed(&status, "incidents", "subject");
    assert!(
        subjects.contains(&"sales@acme-tools.example"),
        "{subjects:?}"
    );
    assert!(subjects.contains(&"45.155.205.99"), "{subjects:?}");
    let locked: Vec<&str> = listed(&status, "locks", "account");
    assert_eq!(locked, ["sales@acme-tools.example"]);

    // One alert per incident, although the incidents were found again
    // after each kill -9 — but for an alert the kill itself cut off between
    // running the hook and recording it, which is sent again (at least
    // once, never lost): at most one more per kill.
    const KILLS: usize = KILLED_AFTER.len();
    let sent = std::fs::read_to_string(&alerts).unwrap_or_default();
    let mut lines: Vec<&str> = sent.lines().collect();
    assert!(
        (subjects.len()..=subjects.len() + KILLS).contains(&lines.len()),
        "one alert per incident ({} incidents, {KILLS} kills):\n{sent}",
        subjects.len()
    );
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(
        lines.len(),
        subjects.len(),
        "every incident alerted:\n{sent}"
    );
    assert!(
        lines.contains(&"compromised_account sales@acme-tools.example 173.16.65.213"),
        "{sent}"
    );

    // unlock restores the account, once.
    let unlock = run(&[
        "unlock",
        "sales@acme-tools.example",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        unlock.status.success(),
        "{}",
        String::from_utf8_lossy(&unlock.stderr)
    );
    let again = run(&[
        "unlock",
        "sales@acme-tools.example",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(1), "not locked any more");
}

#[test]
fn catching_up_on_written_logs_watch_judges_like_scan() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for name in ["mail.log", "security.log", "audit.log"] {
        std::fs::copy(example(name), logs.join(name)).unwrap();
    }
    // A Kerio directory: watch follows its three logs.
    assert_watch_judges_like_scan(dir.path(), &logs, std::slice::from_ref(&logs));

    // The same with mail.log rotated once: scan reads the set as one input,
    // watch follows both files.
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for name in ["security.log", "audit.log"] {
        std::fs::copy(example(name), logs.join(name)).unwrap();
    }
    let mail = std::fs::read(example("mail.log")).unwrap();
    let half = mail.len() / 2;
    let cut = half + mail[half..].iter().position(|&b| b == b'\n').unwrap() + 1;
    std::fs::write(logs.join("mail.log.1"), &mail[..cut]).unwrap();
    std::fs::write(logs.join("mail.log"), &mail[cut..]).unwrap();
    // Named in scan's order, so lines of the same second merge alike.
    let follow = ["audit.log", "mail.log.1", "mail.log", "security.log"].map(|n| logs.join(n));
    assert_watch_judges_like_scan(dir.path(), &logs, &follow);
}

/// Scans `logs`, lets watch catch up on `follow` (the same files), and
/// compares what both read and found: events, line counts by outcome,
/// incidents with their reasons and evidence.
fn assert_watch_judges_like_scan(dir: &Path, logs: &Path, follow: &[PathBuf]) {
    let config = dir.join("mailfuse.toml");
    let metrics_port = ports::free_port();
    let follow: Vec<String> = follow
        .iter()
        .map(|path| format!("\"{}\"", path.display()))
        .collect();
    // No timezone: derived from mail.log's Queue-IDs for every file, as scan does.
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [{}]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n",
            follow.join(", "),
            dir.join("state.db").display()
        ),
    )
    .unwrap();
    let scanned = {
        let output = Command::new(BIN)
            .args(["scan", "--format", "json"])
            .arg(logs)
            .output()
            .expect("scan runs");
        json(&output)
    };
    let events = scanned["stats"]["events"].as_u64().expect("events");
    let daemon = Daemon::start(&config);
    let status = wait_for_events(&config, events);
    let read = lines_read(metrics_port);
    daemon.stop();

    let inputs = scanned["inputs"].as_array().unwrap();
    let total = |key: &str| -> u64 {
        inputs
            .iter()
            .map(|input| match &input[key] {
                Value::Object(reasons) => reasons.values().filter_map(Value::as_u64).sum(),
                count => count.as_u64().unwrap_or(0),
            })
            .sum()
    };
    for (outcome, key) in [
        ("event", "events"),
        ("ignored", "ignored"),
        ("unknown", "unknown"),
        ("malformed", "malformed"),
        ("too_long", "too_long"),
    ] {
        let watched = read.get(outcome).copied().unwrap_or(0);
        assert_eq!(watched, total(key), "{outcome} lines");
    }

    let mut from_scan: Vec<Value> = scanned["incidents"].as_array().unwrap().clone();
    let mut from_watch: Vec<Value> = status["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["incident"].clone())
        .collect();
    let key = |i: &Value| {
        (
            i["kind"].to_string(),
            i["first_seen"].to_string(),
            i["ips"].to_string(),
        )
    };
    from_scan.sort_by_key(key);
    from_watch.sort_by_key(key);
    assert!(!from_scan.is_empty());
    assert_eq!(
        from_watch, from_scan,
        "the same incidents, reasons and evidence"
    );
}

/// Watch's `mailfuse_lines_read` counters from `/metrics`, summed over
/// formats, by outcome.
fn lines_read(port: u16) -> std::collections::HashMap<String, u64> {
    let response = metrics_text(port);
    let mut read = std::collections::HashMap::new();
    for line in response.lines() {
        let Some(rest) = line.strip_prefix("mailfuse_lines_read_total{") else {
            continue;
        };
        let outcome = rest
            .split("outcome=\"")
            .nth(1)
            .and_then(|o| o.split('"').next())
            .unwrap_or_default();
        let count = line.rsplit(' ').next().and_then(|c| c.parse::<f64>().ok());
        *read.entry(outcome.to_string()).or_insert(0) += count.unwrap_or(0.0) as u64;
    }
    read
}

/// A Postfix + Dovecot server's `mail.log` (RFC 3339 stamps, rsyslog's
/// high-precision format) where three accounts sent from their office for
/// three days, then were phished and spammed through the server's own
/// webmail (Roundcube submitting over loopback):
/// - `j.novak` logged into Roundcube from 198.51.100.7 (Roundcube's syslog line);
/// - `marta` from 203.0.113.77, told by Dovecot (Roundcube passes the
///   client's IP on: `rip=203.0.113.77, lip=127.0.0.1`);
/// - `eva` with no line naming her webmail client (`rip=127.0.0.1`).
fn webmail_story() -> String {
    const DAY: u64 = 86_400;
    let stamp = |secs: u64| {
        let (day, rest) = (secs / DAY, secs % DAY);
        format!(
            "2026-01-{:02}T{:02}:{:02}:{:02}.000000+00:00 mail",
            5 + day,
            rest / 3600,
            rest % 3600 / 60,
            rest % 60
        )
    };
    let mut log = String::new();
    let mut queue = 0x004F_2A00_0000_u64;
    let mut message = |log: &mut String,
                       t: u64,
                       client: &str,
                       account: &str,
                       from: &str,
                       to: &str,
                       bounced: bool| {
        queue += 1;
        let (ts, later) = (stamp(t), stamp(t + 2));
        let q = format!("{queue:010X}");
        let host = if client == "127.0.0.1" {
            "localhost"
        } else {
            "office.acme.example"
        };
        log.push_str(&format!(
            "{ts} postfix/submission/smtpd[2001]: {q}: client={host}[{client}], sasl_method=PLAIN, sasl_username={account}\n\
             {ts} postfix/cleanup[2002]: {q}: message-id=<{q}@acme.example>\n\
             {ts} postfix/qmgr[1001]: {q}: from=<{from}>, size=1520, nrcpt=1 (queue active)\n"
        ));
        let (dsn, status) = if bounced {
            ("5.1.1", "bounced (host mx.aol.example[192.0.2.25] said: 550 5.1.1 user unknown (in reply to RCPT TO command))")
        } else {
            ("2.0.0", "sent (250 2.0.0 OK)")
        };
        log.push_str(&format!(
            "{later} postfix/smtp[2003]: {q}: to=<{to}>, relay=mx.aol.example[192.0.2.25]:25, delay=2.1, delays=0.1/0/1/1, dsn={dsn}, status={status}\n\
             {later} postfix/qmgr[1001]: {q}: removed\n"
        ));
    };
    let accounts = [
        "j.novak@acme.example",
        "marta@acme.example",
        "eva@acme.example",
    ];
    for day in 0..3 {
        for (i, account) in accounts.iter().enumerate() {
            let t = day * DAY + 9 * 3600 + i as u64 * 600;
            message(
                &mut log,
                t,
                "203.0.113.50",
                account,
                account,
                "partner@partner.example",
                false,
            );
        }
    }
    let attack = 3 * DAY + 20 * 3600;
    log.push_str(&format!(
        "{} roundcube: <n9q3yf0f> Successful login for j.novak@acme.example (ID: 3) from 198.51.100.7 in session n9q3yf0fr8xaaab4\n\
         {} dovecot: imap-login: Login: user=<marta@acme.example>, method=PLAIN, rip=203.0.113.77, lip=127.0.0.1, mpid=4711, secured, session=<n9Q3yF0Fr8x/AAAB>\n\
         {} dovecot: imap-login: Login: user=<eva@acme.example>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=4712, secured, session=<m8P2xE9Eq7w/AAAB>\n",
        stamp(attack - 120),
        stamp(attack - 90),
        stamp(attack - 60),
    ));
    for n in 0..30u64 {
        for (i, account) in accounts.iter().enumerate() {
            let to = format!("victim{n}-{i}@aol.example");
            let t = attack + n * 20 + i as u64 * 5;
            message(
                &mut log,
                t,
                "127.0.0.1",
                account,
                "admin@redbullcarwrap.example",
                &to,
                n % 5 < 2,
            );
        }
    }
    log
}

#[test]
fn scan_names_the_webmails_client_and_never_advises_blocking_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    std::fs::write(&log, webmail_story()).unwrap();
    let output = Command::new(BIN)
        .args(["scan", "--no-progress"])
        .arg(&log)
        .output()
        .expect("scan runs");
    let report = String::from_utf8_lossy(&output.stdout);
    let incident = |account: &str| {
        let start = report
            .find(&format!("COMPROMISED ACCOUNT  {account}"))
            .unwrap_or_else(|| panic!("{account}:\n{report}"));
        let rest = &report[start..];
        rest[..rest.find("\n\n").unwrap_or(rest.len())].to_string()
    };
    let novak = incident("j.novak@acme.example");
    assert!(novak.contains("sending IPs: 198.51.100.7\n"), "{novak}");
    assert!(
        novak.contains("block 198.51.100.7 for a few weeks"),
        "{novak}"
    );
    let marta = incident("marta@acme.example");
    assert!(marta.contains("sending IPs: 203.0.113.77\n"), "{marta}");
    let eva = incident("eva@acme.example");
    assert!(eva.contains("sending IPs: 127.0.0.1\n"), "{eva}");
    assert!(
        eva.contains("127.0.0.1 is this server: the sender's real IP is unknown (webmail?"),
        "{eva}"
    );
    assert!(
        eva.contains("to do:       change the password (or disable the account), remove its queued messages\n"),
        "{eva}"
    );
    assert!(
        eva.contains("not blocked: 127.0.0.1 is this server (loopback: its webmail, content filter or scripts): not blocked; lock the account instead"),
        "{eva}"
    );
    for line in report.lines().filter(|l| l.contains("block")) {
        assert!(!line.contains("block 127.0.0.1"), "{line}");
    }
}

#[test]
fn watch_never_blocks_the_server_itself_and_blocks_the_webmails_client() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    std::fs::write(logs.join("mail.log"), webmail_story()).unwrap();
    // A fake nft noting each call.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let calls = dir.path().join("nft.txt");
    shell_script(
        &bin.join("nft"),
        &format!("echo \"$@\" >> {}", calls.display()),
    );
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\n\n\
             [actions]\nact_within = \"3650d\"\n\n[actions.nftables]\n",
            logs.display(),
            dir.path().join("state.db").display(),
        ),
    )
    .unwrap();
    let events = scan(&logs)["stats"]["events"].as_u64().expect("events");
    let daemon = Daemon::start_with_path(&config, Some(&bin));
    wait_for_events(&config, events);
    daemon.stop();
    let status = status(&config);
    let mut locked: Vec<&str> = listed(&status, "locks", "account");
    locked.sort_unstable();
    assert_eq!(
        locked,
        [
            "eva@acme.example",
            "j.novak@acme.example",
            "marta@acme.example"
        ]
    );
    let mut blocked: Vec<&str> = listed(&status, "blocks", "ip");
    blocked.sort_unstable();
    assert_eq!(blocked, ["198.51.100.7", "203.0.113.77"]);
    let nft_calls = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(nft_calls.contains("{ 198.51.100.7 timeout"), "{nft_calls}");
    assert!(!nft_calls.contains("127.0.0.1"), "{nft_calls}");
    let skipped: Vec<(&str, &str)> = status["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "skipped")
        .map(|a| {
            (
                a["target"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [("127.0.0.1", "127.0.0.1 not blocked: it is this server (loopback: its webmail, content filter or scripts)")]
    );
    let eva = status["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["subject"] == "eva@acme.example")
        .expect("eva's incident");
    assert_eq!(eva["incident"]["protected_ips"][0]["why"], "loopback");
}

#[test]
fn a_followed_file_that_does_not_exist_is_counted_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let port = ports::free_port();
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\nmetrics_listen = \"127.0.0.1:{port}\"\n",
            log.display(),
            dir.path().join("state.db").display()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config);
    let missing = || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        metrics_text(port)
            .lines()
            .find_map(|line| line.strip_prefix("mailfuse_inputs_missing "))
            .and_then(|count| count.trim().parse::<u64>().ok())
    };
    let wait_for = |count: u64| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while missing() != Some(count) {
            assert!(Instant::now() < deadline, "inputs_missing never {count}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(1);
    std::fs::copy(example("mail.log"), &log).unwrap();
    wait_for(0);
    daemon.stop();
}

/// `n` Postfix failed logins, each an event, numbered from `from`.
fn failed_logins(from: usize, n: usize) -> String {
    failed_logins_from("203.0.113.9", from, n)
}

/// `n` Postfix failed logins from `ip`, numbered from `from` (a second each).
fn failed_logins_from(ip: &str, from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| {
            format!(
                "Dec 14 20:{:02}:{:02} mail postfix/smtpd[{}]: warning: unknown[{ip}]: \
                 SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username=user{i}@example.test\n",
                i / 60,
                i % 60,
                1000 + i
            )
        })
        .collect()
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// logrotate's `compress`: `from` gzipped to `to`, `from` removed.
fn gzip(from: &Path, to: &Path) {
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(to).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(&std::fs::read(from).unwrap()).unwrap();
    encoder.finish().unwrap();
    std::fs::remove_file(from).unwrap();
}

/// A watch configuration in `dir` following `log`, its state in
/// `state_dir`, saving every second; `more` is added as it is.
fn watch_config(dir: &Path, log: &Path, state_dir: &Path, more: &str) -> PathBuf {
    let config = dir.join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\n{more}",
            log.display(),
            state_dir.join("state.db").display()
        ),
    )
    .unwrap();
    config
}

/// Watch is stopped, the log rotates twice or more (`rotate`), watch
/// restarts: every line written meanwhile, in every rotated member, is
/// counted once, and a line written after is counted too.
fn resume_across_rotations(rotate: impl Fn(&Path, &mut dyn FnMut(&Path))) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let config = watch_config(dir.path(), &log, dir.path(), "");
    let mut written = 0;
    let mut write = |path: &Path| {
        append(path, &failed_logins(written, 10));
        written += 10;
    };
    write(&log);
    let daemon = Daemon::start(&config);
    wait_for_events(&config, 10);
    daemon.stop();
    rotate(&log, &mut write);
    let daemon = Daemon::start(&config);
    wait_for_events(&config, written as u64);
    // A line after them: counted, and the wait would see any repeat.
    append(&log, &failed_logins(written, 1));
    wait_for_events(&config, written as u64 + 1);
    daemon.stop();
}

#[test]
fn watch_stopped_across_two_rotations_reads_every_rotated_file() {
    resume_across_rotations(|log, write| {
        let sibling = |name: &str| log.with_file_name(name);
        write(log); // unread lines in the checkpointed file
        std::fs::rename(log, sibling("mail.log.1")).unwrap();
        write(log);
        std::fs::rename(sibling("mail.log.1"), sibling("mail.log.2")).unwrap();
        std::fs::rename(log, sibling("mail.log.1")).unwrap();
        write(log);
    });
}

#[test]
fn watch_stopped_across_rotations_with_delaycompress_reads_the_compressed_ones() {
    resume_across_rotations(|log, write| {
        let sibling = |name: &str| log.with_file_name(name);
        write(log);
        // logrotate with `compress` and `delaycompress`, three times.
        std::fs::rename(log, sibling("mail.log.1")).unwrap();
        write(log);
        gzip(&sibling("mail.log.1"), &sibling("mail.log.2.gz"));
        std::fs::rename(log, sibling("mail.log.1")).unwrap();
        write(log);
        std::fs::rename(sibling("mail.log.2.gz"), sibling("mail.log.3.gz")).unwrap();
        gzip(&sibling("mail.log.1"), &sibling("mail.log.2.gz"));
        std::fs::rename(log, sibling("mail.log.1")).unwrap();
        write(log);
    });
}

/// A tmpfs of `size` mounted on `dir` (made here), unmounted when dropped,
/// even when the test fails: a real filesystem that fills up.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
        assert_eq!(
            uid, 0,
            "this test fills a tmpfs it mounts, which needs root: run the suite as root, \
             as CI does (scripts/test-all), like the mail server end-to-end tests"
        );
        std::fs::create_dir(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(mounted.success(), "mount -t tmpfs {}", dir.display());
        Tmpfs(dir.to_path_buf())
    }

    /// Fills the filesystem with `name` until it refuses more.
    fn fill(&self, name: &str) -> PathBuf {
        let filler = self.0.join(name);
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Waits until `ready` holds, failing with `what` after 30 s.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_disk_stops_no_detection_and_the_state_is_saved_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("state");
    let tmpfs = Tmpfs::mount(&state_dir, "2m");
    let log = dir.path().join("mail.log");
    let alerts = dir.path().join("alerts.txt");
    let hook = dir.path().join("hook.sh");
    shell_script(&hook, &format!("echo \"$1 $2 $3\" >> {}", alerts.display()));
    let port = ports::free_port();
    let config = watch_config(
        dir.path(),
        &log,
        &state_dir,
        &format!(
            "metrics_listen = \"127.0.0.1:{port}\"\n\n[actions]\nact_within = \"3650d\"\n\n\
             [actions.command]\nprogram = \"{}\"\nargs = [\"{{kind}}\", \"{{account}}\", \"{{ip}}\"]\n",
            hook.display()
        ),
    );
    let alerted = |what: &str| {
        let sent = std::fs::read_to_string(&alerts).unwrap_or_default();
        sent.lines().filter(|l| l.starts_with(what)).count()
    };
    append(&log, &failed_logins_from("198.51.100.1", 0, 3));
    let daemon = Daemon::start(&config);
    wait_for_events(&config, 3);

    // The disk fills; a guesser comes.
    let filler = tmpfs.fill("filler");
    append(&log, &failed_logins_from("203.0.113.9", 100, 30));
    let failures = "mailfuse_state_save_failures_total";
    wait_until("saves fail, twice", || metric(port, failures) >= 2.0);
    assert_eq!(metric(port, "mailfuse_state_saving_failed"), 1.0);
    wait_until("the lines are counted", || {
        metric(port, "mailfuse_events_total{kind=\"auth_failure\"}") == 33.0
    });
    wait_until("the guesser is alerted", || {
        alerted("password_guessing  203.0.113.9") == 1
    });
    wait_until("saves fail a third time", || metric(port, failures) >= 3.0);
    assert_eq!(alerted("state_not_saved"), 1, "one alert per outage");

    // Room again: saved, with the incident the store refused meanwhile.
    std::fs::remove_file(filler).unwrap();
    wait_until("saved again", || {
        metric(port, "mailfuse_state_saving_failed") == 0.0
    });
    let status = wait_for_events(&config, 33);
    let subjects: Vec<&str> = status["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["subject"].as_str())
        .collect();
    assert!(subjects.contains(&"203.0.113.9"), "{subjects:?}");

    // A restart resumes where the save left it, nothing read or done twice.
    daemon.stop();
    let daemon = Daemon::start(&config);
    append(&log, &failed_logins_from("198.51.100.1", 200, 1));
    wait_for_events(&config, 34);
    daemon.stop();
    assert_eq!(alerted("password_guessing  203.0.113.9"), 1);
    assert_eq!(alerted("state_not_saved"), 1);

    // Started on a full disk, watch cannot open the state (SQLite needs
    // room for its shared memory): it says so and keeps the state whole.
    let filler = tmpfs.fill("filler");
    let refused = run(&["watch", "--config", config.to_str().unwrap()]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("the filesystem holding it is full: free space"),
        "{said}"
    );
    assert!(!said.contains("moved away"), "{said}");
    std::fs::remove_file(filler).unwrap();
    append(&log, &failed_logins_from("198.51.100.1", 300, 1));
    let daemon = Daemon::start(&config);
    wait_for_events(&config, 35);
    daemon.stop();
}

#[test]
fn a_checkpoint_lost_while_stopped_is_an_alert_and_a_metric() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let alerts = dir.path().join("alerts.txt");
    let hook = dir.path().join("hook.sh");
    shell_script(
        &hook,
        &format!("echo \"$1 $MAILFUSE_FAULT\" >> {}", alerts.display()),
    );
    let port = ports::free_port();
    let config = watch_config(
        dir.path(),
        &log,
        dir.path(),
        &format!(
            "metrics_listen = \"127.0.0.1:{port}\"\n\n[actions.command]\nprogram = \"{}\"\nargs = [\"{{kind}}\"]\n",
            hook.display()
        ),
    );
    append(&log, &failed_logins_from("198.51.100.1", 0, 3));
    let daemon = Daemon::start(&config);
    wait_for_events(&config, 3);
    daemon.stop();
    // Rotated and deleted while watch was stopped (logrotate's `rotate 0`).
    std::fs::rename(&log, log.with_file_name("mail.log.1")).unwrap();
    std::fs::remove_file(log.with_file_name("mail.log.1")).unwrap();
    append(&log, &failed_logins_from("198.51.100.1", 10, 2));
    let daemon = Daemon::start(&config);
    wait_for_events(&config, 5);
    wait_until("the loss is counted", || {
        metric(port, "mailfuse_read_losses_total") == 1.0
    });
    // Alerts go out from their queue, after the loop moved on.
    wait_until("the loss is alerted", || alerts.exists());
    let sent = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert_eq!(
        sent.lines().collect::<Vec<_>>(),
        ["lines_lost log lines may have been lost"],
        "{sent}"
    );
    daemon.stop();
}

#[test]
fn an_authenticated_message_to_a_canary_in_the_log_locks_the_account_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    let alerts = dir.path().join("alerts.txt");
    let hook = dir.path().join("hook.sh");
    shell_script(&hook, &format!("echo \"$1 $2\" >> {}", alerts.display()));
    // Inbound mail to the trap (no login) first: nothing.
    let mut lines = String::from(
        "Dec  5 10:00:00 mx postfix/smtpd[1200]: 4A1B2C3D01: client=unknown[192.0.2.99]\n\
         Dec  5 10:00:00 mx postfix/qmgr[100]: 4A1B2C3D01: from=<spam@elsewhere.test>, size=300, nrcpt=1 (queue active)\n\
         Dec  5 10:00:01 mx postfix/local[1201]: 4A1B2C3D01: to=<trap@example.com>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)\n",
    );
    // Then alice's login sends to it, twice.
    for (n, qid) in ["4A1B2C3D02", "4A1B2C3D03"].iter().enumerate() {
        lines.push_str(&format!(
            "Dec  5 10:0{n}:10 mx postfix/submission/smtpd[1300]: {qid}: client=unknown[203.0.113.7], sasl_method=PLAIN, sasl_username=alice@example.com\n\
             Dec  5 10:0{n}:10 mx postfix/qmgr[100]: {qid}: from=<alice@example.com>, size=300, nrcpt=1 (queue active)\n\
             Dec  5 10:0{n}:11 mx postfix/local[1301]: {qid}: to=<Trap@Example.com>, relay=local, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered to mailbox)\n",
        ));
    }
    std::fs::write(&log, lines).unwrap();
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\n\n\
             [canary]\nrecipients = [\"trap@example.com\"]\n\n\
             [actions]\nact_within = \"3650d\"\n\n[actions.command]\nprogram = \"{}\"\nargs = [\"{{kind}}\", \"{{account}}\"]\n",
            log.display(),
            dir.path().join("state.db").display(),
            hook.display()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config);
    wait_for_events(&config, 9);
    daemon.stop();
    let status = status(&config);
    let locked: Vec<&str> = listed(&status, "locks", "account");
    assert_eq!(locked, ["alice@example.com"], "{status}");
    let incidents = status["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{status}");
    assert!(
        status
            .to_string()
            .contains("sent to canary address trap@example.com"),
        "{status}"
    );
    let sent = std::fs::read_to_string(&alerts).unwrap();
    assert_eq!(
        sent.lines().collect::<Vec<_>>(),
        ["compromised_account alice@example.com"]
    );
}

/// A watch configuration in `dir` following `logs` (zone +01:00, as the
/// example's), alerting by webhook on loopback `webhook_port` and serving
/// its metrics on `metrics_port`.
fn webhook_config(dir: &Path, logs: &[PathBuf], webhook_port: u16, metrics_port: u16) -> PathBuf {
    let config = dir.join("mailfuse.toml");
    let logs: Vec<String> = logs
        .iter()
        .map(|l| format!("{:?}", l.display().to_string()))
        .collect();
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [{}]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\n\
             timezone = \"+01:00\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n\n\
             [actions]\nact_within = \"3650d\"\n\n\
             [actions.webhook]\nurl = \"http://127.0.0.1:{webhook_port}/alerts\"\ntimeout_secs = 300\n",
            logs.join(", "),
            dir.join("state.db").display()
        ),
    )
    .unwrap();
    config
}

/// The incidents the webhook was told of, each as JSON, sorted.
fn alerted(webhook: &webhook::Webhook) -> Vec<String> {
    let mut incidents: Vec<String> = webhook
        .bodies()
        .iter()
        .map(|body| serde_json::from_str::<Value>(body).unwrap()["incident"].to_string())
        .collect();
    incidents.sort_unstable();
    incidents
}

/// The incidents `status` lists, each as JSON, sorted.
fn recorded(status: &Value) -> Vec<String> {
    let mut incidents: Vec<String> = status["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["incident"].to_string())
        .collect();
    incidents.sort_unstable();
    incidents
}

#[test]
fn a_slow_webhook_never_delays_the_next_lock_and_every_alert_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let guessing = dir.path().join("postfix.log");
    let kerio_dir = dir.path().join("kerio");
    std::fs::create_dir(&kerio_dir).unwrap();
    let kerio = ["mail.log", "security.log", "audit.log"].map(|name| kerio_dir.join(name));
    for log in &kerio {
        std::fs::write(log, b"").unwrap();
    }
    let logs = [guessing.clone(), kerio_dir.clone()];
    // The webhook takes each alert and answers none until let go.
    let webhook = webhook::Webhook::start_on(ports::free_port(), true);
    let metrics_port = ports::free_port();
    let config = webhook_config(dir.path(), &logs, webhook.port, metrics_port);
    append(&guessing, &failed_logins_from("203.0.113.9", 0, 30));
    let daemon = Daemon::start(&config);
    wait_until("the guesser's alert reaches the webhook", || {
        webhook.bodies().len() == 1
    });

    // While that alert hangs, the example's hijack is logged: locked all
    // the same (inline alerts would wait for the webhook's answer first).
    for log in &kerio {
        let name = log.file_name().unwrap().to_str().unwrap();
        append(log, &std::fs::read_to_string(example(name)).unwrap());
    }
    wait_until("the hijacked account is locked", || {
        status(&config)["locks"].as_array().is_some_and(|locks| {
            locks
                .iter()
                .any(|l| l["account"] == "sales@acme-tools.example")
        })
    });
    // The lock is recorded before its alerts are queued behind the
    // hanging one: the queue's gauge may take a moment to show them.
    wait_until("the hijack's alerts wait in the queue", || {
        metric(metrics_port, "mailfuse_alert_queue") >= 1.0
    });
    assert_eq!(webhook.answered(), 0, "the first alert still hangs");
    assert_eq!(webhook.bodies().len(), 1, "the others wait their turn");

    // Let go: every incident is alerted, once.
    webhook.release();
    let expected = 30 + scan(&kerio_dir)["stats"]["events"].as_u64().unwrap();
    let incidents = recorded(&wait_for_events(&config, expected));
    assert!(incidents.len() >= 3, "{incidents:?}");
    wait_until("every incident is alerted", || {
        webhook.answered() >= incidents.len()
    });
    daemon.stop();
    assert_eq!(alerted(&webhook), incidents, "one alert per incident");
    assert_eq!(pending_alerts(&config), 0, "nothing left pending");
}

/// How many alerts the state holds pending (watch stopped).
fn pending_alerts(config: &Path) -> usize {
    let state = std::fs::read_to_string(config)
        .unwrap()
        .lines()
        .find_map(|l| Some(l.strip_prefix("state = ")?.trim_matches('"').to_string()))
        .unwrap();
    mailfuse_store::Store::open(Path::new(&state))
        .and_then(|store| store.pending_alerts())
        .unwrap()
        .len()
}

#[test]
fn an_alert_in_flight_at_a_kill_9_is_sent_again_with_its_id_so_the_receiver_keeps_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    // The webhook takes the alert and holds its answer.
    let webhook = webhook::Webhook::start_on(ports::free_port(), true);
    let config = webhook_config(
        dir.path(),
        std::slice::from_ref(&log),
        webhook.port,
        ports::free_port(),
    );
    append(&log, &failed_logins_from("203.0.113.9", 0, 30));
    let daemon = Daemon::start(&config);
    wait_until("the alert reaches the webhook", || {
        webhook.bodies().len() == 1
    });
    // Delivered, but watch has no answer to record: killed, it cannot know
    // whether the alert arrived.
    daemon.kill_9();
    assert_eq!(pending_alerts(&config), 1, "still pending in the state");

    webhook.release();
    let daemon = Daemon::start(&config);
    wait_until("the alert is sent again", || webhook.bodies().len() == 2);
    let status = wait_for_events(&config, 30);
    daemon.stop();
    assert_eq!(pending_alerts(&config), 0, "recorded sent");

    // Two deliveries of one alert: the same id in the header and the body,
    // so the receiver keeps one alert per incident.
    let ids = webhook.ids();
    assert_eq!(ids[0], ids[1], "{ids:?}");
    assert_eq!(ids[0].len(), 32, "{ids:?}");
    for body in webhook.bodies() {
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["alert_id"], ids[0]);
    }
    let mut distinct = alerted(&webhook);
    distinct.dedup();
    assert_eq!(distinct, recorded(&status), "one incident, one alert");

    // Never again, at the next start either.
    let daemon = Daemon::start(&config);
    append(&log, &failed_logins_from("198.51.100.1", 30, 1));
    wait_for_events(&config, 31);
    daemon.stop();
    assert_eq!(webhook.bodies().len(), 2, "{:?}", webhook.bodies());
}

#[test]
fn an_alert_pending_at_a_kill_9_is_sent_once_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    // Nobody listens there yet: the alert fails and waits for a retry.
    let webhook_port = ports::free_port();
    let metrics_port = ports::free_port();
    let config = webhook_config(
        dir.path(),
        std::slice::from_ref(&log),
        webhook_port,
        metrics_port,
    );
    append(&log, &failed_logins_from("203.0.113.9", 0, 30));
    let daemon = Daemon::start(&config);
    wait_for_events(&config, 30);
    wait_until("the alert failed and waits", || {
        metric(metrics_port, "mailfuse_alert_retries_total") >= 1.0
    });
    assert_eq!(metric(metrics_port, "mailfuse_alert_queue"), 1.0);
    daemon.kill_9();
    assert_eq!(pending_alerts(&config), 1, "pending in the state");

    // The webhook is up; the restart (which finds the incident again, its
    // lines maybe unsaved) sends the pending alert, once.
    let webhook = webhook::Webhook::start_on(webhook_port, false);
    let daemon = Daemon::start(&config);
    wait_until("the pending alert is sent", || webhook.answered() == 1);
    wait_for_events(&config, 30);
    daemon.stop();
    assert_eq!(pending_alerts(&config), 0);

    // Never again, at the next start either.
    let daemon = Daemon::start(&config);
    append(&log, &failed_logins_from("198.51.100.1", 30, 1));
    let status = wait_for_events(&config, 31);
    daemon.stop();
    assert_eq!(alerted(&webhook), recorded(&status));
    assert_eq!(webhook.bodies().len(), 1, "{:?}", webhook.bodies());
}
