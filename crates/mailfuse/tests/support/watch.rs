//! `mailfuse watch` as the lab's tests run it, and what `status` says of
//! its locks.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{mailfuse, wait_until};

/// `mailfuse watch`, killed when dropped (even when the test fails).
pub struct Watch(Child);

impl Watch {
    /// Starts watch on `config`, its output in `log`, and waits until it
    /// watches: until then `status` would race it creating the state
    /// database's tables (the store does not guard its first open).
    pub fn start(config: &Path, log: &Path) -> Watch {
        let output = File::create(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
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
            fs::read_to_string(log).is_ok_and(|text| text.contains("watching"))
        });
        watch
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

/// The accounts a `status` locks.
pub fn locked_accounts(status: &Value) -> Vec<String> {
    status["locks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|lock| lock["account"].as_str().map(str::to_string))
        .collect()
}
