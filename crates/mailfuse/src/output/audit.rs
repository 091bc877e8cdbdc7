//! The audit's report (`mailfuse audit`): text, JSON or HTML, one section
//! per account with each problem, its facts and what to do. Account names
//! and details may come from logs: sanitised in text, escaped in HTML.

use std::io::{self, Write};

use clap::ValueEnum;
use mailfuse_core::text::Sanitized;
use mailfuse_core::Timestamp;
use mailfuse_detect::audit::Finding;
use serde::Serialize;

use super::html::{write_foot, write_head};
use crate::html_escape::Text;

/// Formats of the audit report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// Readable report for a terminal or an email.
    Text,
    /// One JSON object, for scripts.
    Json,
    /// One self-contained HTML page (`-o audit.html`).
    Html,
}

/// What was audited and what was found.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    /// Where the accounts came from: `Kerio Connect at https://…`, `the
    /// logs` (named in `inputs`).
    pub sources: Vec<String>,
    /// The log files read, if any.
    pub inputs: Vec<String>,
    /// The end of the logs: staleness counts back from it.
    pub log_end: Option<Timestamp>,
    /// No login for this many days makes an account stale.
    pub stale_days: u32,
    /// How many accounts have at least one finding.
    pub accounts: usize,
    /// Sorted by account, then problem.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Builds the report, counting the accounts found.
    pub fn new(
        sources: Vec<String>,
        inputs: Vec<String>,
        log_end: Option<Timestamp>,
        stale_days: u32,
        findings: Vec<Finding>,
    ) -> AuditReport {
        let accounts = by_account(&findings).len();
        AuditReport {
            sources,
            inputs,
            log_end,
            stale_days,
            accounts,
            findings,
        }
    }
}

impl AuditFormat {
    /// Writes `report` in this format.
    pub fn write(self, out: &mut dyn Write, report: &AuditReport) -> io::Result<()> {
        match self {
            AuditFormat::Text => write_text(out, report),
            AuditFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, report)?;
                writeln!(out)
            }
            AuditFormat::Html => write_html(out, report),
        }
    }
}

/// The findings grouped by account (they come sorted by account).
fn by_account(findings: &[Finding]) -> Vec<&[Finding]> {
    findings
        .chunk_by(|a, b| a.account.eq_ignore_ascii_case(&b.account))
        .collect()
}

/// One line saying what was read.
fn scope(report: &AuditReport) -> String {
    let mut scope = report.sources.join(" and ");
    if let Some(end) = report.log_end {
        scope.push_str(&format!(" (ending {end})"));
    }
    format!(
        "{scope}; stale after {} days without a login",
        report.stale_days
    )
}

fn write_text(out: &mut dyn Write, report: &AuditReport) -> io::Result<()> {
    let accounts = by_account(&report.findings);
    writeln!(
        out,
        "mailfuse audit: {}",
        Sanitized(scope(report).as_bytes())
    )?;
    if accounts.is_empty() {
        return writeln!(out, "\nNo account found that should not be able to send.");
    }
    writeln!(
        out,
        "\n{} accounts should not be able to send, or not as they are:",
        accounts.len()
    )?;
    for findings in accounts {
        let Some(first) = findings.first() else {
            continue;
        };
        writeln!(out, "\n{}", Sanitized(first.account.as_bytes()))?;
        for finding in findings {
            writeln!(
                out,
                "  - {}: {}\n    → {}",
                finding.problem.words(),
                Sanitized(finding.detail.as_bytes()),
                finding.recommendation
            )?;
        }
    }
    Ok(())
}

fn write_html(out: &mut dyn Write, report: &AuditReport) -> io::Result<()> {
    write_head(out, "mailfuse audit")?;
    writeln!(
        out,
        "<h1>mailfuse audit</h1>\n<p>{}</p>",
        Text(&scope(report))
    )?;
    let accounts = by_account(&report.findings);
    if accounts.is_empty() {
        writeln!(
            out,
            "<p>No account found that should not be able to send.</p>"
        )?;
        return write_foot(out);
    }
    writeln!(out, "<h2>{} accounts</h2>", accounts.len())?;
    writeln!(out, "<table>\n<thead><tr><th class=\"t\">account</th><th class=\"t\">problem</th><th class=\"t\">facts</th><th class=\"t\">what to do</th></tr></thead>\n<tbody>")?;
    for finding in &report.findings {
        writeln!(
            out,
            "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td></tr>",
            Text(&finding.account),
            Text(finding.problem.words()),
            Text(&finding.detail),
            Text(finding.recommendation)
        )?;
    }
    writeln!(out, "</tbody>\n</table>")?;
    write_foot(out)
}
