//! The `simulate` report: per policy, what it would have let out of each
//! hijack and which other accounts it would have held back; as a text table,
//! JSON, or an HTML page with a chart of each policy's effect over time.

use std::io::{self, Write};

use mailfuse_limits::Sent;

use super::html::svg::{self, Chart, Panel, Series, TimeAxis};
use super::text::{safe, thousands, time};
use crate::html_escape::Text;
use crate::simulate::{AccountOutcome, PolicyReport, Simulation};

/// `1,234 / 5,678`: messages / recipients.
fn pair(sent: Sent) -> String {
    format!(
        "{} / {}",
        thousands(sent.messages),
        thousands(sent.recipients)
    )
}

/// A hijack's IPs, comma-separated.
fn ips(ips: &[std::net::IpAddr]) -> String {
    let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
    ips.join(", ")
}

/// The hijacks' outcomes of one policy, summed.
fn hijacks_total(policy: &PolicyReport) -> (Sent, Sent) {
    policy
        .hijacks
        .iter()
        .fold((Sent::default(), Sent::default()), |(out, held), h| {
            let o = &h.outcome;
            (
                Sent {
                    messages: out.messages + o.let_out.messages,
                    recipients: out.recipients + o.let_out.recipients,
                },
                Sent {
                    messages: held.messages + o.held_back.messages,
                    recipients: held.recipients + o.held_back.recipients,
                },
            )
        })
}

/// The earliest trip of a policy over the hijacks.
fn first_trip(policy: &PolicyReport) -> Option<mailfuse_core::Timestamp> {
    policy
        .hijacks
        .iter()
        .filter_map(|h| h.outcome.tripped_at)
        .min()
}

/// What happened to one account, in words.
fn outcome_words(account: &AccountOutcome) -> String {
    let o = &account.outcome;
    let mut words = format!(
        "let out {} of {} messages / recipients",
        pair(o.let_out),
        pair(o.actual())
    );
    if let Some(at) = o.tripped_at {
        words.push_str(&format!(
            " ({} before it tripped at {at}), held back {}",
            pair(o.before_trip),
            pair(o.held_back)
        ));
    }
    if let Some(at) = o.locked_at {
        words.push_str(&format!(", locked at {at}"));
    }
    words
}

/// Writes the text report.
pub fn write_text(out: &mut dyn Write, simulation: &Simulation) -> io::Result<()> {
    let lines: u64 = simulation.read.inputs.iter().map(|i| i.lines).sum();
    writeln!(
        out,
        "mailfuse simulate: {} input(s), {} lines, {} to {} (times in UTC)",
        simulation.read.inputs.len(),
        thousands(lines),
        time(simulation.first_event),
        time(simulation.last_event)
    )?;
    writeln!(out)?;
    writeln!(out, "HIJACKS FOUND ({})", simulation.hijacks.len())?;
    for hijack in &simulation.hijacks {
        writeln!(
            out,
            "  {} from {}, {} to {}: {} messages / recipients sent",
            safe(&hijack.account),
            ips(&hijack.ips),
            hijack.first_seen,
            hijack.last_seen,
            pair(hijack.sent)
        )?;
    }
    if simulation.hijacks.is_empty() {
        writeln!(
            out,
            "  none: the table shows only whom each policy would have held back"
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "POLICIES (spam: the hijacked accounts' mail, messages / recipients)"
    )?;
    writeln!(
        out,
        "  {:<34} {:>17} {:>17}  {:<20}  {:>8}",
        "policy", "spam let out", "spam held back", "first tripped", "others"
    )?;
    for policy in &simulation.policies {
        let (let_out, held) = hijacks_total(policy);
        writeln!(
            out,
            "  {:<34} {:>17} {:>17}  {:<20}  {:>8}",
            safe(&policy.name).to_string(),
            pair(let_out),
            pair(held),
            time(first_trip(policy)),
            policy.legitimate.len()
        )?;
    }
    writeln!(
        out,
        "  (others = accounts not found hijacked that the policy would have deferred or locked)"
    )?;
    for policy in &simulation.policies {
        writeln!(out)?;
        let label = if policy.approximation {
            " (approximation)"
        } else {
            ""
        };
        writeln!(out, "POLICY {}{label}", safe(&policy.name))?;
        writeln!(
            out,
            "  limits:  {}; {}",
            policy.limits.join(", "),
            policy.on_over.words()
        )?;
        writeln!(out, "  source:  {}", safe(&policy.source))?;
        for hijack in &policy.hijacks {
            writeln!(
                out,
                "  hijack   {}: {}",
                safe(&hijack.account),
                outcome_words(hijack)
            )?;
        }
        if policy.legitimate.is_empty() {
            writeln!(out, "  others:  none held back")?;
        }
        for account in &policy.legitimate {
            writeln!(
                out,
                "  other    {}: {}",
                safe(&account.account),
                outcome_words(account)
            )?;
        }
    }
    writeln!(out)?;
    writeln!(out, "WHAT A REPLAY OF LOGS CANNOT KNOW")?;
    for caveat in simulation.caveats {
        writeln!(out, "  - {caveat}")?;
    }
    writeln!(out)?;
    super::text::write_inputs(out, &simulation.read.inputs)
}

/// Writes the JSON report.
pub fn write_json(out: &mut dyn Write, simulation: &Simulation) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, simulation)?;
    writeln!(out)
}

/// Writes the HTML page.
pub fn write_html(out: &mut dyn Write, simulation: &Simulation) -> io::Result<()> {
    super::html::write_head(out, "mailfuse simulate")?;
    writeln!(out, "<h1>mailfuse simulate</h1>")?;
    writeln!(
        out,
        "<p>Logs from {} to {} (UTC) replayed against {} sending-limit policies.</p>",
        Text(&time(simulation.first_event)),
        Text(&time(simulation.last_event)),
        simulation.policies.len()
    )?;
    writeln!(
        out,
        "<h2 id=\"hijacks\">Hijacks found ({})</h2>",
        simulation.hijacks.len()
    )?;
    writeln!(out, "<ul>")?;
    for hijack in &simulation.hijacks {
        writeln!(
            out,
            "<li>{} from {}, {} to {}: {} messages / recipients sent</li>",
            Text(&hijack.account),
            ips(&hijack.ips),
            hijack.first_seen,
            hijack.last_seen,
            Text(&pair(hijack.sent))
        )?;
    }
    writeln!(out, "</ul>")?;
    writeln!(out, "<h2 id=\"policies\">Policies</h2>")?;
    writeln!(out, "<table>\n<tr><th class=\"t\">policy</th><th class=\"t\">limits</th><th>spam let out</th><th>spam held back</th><th>first tripped</th><th class=\"t\">other accounts held back</th></tr>")?;
    for policy in &simulation.policies {
        let (let_out, held) = hijacks_total(policy);
        let others: Vec<String> = policy
            .legitimate
            .iter()
            .map(|a| {
                format!(
                    "{} (from {}: {} held back)",
                    a.account,
                    time(a.outcome.tripped_at),
                    pair(a.outcome.held_back)
                )
            })
            .collect();
        let approximation = if policy.approximation {
            " (approximation)"
        } else {
            ""
        };
        writeln!(
            out,
            "<tr><td class=\"t\" title=\"{}\">{}{approximation}</td><td class=\"t\">{}; {}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"t\">{}</td></tr>",
            Text(&policy.source),
            Text(&policy.name),
            Text(&policy.limits.join(", ")),
            policy.on_over.words(),
            Text(&pair(let_out)),
            Text(&pair(held)),
            Text(&time(first_trip(policy))),
            Text(&others.join("; "))
        )?;
    }
    writeln!(out, "</table>")?;
    write_chart(out, simulation)?;
    writeln!(out, "<h2 id=\"sources\">Sources</h2>\n<dl>")?;
    for policy in &simulation.policies {
        writeln!(
            out,
            "<dt>{}</dt><dd>{}</dd>",
            Text(&policy.name),
            Text(&policy.source)
        )?;
    }
    writeln!(
        out,
        "</dl>\n<h2 id=\"caveats\">What a replay of logs cannot know</h2>\n<ul>"
    )?;
    for caveat in simulation.caveats {
        writeln!(out, "<li>{}</li>", Text(caveat))?;
    }
    writeln!(out, "</ul>")?;
    super::html::write_inputs(out, &simulation.read.inputs)?;
    super::html::write_foot(out)
}

/// One panel per policy: the recipients it lets out (bars) and holds back
/// (line), over all accounts.
fn write_chart(out: &mut dyn Write, simulation: &Simulation) -> io::Result<()> {
    writeln!(out, "<h2 id=\"chart\">Over time</h2>")?;
    let (Some(first), Some(last)) = (simulation.first_event, simulation.last_event) else {
        return writeln!(out, "<p>No events to draw.</p>");
    };
    let axis = TimeAxis::new(first, last);
    let panels = simulation
        .policies
        .iter()
        .map(|policy| {
            let points = |held: bool| {
                policy
                    .hours
                    .iter()
                    .map(move |(at, hour)| (*at, if held { hour.held_back } else { hour.let_out }))
            };
            Panel {
                label: policy.name.clone(),
                series: vec![
                    Series {
                        name: "recipients let out",
                        values: axis.sum(points(false)),
                    },
                    Series {
                        name: "recipients held back",
                        values: axis.sum(points(true)),
                    },
                ],
            }
        })
        .collect();
    svg::write_chart(
        out,
        &axis,
        &Chart {
            id: "policies",
            title: "Recipients each policy lets out and holds back, all accounts",
            y_label: "recipients",
            panels,
            not_shown: 0,
            not_shown_what: "policies",
        },
    )
}
