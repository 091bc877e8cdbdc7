//! `mailfuse watch` receiving mail servers' syslog over the network: two
//! hosts reusing one queue id are joined apart and the incident names the
//! host it came from; TLS with a certificate made for the test; and a real
//! `rsyslogd` forwarding what it receives.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;
#[path = "support/tls.rs"]
mod tls;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use support::syslog::{
    add_to_watch, guesses, incidents, message, newline_framed, octet_counted, rfc3164, rfc5424,
    send_tcp, watch_config, Rsyslog, Watch,
};
use tls::SelfSigned;

/// Asserts that `status` holds one guessing incident about `ip`, and that
/// it names `hosts`.
fn assert_guessing_names(status: &Value, ip: &str, hosts: &[&str]) {
    let incidents = incidents(status);
    let found: Vec<&Value> = incidents
        .iter()
        .filter(|i| i["kind"] == "password_guessing" && i["ips"][0] == ip)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one guessing incident about {ip}: {incidents:#?}"
    );
    assert_eq!(
        found[0]["hosts"],
        serde_json::json!(hosts),
        "{:#}",
        found[0]
    );
}

#[test]
fn two_hosts_reusing_a_queue_id_are_joined_apart_and_the_incident_names_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = watch_config(dir.path(), &format!("tcp = [\"127.0.0.1:{port}\"]"));
    let watch = Watch::start(&config, port);

    // mx1 (RFC 5424, octet-counted): a guesser, half of a guesser both
    // servers see, and alice's message ABC123.
    let mut mx1 = guesses(rfc5424, "mx1", "203.0.113.7", "alice@example.test", 0, 12);
    mx1.extend(guesses(
        rfc5424,
        "mx1",
        "198.18.0.20",
        "dave@example.test",
        40,
        6,
    ));
    let (alice_arrives, alice_rest) = message(
        rfc5424,
        "mx1",
        20,
        "ABC123",
        ("alice@example.test", "198.51.100.1"),
        &["x1@far.test", "x2@far.test"],
    );
    mx1.extend(alice_arrives);
    // mx2 (RFC 3164, newline-framed): bob's message under the same id, the
    // other half of the shared guesser (under the limit on each server
    // alone), and a guesser of its own.
    let (bob_arrives, bob_rest) = message(
        rfc3164,
        "mx2",
        30,
        "ABC123",
        ("bob@example.test", "198.51.100.2"),
        &["y1@far.test", "y2@far.test", "y3@far.test"],
    );
    let mut mx2: Vec<String> = bob_arrives.into_iter().chain(bob_rest).collect();
    mx2.extend(guesses(
        rfc3164,
        "mx2",
        "198.18.0.20",
        "dave@example.test",
        46,
        6,
    ));
    mx2.extend(guesses(
        rfc3164,
        "mx2",
        "192.0.2.8",
        "bob@example.test",
        52,
        11,
    ));
    // Alice's message is open on mx1 while bob's comes and goes on mx2.
    send_tcp(port, &octet_counted(&mx1));
    watch.wait_for_events(20);
    send_tcp(port, &newline_framed(&mx2));
    watch.wait_for_events(20 + 23);
    send_tcp(port, &octet_counted(&alice_rest));
    let status = watch.wait_for_events(20 + 23 + 3);

    let stats = &status["progress"]["stats"];
    assert_eq!(stats["messages"], 2, "two messages, not one: {stats:#}");
    assert_eq!(stats["recipients"], 5, "{stats:#}");
    assert_eq!(stats["delivered"], 5, "{stats:#}");
    assert_eq!(stats["orphan_deliveries"], 0, "{stats:#}");
    assert_guessing_names(&status, "203.0.113.7", &["mx1"]);
    assert_guessing_names(&status, "192.0.2.8", &["mx2"]);
    // Accounts and IPs are one across the servers.
    assert_guessing_names(&status, "198.18.0.20", &["mx1", "mx2"]);
}

#[test]
fn files_followed_beside_syslog_are_this_server_in_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = watch_config(dir.path(), &format!("tcp = [\"127.0.0.1:{port}\"]"));
    let log = dir.path().join("mail.log");
    std::fs::write(&log, "").unwrap();
    add_to_watch(
        &config,
        &format!("logs = [\"{}\"]\nhostname = \"here\"", log.display()),
    );
    let watch = Watch::start(&config, port);

    // One guesser, under the limit on each server alone: half in this
    // server's own log (the file layout: no `<PRI>`), half from mx1.
    let file: Vec<String> = guesses(rfc3164, "here", "198.18.0.30", "ivan@example.test", 0, 6)
        .iter()
        .map(|line| format!("{}\n", line.trim_start_matches("<22>")))
        .collect();
    std::fs::write(&log, file.concat()).unwrap();
    watch.wait_for_events(6);
    let mx1 = guesses(rfc5424, "mx1", "198.18.0.30", "ivan@example.test", 10, 6);
    send_tcp(port, &octet_counted(&mx1));
    let status = watch.wait_for_events(12);
    assert_guessing_names(&status, "198.18.0.30", &["here", "mx1"]);
}

#[test]
fn twenty_hosts_sending_at_once_lose_nothing_and_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let config = watch_config(dir.path(), &format!("tcp = [\"127.0.0.1:{port}\"]"));
    let watch = Watch::start(&config, port);
    let (hosts, lines) = (20u32, 500u32);
    let senders: Vec<_> = (1..=hosts)
        .map(|n| {
            std::thread::spawn(move || {
                let host = format!("mx{n:02}");
                let ip = format!("198.18.{n}.1");
                let messages =
                    guesses(rfc5424, &host, &ip, &format!("u{n}@example.test"), 0, lines);
                send_tcp(port, &octet_counted(&messages));
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    let status = watch.wait_for_events(u64::from(hosts * lines));
    assert_eq!(
        status["progress"]["stats"]["events"],
        hosts * lines,
        "each line once"
    );
    for n in 1..=hosts {
        assert_guessing_names(&status, &format!("198.18.{n}.1"), &[&format!("mx{n:02}")]);
    }
}

/// A self-signed certificate for `localhost` in `dir`; the
/// `[watch.syslog]` lines serving TLS with it on `port`.
fn tls_listener(dir: &std::path::Path, port: u16) -> (SelfSigned, String) {
    let certificate = SelfSigned::new(dir);
    let lines = format!(
        "tls = [\"127.0.0.1:{port}\"]\n{}",
        certificate.config_lines()
    );
    (certificate, lines)
}

#[test]
fn tls_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let (cert, listener) = tls_listener(dir.path(), port);
    let config = watch_config(dir.path(), &listener);
    let checked = support::mailfuse(&["check-config"], &config);
    assert!(checked.status.success(), "{checked:?}");
    let watch = Watch::start(&config, port);

    let mut tls = cert.connect(port);
    let lines = guesses(rfc5424, "mx3", "203.0.113.9", "carol@example.test", 0, 11);
    tls.write_all(&octet_counted(&lines)).unwrap();
    tls.flush().unwrap();
    let status = watch.wait_for_events(11);
    assert_guessing_names(&status, "203.0.113.9", &["mx3"]);
    drop(tls);

    // A plain TCP client gets nothing through the TLS port.
    send_tcp(
        port,
        &newline_framed(&guesses(rfc3164, "mx4", "203.0.113.10", "d@x", 0, 11)),
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(watch.status()["progress"]["stats"]["events"], 11);
}

#[test]
fn a_real_rsyslog_forwards_to_watch() {
    let dir = tempfile::tempdir().unwrap();
    let watch_port = support::free_port();
    let config = watch_config(dir.path(), &format!("tcp = [\"127.0.0.1:{watch_port}\"]"));
    // Octet-counted, with RFC 3339 stamps (RSYSLOG_ForwardFormat).
    relay_through_rsyslog(
        dir.path(),
        &config,
        watch_port,
        "TCP_Framing=\"octet-counted\" template=\"RSYSLOG_ForwardFormat\"",
    );
}

#[test]
fn a_real_rsyslog_forwards_to_watch_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let watch_port = support::free_port();
    let (_, listener) = tls_listener(dir.path(), watch_port);
    let config = watch_config(dir.path(), &listener);
    // rsyslog's OpenSSL driver (rsyslog-openssl), checking watch's name;
    // newline-framed with its default template (RFC 3164 stamps).
    let ca = dir.path().join("cert.pem");
    relay_through_rsyslog(
        dir.path(),
        &config,
        watch_port,
        &format!(
            "StreamDriver=\"ossl\" StreamDriverMode=\"1\" StreamDriverAuthMode=\"x509/name\" \
             StreamDriverPermittedPeers=\"localhost\" StreamDriver.CAFile=\"{}\"",
            ca.display()
        ),
    );
}

/// Starts watch with `config` (listening on `watch_port`) and an rsyslogd
/// relaying to it with omfwd's `options`: what mail servers send rsyslog
/// over TCP goes on to watch, which finds the guessing on its host.
fn relay_through_rsyslog(
    dir: &std::path::Path,
    config: &std::path::Path,
    watch_port: u16,
    options: &str,
) {
    let watch = Watch::start(config, watch_port);
    let rsyslog_port = support::free_port();
    let _rsyslog = Rsyslog::start(
        dir,
        &format!(
            "module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{rsyslog_port}\")\n\
             action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{watch_port}\" protocol=\"tcp\" {options})"
        ),
    );
    support::wait_until("rsyslogd to listen", Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", rsyslog_port)).is_ok()
    });
    let mut lines = guesses(rfc3164, "mx5", "203.0.113.11", "erin@example.test", 0, 12);
    let (arrives, rest) = message(
        rfc3164,
        "mx6",
        20,
        "DEF456",
        ("frank@example.test", "198.51.100.3"),
        &["z@far.test"],
    );
    lines.extend(arrives.into_iter().chain(rest));
    send_tcp(rsyslog_port, &newline_framed(&lines));
    let status = watch.wait_for_events(12 + 4);
    assert_eq!(status["progress"]["stats"]["messages"], 1);
    assert_guessing_names(&status, "203.0.113.11", &["mx5"]);
    assert!(
        watch.output().contains("a new host sends log lines") && watch.output().contains("mx6"),
        "{}",
        watch.output()
    );
}

#[test]
fn udp_datagrams_are_messages_and_peers_outside_allow_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    // Watch waits for TCP to listen: the same port serves both.
    let config = watch_config(
        dir.path(),
        &format!("udp = [\"127.0.0.1:{port}\"]\ntcp = [\"127.0.0.1:{port}\"]"),
    );
    let watch = Watch::start(&config, port);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for line in guesses(rfc3164, "mx7", "203.0.113.12", "gina@example.test", 0, 11) {
        socket
            .send_to(line.as_bytes(), ("127.0.0.1", port))
            .unwrap();
    }
    let status = watch.wait_for_events(11);
    assert_guessing_names(&status, "203.0.113.12", &["mx7"]);
    drop(watch);

    let other = tempfile::tempdir().unwrap();
    let (port, metrics) = (support::free_port(), support::free_port());
    let config = watch_config(
        other.path(),
        &format!("tcp = [\"127.0.0.1:{port}\"]\nallow = [\"192.0.2.0/24\"]"),
    );
    add_to_watch(
        &config,
        &format!("metrics_listen = \"127.0.0.1:{metrics}\""),
    );
    let watch = Watch::start(&config, port);
    // Refused twice: the start's probe, then this (the server may close
    // before the bytes are written).
    let lines = guesses(rfc3164, "mx8", "203.0.113.13", "h@x", 0, 11);
    let mut refused_stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = refused_stream.write_all(&newline_framed(&lines));
    let refused = format!("mailfuse_syslog_refused_total{{listener=\"tcp 127.0.0.1:{port}\"}} 2");
    let mut page = String::new();
    let counted = support::try_wait_until(Duration::from_secs(10), || {
        page = http_get(metrics, "/metrics");
        page.contains(&refused)
    });
    assert!(counted, "{refused} not in:\n{page}");
    let none = format!("mailfuse_syslog_messages_total{{listener=\"tcp 127.0.0.1:{port}\"}} 0");
    assert!(page.contains(&none), "{none} not in:\n{page}");
    let events = watch.status()["progress"]["stats"]["events"].as_u64();
    assert_eq!(events.unwrap_or(0), 0);
}

/// The body of `GET path` on loopback port `port` (HTTP/1.0: read to the end).
fn http_get(port: u16, path: &str) -> String {
    use std::io::Read;
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}
