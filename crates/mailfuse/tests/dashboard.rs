//! `mailfuse serve` and watch's `/metrics`, for real: a watch over the
//! bundled Kerio example seeds the state, a scrape parses as Prometheus
//! text, and headless Chromium looks at the dashboard, logs in, unlocks
//! through the button, and does not run the XSS payloads planted in the
//! store. Raw HTTP checks that forged changes are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/browser.rs"]
mod browser;
#[path = "support/tls.rs"]
mod tls;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use browser::{connect_from, free_port, screenshot_path, wait_for_port, Browser};
use mailfuse_core::Timestamp;
use mailfuse_store::{Lock, Store, StoredIncident};
use tls::SelfSigned;

const BIN: &str = env!("CARGO_BIN_EXE_mailfuse");
const TOKEN: &str = "test-token-0123456789abcdef";
const HIJACKED: &str = "sales@acme-tools.example";
const SCRIPT_XSS: &str = "<script>window.__xss=1</script>";
const ATTR_XSS: &str = "\"><img src=x onerror=\"window.__xss=1\">";
const LOGS: [&str; 3] = ["mail.log", "security.log", "audit.log"];

/// A mailfuse process, killed when dropped (even when the test fails).
struct Daemon(Child);

impl Daemon {
    fn start(command: &str, config: &Path) -> Daemon {
        let child = Command::new(BIN)
            .args([command, "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mailfuse starts");
        Daemon(child)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A temp dir with a copy of the example logs, a configuration and its
/// secrets file.
struct Lab {
    dir: tempfile::TempDir,
    metrics_port: u16,
    web_port: u16,
}

impl Lab {
    fn new(web: &str) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        for name in LOGS {
            let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kerio");
            std::fs::copy(example.join(name), logs.join(name)).unwrap();
        }
        let secrets = dir.path().join("secrets.toml");
        std::fs::write(&secrets, format!("[web]\ntoken = \"{TOKEN}\"\n")).unwrap();
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
        let lab = Lab {
            dir,
            metrics_port: free_port(),
            web_port: free_port(),
        };
        // No action configured: a lock is made in the store only.
        std::fs::write(
            lab.config(),
            format!(
                "[watch]\nlogs = [\"{}\"]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\n\
                 timezone = \"+01:00\"\nsecrets = \"{}\"\nmetrics_listen = \"127.0.0.1:{}\"\n\n\
                 [actions]\nact_within = \"3650d\"\n\n[web]\nlisten = \"127.0.0.1:{}\"\n{web}\n",
                logs.display(),
                lab.state().display(),
                secrets.display(),
                lab.metrics_port,
                lab.web_port,
            ),
        )
        .unwrap();
        lab
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("mailfuse.toml")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    fn lines_in_logs(&self) -> f64 {
        LOGS.iter()
            .map(|name| {
                let text = std::fs::read(self.dir.path().join("logs").join(name)).unwrap();
                text.iter().filter(|&&b| b == b'\n').count() as f64
            })
            .sum()
    }

    /// Runs watch until it has locked the hijacked account and read every
    /// line; the metrics scraped then.
    fn seed(&self) -> prometheus_parse::Scrape {
        let _watch = Daemon::start("watch", &self.config());
        wait_for_port(self.metrics_port, "watch's metrics");
        let lines = self.lines_in_logs();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let scrape = scrape(self.metrics_port);
            let read = sum(&scrape, "mailfuse_lines_read_total", &[]);
            let store = Store::open(&self.state()).ok();
            let locked = store
                .as_ref()
                .is_some_and(|s| s.is_locked(HIJACKED).unwrap_or(false));
            // The top senders are published after the save that follows the
            // lock: wait for them too, or the test races watch's loop.
            let published = store
                .as_ref()
                .is_some_and(|s| s.senders().is_ok_and(|rows| !rows.is_empty()));
            if read == lines
                && locked
                && published
                && value(&scrape, "mailfuse_locks", &[]) == Some(1.0)
            {
                return scrape;
            }
            assert!(
                Instant::now() < deadline,
                "watch did not read the {lines} lines and lock {HIJACKED} (read {read})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `serve` on this lab's configuration, once it listens.
    fn serve(&self) -> Daemon {
        let serve = Daemon::start("serve", &self.config());
        wait_for_port(self.web_port, "the dashboard");
        serve
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.web_port)
    }
}

/// One HTTP/1.1 exchange on loopback: the status, headers and body.
fn http(port: u16, request: &str) -> (u16, String, String) {
    exchange(TcpStream::connect(("127.0.0.1", port)).unwrap(), request)
}

/// Sends `request` on `stream` and reads until the server closes: the
/// status, headers and body.
fn exchange(mut stream: TcpStream, request: &str) -> (u16, String, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn get(port: u16, path: &str, cookie: &str) -> (u16, String, String) {
    http(
        port,
        &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    )
}

fn post(port: u16, path: &str, cookie: &str, form: &str) -> (u16, String, String) {
    http(port, &post_request(path, cookie, form))
}

fn post_request(path: &str, cookie: &str, form: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{form}",
        form.len()
    )
}

/// `/metrics` parsed by a Prometheus text-format parser.
fn scrape(port: u16) -> prometheus_parse::Scrape {
    let (status, head, body) = get(port, "/metrics", "");
    assert_eq!(status, 200, "{head}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("the metrics parse")
}

fn matches(sample: &prometheus_parse::Sample, name: &str, labels: &[(&str, &str)]) -> bool {
    sample.metric == name
        && labels
            .iter()
            .all(|(key, value)| sample.labels.get(key) == Some(*value))
}

fn number(sample: &prometheus_parse::Sample) -> f64 {
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

fn sum(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| matches(s, name, labels))
        .map(number)
        .sum()
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| matches(s, name, labels))
        .map(number)
}

/// Puts an incident and a lock whose texts are XSS payloads in the store.
fn plant_payloads(state: &Path) {
    let mut store = Store::open(state).unwrap();
    let json = serde_json::json!({
        "kind": "compromised_account",
        "account": SCRIPT_XSS,
        "ips": ["198.51.100.7"],
        "score": 99,
        "reasons": [format!("sent as {ATTR_XSS}")],
        "evidence": [format!("Subject: {SCRIPT_XSS} {ATTR_XSS} \u{1b}[2J")],
    });
    store
        .add_incident(&StoredIncident {
            key: "compromised_account:xss:0".into(),
            kind: "compromised_account".into(),
            subject: SCRIPT_XSS.into(),
            detected_at: Timestamp(1),
            json: json.to_string(),
        })
        .unwrap();
    store
        .lock(&Lock {
            account: ATTR_XSS.into(),
            since: Timestamp(1),
            reason: SCRIPT_XSS.into(),
            incident_key: None,
        })
        .unwrap();
}

/// The cookie a login with `token` sets, if it succeeds.
fn log_in(port: u16, token: &str) -> (u16, Option<String>) {
    let (status, head, _) = post(port, "/login", "", &format!("token={token}"));
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .map(str::to_string);
    (status, cookie)
}

#[test]
fn watch_metrics_parse_and_count_every_line_read() {
    let lab = Lab::new("");
    let scrape = lab.seed();
    let lines = lab.lines_in_logs();
    assert_eq!(
        sum(&scrape, "mailfuse_lines_read_total", &[("format", "kerio")]),
        lines,
        "every line of the example is Kerio's"
    );
    let events = sum(
        &scrape,
        "mailfuse_lines_read_total",
        &[("outcome", "event")],
    );
    assert!(events > 0.0);
    assert_eq!(sum(&scrape, "mailfuse_events_total", &[]), events);
    assert!(value(&scrape, "mailfuse_events_total", &[("kind", "submission")]) > Some(0.0));
    assert_eq!(
        value(
            &scrape,
            "mailfuse_incidents_total",
            &[("kind", "compromised_account")]
        ),
        Some(1.0)
    );
    assert!(
        value(
            &scrape,
            "mailfuse_incidents_total",
            &[("kind", "password_guessing")]
        ) >= Some(1.0)
    );
    assert_eq!(
        value(
            &scrape,
            "mailfuse_actions_total",
            &[("action", "lock"), ("outcome", "ok")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&scrape, "mailfuse_store_errors_total", &[]),
        Some(0.0)
    );
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| !s.labels.values().any(|v| v.contains('@'))),
        "no label names an account"
    );
    // Watch refreshed the top senders for the dashboard: the last hour of
    // the log (no limit is set), which the example's last sender is in.
    let senders = Store::open(&lab.state()).unwrap().senders().unwrap();
    assert!(
        senders.iter().any(|s| s.source == "watch"
            && s.window.window_secs == 3600
            && s.window.count > 0
            && s.window.max.is_none()),
        "{senders:?}"
    );
}

#[test]
fn dashboard_in_chromium_lists_the_incident_unlocks_and_runs_no_payload() {
    let lab = Lab::new("");
    lab.seed();
    plant_payloads(&lab.state());
    let _serve = lab.serve();
    let port = lab.web_port;

    // Forged changes are refused, and change nothing.
    let unlock = format!("account={HIJACKED}");
    assert_eq!(post(port, "/unlock", "", &unlock).0, 401, "no login");
    assert_eq!(log_in(port, "wrong-token-0123456789").0, 401);
    let (status, cookie) = log_in(port, TOKEN);
    assert_eq!(status, 303);
    let cookie = cookie.expect("a session cookie");
    assert_eq!(
        post(port, "/unlock", &cookie, &unlock).0,
        403,
        "no CSRF token"
    );
    let forged = format!("{unlock}&csrf=0123456789abcdef");
    assert_eq!(
        post(port, "/unlock", &cookie, &forged).0,
        403,
        "a wrong CSRF token"
    );
    assert_eq!(post(port, "/unblock", "", "ip=45.155.205.99").0, 401);
    let store = Store::open(&lab.state()).unwrap();
    assert!(store.is_locked(HIJACKED).unwrap(), "still locked");

    // Headers and escaping, as sent.
    let (status, head, body) = get(port, "/", &cookie);
    assert_eq!(status, 200, "{head}");
    let head = head.to_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(head.contains("x-frame-options: deny"), "{head}");
    assert!(!body.contains(SCRIPT_XSS) && !body.contains(ATTR_XSS));
    assert!(body.contains("&lt;script&gt;window.__xss=1&lt;/script&gt;"));
    assert!(body.contains("\\x1b[2J"), "control characters made visible");
    assert_eq!(get(port, "/", "").0, 303, "the dashboard needs a login");
    // A name that is not the dashboard's (DNS rebinding) is refused.
    let rebound = http(
        port,
        &format!("GET / HTTP/1.1\r\nHost: attacker.example:{port}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(rebound.0, 421, "{}", rebound.1);

    // The store's gauges.
    let scrape = scrape(port);
    assert_eq!(value(&scrape, "mailfuse_store_locks", &[]), Some(2.0));
    assert!(
        value(
            &scrape,
            "mailfuse_store_incidents",
            &[("kind", "compromised_account")]
        ) >= Some(2.0)
    );

    // A person in Chromium.
    let browser = Browser::start();
    browser.open(&format!("{}/", lab.base()));
    assert!(browser.url().ends_with("/login"), "{}", browser.url());
    browser.fill("#token", TOKEN);
    browser.click("#login");
    browser.wait_for("#incidents td.subject");
    let subjects = browser.texts("#incidents td.subject");
    assert!(
        subjects.iter().any(|s| s.starts_with(HIJACKED)),
        "the example's incident is listed: {subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.starts_with(SCRIPT_XSS)),
        "the payload shows as text: {subjects:?}"
    );
    let accounts = browser.texts("#locks td.account");
    assert!(accounts.iter().any(|a| a == ATTR_XSS), "{accounts:?}");
    assert_eq!(browser.execute("return typeof window.__xss"), "undefined");
    assert_eq!(
        browser.count("#incidents img"),
        0,
        "no element was injected"
    );
    browser.screenshot(&screenshot_path("dashboard.png"));

    browser.click_xpath(&format!(
        "//section[@id='locks']//tr[td[@class='account' and text()='{HIJACKED}']]//button"
    ));
    // The page reloads after the POST: wait for it to list one lock (while
    // it loads, nothing or the old two are found), then read it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while browser.count("#locks td.account") != 1 {
        assert!(Instant::now() < deadline, "the lock is still listed");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(browser.texts("#locks td.account"), [ATTR_XSS]);
    assert!(!store.is_locked(HIJACKED).unwrap(), "unlocked in the store");
    assert!(store.is_locked(ATTR_XSS).unwrap(), "the other lock stays");
    assert_eq!(browser.execute("return typeof window.__xss"), "undefined");
    browser.screenshot(&screenshot_path("dashboard-unlocked.png"));
}

#[test]
fn a_read_only_dashboard_shows_no_button_and_refuses_changes() {
    let lab = Lab::new("read_only = true");
    let mut store = Store::open(&lab.state()).unwrap();
    store
        .lock(&Lock {
            account: HIJACKED.into(),
            since: Timestamp(1),
            reason: "sent spam".into(),
            incident_key: None,
        })
        .unwrap();
    let _serve = lab.serve();
    let port = lab.web_port;
    let (status, cookie) = log_in(port, TOKEN);
    assert_eq!(status, 303);
    let cookie = cookie.unwrap();
    let (status, _, body) = get(port, "/", &cookie);
    assert_eq!(status, 200);
    assert!(body.contains(HIJACKED));
    assert!(!body.contains("Unlock"), "no button:\n{body}");
    assert_eq!(
        post(port, "/unlock", &cookie, &format!("account={HIJACKED}")).0,
        403
    );
    assert!(store.is_locked(HIJACKED).unwrap());
}

#[test]
fn serve_refuses_to_start_without_a_token_unless_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"/x\"]\nstate = \"{}\"\n",
            dir.path().join("state.db").display()
        ),
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("web.token is not set"), "{stderr}");
}

/// A login from loopback address 127.0.0.`source`: status and headers.
fn log_in_from(source: u8, port: u16, token: &str) -> (u16, String) {
    let stream = connect_from(&format!("127.0.0.{source}"), port);
    let (status, head, _) = exchange(
        stream,
        &post_request("/login", "", &format!("token={token}")),
    );
    (status, head)
}

/// `n` wrong logins at once from 127.0.0.`source`: their statuses.
fn wrong_logins(source: u8, port: u16, n: usize) -> Vec<u16> {
    std::thread::scope(|scope| {
        let attempts: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| log_in_from(source, port, "wrong-guess-0123456789").0))
            .collect();
        attempts.into_iter().map(|a| a.join().unwrap()).collect()
    })
}

/// The seconds a 429 says to wait.
fn retry_after(head: &str) -> u64 {
    head.lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {head}"))
}

#[test]
fn login_attempts_are_limited_per_client_and_globally() {
    // Per minute, so no budget refills in the few seconds the test takes.
    let lab = Lab::new("login_attempts = 3\nlogin_attempts_global = 5");
    let _serve = lab.serve();
    let port = lab.web_port;

    assert_eq!(wrong_logins(1, port, 3), [401; 3]);
    // 127.0.0.1 used its budget: refused, with the right token too.
    let (status, head) = log_in_from(1, port, TOKEN);
    assert_eq!(status, 429, "{head}");
    assert!(retry_after(&head) >= 1, "{head}");
    // Another client is not held back by it, and its success costs nothing.
    let (status, head) = log_in_from(2, port, TOKEN);
    assert_eq!(status, 303, "{head}");
    // Two more failures, and the global budget of 5 is spent for everyone.
    assert_eq!(wrong_logins(2, port, 2), [401; 2]);
    let (status, head) = log_in_from(3, port, TOKEN);
    assert_eq!(status, 429, "{head}");
    assert!(retry_after(&head) >= 1, "{head}");

    let scrape = scrape(port);
    let throttled = "mailfuse_web_login_throttled_total";
    assert_eq!(value(&scrape, throttled, &[("scope", "client")]), Some(1.0));
    assert_eq!(value(&scrape, throttled, &[("scope", "global")]), Some(1.0));
}

#[test]
fn serves_https_with_the_configured_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let certificate = SelfSigned::new(certs.path());
    let lab = Lab::new(&certificate.config_lines());
    let checked = Command::new(BIN)
        .args(["check-config", "--config", lab.config().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    let _serve = lab.serve();
    let port = lab.web_port;

    let mut tls = certificate.connect(port);
    tls.write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    // The server's close may come without TLS's close_notify; what came is read.
    let _ = tls.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("name=\"token\""), "{response}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let (status, head, _) = get(port, "/login", "");
    assert_eq!(status, 0, "{head}");
}

#[test]
fn half_sent_requests_are_closed_after_the_request_timeout() {
    let lab = Lab::new("request_timeout = \"1s\"");
    let _serve = lab.serve();
    let port = lab.web_port;

    // Headers never finished: closed. (The client's own read timeout, 20 s,
    // would be an error, not the end of the stream.)
    let (status, head, _) = http(port, "GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    assert!(status == 0 || status == 408, "{head}");

    // A body shorter than announced: 408, closed.
    let (status, head, _) = http(
        port,
        "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ntoken=x",
    );
    assert_eq!(status, 408, "{head}");

    // The dashboard still answers.
    assert_eq!(get(port, "/login", "").0, 200);
}
