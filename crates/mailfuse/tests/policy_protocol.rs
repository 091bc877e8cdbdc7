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
