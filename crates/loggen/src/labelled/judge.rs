//! Running the benchmark from Rust: generate a form's weeks one at a time
//! into a temporary directory, have a scanner read each, score it, remove
//! the week. [`score_form`] with [`run_mailfuse`] is all a quality test
//! needs:
//!
//! ```no_run
//! use std::path::Path;
//! use mailfuse_loggen::labelled::{judge, Form};
//!
//! let mut scan = judge::run_mailfuse(Path::new("target/release/mailfuse"));
//! let scores = judge::score_form(Form::Kerio10, 1..=20, &mut scan).unwrap();
//! assert!(scores.acceptance().met, "{}", scores.table());
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::labels::Labels;
use super::score::{parse_report, score_week, Scores, WeekScore};
use super::{generate, Form};

/// What a scanner is asked to read: a week's log files, and the options
/// the week needs (`--timezone` for syslog's local stamps).
#[derive(Clone, Debug)]
pub struct ScanRequest {
    /// The log files.
    pub files: Vec<PathBuf>,
    /// Options before the files, e.g. `["--timezone=+07:00"]`.
    pub options: Vec<String>,
}

impl ScanRequest {
    /// The request for the week `labels` describes, written in `dir`.
    pub fn for_week(labels: &Labels, dir: &Path) -> ScanRequest {
        ScanRequest {
            files: labels.files.iter().map(|f| dir.join(f)).collect(),
            options: labels.scan_options.clone(),
        }
    }
}

/// A scanner that runs the `mailfuse` binary at `binary`:
/// `mailfuse scan --format json --no-progress OPTIONS FILES`, whose exit
/// status is 0 (nothing found) or 1 (incidents).
pub fn run_mailfuse(binary: &Path) -> impl FnMut(&ScanRequest) -> Result<String, String> + '_ {
    move |request| {
        let output = Command::new(binary)
            .args(["scan", "--format", "json", "--no-progress"])
            .args(&request.options)
            .args(&request.files)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        match output.status.code() {
            Some(0 | 1) => String::from_utf8(output.stdout)
                .map_err(|_| "mailfuse printed a report that is not UTF-8".to_owned()),
            _ => Err(format!(
                "mailfuse scan failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )),
        }
    }
}

/// Generates, scans and scores one week in a temporary directory, which
/// is removed afterwards.
pub fn score_seed(
    form: Form,
    seed: u64,
    scan: &mut dyn FnMut(&ScanRequest) -> Result<String, String>,
) -> Result<WeekScore, String> {
    let dir = std::env::temp_dir().join(format!(
        "mailfuse-labelled-{}-{form}-{seed}",
        std::process::id()
    ));
    let result = (|| {
        let labels = generate(form, seed, &dir)
            .map_err(|e| format!("cannot write the week in {}: {e}", dir.display()))?;
        let report = scan(&ScanRequest::for_week(&labels, &dir))?;
        Ok(score_week(&labels, &parse_report(&report)?))
    })();
    let _ = fs::remove_dir_all(&dir);
    result
}

/// Generates, scans and scores the weeks of `seeds` in `form`.
pub fn score_form(
    form: Form,
    seeds: impl IntoIterator<Item = u64>,
    scan: &mut dyn FnMut(&ScanRequest) -> Result<String, String>,
) -> Result<Scores, String> {
    let mut scores = Scores::default();
    for seed in seeds {
        scores.push(score_seed(form, seed, scan)?);
    }
    Ok(scores)
}
