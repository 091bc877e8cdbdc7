//! Running the binary under test as a user would, with no input on stdin.

use std::process::{Command, Output, Stdio};

/// `mailfuse ARGS…`, its status and output.
pub fn mailfuse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("mailfuse runs")
}
