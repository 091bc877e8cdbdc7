use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use mailfuse_core::net::Cidr;
use mailfuse_store::{Block, Lock};

use super::*;

/// Locks and blocks held in sets, or a state that cannot be read.
#[derive(Default)]
struct Held {
    locked: HashSet<String>,
    blocked: HashSet<IpAddr>,
    broken: bool,
}

impl LoginState for Held {
    fn is_locked(&self, account: &str) -> Result<bool> {
        anyhow::ensure!(!self.broken, "disk I/O error");
        Ok(self.locked.contains(account))
    }
    fn is_blocked(&self, ip: IpAddr) -> Result<bool> {
        anyhow::ensure!(!self.broken, "disk I/O error");
        Ok(self.blocked.contains(&ip))
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn cidrs(list: &[&str]) -> Vec<Cidr> {
    list.iter().map(|c| c.parse().unwrap()).collect()
}

fn server(store: Store, allow: AllowConfig, logged: &[&str]) -> (Server, Receiver<ReportedLogin>) {
    let (logins, receiver) = sync_channel(2);
    let server = Server {
        store: Mutex::new(store),
        allow,
        safety: Safety::new(Vec::new(), cidrs(&["10.9.0.0/16"])),
        api_key: None,
        logged_protocols: logged.iter().map(|p| p.to_string()).collect(),
        logins,
        dropped: AtomicU64::new(0),
        dry_run: false,
    };
    (server, receiver)
}

fn asking(login: Option<&str>, remote: &str) -> Request {
    Request {
        login: login.map(str::to_string),
        remote: remote.parse().ok(),
        protocol: "imap".into(),
        outcome: None,
    }
}

fn reporting(login: Option<&str>, remote: &str, outcome: Outcome) -> Request {
    Request {
        outcome: Some(outcome),
        ..asking(login, remote)
    }
}

#[test]
fn locked_accounts_and_blocked_ips_are_refused_unless_allowed_or_protected() {
    let allow = AllowConfig {
        accounts: vec!["boss@example.com".into()],
        networks: cidrs(&["198.51.100.0/24"]),
    };
    let (server, _) = server(Store::in_memory().unwrap(), allow, &[]);
    let held = Held {
        locked: ["sales@example.com", "boss@example.com"]
            .map(String::from)
            .into(),
        blocked: [
            "203.0.113.7",
            "198.51.100.9",
            "127.0.0.1",
            "192.168.1.5",
            "10.9.1.1",
        ]
        .map(ip)
        .into(),
        broken: false,
    };
    let judge = |login, remote| server.judge(&asking(login, remote), &held).unwrap();
    let sales = Some("sales@example.com");
    let alice = Some("alice@example.com");
    assert_eq!(judge(sales, "192.0.2.1"), Some(Refusal::LockedAccount));
    assert_eq!(judge(sales, "127.0.0.1"), Some(Refusal::LockedAccount));
    assert_eq!(
        judge(Some("boss@example.com"), "192.0.2.1"),
        None,
        "allow-listed"
    );
    assert_eq!(judge(alice, "192.0.2.1"), None);
    assert_eq!(judge(alice, "203.0.113.7"), Some(Refusal::BlockedIp));
    assert_eq!(judge(None, "203.0.113.7"), Some(Refusal::BlockedIp));
    assert_eq!(judge(alice, "198.51.100.9"), None, "allow-listed network");
    assert_eq!(judge(alice, "127.0.0.1"), None, "loopback is never refused");
    assert_eq!(judge(alice, "192.168.1.5"), None, "private, not blockable");
    assert_eq!(
        judge(alice, "10.9.1.1"),
        Some(Refusal::BlockedIp),
        "private but listed as blockable"
    );
    assert_eq!(judge(None, "unknown"), None);
    let broken = Held {
        broken: true,
        ..Held::default()
    };
    assert!(server.judge(&asking(sales, "192.0.2.1"), &broken).is_err());
}

#[test]
fn reported_logins_become_the_events_the_log_parser_gives() {
    let at = Timestamp(1_800_000_000);
    let failed = reporting(Some("sales@example.com"), "203.0.113.7", Outcome::Failed);
    let login = ReportedLogin::of(&failed, at).unwrap();
    assert_eq!(
        login.line,
        "auth-policy: user=<sales@example.com> rip=203.0.113.7 protocol=imap failed"
    );
    assert_eq!(
        login.event(),
        Event::AuthFailure(AuthFailure {
            at,
            client: Client::Ip(ip("203.0.113.7")),
            account: Some(b"sales@example.com"),
            service: b"IMAP",
            kind: AuthFailureKind::BadPassword,
            attempts: 1,
        })
    );
    let mut good = reporting(Some("sales@example.com"), "unknown", Outcome::Succeeded);
    good.protocol = "submission".into();
    let login = ReportedLogin::of(&good, at).unwrap();
    assert_eq!(
        login.event(),
        Event::AuthSuccess(AuthSuccess {
            at,
            client: Client::Unknown,
            account: b"sales@example.com",
            service: b"SMTP",
        })
    );
    assert!(login
        .line
        .ends_with("rip=unknown protocol=submission logged in"));
    let nameless = ReportedLogin::of(&reporting(None, "203.0.113.7", Outcome::Failed), at).unwrap();
    assert!(matches!(
        nameless.event(),
        Event::AuthFailure(AuthFailure { account: None, .. })
    ));
    for not_counted in [
        reporting(
            Some("sales@example.com"),
            "203.0.113.7",
            Outcome::RefusedByPolicy,
        ),
        reporting(None, "203.0.113.7", Outcome::Succeeded),
        reporting(Some("a\nb"), "203.0.113.7", Outcome::Failed),
        asking(Some("sales@example.com"), "203.0.113.7"),
    ] {
        assert_eq!(ReportedLogin::of(&not_counted, at), None, "{not_counted:?}");
    }
}

#[test]
fn logged_protocols_are_not_counted_twice_and_a_full_queue_drops() {
    let (server, receiver) = server(
        Store::in_memory().unwrap(),
        AllowConfig::default(),
        &["SMTP"],
    );
    let mut smtp = reporting(Some("a@example.com"), "203.0.113.7", Outcome::Failed);
    smtp.protocol = "smtp".into();
    server.report(&smtp);
    assert!(
        receiver.try_recv().is_err(),
        "Postfix logs its SASL failures"
    );
    let imap = reporting(Some("a@example.com"), "203.0.113.7", Outcome::Failed);
    for _ in 0..3 {
        server.report(&imap);
    }
    assert_eq!(receiver.try_iter().count(), 2, "the queue holds two");
    assert_eq!(server.dropped.load(Ordering::Relaxed), 1);
    let (all_logged, receiver) =
        self::server(Store::in_memory().unwrap(), AllowConfig::default(), &["*"]);
    all_logged.report(&imap);
    assert!(receiver.try_recv().is_err());
}

/// POSTs `body` to `path` with `headers`; the status and the body.
fn http_post(address: SocketAddr, path: &str, headers: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (and close) before a refused body is all sent.
    let _ = stream.write_all(body);
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A state in which sales@example.com is locked.
fn store_locking_sales() -> Store {
    let mut store = Store::in_memory().unwrap();
    store
        .lock(&Lock {
            account: "sales@example.com".into(),
            since: Timestamp(0),
            reason: "sent spam".into(),
            incident_key: None,
        })
        .unwrap();
    store
}

#[test]
fn a_dry_run_refuses_no_login() {
    let store = store_locking_sales();
    let (mut server, _) = server(store, AllowConfig::default(), &[]);
    let sales = asking(Some("sales@example.com"), "192.0.2.1");
    assert_eq!(
        server.judge_now(&sales).unwrap(),
        Some(Refusal::LockedAccount)
    );
    server.dry_run = true;
    assert_eq!(server.judge_now(&sales).unwrap(), None);
}

#[test]
fn the_http_server_answers_dovecot_and_refuses_what_it_should() {
    let mut store = store_locking_sales();
    store
        .block(&Block {
            ip: ip("203.0.113.7"),
            since: Timestamp(0),
            until: Timestamp(i64::MAX),
            reason: "attack".into(),
            incident_key: None,
        })
        .unwrap();
    let (mut server, receiver) = server(store, AllowConfig::default(), &["smtp"]);
    server.api_key = Some("0123456789abcdef".into());
    let app = Router::new()
        .route("/", post(answer))
        .with_state(Arc::new(server));
    let address = crate::metrics::spawn_server(
        "auth policy test",
        "listen",
        "127.0.0.1:0".parse().unwrap(),
        app,
    )
    .unwrap();
    let key = "X-API-Key: 0123456789abcdef\r\n";
    let ask = |login: &str, remote: &str| {
        let body = format!(r#"{{"login":"{login}","remote":"{remote}","protocol":"imap"}}"#);
        let (status, body) = http_post(address, "/?command=allow", key, body.as_bytes());
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let locked = ask("Sales@Example.com", "192.0.2.1");
    assert_eq!(locked["status"], -1);
    assert_eq!(locked["msg"], LOCKED);
    assert_eq!(ask("alice@example.com", "203.0.113.7")["msg"], BLOCKED);
    assert_eq!(ask("alice@example.com", "192.0.2.1")["status"], 0);

    let report = br#"{"login":"alice@example.com","remote":"192.0.2.1","protocol":"imap","success":false,"policy_reject":false,"tls":false}"#;
    assert_eq!(http_post(address, "/?command=report", key, report).0, 200);
    let mut reported = Vec::new();
    let policy = AuthPolicy { logins: receiver };
    wait_for(|| {
        policy.drain(&mut |event, line| {
            reported.push((event.at(), String::from_utf8_lossy(line).into_owned()));
        });
        !reported.is_empty()
    });
    assert!(reported[0]
        .1
        .starts_with("auth-policy: user=<alice@example.com>"));

    let wrong_key = "X-API-Key: 0123456789abcdeF\r\n";
    assert_eq!(
        http_post(address, "/?command=allow", wrong_key, b"{}").0,
        401
    );
    assert_eq!(http_post(address, "/?command=allow", "", b"{}").0, 401);
    assert_eq!(http_post(address, "/", key, b"{}").0, 400);
    assert_eq!(http_post(address, "/?command=allow", key, b"\xff{").0, 400);
    assert_eq!(http_post(address, "/?command=report", key, b"{}").0, 400);
    assert_eq!(
        http_post(address, "/elsewhere?command=allow", key, b"{}").0,
        404
    );
    let huge = vec![b' '; MAX_BODY + 1];
    assert_eq!(http_post(address, "/?command=allow", key, &huge).0, 413);
}

/// Polls `done` until it holds, for at most five seconds.
fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
}
