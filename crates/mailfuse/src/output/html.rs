//! The HTML report: one self-contained file (inline CSS and SVG, no script,
//! nothing fetched) that opens offline from a mail attachment.
//!
//! Every string that came from a log goes through [`Text`]: control
//! characters shown as visible escapes, then `&<>"'` as entities, so it is
//! text in element content and in attributes alike. The page also forbids
//! scripts by its Content-Security-Policy, in case.

pub(crate) mod svg;

use std::io::{self, Write};
use std::net::IpAddr;

use mailfuse_core::net::Network;
use mailfuse_detect::hourly::{AccountHours, SourceHour, SourceHours};
use mailfuse_detect::{Findings, Hourly, Incident, IncidentKind};

use crate::engine::{InputReport, ReadSummary};
use crate::html_escape::Text;
use svg::{Chart, Panel, Series, TimeAxis};

/// Panels per chart; the rest are counted below it.
const MAX_PANELS: usize = 6;
/// Sending IPs named in a panel's label.
const IPS_NAMED: usize = 4;

const STYLE: &str = "
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#1d2430}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccd;padding:2px 6px;text-align:right}
td.t,th.t{text-align:left}tr.bad td{background:#fde8e8}
.incident{border-left:5px solid #c0392b;padding:.2em 1em;margin:1em 0;background:#fcf6f6}
.incident.guess{border-color:#d68910;background:#fdf9f0}.incident.limit{border-color:#2e86c1;background:#f3f8fc}.incident.suspicious{border-color:#b7950b;background:#fefcf0}.incident.misconfigured{border-color:#99a3a4;background:#f8f9f9}
pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f6;padding:.4em;font-size:12px}
.chart svg{max-width:100%;height:auto}.bars{fill:#3465a4}.line{fill:none;stroke:#c0392b;stroke-width:1.5}
.base{stroke:#556}.grid{stroke:#dde;stroke-dasharray:2 3}.label{font-size:12px;font-weight:bold}
.tick{font-size:10px;fill:#556}.axis{font-size:11px}.note{color:#667;font-size:12px}
dl{display:grid;grid-template-columns:max-content auto;gap:0 1em}dt{font-weight:bold}dd{margin:0}
";

/// Writes the scan report as one HTML page.
pub fn write_scan(
    out: &mut dyn Write,
    summary: &ReadSummary,
    findings: &Findings,
) -> io::Result<()> {
    let stats = &findings.stats;
    let period = match (stats.first_event, stats.last_event) {
        (Some(first), Some(last)) => format!("{first} to {last}"),
        _ => "no events".into(),
    };
    write_head(out, &format!("mailfuse report: {period}"))?;
    writeln!(out, "<h1>mailfuse report</h1>")?;
    write_summary(out, summary, findings, &period)?;
    write_incidents(out, &findings.incidents)?;
    write_charts(out, findings)?;
    write_accounts(out, findings)?;
    write_local_domains(out, findings)?;
    write_inputs(out, &summary.inputs)?;
    write_foot(out)
}

/// The page up to `<body>`: the style, and a policy that forbids scripts
/// and anything fetched. `title` is escaped.
pub(crate) fn write_head(out: &mut dyn Write, title: &str) -> io::Result<()> {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
    )?;
    writeln!(out, "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">")?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(out, "<title>{}</title>", Text(title))?;
    writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>")
}

/// The page's end.
pub(crate) fn write_foot(out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "<p class=\"note\">Made by mailfuse {}. All times are UTC.</p>\n</body>\n</html>",
        env!("CARGO_PKG_VERSION")
    )
}

fn write_summary(
    out: &mut dyn Write,
    summary: &ReadSummary,
    findings: &Findings,
    period: &str,
) -> io::Result<()> {
    let stats = &findings.stats;
    let lines: u64 = summary.inputs.iter().map(|i| i.lines).sum();
    let skipped: u64 = summary.inputs.iter().map(InputReport::skipped).sum();
    let count = |kind| findings.incidents.iter().filter(|i| i.kind == kind).count();
    writeln!(out, "<h2 id=\"summary\">Summary</h2>\n<dl>")?;
    let rows: [(&str, String); 11] = [
        ("Period", format!("{period} (UTC)")),
        (
            "Server time zone",
            format!("{} ({})", summary.time_zone.zone, summary.time_zone.source),
        ),
        (
            "Inputs",
            format!("{} ({lines} lines, {skipped} skipped)", summary.inputs.len()),
        ),
        (
            "Messages",
            format!(
                "{} ({} recipients; {} delivery lines: {} delivered, {} deferred, {} refused permanently)",
                stats.messages, stats.recipients, stats.deliveries, stats.delivered, stats.deferred, stats.failed
            ),
        ),
        (
            "Logins",
            format!("{} failed, {} succeeded", stats.auth_failures, stats.auth_successes),
        ),
        ("Server blocks", stats.server_blocks.to_string()),
        (
            "Compromised accounts",
            count(IncidentKind::CompromisedAccount).to_string(),
        ),
        (
            "Password guessing",
            count(IncidentKind::PasswordGuessing).to_string(),
        ),
        ("Over sending limits", count(IncidentKind::LimitExceeded).to_string()),
        (
            "Suspicious activity",
            count(IncidentKind::SuspiciousActivity).to_string(),
        ),
        (
            "Misconfigured clients",
            count(IncidentKind::MisconfiguredClient).to_string(),
        ),
    ];
    for (term, value) in rows {
        writeln!(out, "<dt>{term}</dt><dd>{}</dd>", Text(&value))?;
    }
    if let Some(note) = super::memory_cap_note(&findings.forgotten, |n| n.to_string()) {
        writeln!(out, "<dt>Memory cap</dt><dd>{}</dd>", Text(&note))?;
    }
    writeln!(out, "</dl>")
}

fn write_incidents(out: &mut dyn Write, incidents: &[Incident]) -> io::Result<()> {
    writeln!(
        out,
        "<h2 id=\"incidents\">Incidents ({})</h2>",
        incidents.len()
    )?;
    if incidents.is_empty() {
        return writeln!(out, "<p>No incidents found.</p>");
    }
    for (n, incident) in incidents.iter().enumerate() {
        write_incident(out, n + 1, incident)?;
    }
    Ok(())
}

fn write_incident(out: &mut dyn Write, n: usize, incident: &Incident) -> io::Result<()> {
    let ips = join(incident.ips.iter());
    let class = match incident.kind {
        IncidentKind::CompromisedAccount => "",
        IncidentKind::LimitExceeded => " limit",
        IncidentKind::SuspiciousActivity => " suspicious",
        IncidentKind::MisconfiguredClient => " misconfigured",
        IncidentKind::PasswordGuessing => " guess",
    };
    let (title, subject) = (incident.title(), incident.subject());
    writeln!(
        out,
        "<section class=\"incident{class}\">\n<h3>[{n}] {title}: {} <small>(score {})</small></h3>\n<dl>",
        Text(&subject),
        incident.score
    )?;
    let mut facts = vec![
        (
            "Period",
            format!(
                "{} to {} (detected {})",
                incident.first_seen, incident.last_seen, incident.detected_at
            ),
        ),
        ("Confidence", incident.confidence.name().to_string()),
    ];
    if !incident.hosts.is_empty() {
        facts.push(("Seen on", incident.hosts.join(", ")));
    }
    match incident.kind {
        IncidentKind::PasswordGuessing => {
            facts.push(("IPs", ips));
            facts.push((
                "Attempts",
                format!(
                    "{} failed logins, {}{} accounts tried",
                    incident.failed_logins,
                    incident.accounts_tried_bound(),
                    incident.accounts_tried_total
                ),
            ));
            if !incident.succeeded_as.is_empty() {
                facts.push(("SUCCEEDED as", incident.succeeded_as.join(", ")));
            }
        }
        _ => {
            facts.push(("Sending IPs", ips));
            facts.push((
                "Traffic",
                format!(
                    "{} messages, {} recipients ({} external), {} refused permanently",
                    incident.messages,
                    incident.recipients,
                    incident.external_recipients,
                    incident.failed_recipients
                ),
            ));
        }
    }
    for (term, value) in facts {
        writeln!(out, "<dt>{term}</dt><dd>{}</dd>", Text(&value))?;
    }
    writeln!(out, "</dl>\n<p>Why:</p>\n<ul>")?;
    for reason in &incident.reasons {
        writeln!(out, "<li>{}</li>", Text(reason))?;
    }
    writeln!(out, "</ul>\n<p>Evidence:</p>")?;
    for line in &incident.evidence {
        writeln!(out, "<pre>{}</pre>", Text(line))?;
    }
    if !incident.to_confirm.is_empty() {
        writeln!(out, "<p>To confirm:</p>\n<ul>")?;
        for check in &incident.to_confirm {
            writeln!(out, "<li>{}</li>", Text(check))?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</section>")
}

/// Items' texts joined with commas.
fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn write_charts(out: &mut dyn Write, findings: &Findings) -> io::Result<()> {
    writeln!(out, "<h2 id=\"charts\">Over time</h2>")?;
    let (Some(hourly), Some(first), Some(last)) = (
        &findings.hourly,
        findings.stats.first_event,
        findings.stats.last_event,
    ) else {
        return writeln!(out, "<p>No events to draw.</p>");
    };
    let axis = TimeAxis::new(first, last);
    let (accounts, accounts_left) = top_accounts(findings, hourly);
    if accounts.is_empty() {
        writeln!(out, "<p>No account sent mail.</p>")?;
    } else {
        let panels = accounts.iter().map(|a| traffic_panel(&axis, a)).collect();
        svg::write_chart(
            out,
            &axis,
            &Chart {
                id: "traffic",
                title: "Messages and failed recipients, top accounts",
                y_label: "messages or failed recipients",
                panels,
                not_shown: accounts_left,
                not_shown_what: "accounts",
            },
        )?;
        let panels = accounts.iter().map(|a| ips_panel(&axis, a)).collect();
        svg::write_chart(
            out,
            &axis,
            &Chart {
                id: "ips",
                title: "Sending IPs per account",
                y_label: "distinct sending IPs",
                panels,
                not_shown: accounts_left,
                not_shown_what: "accounts",
            },
        )?;
    }
    let (sources, sources_left) = top_sources(findings, hourly);
    if sources.is_empty() {
        return writeln!(out, "<p>No failed logins.</p>");
    }
    let panels = sources
        .into_iter()
        .map(|(label, hours)| Panel {
            label,
            series: vec![Series {
                name: "failed logins",
                values: axis.sum(hours.iter().map(|h| (h.hour, h.failed_logins))),
            }],
        })
        .collect();
    svg::write_chart(
        out,
        &axis,
        &Chart {
            id: "guessing",
            title: "Password guessing: failed logins per IP or network",
            y_label: "failed logins",
            panels,
            not_shown: sources_left,
            not_shown_what: "guessing IPs",
        },
    )
}

/// The accounts to draw: those with an incident first (compromised, then over
/// a limit), then the busiest; and how many more sent mail.
fn top_accounts<'h>(findings: &Findings, hourly: &'h Hourly) -> (Vec<&'h AccountHours>, usize) {
    let named = findings
        .incidents
        .iter()
        .filter_map(|i| i.account.as_deref());
    let busiest = hourly.accounts.iter().map(|a| a.account.as_str());
    let mut chosen: Vec<&AccountHours> = Vec::new();
    for name in named.chain(busiest) {
        if chosen.len() == MAX_PANELS {
            break;
        }
        let series = hourly.accounts.iter().find(|a| a.account == name);
        if let Some(series) = series.filter(|s| !chosen.iter().any(|c| c.account == s.account)) {
            chosen.push(series);
        }
    }
    let left = hourly.accounts.len() - chosen.len();
    (chosen, left)
}

fn traffic_panel(axis: &TimeAxis, account: &AccountHours) -> Panel {
    Panel {
        label: account.account.clone(),
        series: vec![
            Series {
                name: "messages",
                values: axis.sum(account.hours.iter().map(|h| (h.hour, h.messages))),
            },
            Series {
                name: "failed recipients",
                values: axis.sum(account.hours.iter().map(|h| (h.hour, h.failed_recipients))),
            },
        ],
    }
}

fn ips_panel(axis: &TimeAxis, account: &AccountHours) -> Panel {
    let per_bucket = axis.distinct(
        account
            .hours
            .iter()
            .map(|h| (h.hour, h.sending_ips.clone())),
    );
    let mut all: Vec<IpAddr> = Vec::new();
    for ip in per_bucket.iter().flatten() {
        if !all.contains(ip) {
            all.push(*ip);
        }
    }
    let mut label = format!(
        "{} — {} IP{}: {}",
        account.account,
        all.len(),
        if all.len() == 1 { "" } else { "s" },
        join(all.iter().take(IPS_NAMED))
    );
    if all.len() > IPS_NAMED {
        label.push_str(", …");
    }
    Panel {
        label,
        series: vec![Series {
            name: "sending IPs",
            values: per_bucket.iter().map(|ips| ips.len() as u64).collect(),
        }],
    }
}

/// Guessing sources to draw, with their labels: those of guessing incidents
/// first (the network, or the IP), then the IPs with most failed logins;
/// and how many more IPs failed logins.
fn top_sources<'h>(
    findings: &Findings,
    hourly: &'h Hourly,
) -> (Vec<(String, &'h [SourceHour])>, usize) {
    let mut chosen: Vec<(String, &[SourceHour])> = Vec::new();
    let mut networks_drawn: Vec<Network> = Vec::new();
    let mut ips_drawn: Vec<IpAddr> = Vec::new();
    let guessing = findings
        .incidents
        .iter()
        .filter(|i| i.kind == IncidentKind::PasswordGuessing);
    for incident in guessing {
        if chosen.len() == MAX_PANELS {
            break;
        }
        if let Some(network) = incident.network {
            let series = hourly
                .guessing_networks
                .iter()
                .find(|s| s.source == network);
            if let (Some(s), false) = (series, networks_drawn.contains(&network)) {
                networks_drawn.push(network);
                chosen.push((format!("network {network}"), &s.hours));
            }
        } else if let Some(s) = incident
            .ips
            .first()
            .and_then(|ip| find_ip(&hourly.guessing_ips, *ip))
        {
            if !ips_drawn.contains(&s.source) {
                ips_drawn.push(s.source);
                chosen.push((s.source.to_string(), &s.hours));
            }
        }
    }
    let drawn = |ips_drawn: &[IpAddr], ip: IpAddr| {
        ips_drawn.contains(&ip) || networks_drawn.iter().any(|n| n.contains(ip))
    };
    for s in &hourly.guessing_ips {
        if chosen.len() == MAX_PANELS {
            break;
        }
        if !drawn(&ips_drawn, s.source) {
            ips_drawn.push(s.source);
            chosen.push((s.source.to_string(), &s.hours));
        }
    }
    let left = hourly
        .guessing_ips
        .iter()
        .filter(|s| !drawn(&ips_drawn, s.source))
        .count();
    (chosen, left)
}

fn find_ip(sources: &[SourceHours<IpAddr>], ip: IpAddr) -> Option<&SourceHours<IpAddr>> {
    sources.iter().find(|s| s.source == ip)
}

fn write_accounts(out: &mut dyn Write, findings: &Findings) -> io::Result<()> {
    writeln!(
        out,
        "<h2 id=\"accounts\">Accounts that sent mail ({})</h2>",
        findings.accounts.len()
    )?;
    if findings.accounts.is_empty() {
        return Ok(());
    }
    writeln!(out, "<table>\n<thead><tr><th class=\"t\">account</th><th class=\"t\">compromised</th><th>messages</th><th>recipients</th><th>external</th><th>failed</th><th>foreign From</th><th class=\"t\">sending IPs</th><th class=\"t\">new IPs</th><th>max/min</th><th>max/hour</th><th class=\"t\">first seen</th><th class=\"t\">last seen</th></tr></thead>\n<tbody>")?;
    for a in findings.accounts.iter() {
        write!(
            out,
            "<tr{}><td class=\"t\">{}</td><td class=\"t\">{}</td>",
            if a.compromised { " class=\"bad\"" } else { "" },
            Text(&a.account),
            if a.compromised { "yes" } else { "no" }
        )?;
        for n in [
            a.counts.messages,
            a.counts.recipients,
            a.counts.external_recipients,
            a.counts.failed_recipients,
            a.counts.foreign_from_messages,
        ] {
            write!(out, "<td>{n}</td>")?;
        }
        writeln!(
            out,
            "<td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td></tr>",
            join(a.sending_ips.iter()),
            join(a.new_ips.iter()),
            a.peak_per_minute.count,
            a.peak_per_hour.count,
            a.first_seen,
            a.last_seen
        )?;
    }
    writeln!(out, "</tbody>\n</table>")
}

/// The domains taken as the server's own, each with why.
fn write_local_domains(out: &mut dyn Write, findings: &Findings) -> io::Result<()> {
    let domains = &findings.local_domains;
    writeln!(
        out,
        "<h2 id=\"local-domains\">Local domains ({})</h2>",
        domains.len()
    )?;
    if domains.is_empty() {
        return writeln!(out, "<p>None configured or seen: every domain counts as foreign (give <code>--local-domain</code>).</p>");
    }
    writeln!(out, "<table>\n<thead><tr><th class=\"t\">domain</th><th class=\"t\">why local</th></tr></thead>\n<tbody>")?;
    for d in domains {
        writeln!(
            out,
            "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td></tr>",
            Text(&d.domain),
            Text(&d.reasons.join("; "))
        )?;
    }
    writeln!(out, "</tbody>\n</table>")?;
    if findings.local_domains_not_kept > 0 {
        writeln!(
            out,
            "<p class=\"note\">{} more inferred domains not kept: give <code>--local-domain</code>.</p>",
            findings.local_domains_not_kept
        )?;
    }
    Ok(())
}

pub(crate) fn write_inputs(out: &mut dyn Write, inputs: &[InputReport]) -> io::Result<()> {
    writeln!(out, "<h2 id=\"inputs\">Inputs</h2>\n<table>\n<thead><tr><th class=\"t\">input</th><th class=\"t\">format</th><th>lines</th><th>events</th><th>skipped</th><th class=\"t\">details</th></tr></thead>\n<tbody>")?;
    for input in inputs {
        let mut details: Vec<String> = Vec::new();
        if input.unknown > 0 {
            details.push(format!("{} unrecognised", input.unknown));
        }
        details.extend(input.malformed.iter().map(|(why, n)| format!("{n} {why}")));
        if input.too_long > 0 {
            details.push(format!("{} too long", input.too_long));
        }
        if input.duplicate > 0 {
            details.push(format!(
                "overlaps with {}: {} duplicate lines counted there only",
                input.duplicate_of.join(", "),
                input.duplicate
            ));
        }
        if !input.members.is_empty() {
            details.push(format!(
                "read as one log, oldest first: {}",
                input.members.join(", ")
            ));
        }
        details.extend(input.errors.iter().map(|e| format!("error: {e}")));
        writeln!(
            out,
            "<tr><td class=\"t\">{}</td><td class=\"t\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"t\">{}</td></tr>",
            Text(&input.path),
            input.format_name(),
            input.lines,
            input.events,
            input.skipped(),
            Text(&details.join("; "))
        )?;
    }
    writeln!(out, "</tbody>\n</table>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_scan_still_makes_a_page() {
        let findings = Findings {
            incidents: Vec::new(),
            accounts: mailfuse_detect::AccountRows::default(),
            stats: Default::default(),
            hourly: None,
            local_domains: Vec::new(),
            local_domains_not_kept: 0,
            forgotten: Default::default(),
        };
        let summary = ReadSummary {
            inputs: Vec::new(),
            time_zone: crate::engine::ZoneReport {
                zone: "UTC".into(),
                source: "default",
            },
        };
        let mut page = Vec::new();
        write_scan(&mut page, &summary, &findings).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("No incidents found."));
        assert!(page.contains("No events to draw."));
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn the_hosts_of_an_incident_are_shown_escaped() {
        let mut incident = Incident::new(
            mailfuse_detect::IncidentKind::PasswordGuessing,
            mailfuse_core::Timestamp(0)..=mailfuse_core::Timestamp(60),
            mailfuse_core::Timestamp(60),
        );
        let mut out = Vec::new();
        write_incident(&mut out, 1, &incident).unwrap();
        assert!(!String::from_utf8(out).unwrap().contains("Seen on"));
        incident.hosts = vec!["mx1".into(), "<b>mx2".into()];
        let mut out = Vec::new();
        write_incident(&mut out, 1, &incident).unwrap();
        let html = String::from_utf8(out).unwrap();
        assert!(
            html.contains("<dt>Seen on</dt><dd>mx1, &lt;b&gt;mx2</dd>"),
            "{html}"
        );
    }
}
