//! `mailfuse watch` as the lab's tests run it, and what `status` says of
//! its locks.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{mailfuse, try_wait_until, wait_until};

/// `mailfuse watch`, killed when dropped (even when the test fails).
pub struct Watch(Child);

impl Watch {
    /// Starts watch on `config`, its output in `log`, and waits until it
    /// watches: until then `status` would race it creating the state
    /// database's tables (the store does not guard its first open).
    pub fn start(config: &Path, log: &Path) -> Watch {
        Watch::start_with_path(config, log, None)
    }

    /// Started with `path` as its PATH, if given (a system without some
    /// tool); its output appended to `log`.
    pub fn start_with_path(config: &Path, log: &Path, path: Option<&str>) -> Watch {
        let output = File::options().create(true).append(true).open(log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailfuse"));
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let already = fs::read_to_string(log).unwrap_or_default().len();
        let child = command
            .args(["watch", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("watch starts");
        let mut watch = Watch(child);
        wait_until("watch to start watching", Duration::from_secs(20), || {
            watch.assert_running(log);
            fs::read_to_string(log)
                .is_ok_and(|text| text.get(already..).is_some_and(|t| t.contains("watching")))
        });
        watch
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL: a crash, nothing saved at the end.
    pub fn kill_9(mut self) {
        self.0.kill().expect("kill -9");
        self.0.wait().expect("reaped");
    }

    /// Fails the test if watch has exited (a bad config, say).
    pub fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.0.try_wait() {
            panic!(
                "watch exited ({status}):\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
    }

    /// SIGTERM, then a clean exit.
    pub fn stop(mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = self.0.wait().expect("watch exits");
        assert!(status.success(), "watch exits cleanly on SIGTERM: {status}");
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mailfuse status --format json`, once it has something to show.
pub fn status(config: &Path) -> Option<Value> {
    let output = mailfuse(&["status", "--format", "json"], config);
    if !output.status.success() {
        return None;
    }
    serde_json::from_slice(&output.stdout).ok()
}

/// Waits until watch's saved state has counted `events` events, failing
/// if it counts more (a line read twice); `status` then.
pub fn wait_for_events(config: &Path, events: u64, log: &Path) -> Value {
    let mut last = Value::Null;
    let seen = |status: &Value| status["progress"]["stats"]["events"].as_u64();
    let done = try_wait_until(Duration::from_secs(60), || {
        last = status(config).unwrap_or(Value::Null);
        let seen = seen(&last).unwrap_or(0);
        assert!(
            seen <= events,
            "counted twice: {seen} events saved, {events} in the log"
        );
        seen == events
    });
    assert!(
        done,
        "watch counted {:?} events, not {events}:\n{}",
        seen(&last),
        fs::read_to_string(log).unwrap_or_default()
    );
    last
}

/// The accounts a `status` locks.
pub fn locked_accounts(status: &Value) -> Vec<String> {
    status["locks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|lock| lock["account"].as_str().map(str::to_string))
        .collect()
}
