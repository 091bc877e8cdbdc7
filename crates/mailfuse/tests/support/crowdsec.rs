//! A private CrowdSec Local API: Debian's `crowdsec` (1.4.6), extracted by
//! `scripts/install-test-deps` (installing it would register with the
//! Central API over the network and enable the system's service), run as
//! `crowdsec -no-cs` — the Local API alone, no log reading — with a
//! configuration, SQLite database and loopback port of its own; `cscli`
//! with the same configuration adds machines and lists decisions.
//!
//! Self-contained (only std, serde_json and tempfile): `crates/act`'s tests
//! include it too, through `#[path]`.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where `scripts/install-test-deps` extracts the crowdsec package.
const EXTRACTED: &str = "/var/cache/mailfuse-test/crowdsec";

/// The machine `cscli` logs in as to list decisions.
const CSCLI_MACHINE: &str = "cscli";

/// One decision as `cscli decisions list -o json` shows it, with the
/// machine whose alert carries it.
#[derive(Clone, Debug)]
pub struct Decision {
    pub machine: String,
    pub value: String,
    pub scope: String,
    pub kind: String,
    pub origin: String,
    pub scenario: String,
    /// Time left, in whole seconds.
    pub seconds_left: i64,
}

/// A running Local API, stopped when dropped (even when the test fails);
/// its directory is kept, and named, when the test fails.
pub struct Lapi {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    config: PathBuf,
    port: u16,
}

impl Lapi {
    /// Starts a Local API on loopback `port` (from the tests' allocator),
    /// with a fresh database, and waits until it listens.
    pub fn start(port: u16) -> Lapi {
        for binary in ["crowdsec", "cscli"] {
            let path = binary_path(binary);
            assert!(
                path.is_file(),
                "no CrowdSec at {}: run scripts/install-test-deps (as root) first; it extracts \
                 Debian's crowdsec package there without installing it",
                path.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("mailfuse-crowdsec-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        for sub in ["data", "hub", "notifications", "plugins"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        let config = root.join("config.yaml");
        fs::write(&config, config_yaml(root, port)).unwrap();
        // What the API does with alerts that come without a decision;
        // mailfuse's come with theirs.
        fs::write(
            root.join("profiles.yaml"),
            "name: default_ip_remediation\nfilters:\n - Alert.Remediation == true && \
             Alert.GetScope() == \"Ip\"\ndecisions:\n - type: ban\n   duration: 4h\n\
             on_success: break\n",
        )
        .unwrap();
        fs::write(root.join("simulation.yaml"), "simulation: false\n").unwrap();
        let mut lapi = Lapi {
            child: None,
            dir: Some(dir),
            config,
            port,
        };
        let credentials = lapi.dir().join("local_api_credentials.yaml");
        lapi.add_machine_to(CSCLI_MACHINE, "cscli-password-for-tests", &credentials);
        lapi.resume();
        lapi
    }

    /// The API's URL, as `[actions.crowdsec] url` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Adds the machine `name` with `password`, as the admin would.
    pub fn add_machine(&self, name: &str, password: &str) {
        self.add_machine_to(name, password, Path::new("-"));
    }

    fn add_machine_to(&self, name: &str, password: &str, credentials: &Path) {
        let output = self.cscli(
            &[
                "machines",
                "add",
                name,
                "--force",
                "--password",
                password,
                "-f",
            ],
            Some(credentials),
        );
        assert_succeeded("cscli machines add", &output);
    }

    /// Runs `cscli ARGS` against this API (`extra`: one more argument).
    pub fn cscli(&self, args: &[&str], extra: Option<&Path>) -> Output {
        let mut command = Command::new(binary_path("cscli"));
        command.arg("-c").arg(&self.config).args(args);
        if let Some(extra) = extra {
            command.arg(extra);
        }
        command.stdin(Stdio::null()).output().expect("cscli runs")
    }

    /// Every decision in force, from `cscli alerts list --all --limit 0 -o
    /// json`: `cscli decisions list` shows one per IP, the newest.
    pub fn decisions(&self) -> Vec<Decision> {
        let output = self.cscli(
            &["alerts", "list", "--all", "--limit", "0", "-o", "json"],
            None,
        );
        assert_succeeded("cscli alerts list", &output);
        parse_decisions(&output.stdout)
            .into_iter()
            // Deleted ones stay, ended (CrowdSec deletes by ending them now).
            .filter(|decision| decision.seconds_left > 0)
            .collect()
    }

    /// What plain `cscli decisions list -o json` lists: the decisions an
    /// admin sees first (of origin crowdsec or cscli, one per IP).
    pub fn listed_decisions(&self) -> Vec<Decision> {
        let output = self.cscli(&["decisions", "list", "-o", "json"], None);
        assert_succeeded("cscli decisions list", &output);
        parse_decisions(&output.stdout)
    }

    /// Stops the API (SIGTERM, then SIGKILL after 10 s); its database stays.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the API (again, after [`Lapi::stop`]: the same database and
    /// port) and waits until it listens.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "the Local API runs already");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir().join("crowdsec.log"))
            .unwrap();
        let child = Command::new(binary_path("crowdsec"))
            .arg("-c")
            .arg(&self.config)
            .arg("-no-cs")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("crowdsec starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("crowdsec exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the Local API does not listen on port {} after 30 s:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What crowdsec logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir().join("crowdsec.log")).unwrap_or_default()
    }

    fn dir(&self) -> &Path {
        self.config.parent().unwrap()
    }
}

impl Drop for Lapi {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.dir.take() {
            if std::thread::panicking() {
                eprintln!("crowdsec: kept its files in {}", dir.keep().display());
            }
        }
    }
}

fn binary_path(name: &str) -> PathBuf {
    Path::new(EXTRACTED).join("usr/bin").join(name)
}

/// A configuration with everything in `root`: no Central API, no console,
/// no metrics port, the database in WAL mode (as Debian's postinst sets it).
fn config_yaml(root: &Path, port: u16) -> String {
    let root = root.display();
    format!(
        "common:
  daemonize: false
  log_media: stdout
  log_level: info
  working_dir: {root}
config_paths:
  config_dir: {root}/
  data_dir: {root}/data/
  simulation_path: {root}/simulation.yaml
  hub_dir: {root}/hub/
  index_path: {root}/hub/.index.json
  notification_dir: {root}/notifications/
  plugin_dir: {root}/plugins/
db_config:
  log_level: info
  type: sqlite
  db_path: {root}/data/crowdsec.db
  use_wal: true
api:
  client:
    credentials_path: {root}/local_api_credentials.yaml
  server:
    log_level: info
    listen_uri: 127.0.0.1:{port}
    profiles_path: {root}/profiles.yaml
prometheus:
  enabled: false
"
    )
}

/// `cscli decisions list -o json` or `cscli alerts list -o json`: alerts
/// (or `null`), each with its decisions.
fn parse_decisions(json: &[u8]) -> Vec<Decision> {
    let alerts: Value = serde_json::from_slice(json).unwrap_or_else(|e| {
        panic!(
            "cscli's list is not JSON ({e}): {}",
            String::from_utf8_lossy(json)
        )
    });
    let text = |value: &Value| value.as_str().unwrap_or_default().to_string();
    let mut decisions = Vec::new();
    for alert in alerts.as_array().into_iter().flatten() {
        for decision in alert["decisions"].as_array().into_iter().flatten() {
            decisions.push(Decision {
                machine: text(&alert["machine_id"]),
                value: text(&decision["value"]),
                scope: text(&decision["scope"]),
                kind: text(&decision["type"]),
                origin: text(&decision["origin"]),
                scenario: text(&decision["scenario"]),
                seconds_left: go_duration_secs(decision["duration"].as_str().unwrap_or_default()),
            });
        }
    }
    decisions
}

/// Whole seconds of a Go duration as CrowdSec writes it (`503h59m49.17s`,
/// `-4.3s`).
fn go_duration_secs(text: &str) -> i64 {
    let (sign, mut rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text),
    };
    let mut secs = 0.0;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let number: f64 = number
            .parse()
            .unwrap_or_else(|_| panic!("not a Go duration: {text:?}"));
        secs += number
            * match unit {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 0.001,
                "µs" | "us" => 0.000_001,
                "ns" => 0.000_000_001,
                _ => panic!("not a Go duration: {text:?}"),
            };
        rest = tail;
    }
    sign * secs as i64
}

fn assert_succeeded(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
