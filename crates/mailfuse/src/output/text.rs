//! The readable report: incidents first (what to do now), then the
//! per-account table, then what was read and skipped.

use std::io::{self, Write};

use mailfuse_core::text::Sanitized;
use mailfuse_core::Timestamp;
use mailfuse_detect::{Findings, Incident, IncidentKind};

use crate::engine::{InputReport, ReadSummary};
use crate::trace::Story;

/// Untrusted text, made safe for a terminal.
pub(crate) fn safe(text: &str) -> Sanitized<'_> {
    Sanitized(text.as_bytes())
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".into(), |t| t.to_string())
}

/// Writes the scan report.
pub fn write_scan(
    out: &mut dyn Write,
    summary: &ReadSummary,
    findings: &Findings,
) -> io::Result<()> {
    let stats = &findings.stats;
    let lines: u64 = summary.inputs.iter().map(|i| i.lines).sum();
    writeln!(
        out,
        "mailfuse scan: {} input(s), {} lines, {} messages, {} failed logins",
        summary.inputs.len(),
        thousands(lines),
        thousands(stats.messages),
        thousands(stats.auth_failures),
    )?;
    writeln!(
        out,
        "period: {} to {} (times in UTC; server clock {}, {})",
        time(stats.first_event),
        time(stats.last_event),
        summary.time_zone.zone,
        summary.time_zone.source
    )?;
    if let Some(note) = super::memory_cap_note(&findings.forgotten, thousands) {
        writeln!(out, "memory cap: {note}")?;
    }
    writeln!(out)?;
    if findings.incidents.is_empty() {
        writeln!(out, "No incidents found.")?;
    } else {
        writeln!(out, "INCIDENTS ({})", findings.incidents.len())?;
        for (n, incident) in findings.incidents.iter().enumerate() {
            writeln!(out)?;
            write_incident(out, n + 1, incident)?;
        }
    }
    writeln!(out)?;
    write_accounts(out, findings)?;
    writeln!(out)?;
    write_local_domains(out, findings)?;
    writeln!(out)?;
    write_inputs(out, &summary.inputs)
}

/// The domains taken as the server's own (what "external" and "another
/// domain's From" are measured against), each with why.
fn write_local_domains(out: &mut dyn Write, findings: &Findings) -> io::Result<()> {
    let domains = &findings.local_domains;
    writeln!(out, "LOCAL DOMAINS ({})", domains.len())?;
    if domains.is_empty() {
        return writeln!(
            out,
            "  none configured or seen: every domain counts as foreign (give --local-domain)"
        );
    }
    for d in domains {
        writeln!(out, "  {} ({})", safe(&d.domain), d.reasons.join("; "))?;
    }
    if findings.local_domains_not_kept > 0 {
        writeln!(
            out,
            "  ({} more inferred domains not kept past {}: give --local-domain)",
            thousands(findings.local_domains_not_kept),
            mailfuse_detect::local_domains::MAX_INFERRED
        )?;
    }
    Ok(())
}

fn write_incident(out: &mut dyn Write, n: usize, incident: &Incident) -> io::Result<()> {
    let ips: Vec<String> = incident.ips.iter().map(|ip| ip.to_string()).collect();
    writeln!(
        out,
        "[{n}] {}  {}  (score {}, {} confidence)",
        incident.title().to_uppercase(),
        safe(&incident.subject()),
        incident.score,
        incident.confidence.name()
    )?;
    match incident.kind {
        IncidentKind::CompromisedAccount
        | IncidentKind::SuspiciousActivity
        | IncidentKind::LimitExceeded => {
            writeln!(out, "    sending IPs: {}", ips.join(", "))?;
            writeln!(
                out,
                "    traffic:     {} messages, {} recipients ({} external), {} refused permanently",
                thousands(incident.messages),
                thousands(incident.recipients),
                thousands(incident.external_recipients),
                thousands(incident.failed_recipients)
            )?;
        }
        IncidentKind::PasswordGuessing | IncidentKind::MisconfiguredClient => {
            if ips.len() > 1 {
                let shown: Vec<&str> = ips.iter().take(10).map(String::as_str).collect();
                let more = if ips.len() > 10 { ", …" } else { "" };
                let network = incident
                    .network
                    .map_or_else(String::new, |network| format!("  ({network})"));
                writeln!(out, "    IPs:         {}{more}{network}", shown.join(", "))?;
            }
            let tried = match incident.accounts_tried_total {
                0 => "the log does not name the accounts tried".to_string(),
                n => format!(
                    "{}{} accounts tried",
                    incident.accounts_tried_bound(),
                    thousands(n)
                ),
            };
            writeln!(
                out,
                "    attempts:    {} failed logins, {tried}",
                thousands(incident.failed_logins),
            )?;
            if !incident.succeeded_as.is_empty() {
                let who: Vec<String> = incident
                    .succeeded_as
                    .iter()
                    .map(|a| safe(a).to_string())
                    .collect();
                writeln!(out, "    SUCCEEDED:   then used {}", who.join(", "))?;
            }
        }
    }
    writeln!(
        out,
        "    period:      {} to {} (detected {})",
        incident.first_seen, incident.last_seen, incident.detected_at
    )?;
    if !incident.hosts.is_empty() {
        writeln!(out, "    seen on:     {}", safe(&incident.hosts.join(", ")))?;
    }
    writeln!(out, "    why:")?;
    for reason in &incident.reasons {
        writeln!(out, "      - {}", safe(reason))?;
    }
    writeln!(out, "    evidence:")?;
    for line in &incident.evidence {
        writeln!(out, "      {}", safe(line))?;
    }
    if incident.kind == IncidentKind::CompromisedAccount {
        // Only the IPs the safety rules let be blocked are advised blocked.
        let to_block: Vec<String> = incident
            .blockable_ips()
            .iter()
            .map(ToString::to_string)
            .collect();
        let block = match to_block.as_slice() {
            [] => String::new(),
            ips => format!(", block {} for a few weeks", ips.join(", ")),
        };
        writeln!(
            out,
            "    to do:       change the password (or disable the account), remove its queued messages{block}"
        )?;
    }
    for why in incident.not_blocked() {
        writeln!(out, "    not blocked: {}", safe(&why))?;
    }
    for check in &incident.to_confirm {
        writeln!(out, "    to confirm:  {}", safe(check))?;
    }
    Ok(())
}

fn write_accounts(out: &mut dyn Write, findings: &Findings) -> io::Result<()> {
    writeln!(out, "ACCOUNTS THAT SENT MAIL ({})", findings.accounts.len())?;
    if findings.accounts.is_empty() {
        return Ok(());
    }
    let width = findings
        .accounts
        .names()
        .map(|name| safe(name).to_string().chars().count())
        .max()
        .unwrap_or(7)
        .clamp(7, 40);
    writeln!(
        out,
        "  {:<width$}  {:>8} {:>8} {:>8} {:>7} {:>4} {:>4} {:>8} {:>6} {:>6}  first / last seen",
        "account",
        "messages",
        "rcpts",
        "external",
        "failed",
        "IPs",
        "new",
        "foreignF",
        "max/m",
        "max/h"
    )?;
    for a in findings.accounts.iter() {
        let name = safe(&a.account).to_string();
        let marker = if a.compromised { "!" } else { " " };
        writeln!(
            out,
            "{marker} {:<width$}  {:>8} {:>8} {:>8} {:>7} {:>4} {:>4} {:>8} {:>6} {:>6}  {} / {}",
            name,
            thousands(a.counts.messages),
            thousands(a.counts.recipients),
            thousands(a.counts.external_recipients),
            thousands(a.counts.failed_recipients),
            a.sending_ips.len(),
            a.new_ips.len(),
            thousands(a.counts.foreign_from_messages),
            a.peak_per_minute.count,
            a.peak_per_hour.count,
            a.first_seen,
            a.last_seen,
        )?;
    }
    writeln!(out, "  (! = compromised; new = sending IPs the account had not used before; foreignF = messages with another domain's From)")
}

pub(crate) fn write_inputs(out: &mut dyn Write, inputs: &[InputReport]) -> io::Result<()> {
    let skipped: u64 = inputs.iter().map(InputReport::skipped).sum();
    writeln!(out, "INPUTS ({} skipped lines)", thousands(skipped))?;
    for input in inputs {
        write!(
            out,
            "  {}: {}, {} lines, {} events",
            safe(&input.path),
            input.format_name(),
            thousands(input.lines),
            thousands(input.events)
        )?;
        if input.skipped() > 0 {
            let mut parts = Vec::new();
            if input.unknown > 0 {
                parts.push(format!("{} unrecognised", thousands(input.unknown)));
            }
            for (why, n) in &input.malformed {
                parts.push(format!("{} {why}", thousands(*n)));
            }
            if input.too_long > 0 {
                parts.push(format!("{} too long", thousands(input.too_long)));
            }
            write!(out, "; skipped {}", parts.join(", "))?;
        }
        writeln!(out)?;
        if !input.members.is_empty() {
            let members: Vec<String> = input.members.iter().map(|m| safe(m).to_string()).collect();
            writeln!(
                out,
                "    read as one log, oldest first: {}",
                members.join(", ")
            )?;
        }
        if input.duplicate > 0 {
            let of: Vec<String> = input
                .duplicate_of
                .iter()
                .map(|p| safe(p).to_string())
                .collect();
            writeln!(
                out,
                "    overlaps with {}: {} duplicate lines counted there only",
                of.join(", "),
                thousands(input.duplicate)
            )?;
        }
        for error in &input.errors {
            writeln!(out, "    error: {}", safe(error))?;
        }
    }
    Ok(())
}

/// Writes a message's story.
pub fn write_trace(out: &mut dyn Write, queue_id: &str, story: Option<&Story>) -> io::Result<()> {
    let Some(story) = story else {
        return writeln!(out, "Queue-ID {} is not in these logs.", safe(queue_id));
    };
    writeln!(out, "Message {}", safe(queue_id))?;
    if let Some(r) = &story.received {
        let field = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "-".into(), |s| safe(s).to_string())
        };
        writeln!(
            out,
            "  received:   {}{}",
            time(r.at),
            if r.at_from_delay {
                " (from delay=: it was queued before its first line here)"
            } else {
                ""
            }
        )?;
        if let Some(original) = &r.notice_of {
            writeln!(
                out,
                "  notice of:  {} (the server's own notice about that message)",
                safe(original)
            )?;
        }
        writeln!(
            out,
            "  account:    {}",
            r.account.as_deref().map_or_else(
                || "none (not authenticated)".into(),
                |a| safe(a).to_string()
            )
        )?;
        writeln!(out, "  from host:  {}", field(&r.client))?;
        writeln!(
            out,
            "  service:    {}{}",
            field(&r.service),
            if r.tls == Some(true) { " (TLS)" } else { "" }
        )?;
        writeln!(
            out,
            "  from:       <{}>{}",
            field(&r.envelope_from),
            if r.bounce { " (bounce)" } else { "" }
        )?;
        if let Some(subject) = &r.subject {
            writeln!(out, "  subject:    {}", safe(subject))?;
        }
        if let Some(size) = r.size {
            writeln!(out, "  size:       {} bytes", thousands(size))?;
        }
    } else {
        writeln!(
            out,
            "  (no line says how it was received: it entered the queue before these logs begin)"
        )?;
    }
    if !story.notices.is_empty() {
        let notices: Vec<String> = story.notices.iter().map(|n| safe(n).to_string()).collect();
        writeln!(
            out,
            "  notices:    {} (the server's bounce or delay notices about it: trace them)",
            notices.join(", ")
        )?;
    }
    let failed = story
        .deliveries
        .iter()
        .filter(|d| d.status == mailfuse_core::DeliveryStatus::Failed)
        .count();
    writeln!(
        out,
        "  recipients: {} delivery lines, {failed} refused permanently",
        story.deliveries.len()
    )?;
    for d in &story.deliveries {
        writeln!(
            out,
            "    {}  {:<9} <{}>  {} {}",
            d.at,
            format!("{:?}", d.status).to_lowercase(),
            safe(&d.recipient),
            d.dsn
                .as_deref()
                .map_or_else(String::new, |s| safe(s).to_string()),
            safe(&d.detail)
        )?;
    }
    let logins = &story.logins;
    if logins.failed_from_ip > 0 {
        writeln!(
            out,
            "  before it:  {} failed logins from the same IP between {} and {}{}",
            thousands(logins.failed_from_ip),
            time(logins.first_failure),
            time(logins.last_failure),
            if logins.accounts_tried.is_empty() {
                String::new()
            } else {
                let tried: Vec<String> = logins
                    .accounts_tried
                    .iter()
                    .map(|a| safe(a).to_string())
                    .collect();
                format!(" (tried {})", tried.join(", "))
            }
        )?;
        for line in &logins.failure_lines {
            writeln!(out, "      {}", safe(line))?;
        }
    }
    for s in &logins.successes {
        writeln!(
            out,
            "  login:      {} {} from {}",
            s.at,
            safe(&s.service),
            safe(&s.client)
        )?;
    }
    writeln!(out, "  lines ({}):", thousands(story.lines_total))?;
    for line in &story.lines {
        writeln!(out, "    {}", safe(line))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_of_an_incident_are_shown_sanitised() {
        let mut incident = Incident::new(
            IncidentKind::PasswordGuessing,
            mailfuse_core::Timestamp(0)..=mailfuse_core::Timestamp(60),
            mailfuse_core::Timestamp(60),
        );
        let mut out = Vec::new();
        write_incident(&mut out, 1, &incident).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("seen on"));
        incident.hosts = vec!["mx1".into(), "mx2\x1b[31m".into()];
        let mut out = Vec::new();
        write_incident(&mut out, 1, &incident).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("    seen on:     mx1, mx2\\x1b[31m\n"),
            "{text}"
        );
    }
}
