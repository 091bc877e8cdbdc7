//! The alert actions against servers and programs run by the test: mail to
//! a loopback SMTP server, a webhook to a loopback HTTP server, hook scripts
//! in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mailfuse_act::command::{Command, CommandConfig};
use mailfuse_act::email::{Email, EmailConfig, Security};
use mailfuse_act::message::compose;
use mailfuse_act::webhook::{Webhook, WebhookConfig};
use mailfuse_detect::Incident;
use support::http::HttpServer;
use support::smtp::{Parsed, Received, SmtpServer};
use support::{guessing, hijacked};

const HOST: &str = "mail.example.com";
/// An alert's id, as `capability::alert_id` makes them.
const ID: &str = "0123456789abcdef0123456789abcdef";

fn email_config(port: u16) -> EmailConfig {
    EmailConfig {
        server: "127.0.0.1".into(),
        port,
        security: Security::None,
        user: None,
        password: None,
        from: "mailfuse <mailfuse@example.com>".into(),
        to: vec!["admin@example.com".into(), "oncall@example.com".into()],
        timeout_secs: 10,
        tls_accept_invalid_certs: false,
    }
}

async fn next(server: &mut SmtpServer) -> Received {
    tokio::time::timeout(Duration::from_secs(10), server.received.recv())
        .await
        .expect("a message within 10 s")
        .expect("the server runs")
}

#[tokio::test]
async fn email_arrives_with_headers_and_evidence() {
    let mut server = SmtpServer::start("PLAIN LOGIN").await;
    let email = Email::new(email_config(server.port)).unwrap();
    let incident = hijacked();
    email
        .send(&incident, HOST, &["account disabled in Kerio".into()], ID)
        .await
        .unwrap();
    let got = next(&mut server).await;
    assert_eq!(got.auth, None, "no login unless configured");
    assert_eq!(got.mail_from, "<mailfuse@example.com>");
    assert_eq!(got.rcpt_to, ["<admin@example.com>", "<oncall@example.com>"]);
    let message = Parsed::of(&got.data);
    assert_eq!(
        message.header("From"),
        Some("mailfuse <mailfuse@example.com>")
    );
    assert_eq!(
        message.header("To"),
        Some("admin@example.com, oncall@example.com")
    );
    assert_eq!(
        message.header("Subject"),
        Some("mailfuse: sales@example.com is sending spam from 173.16.65.213 (score 100)")
    );
    assert!(message.header("Date").is_some());
    assert_eq!(
        message.header("Message-ID"),
        Some("<0123456789abcdef0123456789abcdef.alert@example.com>"),
        "the alert's id, the same if it is sent again"
    );
    assert!(
        message.body.contains(&incident.evidence[0]),
        "{}",
        message.body
    );
    assert!(message
        .body
        .contains("mailfuse found an incident on mail.example.com."));
    assert!(message
        .body
        .contains("What mailfuse did:\n  - account disabled in Kerio"));
    let sent = compose(&incident, HOST, &["account disabled in Kerio".into()]).body;
    assert_eq!(message.body.trim_end(), sent.trim_end());
}

#[tokio::test]
async fn hostile_incident_text_injects_no_header_and_keeps_no_escape() {
    let mut server = SmtpServer::start("PLAIN LOGIN").await;
    let email = Email::new(email_config(server.port)).unwrap();
    let mut incident = hijacked();
    incident.account = Some("sales@example.com\r\nBcc: victim@x\x1b[2J".into());
    incident.evidence = vec![
        "Recv: Subject: hi\r\nBcc: victim@x\r\n\r\n\x1b[2J\x1b]0;owned\x07".into(),
        ".".into(),
        "\n.\nQUIT".into(),
    ];
    email.send(&incident, HOST, &[], ID).await.unwrap();
    let got = next(&mut server).await;
    assert_eq!(got.rcpt_to, ["<admin@example.com>", "<oncall@example.com>"]);
    assert!(
        !got.data.contains(&0x1b),
        "no raw escape byte reaches the mail"
    );
    assert!(!got.data.contains(&0x07));
    let message = Parsed::of(&got.data);
    assert!(message.header("Bcc").is_none(), "{:?}", message.headers);
    let subject = message.header("Subject").unwrap();
    assert!(
        subject.starts_with(
            "mailfuse: sales@example.com\\x0d\\x0aBcc: victim@x\\x1b[2J is sending spam"
        ),
        "{subject}"
    );
    assert!(message
        .body
        .contains("  - Recv: Subject: hi\\x0d\\x0aBcc: victim@x\\x0d\\x0a\\x0d\\x0a\\x1b[2J\\x1b]0;owned\\x07"));
    assert!(
        message.body.contains("\n  - .\n"),
        "a lone dot arrives as text"
    );
    assert!(message.body.contains("  - \\x0a.\\x0aQUIT"));
}

#[tokio::test]
async fn email_logs_in_with_plain_or_login() {
    for (offered, used) in [("PLAIN LOGIN", "PLAIN"), ("LOGIN", "LOGIN")] {
        let mut server = SmtpServer::start(offered).await;
        let config = EmailConfig {
            user: Some("alerts@example.com".into()),
            password: Some("s3cret pass".into()),
            ..email_config(server.port)
        };
        Email::new(config)
            .unwrap()
            .send(&guessing(), HOST, &[], ID)
            .await
            .unwrap();
        let got = next(&mut server).await;
        assert_eq!(
            got.auth,
            Some((
                used.into(),
                "alerts@example.com".into(),
                "s3cret pass".into()
            ))
        );
        let subject = Parsed::of(&got.data).header("Subject").unwrap().to_string();
        assert_eq!(
            subject,
            "mailfuse: 45.155.205.99 and 1 more is guessing passwords (380 failed logins)"
        );
    }
}

#[tokio::test]
async fn refused_connection_is_a_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = Email::new(email_config(port))
        .unwrap()
        .send(&hijacked(), HOST, &[], ID)
        .await
        .unwrap_err()
        .to_string();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.starts_with(&format!("email: could not send through 127.0.0.1:{port}: ")),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
}

#[tokio::test]
async fn starttls_is_required_when_configured() {
    let mut server = SmtpServer::start("PLAIN LOGIN").await;
    let config = EmailConfig {
        security: Security::Starttls,
        user: Some("u".into()),
        password: Some("never sent".into()),
        ..email_config(server.port)
    };
    let err = Email::new(config)
        .unwrap()
        .send(&hijacked(), HOST, &[], ID)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("STARTTLS is not supported"),
        "{err}"
    );
    assert!(server.received.try_recv().is_err(), "nothing sent in clear");
}

fn webhook(url: &str, headers: &[(&str, &str)]) -> Webhook {
    Webhook::new(WebhookConfig {
        url: url.into(),
        timeout_secs: 10,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    })
    .unwrap()
}

#[tokio::test]
async fn webhook_posts_text_incident_and_actions() {
    let mut server = HttpServer::start("200 OK", "ok").await;
    let hook = webhook(&server.url, &[("Authorization", "Bearer t0ken")]);
    let mut incident = guessing();
    incident.accounts_tried = vec!["<!channel>".into(), "@here".into()];
    let done = vec!["45.155.205.99 blocked for 24 h".to_string()];
    hook.send(&incident, HOST, &done, ID).await.unwrap();
    let request = server.requests.recv().await.unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/hooks/T0/SECRET");
    assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("idempotency-key"), Some(ID));
    let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(json["alert_id"], ID);
    let text = json["text"].as_str().unwrap();
    assert!(text.starts_with(
        "mailfuse: 45.155.205.99 and 1 more is guessing passwords (380 failed logins)\nserver: mail.example.com"
    ));
    assert!(
        text.ends_with("What mailfuse did: 45.155.205.99 blocked for 24 h"),
        "{text}"
    );
    let back: Incident = serde_json::from_value(json["incident"].clone()).unwrap();
    assert_eq!(back, incident);
    assert_eq!(json["actions"], serde_json::json!(done));
}

#[tokio::test]
async fn webhook_text_defuses_chat_markup() {
    let mut server = HttpServer::start("204 No Content", "").await;
    let mut incident = hijacked();
    incident.account = Some("<!channel>@all".into());
    incident.reasons = vec!["@here <https://evil.example|click> & more".into()];
    webhook(&server.url, &[])
        .send(&incident, HOST, &[], ID)
        .await
        .unwrap();
    let request = server.requests.recv().await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    let text = json["text"].as_str().unwrap();
    assert!(!text.contains('<') && !text.contains('>'), "{text}");
    assert!(text.contains("&lt;!channel&gt;@all"));
    assert!(text.contains("- @\u{200b}here &lt;https://evil.example|click&gt; &amp; more"));
    assert_eq!(
        json["incident"]["account"], "<!channel>@all",
        "JSON keeps the raw value"
    );
}

#[tokio::test]
async fn webhook_error_reply_is_an_error_with_status_and_body() {
    let body = "internal error: \x1b[2J database down; ".repeat(20);
    let body: &'static str = Box::leak(body.into_boxed_str());
    let server = HttpServer::start("500 Internal Server Error", body).await;
    let err = webhook(&server.url, &[])
        .send(&hijacked(), HOST, &[], ID)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("webhook: http://127.0.0.1:")
            && err.contains(
                "/… answered 500 Internal Server Error: internal error: \\x1b[2J database down;"
            ),
        "{err}"
    );
    assert!(!err.contains("SECRET"), "the URL's path stays out: {err}");
    assert!(err.ends_with('…') && err.len() < 400, "{err}");
}

#[tokio::test]
async fn webhook_unreachable_is_an_error_without_the_secret() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hooks/SECRET");
    let err = webhook(&url, &[])
        .send(&hijacked(), HOST, &[], ID)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("webhook: POST to http://127.0.0.1:{port}/…: ")),
        "{err}"
    );
    assert!(!err.contains("SECRET"), "{err}");
}

/// Hook scripts, written once before any test runs one: a file being
/// written while another thread forks cannot be executed ("text file busy").
fn scripts() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        // $1 is where to record; the rest is what mailfuse passed.
        write(
            "record",
            "out=\"$1\"; shift\nprintf '%s\\0' \"$@\" > \"$out/argv\"\nenv -0 > \"$out/env\"\ncat > \"$out/stdin\"\n",
        );
        write(
            "fail",
            "echo 'lock failed: no such account' >&2\necho 'second line' >&2\nexit 3\n",
        );
        write("hang", "sleep 100 &\necho $! > \"$1/pid\"\nwait\n");
        write("ignore-stdin", "exit 0\n");
        dir
    })
    .path()
}

fn hook(script: &str, args: &[&str], timeout_secs: u64) -> Command {
    Command::new(CommandConfig {
        program: scripts().join(script),
        args: args.iter().map(|a| a.to_string()).collect(),
        timeout_secs,
    })
    .unwrap()
}

fn recorded(dir: &Path) -> (Vec<String>, HashMap<String, String>, String) {
    let split = |name: &str| -> Vec<String> {
        // NUL-terminated entries: split, keeping empty ones.
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let entries = bytes.strip_suffix(&[0]).unwrap_or(&bytes);
        entries
            .split(|&b| b == 0)
            .map(|part| String::from_utf8(part.to_vec()).unwrap())
            .collect()
    };
    let env = split("env")
        .into_iter()
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    let stdin = std::fs::read_to_string(dir.join("stdin")).unwrap();
    (split("argv"), env, stdin)
}

fn out_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    (dir, path)
}

#[tokio::test]
async fn command_gets_hostile_values_as_single_literal_arguments() {
    for account in [
        "x; rm -rf /",
        "$(reboot)",
        "`id` {ip} \"a b\"\n--force",
        "-rf",
    ] {
        let (dir, out) = out_dir();
        let mut incident = hijacked();
        incident.account = Some(account.into());
        hook(
            "record",
            &[
                &out,
                "{account}",
                "--ip={ip}",
                "{kind}",
                "{score}",
                "literal {X}",
            ],
            10,
        )
        .run(&incident, &[])
        .await
        .unwrap();
        let (argv, env, _) = recorded(dir.path());
        assert_eq!(
            argv,
            [
                account,
                "--ip=173.16.65.213",
                "compromised_account",
                "100",
                "literal {X}"
            ]
        );
        assert_eq!(env["MAILFUSE_ACCOUNT"], account);
    }
}

#[tokio::test]
async fn command_gets_the_incident_in_environment_and_stdin() {
    let (dir, out) = out_dir();
    let incident = guessing();
    let done = vec!["45.155.205.99 blocked".to_string(), "mail sent".to_string()];
    hook("record", &[&out, "{account}", "{ip}"], 10)
        .run(&incident, &done)
        .await
        .unwrap();
    let (argv, env, stdin) = recorded(dir.path());
    assert_eq!(argv, ["", "45.155.205.99"], "no account: an empty argument");
    assert_eq!(env["MAILFUSE_KIND"], "password_guessing");
    assert_eq!(env["MAILFUSE_ACCOUNT"], "");
    assert_eq!(env["MAILFUSE_IP"], "45.155.205.99");
    assert_eq!(env["MAILFUSE_IPS"], "45.155.205.99 2001:db8::7");
    assert_eq!(env["MAILFUSE_SCORE"], "90");
    assert_eq!(env["MAILFUSE_ACTIONS"], "45.155.205.99 blocked\nmail sent");
    assert!(env.contains_key("PATH"), "the environment is inherited");
    let from_env: Incident = serde_json::from_str(&env["MAILFUSE_INCIDENT_JSON"]).unwrap();
    let from_stdin: Incident = serde_json::from_str(&stdin).unwrap();
    assert_eq!(from_env, incident);
    assert_eq!(from_stdin, incident);
}

#[tokio::test]
async fn command_as_an_alert_gets_its_id_and_as_a_hook_none() {
    use mailfuse_act::capability::Alert;
    let (dir, out) = out_dir();
    let hook = hook("record", &[&out], 10);
    Alert::alert(&hook, &hijacked(), HOST, &[], ID)
        .await
        .unwrap();
    let (_, env, _) = recorded(dir.path());
    assert_eq!(env["MAILFUSE_ALERT_ID"], ID);
    hook.run(&hijacked(), &[]).await.unwrap();
    let (_, env, _) = recorded(dir.path());
    assert!(
        !env.contains_key("MAILFUSE_ALERT_ID"),
        "a lock or block hook is no alert"
    );
}

#[test]
fn an_alerts_id_is_stable_and_its_own() {
    use mailfuse_act::capability::alert_id;
    let id = alert_id(
        HOST,
        "compromised_account:sales@example.com:2026-11-05T01:13:00Z",
        "webhook",
    );
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    assert_eq!(
        id,
        alert_id(
            HOST,
            "compromised_account:sales@example.com:2026-11-05T01:13:00Z",
            "webhook"
        ),
        "the same alert, the same id: after a restart too"
    );
    for other in [
        alert_id(
            HOST,
            "compromised_account:sales@example.com:2026-11-05T01:13:00Z",
            "email",
        ),
        alert_id(
            "mx2.example.com",
            "compromised_account:sales@example.com:2026-11-05T01:13:00Z",
            "webhook",
        ),
        alert_id(
            HOST,
            "compromised_account:info@example.com:2026-11-05T01:13:00Z",
            "webhook",
        ),
        // The parts cannot slide into one another.
        alert_id(
            "mail.example.co",
            "mcompromised_account:sales@example.com:2026-11-05T01:13:00Z",
            "webhook",
        ),
    ] {
        assert_ne!(id, other);
    }
}

#[tokio::test]
async fn command_for_one_ip_of_many() {
    let (dir, out) = out_dir();
    let incident = guessing();
    hook("record", &[&out, "block", "{ip}"], 10)
        .run_for_ip(&incident, incident.ips[1], &[])
        .await
        .unwrap();
    let (argv, env, _) = recorded(dir.path());
    assert_eq!(argv, ["block", "2001:db8::7"]);
    assert_eq!(env["MAILFUSE_IP"], "2001:db8::7");
}

#[tokio::test]
async fn big_incident_stays_whole_on_stdin() {
    let (dir, out) = out_dir();
    let mut incident = guessing();
    incident.accounts_tried = (0..300)
        .map(|n| format!("user{n:03}{}", "x".repeat(300)))
        .collect();
    hook("record", &[&out], 10)
        .run(&incident, &[])
        .await
        .unwrap();
    let (_, env, stdin) = recorded(dir.path());
    assert_eq!(
        env["MAILFUSE_INCIDENT_JSON"], "",
        "too big for one variable"
    );
    assert_eq!(serde_json::from_str::<Incident>(&stdin).unwrap(), incident);
    // A program that does not read its stdin is not an error either.
    hook("ignore-stdin", &[], 10)
        .run(&incident, &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn command_failure_quotes_status_and_stderr() {
    let err = hook("fail", &["{account}"], 10)
        .run(&hijacked(), &[])
        .await
        .unwrap_err()
        .to_string();
    let program = scripts().join("fail");
    assert_eq!(
        err,
        format!(
            "command: {} failed (exit status 3): lock failed: no such account | second line",
            program.display()
        )
    );
}

#[tokio::test]
async fn command_timeout_kills_the_program_and_its_children() {
    let (dir, out) = out_dir();
    let started = Instant::now();
    let err = hook("hang", &[&out], 1)
        .run(&hijacked(), &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.ends_with("hang killed after 1 s without finishing"),
        "{err}"
    );
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    assert!(
        !is_running(pid.trim()),
        "the script's `sleep 100` was killed too"
    );
}

/// Whether a process exists and is not a zombie waiting for its reaper.
fn is_running(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let running = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
            Err(_) => false,
        };
        if !running || Instant::now() > deadline {
            return running;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn account_with_nul_byte_cannot_start_the_program() {
    let mut incident = hijacked();
    incident.account = Some("evil\0--force".into());
    let err = hook("ignore-stdin", &["{account}"], 10)
        .run(&incident, &[])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("could not start"), "{err}");
}

#[test]
fn missing_program_is_refused_at_configuration() {
    let missing: PathBuf = scripts().join("missing");
    let err = Command::new(CommandConfig {
        program: missing,
        args: Vec::new(),
        timeout_secs: 10,
    })
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("command: no program at "), "{err}");
}
