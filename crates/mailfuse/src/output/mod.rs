//! Reports: a readable text report for terminals and emails, JSON for
//! scripts, a self-contained HTML page with charts, the account table as CSV.
//!
//! Everything that came from a log is untrusted: the text writer shows it
//! through [`mailfuse_core::text::Sanitized`]; JSON escapes control
//! characters; HTML and CSV sanitise it and then escape or quote it.

pub mod audit;
pub mod csv;
pub mod html;
pub mod json;
pub mod simulate;
pub mod status;
pub mod text;

use std::io::{self, Write};

use clap::ValueEnum;
use mailfuse_detect::{Findings, Forgotten};

use crate::engine::ReadSummary;

/// Formats of the scan report. Adding an output: its module above, its
/// value here and its arm in [`ScanFormat::write`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScanFormat {
    /// Readable report for a terminal or an email.
    Text,
    /// One JSON object, for scripts.
    Json,
    /// One self-contained HTML page with charts (`-o report.html`).
    Html,
    /// The per-account table as CSV, for spreadsheets.
    Csv,
}

impl ScanFormat {
    /// Whether the report draws per-hour charts: the detector then keeps
    /// hourly series, which cost memory the other formats do not need.
    pub fn wants_hourly(self) -> bool {
        self == ScanFormat::Html
    }

    /// Writes the scan report in this format.
    pub fn write(
        self,
        out: &mut dyn Write,
        summary: &ReadSummary,
        findings: &Findings,
    ) -> io::Result<()> {
        match self {
            ScanFormat::Text => text::write_scan(out, summary, findings),
            ScanFormat::Json => json::write_scan(out, summary, findings),
            ScanFormat::Html => html::write_scan(out, summary, findings),
            ScanFormat::Csv => csv::write_accounts(out, findings),
        }
    }
}

/// What the report says when guessing IPs had to be forgotten for room
/// (`number` writes a count as the format does), or nothing.
fn memory_cap_note(forgotten: &Forgotten, number: fn(u64) -> String) -> Option<String> {
    (forgotten.ips_evicted + forgotten.networks_evicted > 0).then(|| {
        format!(
            "{} guessing IPs and {} networks forgotten before their time (the least recently seen; raise [detect.guessing] max_ips to keep more)",
            number(forgotten.ips_evicted),
            number(forgotten.networks_evicted)
        )
    })
}
