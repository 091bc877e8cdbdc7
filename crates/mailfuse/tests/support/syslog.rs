//! Sending syslog to a `watch` under test: the daemon (killed when
//! dropped), Postfix lines in syslog's two headers, and a real `rsyslogd`
//! relaying them.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A `mailfuse watch`, killed when dropped (even when the test fails);
/// its output goes to `watch.out` in its directory.
pub struct Watch {
    child: Child,
    pub config: PathBuf,
}

impl Watch {
    /// Starts watch with `config`, waiting until `port` accepts connections.
    pub fn start(config: &Path, port: u16) -> Watch {
        let out = std::fs::File::create(config.with_file_name("watch.out")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
            .args(["watch", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("watch starts");
        let watch = Watch {
            child,
            config: config.to_path_buf(),
        };
        super::wait_until("watch to listen", Duration::from_secs(20), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        watch
    }

    /// `status --format json` as watch saved it last, with up to 100
    /// incidents.
    pub fn status(&self) -> Value {
        let args = ["status", "--format", "json", "--recent", "100"];
        let output = super::mailfuse(&args, &self.config);
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
    }

    /// Waits until watch has saved `events` events or more; its status then.
    pub fn wait_for_events(&self, events: u64) -> Value {
        let mut status = Value::Null;
        let seen = |status: &Value| status["progress"]["stats"]["events"].as_u64().unwrap_or(0);
        let done = super::try_wait_until(Duration::from_secs(30), || {
            status = self.status();
            seen(&status) >= events
        });
        assert!(
            done,
            "watch saw {} events, not {events}:\n{}",
            seen(&status),
            self.output()
        );
        status
    }

    /// What watch logged so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.config.with_file_name("watch.out")).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `[watch]` with the state in `dir` and no files, then `syslog`, the
/// `[watch.syslog]` section's lines.
pub fn watch_config(dir: &Path, syslog: &str) -> PathBuf {
    let config = dir.join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nstate = \"{}\"\npoll_ms = 20\nsave_every_secs = 1\ndry_run = true\n\n[watch.syslog]\n{syslog}\n",
            dir.join("state.db").display()
        ),
    )
    .unwrap();
    config
}

/// Adds `lines` to the `[watch]` section of `config`.
pub fn add_to_watch(config: &Path, lines: &str) {
    let text = std::fs::read_to_string(config).unwrap().replacen(
        "[watch]\n",
        &format!("[watch]\n{lines}\n"),
        1,
    );
    std::fs::write(config, text).unwrap();
}

/// A Postfix program's message at second `secs` of 2026-03-02 10:00 UTC,
/// as RFC 5424: `<22>1 2026-03-02T10:00:SSZ host program pid - - text`.
pub fn rfc5424(host: &str, secs: u32, program: &str, text: &str) -> String {
    format!(
        "<22>1 2026-03-02T10:{:02}:{:02}Z {host} {program} {} - - {text}",
        secs / 60,
        secs % 60,
        1000 + secs
    )
}

/// The same as RFC 3164 with its yearless stamp (read as UTC).
pub fn rfc3164(host: &str, secs: u32, program: &str, text: &str) -> String {
    format!(
        "<22>Mar  2 10:{:02}:{:02} {host} {program}[{}]: {text}",
        secs / 60,
        secs % 60,
        1000 + secs
    )
}

/// `count` failed SASL logins from `ip` at `account`, one a second from
/// second `from`, in the shape `header` writes (`rfc5424`, `rfc3164`).
pub fn guesses(
    header: fn(&str, u32, &str, &str) -> String,
    host: &str,
    ip: &str,
    account: &str,
    from: u32,
    count: u32,
) -> Vec<String> {
    (from..from + count)
        .map(|secs| {
            header(
                host,
                secs,
                "postfix/submission/smtpd",
                &format!("warning: unknown[{ip}]: SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username={account}"),
            )
        })
        .collect()
}

/// The lines of message `queue_id` that `account` submits from `ip` at
/// second `secs` to `recipients`, delivered, then removed: its arrival
/// (two lines), then the rest.
pub fn message(
    header: fn(&str, u32, &str, &str) -> String,
    host: &str,
    secs: u32,
    queue_id: &str,
    (account, ip): (&str, &str),
    recipients: &[&str],
) -> (Vec<String>, Vec<String>) {
    let arrival = vec![
        header(
            host,
            secs,
            "postfix/submission/smtpd",
            &format!(
                "{queue_id}: client=unknown[{ip}], sasl_method=LOGIN, sasl_username={account}"
            ),
        ),
        header(
            host,
            secs,
            "postfix/qmgr",
            &format!(
                "{queue_id}: from=<{account}>, size=1200, nrcpt={} (queue active)",
                recipients.len()
            ),
        ),
    ];
    let mut rest: Vec<String> = recipients
        .iter()
        .map(|to| {
            header(host, secs + 1, "postfix/smtp", &format!("{queue_id}: to=<{to}>, relay=mx.far.test[192.0.2.25]:25, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok)"))
        })
        .collect();
    rest.push(header(
        host,
        secs + 2,
        "postfix/qmgr",
        &format!("{queue_id}: removed"),
    ));
    (arrival, rest)
}

/// `messages` octet-counted (RFC 6587 `LEN SP MSG`).
pub fn octet_counted(messages: &[String]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for message in messages {
        write!(bytes, "{} {message}", message.len()).unwrap();
    }
    bytes
}

/// `messages`, each ended by a newline.
pub fn newline_framed(messages: &[String]) -> Vec<u8> {
    messages
        .iter()
        .flat_map(|m| format!("{m}\n").into_bytes())
        .collect()
}

/// Sends `bytes` to `port` over TCP on a connection of its own.
pub fn send_tcp(port: u16, bytes: &[u8]) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(bytes).unwrap();
}

/// The incidents watch recorded, as JSON.
pub fn incidents(status: &Value) -> Vec<Value> {
    status["incidents"]
        .as_array()
        .map(|all| all.iter().map(|i| i["incident"].clone()).collect())
        .unwrap_or_default()
}

/// A real `rsyslogd` with its own configuration and work directory,
/// killed when dropped.
pub struct Rsyslog {
    child: Child,
}

impl Rsyslog {
    /// Starts `rsyslogd -n` with `config` (its rules), in `dir`.
    pub fn start(dir: &Path, config: &str) -> Rsyslog {
        let work = dir.join("rsyslog");
        std::fs::create_dir_all(&work).unwrap();
        let conf = dir.join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!("global(workDirectory=\"{}\")\n{config}\n", work.display()),
        )
        .unwrap();
        let out = std::fs::File::create(dir.join("rsyslog.out")).unwrap();
        let child = Command::new(super::tool("rsyslogd"))
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("rsyslogd starts");
        Rsyslog { child }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
