//! `mailfuse policy` on the wire: the real binary on loopback, driven the
//! way Postfix drives it (and the ways Postfix never would).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod policy_support;

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use policy_support::{closed_without_reply, end, free_port, rcpt, replies, request, Server};

const CONFIG: &str = r#"
[policy]
max_request_bytes = 4096
local_domains = ["example.com"]

[[limits.default]]
window = "1h"
recipients = 2
"#;

#[test]
fn pipelined_requests_get_their_replies_in_order_on_one_kept_connection() {
    let server = Server::start(CONFIG);
    let mut stream = server.connect();
    let mut burst = Vec::new();
    for instance in ["1", "2"] {
        burst.extend(rcpt("alice@example.com", instance));
        burst.extend(end("alice@example.com", instance, 1));
    }
    burst.extend(rcpt("alice@example.com", "3"));
    stream.write_all(&burst).unwrap();
    let answers = replies(&mut stream, 5);
    assert_eq!(answers[..4], ["action=DUNNO"; 4]);
    assert!(
        answers[4].starts_with("action=DEFER_IF_PERMIT 4.7.1 ")
            && answers[4].contains("sending limit of 2 recipients per 1h"),
        "{answers:?}"
    );
    // The same connection serves the next request, for another account.
    stream.write_all(&rcpt("bob@example.com", "4")).unwrap();
    assert_eq!(replies(&mut stream, 1), ["action=DUNNO"]);
}

#[test]
fn a_request_split_into_single_bytes_is_answered_once() {
    let server = Server::start(CONFIG);
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    for byte in rcpt("alice@example.com", "1") {
        stream.write_all(&[byte]).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(replies(&mut stream, 1), ["action=DUNNO"]);
    stream.write_all(&rcpt("alice@example.com", "1")).unwrap();
    assert_eq!(replies(&mut stream, 1), ["action=DUNNO"]);
}

#[test]
fn oversize_and_garbage_requests_close_the_connection_without_a_reply() {
    let mut server = Server::start(CONFIG);
    let huge = "x".repeat(8_192);
    let oversize = request("RCPT", "alice@example.com", "1", &[("recipient", &huge)]);
    let mut before_garbage = rcpt("alice@example.com", "2");
    before_garbage.extend_from_slice(b"hello there\n\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversize", oversize),
        (
            "line without =",
            b"request=smtpd_access_policy\nGET / HTTP/1.0\n\n".to_vec(),
        ),
        ("empty request", b"\n".to_vec()),
        ("binary", vec![0, 159, 146, 150, 255, b'\n', b'\n']),
        ("endless line", vec![b'a'; 100_000]),
    ];
    for (name, bytes) in cases {
        let mut stream = server.connect();
        // The server may close while the rest is still being written.
        let _ = stream.write_all(&bytes);
        assert!(closed_without_reply(&mut stream), "{name}");
    }
    // Requests before the bad one are still answered, then the close.
    let mut stream = server.connect();
    stream.write_all(&before_garbage).unwrap();
    assert_eq!(replies(&mut stream, 1), ["action=DUNNO"]);
    assert!(closed_without_reply(&mut stream));
    // Each was logged, and the server serves on.
    assert!(server.alive());
    let log = server.log();
    assert!(log.contains("policy request too large"), "{log}");
    assert!(log.contains("malformed policy request at line 2"), "{log}");
    let mut stream = server.connect();
    stream.write_all(&rcpt("bob@example.com", "9")).unwrap();
    assert_eq!(replies(&mut stream, 1), ["action=DUNNO"]);
}

#[test]
fn clients_vanishing_mid_request_or_mid_reply_do_not_disturb_the_others() {
    let mut server = Server::start(CONFIG);
    for i in 0..50 {
        let mut stream = server.connect();
        let request = rcpt("alice@example.com", &i.to_string());
        match i % 3 {
            // Half a request, then gone.
            0 => stream.write_all(&request[..request.len() / 2]).unwrap(),
            // A whole pipeline, gone before reading the replies.
            1 => {
                for _ in 0..20 {
                    stream.write_all(&request).unwrap();
                }
            }
            // Reset: closed with unread data.
            _ => {
                stream.write_all(&request).unwrap();
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
    let mut stream = server.connect();
    stream.write_all(&rcpt("bob@example.com", "x")).unwrap();
    assert_eq!(replies(&mut stream, 1), ["action=DUNNO"]);
    assert!(server.alive());
}

/// Raises this process's open-files limit so it can hold `needed` sockets.
fn allow_open_files(needed: u64) {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
    assert!(
        hard >= needed,
        "this test needs {needed} open files but the hard limit is {hard}: raise it \
         (ulimit -Hn, or LimitNOFILE for a CI service)"
    );
    if soft < needed {
        rlimit::setrlimit(rlimit::Resource::NOFILE, needed, hard).unwrap();
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn ten_thousand_idle_connections_are_held_and_the_server_still_answers() {
    const IDLE: usize = 10_000;
    allow_open_files(IDLE as u64 + 200);
    // All from 127.0.0.1: past the default cap of one peer.
    let config = CONFIG.replace("[policy]\n", "[policy]\nmax_connections_per_peer = 20000\n");
    let mut server = Server::start(&config);
    let before = rss_kib(server.child.id());
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(server.address).expect("connect"));
    }
    // One busy connection among them is answered at once.
    let started = Instant::now();
    let mut stream = server.connect();
    stream.write_all(&rcpt("alice@example.com", "1")).unwrap();
    assert_eq!(replies(&mut stream, 1), ["action=DUNNO"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The idle ones are really served: some of them now ask.
    for (i, stream) in idle.iter_mut().enumerate().step_by(1_000) {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(&rcpt("bob@example.com", &i.to_string()))
            .unwrap();
        let answer = replies(stream, 1);
        assert!(answer[0].starts_with("action="), "{answer:?}");
    }
    let after = rss_kib(server.child.id());
    let per_connection = (after.saturating_sub(before)) * 1024 / IDLE as u64;
    assert!(
        per_connection < 16 * 1024,
        "{per_connection} bytes per idle connection (RSS {before} → {after} KiB)"
    );
    assert!(server.alive());
    drop(idle);
}

#[test]
fn a_client_dribbling_a_request_is_cut_at_the_request_deadline() {
    let config = CONFIG.replace("[policy]\n", "[policy]\nrequest_timeout = \"2s\"\n");
    let server = Server::start(&config);
    let mut stream = server.connect();
    stream.set_nodelay(true).unwrap();
    // A whole request first: the deadline is per request, not per connection.
    stream.write_all(&rcpt("alice@example.com", "1")).unwrap();
    assert_eq!(replies(&mut stream, 1), ["action=DUNNO"]);
    // Then one byte a second, each of which used to restart idle_timeout.
    let request = rcpt("alice@example.com", "2");
    let mut writer = stream.try_clone().unwrap();
    let dribbler = std::thread::spawn(move || {
        let mut sent = 0;
        for byte in request {
            if writer.write_all(&[byte]).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_secs(1));
        }
        sent
    });
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert!(closed_without_reply(&mut stream));
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let sent = dribbler.join().unwrap();
    assert!(sent < 30, "cut after {sent} bytes only");
    let log = server.log();
    assert!(log.contains("policy.request_timeout"), "{log}");
}

/// A connection that was served a request: retried while the places of
/// connections just closed (`Server::start`'s probes) are given back.
fn served(server: &Server, instance: &str) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = server.connect();
        if stream.write_all(&rcpt("bob@example.com", instance)).is_ok() {
            let mut buf = [0u8; 256];
            if let Ok(n) = std::io::Read::read(&mut stream, &mut buf) {
                if buf[..n].starts_with(b"action=DUNNO") {
                    return stream;
                }
            }
        }
        assert!(Instant::now() < deadline, "never served:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn one_peer_past_its_connection_cap_is_refused_at_once_until_one_leaves() {
    let config = CONFIG.replace("[policy]\n", "[policy]\nmax_connections_per_peer = 3\n");
    let server = Server::start(&config);
    let mut held: Vec<TcpStream> = (0..3).map(|i| served(&server, &i.to_string())).collect();
    // The fourth from 127.0.0.1 is closed as soon as it is accepted.
    let mut fourth = server.connect();
    assert!(closed_without_reply(&mut fourth));
    let log = server.log();
    assert!(log.contains("policy.max_connections_per_peer"), "{log}");
    // One leaves: its place is given back.
    drop(held.pop());
    served(&server, "again");
}

/// One message with one recipient from `login` (raw bytes: it may not be
/// UTF-8): the RCPT answer, the count sent when it was accepted.
fn send_as(stream: &mut TcpStream, login: &[u8], instance: &str) -> String {
    // `?` stands for the login in the requests Postfix would send.
    let as_login = |request: Vec<u8>| -> Vec<u8> {
        let mut out = Vec::new();
        for byte in request {
            match byte {
                b'?' => out.extend_from_slice(login),
                byte => out.push(byte),
            }
        }
        out
    };
    stream.write_all(&as_login(rcpt("?", instance))).unwrap();
    let answer = replies(stream, 1).remove(0);
    if answer == "action=DUNNO" {
        stream.write_all(&as_login(end("?", instance, 1))).unwrap();
        assert_eq!(replies(stream, 1), ["action=DUNNO"]);
    }
    answer
}

#[test]
fn the_forms_of_one_login_share_one_limit_and_invalid_names_stay_apart() {
    // 2 recipients an hour; example.com the one local domain.
    let server = Server::start(CONFIG);
    let mut stream = server.connect();
    assert_eq!(
        send_as(&mut stream, b"alice@example.com", "1"),
        "action=DUNNO"
    );
    assert_eq!(
        send_as(&mut stream, b"Alice@Example.COM", "2"),
        "action=DUNNO"
    );
    for form in [
        "alice@example.com",
        "ａｌｉｃｅ@ｅｘａｍｐｌｅ.com",
        "alice@example.com.",
        "alice@example.com ",
        "alice@example.com\t",
        "ali\u{200b}ce@example.com",
        "alice",
        " ALICE.",
    ] {
        let answer = send_as(&mut stream, form.as_bytes(), "3");
        assert!(
            answer.starts_with("action=DEFER_IF_PERMIT 4.7.1 "),
            "{form:?} has a limit of its own: {answer}"
        );
    }
    // Two names that differ only in bytes that are not UTF-8 are two
    // accounts: the first's limit is not the second's.
    for instance in ["4", "5"] {
        let answer = send_as(&mut stream, b"x\xffy@example.com", instance);
        assert_eq!(answer, "action=DUNNO");
    }
    assert!(send_as(&mut stream, b"x\xffy@example.com", "6").starts_with("action=DEFER_IF_PERMIT"));
    assert_eq!(
        send_as(&mut stream, b"x\xfey@example.com", "7"),
        "action=DUNNO"
    );
}

#[test]
fn a_unix_socket_listener_serves_like_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let socket: PathBuf = dir.path().join("policy.sock");
    let listen = format!("unix:{}", socket.display());
    let server = Server::start_in(CONFIG, dir, &["--listen", &listen]);
    wait_for(&socket);
    let mut stream = UnixStream::connect(&socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&rcpt("alice@example.com", "1")).unwrap();
    assert_eq!(replies(&mut stream, 1), ["action=DUNNO"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o660);
    let (_dir, status) = server.stop();
    assert!(status.success(), "{status}");
    assert!(!socket.exists(), "socket removed at exit");
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn counts_survive_a_restart() {
    let server = Server::start(CONFIG);
    let mut stream = server.connect();
    stream.write_all(&rcpt("alice@example.com", "1")).unwrap();
    stream.write_all(&end("alice@example.com", "1", 2)).unwrap();
    assert_eq!(replies(&mut stream, 2), ["action=DUNNO"; 2]);
    drop(stream);
    let (dir, status) = server.stop();
    assert!(status.success(), "{status}");
    let server = Server::start_in(CONFIG, dir, &[]);
    let mut stream = server.connect();
    stream.write_all(&rcpt("alice@example.com", "2")).unwrap();
    let answer = replies(&mut stream, 1);
    assert!(
        answer[0].starts_with("action=DEFER_IF_PERMIT"),
        "{answer:?}"
    );
    assert!(
        server.log().contains("counters restored"),
        "{}",
        server.log()
    );
}

#[test]
fn runs_on_built_in_defaults_without_a_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args([
            "policy",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state",
        ])
        .arg(dir.path().join("state.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut stream = loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) {
            break stream;
        }
        assert!(Instant::now() < deadline, "never listened");
        std::thread::sleep(Duration::from_millis(20));
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The built-in limit: 50 recipients a minute.
    let mut burst = Vec::new();
    for _ in 0..51 {
        burst.extend(rcpt("alice@example.com", "1"));
    }
    stream.write_all(&burst).unwrap();
    let answers = replies(&mut stream, 51);
    assert_eq!(answers[..50], ["action=DUNNO"; 50]);
    assert!(
        answers[50].contains("50 recipients per 1m"),
        "{}",
        answers[50]
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// `GET /metrics` of the server at `port`, parsed as Prometheus text.
fn scrape(port: u16) -> prometheus_parse::Scrape {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    let lines = body.lines().map(|line| Ok(line.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("Prometheus text format")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| label.is_none_or(|(key, value)| sample.labels.get(key) == Some(value)))
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            prometheus_parse::Value::Histogram(ref buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            _ => 0.0,
        })
        .sum()
}

#[test]
fn metrics_count_decisions_by_verdict_with_their_latency() {
    let metrics_port = free_port();
    // metrics_listen belongs to [policy], before the limits tables.
    let config = CONFIG.replacen(
        "[policy]\n",
        &format!("[policy]\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n"),
        1,
    );
    let server = Server::start(&config);
    let mut stream = server.connect();
    let mut burst = Vec::new();
    burst.extend(rcpt("alice@example.com", "1"));
    burst.extend(end("alice@example.com", "1", 2));
    burst.extend(rcpt("alice@example.com", "2"));
    stream.write_all(&burst).unwrap();
    let answers = replies(&mut stream, 3);
    assert!(
        answers[2].starts_with("action=DEFER_IF_PERMIT"),
        "{answers:?}"
    );
    let scrape = scrape(metrics_port);
    let decisions = "mailfuse_policy_decisions_total";
    assert_eq!(value(&scrape, decisions, Some(("verdict", "dunno"))), 2.0);
    assert_eq!(
        value(&scrape, decisions, Some(("verdict", "over_limit"))),
        1.0
    );
    assert_eq!(value(&scrape, decisions, Some(("verdict", "locked"))), 0.0);
    assert_eq!(
        value(&scrape, "mailfuse_policy_decision_seconds", None),
        3.0
    );
    assert_eq!(value(&scrape, "mailfuse_policy_connections", None), 1.0);
    // No label names an account.
    assert!(scrape
        .samples
        .iter()
        .all(|sample| !format!("{:?}", sample.labels).contains("alice")));
}

/// A `RCPT` request from `login` with envelope `sender` to `recipient`.
fn rcpt_to(login: &str, sender: &str, instance: &str, recipient: &str) -> Vec<u8> {
    format!(
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n\
         client_address=192.0.2.10\nsender={sender}\ninstance={instance}\n\
         sasl_method=PLAIN\nsasl_username={login}\nrecipient={recipient}\n\n"
    )
    .into_bytes()
}

/// A policy server with the canary `trap@example.com`, an alert hook
/// writing a line per alert to `alerts.txt`, and `extra` configuration;
/// its state database is where `mailfuse status` reads it.
fn canary_server(extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("hook.sh");
    let alerts = dir.path().join("alerts.txt");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1 $2\" >> {}\n", alerts.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = format!(
        "[watch]\nstate = \"{}\"\n{extra}\n\n[policy]\nlocal_domains = [\"example.com\"]\n\n\
         [canary]\nrecipients = [\"trap@example.com\"]\n\n\
         [actions.command]\nprogram = \"{}\"\nargs = [\"{{kind}}\", \"{{account}}\"]\n",
        dir.path().join("state.db").display(),
        hook.display()
    );
    Server::start_in(&config, dir, &[])
}

fn alerts(server: &Server) -> Vec<String> {
    std::fs::read_to_string(server.dir.path().join("alerts.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn status(server: &Server) -> serde_json::Value {
    let config = server.dir.path().join("mailfuse.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(["status", "--format", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Waits (bounded) until `done` holds.
fn until(what: &str, server: &Server, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn strings<'a>(value: &'a serde_json::Value, list: &str, field: &str) -> Vec<&'a str> {
    value[list]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| entry[field].as_str())
        .collect()
}

#[test]
fn a_canary_rcpt_gets_a_reject_and_a_lock_with_exactly_one_alert() {
    let server = canary_server("");
    let mut stream = server.connect();
    stream
        .write_all(&rcpt_to(
            "alice@example.com",
            "alice@example.com",
            "1",
            "bob@partner.test",
        ))
        .unwrap();
    stream
        .write_all(&rcpt_to(
            "alice@example.com",
            "alice@example.com",
            "1",
            "<Trap@Example.com>",
        ))
        .unwrap();
    let answers = replies(&mut stream, 2);
    assert_eq!(answers[0], "action=DUNNO");
    assert!(
        answers[1].starts_with("action=REJECT 5.7.1 ") && answers[1].contains("is locked"),
        "{answers:?}"
    );
    assert!(!answers[1].contains("trap") && !answers[1].contains("canary"));
    until("the lock is recorded", &server, || {
        strings(&status(&server), "locks", "account") == ["alice@example.com"]
    });
    until("the admin is alerted", &server, || {
        !alerts(&server).is_empty()
    });
    // Locked now (the keeper reads the database twice a second): every
    // recipient is refused, the trap again trips nothing new.
    for (n, recipient) in ["bob@partner.test", "trap@example.com"].iter().enumerate() {
        stream
            .write_all(&rcpt_to(
                "alice@example.com",
                "alice@example.com",
                &n.to_string(),
                recipient,
            ))
            .unwrap();
        let answer = replies(&mut stream, 1);
        assert!(answer[0].starts_with("action=REJECT 5.7.1 "), "{answer:?}");
    }
    drop(stream);
    let status = status(&server);
    let (dir, exit) = server.stop();
    assert!(exit.success(), "{exit}");
    let sent = std::fs::read_to_string(dir.path().join("alerts.txt")).unwrap();
    assert_eq!(
        sent.lines().collect::<Vec<_>>(),
        ["compromised_account alice@example.com"]
    );
    assert_eq!(
        strings(&status, "incidents", "subject"),
        ["alice@example.com"]
    );
    assert!(
        status
            .to_string()
            .contains("sent to canary address trap@example.com"),
        "{status}"
    );
}

#[test]
fn a_dry_run_lets_everything_through_and_records_each_would_be_lock_once() {
    let server = canary_server("dry_run = true");
    let mut stream = server.connect();
    // A forged sender and a canary, each three times.
    for n in 0..3 {
        let instance = n.to_string();
        stream
            .write_all(&rcpt_to(
                "alice@example.com",
                "ceo@paypal.test",
                &instance,
                "x@partner.test",
            ))
            .unwrap();
        stream
            .write_all(&rcpt_to(
                "bob@example.com",
                "bob@example.com",
                &instance,
                "trap@example.com",
            ))
            .unwrap();
        assert_eq!(replies(&mut stream, 2), ["action=DUNNO"; 2]);
    }
    until("both would-be locks are recorded", &server, || {
        let status = status(&server);
        let targets = strings(&status, "actions", "target");
        targets.contains(&"alice@example.com") && targets.contains(&"bob@example.com")
    });
    until("both alerts are sent", &server, || {
        alerts(&server).len() >= 2
    });
    drop(stream);
    let status = status(&server);
    let (dir, exit) = server.stop();
    assert!(exit.success(), "{exit}");
    assert!(strings(&status, "locks", "account").is_empty(), "{status}");
    let would: Vec<&str> = strings(&status, "actions", "outcome")
        .into_iter()
        .filter(|outcome| outcome.starts_with("would lock"))
        .collect();
    assert_eq!(would.len(), 2, "{status}");
    let mut sent: Vec<String> = std::fs::read_to_string(dir.path().join("alerts.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            "compromised_account alice@example.com",
            "compromised_account bob@example.com"
        ]
    );
}

/// Mail delivered to `orders@`, which never logs in, and to `anna@`, who
/// reads hers.
const NEVER_LOGS_IN: &str = "\
Dec 10 09:00:00 mail postfix/smtpd[200]: 1A2B3C4D5E: client=mx.example.org[198.51.100.5]
Dec 10 09:00:00 mail postfix/qmgr[300]: 1A2B3C4D5E: from=<partner@example.org>, size=900, nrcpt=2 (queue active)
Dec 10 09:00:01 mail postfix/lmtp[400]: 1A2B3C4D5E: to=<anna@example.com>, relay=mail.example.com[private/dovecot-lmtp], delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 <anna@example.com> Saved)
Dec 10 09:00:01 mail postfix/lmtp[400]: 1A2B3C4D5E: to=<orders@example.com>, relay=mail.example.com[private/dovecot-lmtp], delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 <orders@example.com> Saved)
Dec 10 09:05:00 mail dovecot: imap-login: Login: user=<anna@example.com>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=101, TLS, session=<a2>
";

#[test]
fn an_account_audit_saved_as_never_logging_in_is_locked_at_its_first_message() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("mail.log");
    std::fs::write(&log, NEVER_LOGS_IN).unwrap();
    let config = format!(
        "{CONFIG}\n[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\n",
        log.display(),
        dir.path().join("state.db").display()
    );
    let config_path = dir.path().join("mailfuse.toml");
    std::fs::write(&config_path, &config).unwrap();
    let mailfuse = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_mailfuse"))
            .args(args)
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let audit = mailfuse(&[
        "audit",
        "--no-progress",
        "--save",
        "--year",
        "2026",
        log.to_str().unwrap(),
    ]);
    assert_eq!(audit.status.code(), Some(1), "{audit:?}");

    let server = Server::start_in(&config, dir, &[]);
    let mut stream = server.connect();
    stream.write_all(&rcpt("anna@example.com", "1")).unwrap();
    stream.write_all(&rcpt("orders@example.com", "2")).unwrap();
    let answers = replies(&mut stream, 2);
    assert_eq!(answers[0], "action=DUNNO");
    assert!(
        answers[1].starts_with("action=REJECT") && answers[1].contains("is locked"),
        "{answers:?}"
    );
    // The keeper records the incident with its reason.
    let deadline = Instant::now() + Duration::from_secs(20);
    let incident = loop {
        let status = mailfuse(&["status", "--format", "json"]);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        let incident = status["incidents"][0]["incident"].clone();
        if !incident.is_null() {
            break incident;
        }
        assert!(Instant::now() < deadline, "no incident:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(incident["account"], "orders@example.com");
    assert!(
        incident["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("first SMTP login of an account that never logs in (audit)"),
        "{incident}"
    );
}
