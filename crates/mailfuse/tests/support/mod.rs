//! A mail server lab on loopback for end-to-end tests: real Postfix and
//! Dovecot instances in a temp dir, a relay sink, and swaks as the client;
//! or a real Exim ([`exim::EximLab`]); or a CrowdSec Local API
//! ([`crowdsec::Lapi`]). See `postfix_e2e.rs`,
//! `watch_postfix_e2e.rs` and `watch_exim_e2e.rs` for what it is for.

// Each test uses the part of the lab it needs; the rest is dead code to it.
#![allow(dead_code)]

pub mod audit;
pub mod crowdsec;
pub mod dovecot;
pub mod exim;
pub mod imap;
pub mod metrics;
pub mod ports;
pub mod postfix;
pub mod smtp_sink;
pub mod swaks;
pub mod syslog;
pub mod watch;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use ports::free_port;

use dovecot::Dovecot;
use postfix::{Options, Postfix};
use smtp_sink::SmtpSink;
use swaks::Swaks;

/// The commands the lab runs; `scripts/install-test-deps` installs them.
const TOOLS: [&str; 6] = [
    "postfix",
    "postqueue",
    "dovecot",
    "doveadm",
    "swaks",
    "pflogsumm",
];

/// Set to keep the lab's directory even when the test passes.
pub const KEEP_ENV: &str = "MAILFUSE_E2E_KEEP";

/// The installed command `name`, or a test failure saying how to get it.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run scripts/install-test-deps (as root) first")
        })
}

/// The first fenced block of `docs`' section `heading` (its whole heading
/// line, `## …`) after the words `after` (`""`: the section's first): the
/// lines a test sets a real server up with, as the documentation gives them.
pub fn documented_block<'d>(docs: &'d str, heading: &str, after: &str) -> &'d str {
    let section = docs
        .split(&format!("\n{heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("the documentation has a section {heading:?}"));
    let rest = match after {
        "" => Some(section),
        _ => section.split_once(after).map(|(_, rest)| rest),
    };
    rest.and_then(|rest| rest.split("```\n").nth(1))
        .unwrap_or_else(|| panic!("the section {heading:?} gives a block after {after:?}"))
}

/// Runs `mailfuse ARGS --config CONFIG` to completion.
pub fn mailfuse(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .expect("mailfuse runs")
}

/// Runs `command`, failing the test with its output unless it succeeds.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a command that starts a daemon. The daemon may keep the command's
/// stdout and stderr open, so they go to `output_file`, not to a pipe that
/// would never close.
pub fn start_daemon(command: &mut Command, output_file: &Path) {
    let output = fs::File::create(output_file).unwrap();
    let status = command
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        status.success(),
        "{command:?} failed ({status}):\n{}",
        fs::read_to_string(output_file).unwrap_or_default()
    );
}

/// Polls `done` every 50 ms until it holds or `timeout` passes; tells which.
pub fn try_wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// Like [`try_wait_until`], failing the test on timeout.
pub fn wait_until(what: &str, timeout: Duration, done: impl FnMut() -> bool) {
    assert!(
        try_wait_until(timeout, done),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Whether `pid` runs (a zombie does not).
pub fn process_is_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            // The state follows the command name in parentheses.
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}

/// Kills every process whose working directory is inside `dir`: what a
/// server of the lab left behind, and nothing else on the machine.
pub fn kill_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let in_lab = fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir));
        if in_lab && process_is_alive(pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .output();
        }
    }
}

/// The lab's temp dir: removed when the test passes, kept (and its path
/// printed) when it fails or when `MAILFUSE_E2E_KEEP` is set.
struct Workdir(Option<tempfile::TempDir>);

impl Drop for Workdir {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        if std::thread::panicking() || std::env::var_os(KEEP_ENV).is_some() {
            eprintln!("e2e: kept the lab's files in {}", dir.keep().display());
        }
    }
}

/// A fresh temp dir for a lab, readable by the servers' unprivileged
/// processes; checks that the test runs as root, as the servers need.
fn lab_dir() -> (PathBuf, Workdir) {
    let uid = fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "the mail server end-to-end tests run as root (CI does); \
         they start their own servers, installed by scripts/install-test-deps"
    );
    let dir = tempfile::Builder::new()
        .prefix("mailfuse-e2e-")
        .tempdir()
        .unwrap();
    let root = dir.path().to_path_buf();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    eprintln!("e2e: lab in {}", root.display());
    (root, Workdir(Some(dir)))
}

/// Postfix, Dovecot and the sink, each in its own corner of one temp dir.
/// Fields drop in order: the servers stop before the directory goes.
pub struct Lab {
    postfix: Postfix,
    dovecot: Dovecot,
    pub sink: SmtpSink,
    client: Swaks,
    root: PathBuf,
    _workdir: Workdir,
}

impl Lab {
    /// Starts the lab with `users` (address, password) known to Dovecot.
    /// Needs root (the servers switch to their system users) and the tools
    /// that `scripts/install-test-deps` installs.
    pub fn start(users: &[(&str, &str)]) -> Lab {
        Lab::start_with(users, &Options::default())
    }

    /// Like [`Lab::start`], with Postfix set up with `options`.
    pub fn start_with(users: &[(&str, &str)], options: &Options) -> Lab {
        Lab::start_with_dovecot(users, options, &dovecot::Options::default())
    }

    /// Like [`Lab::start_with`], with Dovecot set up with `dovecot`.
    pub fn start_with_dovecot(
        users: &[(&str, &str)],
        options: &Options,
        dovecot: &dovecot::Options,
    ) -> Lab {
        for name in TOOLS {
            tool(name);
        }
        let (root, workdir) = lab_dir();
        let sink = SmtpSink::start();
        let submission_port = free_port();
        let postfix = Postfix::start(&root, submission_port, sink.port(), options);
        let dovecot = Dovecot::start(&root, &postfix.auth_socket(), users, dovecot);
        Lab {
            postfix,
            dovecot,
            sink,
            client: Swaks::new(submission_port),
            root,
            _workdir: workdir,
        }
    }

    /// The lab's directory, for files a test adds.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// swaks, submitting to Postfix's submission service.
    pub fn client(&self) -> &Swaks {
        &self.client
    }

    pub fn postfix(&self) -> &Postfix {
        &self.postfix
    }

    pub fn postfix_log(&self) -> &Path {
        self.postfix.log_path()
    }

    pub fn dovecot_log(&self) -> &Path {
        self.dovecot.log_path()
    }

    pub fn dovecot(&self) -> &Dovecot {
        &self.dovecot
    }

    /// Waits until Postfix has handed off every message, then stops both
    /// servers so their logs are complete and no longer change.
    pub fn finish(&mut self) {
        self.postfix.wait_for_empty_queue(Duration::from_secs(30));
        // postlogd writes what it is sent a moment later: wait until the
        // log has been quiet for half a second.
        let size = |path: &Path| fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut last = (size(self.postfix_log()), Instant::now());
        try_wait_until(Duration::from_secs(5), || {
            let now = size(self.postfix_log());
            if now != last.0 {
                last = (now, Instant::now());
            }
            last.1.elapsed() >= Duration::from_millis(500)
        });
        self.postfix.stop();
        self.dovecot.stop();
    }
}
