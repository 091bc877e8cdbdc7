//! JSON reports: one object per run, stable field names (documented in the README).

use std::io::{self, BufWriter, Write};

use mailfuse_detect::{AccountRows, Findings, Forgotten, Incident, LocalDomain, Stats};
use serde::Serialize;

use crate::engine::{InputReport, ReadSummary, ZoneReport};
use crate::trace::Story;

#[derive(Serialize)]
struct ScanJson<'a> {
    mailfuse_version: &'static str,
    time_zone: &'a ZoneReport,
    inputs: &'a [InputReport],
    skipped_lines: u64,
    stats: &'a Stats,
    incidents: &'a [Incident],
    accounts: &'a AccountRows,
    local_domains: &'a [LocalDomain],
    local_domains_not_kept: u64,
    forgotten: &'a Forgotten,
}

/// Writes the scan report as one JSON object.
pub fn write_scan(
    out: &mut dyn Write,
    summary: &ReadSummary,
    findings: &Findings,
) -> io::Result<()> {
    let report = ScanJson {
        mailfuse_version: env!("CARGO_PKG_VERSION"),
        time_zone: &summary.time_zone,
        inputs: &summary.inputs,
        skipped_lines: summary.inputs.iter().map(InputReport::skipped).sum(),
        stats: &findings.stats,
        incidents: &findings.incidents,
        accounts: &findings.accounts,
        local_domains: &findings.local_domains,
        local_domains_not_kept: findings.local_domains_not_kept,
        forgotten: &findings.forgotten,
    };
    write_pretty(out, &report)
}

/// Writes `value` as pretty JSON and a newline. The pretty printer writes a
/// few bytes at a time (a key, a colon, each level of indentation): through
/// `out`, a `dyn Write`, each is a call that cannot be inlined. A buffer of
/// a known type here turns each into a copy (a provider's 110 MB report
/// was some 40 instructions a byte).
fn write_pretty(out: &mut dyn Write, value: &impl Serialize) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, out);
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()
}

#[derive(Serialize)]
struct TraceJson<'a> {
    queue_id: &'a str,
    found: bool,
    #[serde(flatten)]
    story: Option<&'a Story>,
}

/// Writes a message's story as one JSON object (`found: false` if absent).
pub fn write_trace(out: &mut dyn Write, queue_id: &str, story: Option<&Story>) -> io::Result<()> {
    let report = TraceJson {
        queue_id,
        found: story.is_some(),
        story,
    };
    write_pretty(out, &report)
}
