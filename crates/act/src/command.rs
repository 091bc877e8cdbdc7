//! Runs a program of the admin's about an incident: an alert of their own
//! making, or the hook that locks an account or blocks an IP.
//!
//! The program is started directly with an argument vector, never through a
//! shell: an account named `x; rm -rf /` arrives as that one argument.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailfuse_detect::Incident;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use crate::capability::Fault;
use crate::message::clean;
use crate::ActError;

const ACTION: &str = "command";
/// How much of the program's stderr is kept for the error message.
const STDERR_KEPT: usize = 4096;
/// How many stderr lines an error quotes.
const STDERR_LINES: usize = 5;
/// How long to wait for the rest of stderr once the program has exited (a
/// background child may hold the pipe open).
const STDERR_GRACE: Duration = Duration::from_millis(500);
/// Linux refuses an environment string over 128 KiB (`MAX_ARG_STRLEN`);
/// a bigger incident is left out of `MAILFUSE_INCIDENT_JSON` (stdin has it).
const ENV_JSON_MAX: usize = 64 * 1024;
/// The placeholders `args` may hold.
const PLACEHOLDERS: [&str; 4] = ["account", "ip", "kind", "score"];

/// A program to run per incident (`[alerts.command]`, or a lock/block hook).
///
/// The program gets the incident as JSON on stdin and in the environment:
/// `MAILFUSE_KIND` (the incident kind's name, `compromised_account`…),
/// `MAILFUSE_ACCOUNT` (empty for most guessing), `MAILFUSE_IP` (the IP `{ip}`
/// stands for), `MAILFUSE_IPS` (all, space-separated), `MAILFUSE_SCORE`,
/// `MAILFUSE_ACTIONS` (what mailfuse did, one per line),
/// `MAILFUSE_INCIDENT_JSON` (empty when over 64 KiB; read stdin then), and
/// as an alert `MAILFUSE_ALERT_ID` (the same if it runs again for this
/// alert: see [`crate::capability::alert_id`]).
/// Values are passed raw (the exact account name, so a hook can lock it):
/// quote them in scripts (`"$MAILFUSE_ACCOUNT"`). Its stdout is discarded;
/// exit status 0 means done.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConfig {
    /// Absolute path of the program (no `PATH` search, no shell).
    pub program: PathBuf,
    /// Its arguments. `{account}`, `{ip}`, `{kind}` and `{score}` are
    /// replaced by the incident's values inside each argument; a value never
    /// splits an argument or merges two, whatever it holds.
    #[serde(default)]
    pub args: Vec<String>,
    /// After this, the program and everything it started are killed.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_timeout_secs() -> u64 {
    30
}

/// Runs the configured program; the configuration is checked once, in
/// [`Command::new`].
#[derive(Debug)]
pub struct Command {
    config: CommandConfig,
    timeout: Duration,
}

impl Command {
    /// Checks that the program is an absolute path to a file, that the
    /// arguments use known placeholders only, and the timeout.
    pub fn new(config: CommandConfig) -> Result<Self, ActError> {
        let program = config.program.display();
        if !config.program.is_absolute() {
            return Err(ActError::new(
                ACTION,
                format!("`program` must be an absolute path, not {program}"),
            ));
        }
        if !config.program.is_file() {
            return Err(ActError::new(ACTION, format!("no program at {program}")));
        }
        if let Some(unknown) = config.args.iter().find_map(|a| unknown_placeholder(a)) {
            return Err(ActError::new(
                ACTION,
                format!(
                    "unknown placeholder {{{unknown}}} in `args` (known: {{{}}})",
                    PLACEHOLDERS.join("}, {")
                ),
            ));
        }
        if config.timeout_secs == 0 {
            return Err(ActError::new(ACTION, "`timeout_secs` must be at least 1"));
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        Ok(Command { config, timeout })
    }

    /// Runs the program for `incident`, `{ip}` standing for its first IP.
    pub async fn run(&self, incident: &Incident, done: &[String]) -> Result<(), ActError> {
        self.execute(incident, incident.ips.first().copied(), done, None)
            .await
    }

    /// Runs the program for one of the incident's IPs (a block hook that
    /// takes one address per call).
    pub async fn run_for_ip(
        &self,
        incident: &Incident,
        ip: IpAddr,
        done: &[String],
    ) -> Result<(), ActError> {
        self.execute(incident, Some(ip), done, None).await
    }

    /// Runs the program; as the alert `alert_id`, that is in its
    /// environment.
    async fn execute(
        &self,
        incident: &Incident,
        ip: Option<IpAddr>,
        done: &[String],
        alert_id: Option<&str>,
    ) -> Result<(), ActError> {
        let values = Values::of(incident, ip);
        let json = serde_json::to_string(incident)
            .map_err(|e| ActError::new(ACTION, format!("incident as JSON: {e}")))?;
        let ips: Vec<String> = incident.ips.iter().map(IpAddr::to_string).collect();
        let mut command = self.command(&values);
        if let Some(id) = alert_id {
            command.env("MAILFUSE_ALERT_ID", id);
        }
        command
            .env("MAILFUSE_IPS", ips.join(" "))
            .env("MAILFUSE_ACTIONS", done.join("\n"))
            .env(
                "MAILFUSE_INCIDENT_JSON",
                if json.len() <= ENV_JSON_MAX {
                    json.as_str()
                } else {
                    ""
                },
            );
        self.finish(command, json).await
    }

    /// Runs the program for `fault`, a fault of mailfuse itself: `{kind}`
    /// and `MAILFUSE_KIND` are the fault's (`state_not_saved`…), the other
    /// placeholders empty, `MAILFUSE_FAULT` says what is wrong, and stdin
    /// has the fault as JSON; `MAILFUSE_ALERT_ID` is the alert's `id`.
    pub async fn run_for_fault(&self, fault: &Fault, id: &str) -> Result<(), ActError> {
        let values = Values {
            account: "",
            ip: String::new(),
            kind: fault.kind,
            score: String::new(),
        };
        let json = serde_json::to_string(fault)
            .map_err(|e| ActError::new(ACTION, format!("fault as JSON: {e}")))?;
        let mut command = self.command(&values);
        command
            .env("MAILFUSE_FAULT", &fault.summary)
            .env("MAILFUSE_ALERT_ID", id);
        self.finish(command, json).await
    }

    /// The program with its arguments and the values every run has.
    fn command(&self, values: &Values<'_>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.config.program);
        command
            .args(self.config.args.iter().map(|a| values.substitute(a)))
            .env("MAILFUSE_KIND", values.kind)
            .env("MAILFUSE_ACCOUNT", values.account)
            .env("MAILFUSE_IP", &values.ip)
            .env("MAILFUSE_SCORE", &values.score)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so a timeout kills what it started too.
        #[cfg(unix)]
        command.process_group(0);
        command
    }

    /// Starts `command` with `json` on its stdin and waits for it, within
    /// the timeout.
    async fn finish(
        &self,
        mut command: tokio::process::Command,
        json: String,
    ) -> Result<(), ActError> {
        let program = self.config.program.display();
        let mut child = command
            .spawn()
            .map_err(|e| ActError::new(ACTION, format!("could not start {program}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read stdin closes the pipe: not an error.
            tokio::spawn(async move {
                let _ = stdin.write_all(json.as_bytes()).await;
            });
        }
        let stderr = child.stderr.take().map(Stderr::collect);
        let status = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                return Err(ActError::new(ACTION, format!("waiting for {program}: {e}")));
            }
            Err(_) => {
                kill(&mut child).await;
                return Err(ActError::new(
                    ACTION,
                    format!(
                        "{program} killed after {} s without finishing",
                        self.timeout.as_secs()
                    ),
                ));
            }
        };
        if status.success() {
            return Ok(());
        }
        let stderr = match stderr {
            Some(stderr) => stderr.text().await,
            None => String::new(),
        };
        Err(ActError::new(
            ACTION,
            format!("{program} failed ({}){stderr}", describe(status)),
        ))
    }
}

/// The incident's values for placeholders and environment.
struct Values<'a> {
    account: &'a str,
    ip: String,
    kind: &'static str,
    score: String,
}

impl<'a> Values<'a> {
    fn of(incident: &'a Incident, ip: Option<IpAddr>) -> Self {
        Values {
            account: incident.account.as_deref().unwrap_or_default(),
            ip: ip.map(|ip| ip.to_string()).unwrap_or_default(),
            kind: incident.kind.name(),
            score: incident.score.to_string(),
        }
    }

    fn get(&self, placeholder: &str) -> Option<&str> {
        match placeholder {
            "account" => Some(self.account),
            "ip" => Some(&self.ip),
            "kind" => Some(self.kind),
            "score" => Some(&self.score),
            _ => None,
        }
    }

    /// `arg` with its placeholders replaced, in one pass: a value holding
    /// `{ip}` stays as it is.
    fn substitute(&self, arg: &str) -> String {
        let mut out = String::with_capacity(arg.len());
        let mut rest = arg;
        while let Some(open) = rest.find('{') {
            let (before, from_brace) = rest.split_at(open);
            out.push_str(before);
            let value = from_brace
                .get(1..)
                .and_then(|after| after.split_once('}'))
                .and_then(|(name, tail)| Some((self.get(name)?, tail)));
            match value {
                Some((value, tail)) => {
                    out.push_str(value);
                    rest = tail;
                }
                None => {
                    out.push('{');
                    rest = from_brace.get(1..).unwrap_or_default();
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The first `{name}` in `arg` that looks like a placeholder (lowercase
/// letters and `_`) but is none: a typo that would otherwise reach the
/// program literally.
fn unknown_placeholder(arg: &str) -> Option<&str> {
    arg.split('{').skip(1).find_map(|after| {
        let (name, _) = after.split_once('}')?;
        let looks_like_one =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        (looks_like_one && !PLACEHOLDERS.contains(&name)).then_some(name)
    })
}

/// The start of the program's stderr, read as it comes so the program never
/// blocks on a full pipe; the rest is read and dropped.
struct Stderr {
    kept: Arc<Mutex<Vec<u8>>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Stderr {
    fn collect(mut pipe: impl AsyncRead + Unpin + Send + 'static) -> Self {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&kept);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut buf).await {
                if let Ok(mut kept) = sink.lock() {
                    let room = STDERR_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or_default());
                }
            }
        });
        Stderr { kept, reader }
    }

    /// `: ` and the first lines, cleaned, or nothing if stderr was empty.
    async fn text(self) -> String {
        // Whatever arrived in the grace is quoted, even if the pipe stays open.
        let _ = tokio::time::timeout(STDERR_GRACE, self.reader).await;
        let kept = self.kept.lock().map(|k| k.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&kept);
        let lines: Vec<String> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(STDERR_LINES)
            .map(|l| clean(l, 200))
            .collect();
        if lines.is_empty() {
            String::new()
        } else {
            format!(": {}", lines.join(" | "))
        }
    }
}

/// Kills the program's process group (what it started too), then the
/// program itself, and reaps it.
async fn kill(child: &mut Child) {
    #[cfg(unix)]
    if let Some(group) = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id.try_into().ok()?))
    {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

/// `exit status 3`, or the signal that ended it.
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return format!("killed by signal {signal}");
    }
    status.to_string()
}

impl crate::capability::Action for Command {
    fn alert(&self) -> Option<&dyn crate::capability::Alert> {
        Some(self)
    }
}

impl crate::capability::Alert for Command {
    fn alert<'a>(
        &'a self,
        incident: &'a Incident,
        _host: &'a str,
        done: &'a [String],
        id: &'a str,
    ) -> crate::capability::ActFuture<'a, String> {
        Box::pin(async move {
            let ip = incident.ips.first().copied();
            self.execute(incident, ip, done, Some(id)).await?;
            Ok("command ran".to_string())
        })
    }

    fn fault<'a>(
        &'a self,
        fault: &'a Fault,
        _host: &'a str,
        id: &'a str,
    ) -> crate::capability::ActFuture<'a, String> {
        Box::pin(async move {
            self.run_for_fault(fault, id).await?;
            Ok("command ran".to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::tests::hijacked;

    #[test]
    fn placeholders_are_replaced_once_and_in_place() {
        let mut incident = hijacked();
        incident.account = Some("{ip} {score}".into());
        let values = Values::of(&incident, incident.ips.first().copied());
        assert_eq!(values.substitute("--user={account}"), "--user={ip} {score}");
        assert_eq!(
            values.substitute("{kind}:{ip}:{score}"),
            "compromised_account:173.16.65.213:100"
        );
        assert_eq!(values.substitute("{\"a\": {x}} {"), "{\"a\": {x}} {");
        assert_eq!(values.substitute("{{ip}}"), "{173.16.65.213}");
        assert_eq!(values.substitute("ž{ip"), "ž{ip");
    }

    #[test]
    fn typos_in_placeholders_are_refused() {
        assert_eq!(unknown_placeholder("--user={acount}"), Some("acount"));
        assert_eq!(unknown_placeholder("{ip}/{score}"), None);
        assert_eq!(unknown_placeholder("{\"json\": 1} {A} {}"), None);
        let config = CommandConfig {
            program: "/bin/sh".into(),
            args: vec!["{adress}".into()],
            timeout_secs: 5,
        };
        let err = Command::new(config).unwrap_err().to_string();
        assert!(err.contains("unknown placeholder {adress}"), "{err}");
    }

    #[test]
    fn program_must_be_an_absolute_existing_path() {
        let config = |program: &str| CommandConfig {
            program: program.into(),
            args: Vec::new(),
            timeout_secs: 5,
        };
        assert!(Command::new(config("sh"))
            .unwrap_err()
            .to_string()
            .contains("absolute"));
        assert!(Command::new(config("/nonexistent/hook")).is_err());
        assert!(Command::new(config("/bin/sh")).is_ok());
        let unknown = r#"{"program": "/bin/sh", "shell": true}"#;
        assert!(serde_json::from_str::<CommandConfig>(unknown).is_err());
        let default: CommandConfig = serde_json::from_str(r#"{"program": "/bin/sh"}"#).unwrap();
        assert_eq!(default.timeout_secs, 30);
    }
}
