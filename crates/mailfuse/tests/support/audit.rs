//! `mailfuse audit`'s JSON report as the tests read it.

use std::process::{Command, Stdio};

use serde_json::Value;

/// `mailfuse audit --no-progress --format json ARGS…`: its exit status and
/// report.
pub fn report(args: &[&str]) -> (Option<i32>, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(["audit", "--no-progress", "--format", "json"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("mailfuse runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout not JSON; stderr: {stderr}"));
    (output.status.code(), report)
}

/// `(account, problem)` of every finding of a report.
pub fn problems(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["account"].as_str().unwrap().to_owned(),
                f["problem"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `expected` as [`problems`] gives it.
pub fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, p)| ((*a).to_owned(), (*p).to_owned()))
        .collect()
}
