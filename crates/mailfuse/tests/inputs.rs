//! Inputs as admins have them: rotated sets with compressed members, globs,
//! compressed standard input, and a member cut off mid-stream.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/kerio")
        .join(name)
}

fn run(args: &[&str], stdin: Option<Vec<u8>>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailfuse"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mailfuse runs");
    let mut pipe = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || {
        // mailfuse may stop reading early: a broken pipe is fine.
        let _ = pipe.write_all(&stdin.unwrap_or_default());
    });
    let output = child.wait_with_output().expect("mailfuse ends");
    feeder.join().expect("feeder");
    output
}

fn scan_json(paths: &[&Path]) -> Value {
    let mut args = vec!["scan", "--format", "json"];
    args.extend(paths.iter().map(|p| p.to_str().expect("utf-8 path")));
    let output = run(&args, None);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON report")
}

/// What must not depend on how the log was stored.
fn findings(report: &Value) -> (Value, Value, Value) {
    (
        report["incidents"].clone(),
        report["accounts"].clone(),
        report["stats"].clone(),
    )
}

/// Writes a member as stored on disk.
type Encoder = fn(&[u8]) -> Vec<u8>;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("compress");
    encoder.finish().expect("compress")
}

/// `text` cut into `parts` pieces at line ends.
fn split_lines(text: &[u8], parts: usize) -> Vec<Vec<u8>> {
    let lines: Vec<&[u8]> = text.split_inclusive(|&b| b == b'\n').collect();
    lines
        .chunks(lines.len().div_ceil(parts))
        .map(|chunk| chunk.concat())
        .collect()
}

#[test]
fn a_rotated_set_with_gz_and_zst_members_reads_like_the_plain_log() {
    let plain = scan_json(&[&example("")]);
    let mail = std::fs::read(example("mail.log")).expect("example");
    let dir = tempfile::tempdir().expect("temp dir");
    let parts = split_lines(&mail, 4);
    let names = ["mail.log.3.gz", "mail.log.2.zst", "mail.log.1", "mail.log"];
    let compress: [Encoder; 4] = [
        gzip,
        |p| zstd::encode_all(p, 3).expect("zstd"),
        |p| p.to_vec(),
        |p| p.to_vec(),
    ];
    for ((name, part), compress) in names.iter().zip(&parts).zip(compress) {
        std::fs::write(dir.path().join(name), compress(part)).expect("write");
    }
    for other in ["security.log", "audit.log"] {
        let data = std::fs::read(example(other)).expect("example");
        std::fs::write(dir.path().join(format!("{other}.1.gz")), gzip(&data)).expect("write");
    }
    let rotated = scan_json(&[dir.path()]);
    assert_eq!(findings(&rotated), findings(&plain));
    let mail_input = rotated["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .find(|i| i["path"].as_str().is_some_and(|p| p.ends_with("mail.log")))
        .expect("the mail set is one input");
    let members: Vec<&str> = mail_input["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m.as_str())
        .map(|m| m.rsplit('/').next().unwrap_or(m))
        .collect();
    assert_eq!(members, names, "oldest first");
}

#[test]
fn a_truncated_gzip_member_is_reported_and_the_rest_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mail = std::fs::read(example("mail.log")).expect("example");
    let parts = split_lines(&mail, 2);
    let old = gzip(&parts[0]);
    std::fs::write(dir.path().join("mail.log.1.gz"), &old[..old.len() / 2]).expect("write");
    std::fs::write(dir.path().join("mail.log"), &parts[1]).expect("write");
    let output = run(&["scan", dir.path().to_str().expect("path")], None);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("mail.log.1.gz: truncated gzip data after")
            && text.contains("the rest of this file was skipped"),
        "{text}"
    );
    let report = scan_json(&[dir.path()]);
    let input = &report["inputs"][0];
    assert_eq!(input["errors"].as_array().map(Vec::len), Some(1));
    let second_half_lines = parts[1].iter().filter(|&&b| b == b'\n').count() as u64;
    assert!(
        input["lines"].as_u64().expect("lines") > second_half_lines,
        "lines before the cut and every line after it are read"
    );
}

#[test]
fn a_quoted_glob_is_expanded_and_a_glob_matching_nothing_is_an_error() {
    let pattern = example("*.log");
    let report = scan_json(&[&pattern]);
    assert_eq!(report["inputs"].as_array().map(Vec::len), Some(3));
    let none = example("*.nothing");
    let output = run(&["scan", none.to_str().expect("path")], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no file matches this pattern"));
}

#[test]
fn compressed_standard_input_is_decompressed() {
    let mail = std::fs::read(example("mail.log")).expect("example");
    let output = run(&["scan", "--format", "json", "-"], Some(gzip(&mail)));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["inputs"][0]["format"], "kerio");
    let lines = mail.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(report["inputs"][0]["lines"].as_u64(), Some(lines));
}
