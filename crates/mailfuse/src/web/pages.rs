//! The pages, rendered on the server. No script; the only style is the
//! inline sheet below, allowed by the response's CSP nonce.

use std::fmt::Write;

use mailfuse_core::Timestamp;
use mailfuse_store::{ActionRecord, Block, Lock, Sender, StoredIncident};
use serde_json::Value;

use crate::config::describe_duration;
use crate::html_escape::{Attr, Text};

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f5f6f8}
header{background:#1d2430;color:#fff;padding:.6em 1.2em;display:flex;justify-content:space-between;align-items:center}
header h1{font-size:1.2em;margin:0}header form{display:inline}
main{padding:0 1.2em 2em}section{background:#fff;border:1px solid #d8dce3;border-radius:6px;margin:1em 0;padding:.4em 1em}
h2{font-size:1.05em;margin:.6em 0}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .5em;border-top:1px solid #eceef2;vertical-align:top}
th{font-weight:600;color:#505a6b}td.n{text-align:right;font-variant-numeric:tabular-nums}
.kind{font-weight:600}.compromised_account{color:#b3261e}.password_guessing{color:#8a4b00}.limit_exceeded{color:#6a3fa0}.suspicious_activity{color:#9a6700}.misconfigured_client{color:#57606a}
ul{margin:.2em 0;padding-left:1.2em}pre{margin:.2em 0;white-space:pre-wrap;word-break:break-all;font-size:12px;background:#f5f6f8;padding:.3em}
.failed{color:#b3261e}.ok{color:#1e7b34}.muted{color:#7a8394}
button{cursor:pointer;border:1px solid #b3261e;background:#fff;color:#b3261e;border-radius:4px;padding:.15em .7em}
header button,header a{color:#fff;border-color:#fff;background:none}
.login{max-width:24em;margin:4em auto}.login input{width:100%;box-sizing:border-box;margin:.4em 0;padding:.4em}
.error{color:#b3261e}td.evidence{width:40%}
";

/// A whole page around `body`.
pub fn page(nonce: &str, title: &str, header: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style nonce=\"{nonce}\">{STYLE}</style></head>\
         <body><header><h1>mailfuse</h1><div>{header}</div></header><main>{body}</main></body></html>\n",
        title = Text(title),
        nonce = Attr(nonce),
    )
}

/// The login form; `failed` after a wrong token.
pub fn login(nonce: &str, failed: bool) -> String {
    let error = if failed {
        "<p class=\"error\" id=\"login-error\">Wrong token.</p>"
    } else {
        ""
    };
    let body = format!(
        "<section class=\"login\"><h2>Log in to make changes</h2>{error}\
         <form method=\"post\" action=\"/login\">\
         <label for=\"token\">Token (web.token in the secrets file)</label>\
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" autofocus>\
         <button type=\"submit\" id=\"login\">Log in</button></form></section>"
    );
    page(nonce, "mailfuse: log in", "", &body)
}

/// A page that says why a request was refused.
pub fn message(nonce: &str, text: &str) -> String {
    let body = format!(
        "<section><p>{}</p><p><a href=\"/\">Back to the dashboard</a></p></section>",
        Text(text)
    );
    page(nonce, "mailfuse", "", &body)
}

/// What the dashboard shows, read from the store.
pub struct View {
    pub incidents: Vec<StoredIncident>,
    pub locks: Vec<Lock>,
    pub blocks: Vec<Block>,
    pub senders: Vec<Sender>,
    pub actions: Vec<ActionRecord>,
    pub now: Timestamp,
}

/// Who is looking: what the page offers them.
pub enum Viewer<'a> {
    /// Logged in: buttons, with the session's CSRF token.
    Admin { csrf: &'a str },
    /// `web.read_only`: no buttons.
    ReadOnly,
}

pub fn dashboard(nonce: &str, view: &View, viewer: &Viewer<'_>) -> String {
    let header = match viewer {
        Viewer::Admin { csrf } => format!(
            "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"logout\">Log out</button></form>",
            Attr(csrf)
        ),
        Viewer::ReadOnly => "<span class=\"muted\">read-only</span>".to_string(),
    };
    let csrf = match viewer {
        Viewer::Admin { csrf } => Some(*csrf),
        Viewer::ReadOnly => None,
    };
    let mut body = String::new();
    // The short lists first; blocks can run to hundreds of IPs.
    locks(&mut body, &view.locks, csrf);
    senders(&mut body, &view.senders, view.now);
    incidents(&mut body, &view.incidents);
    blocks(&mut body, &view.blocks, view.now, csrf);
    actions(&mut body, &view.actions);
    page(nonce, "mailfuse dashboard", &header, &body)
}

fn incidents(out: &mut String, incidents: &[StoredIncident]) {
    let _ = write!(
        out,
        "<section id=\"incidents\"><h2>Incidents ({})</h2>",
        incidents.len()
    );
    if incidents.is_empty() {
        out.push_str("<p class=\"muted\">None.</p></section>");
        return;
    }
    out.push_str(
        "<table><tr><th>Detected</th><th>Kind</th><th>Account or IP</th><th>Score</th>\
         <th>Reasons</th><th>Evidence</th></tr>",
    );
    for incident in incidents {
        let details: Value = serde_json::from_str(&incident.json).unwrap_or(Value::Null);
        let strings = |key: &str| -> Vec<String> {
            details
                .get(key)
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| match item {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let score = details
            .get("score")
            .and_then(Value::as_u64)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let ips = strings("ips");
        let _ = write!(
            out,
            "<tr class=\"incident\"><td>{}</td><td class=\"kind {kind}\">{kind}</td><td class=\"subject\">{}",
            incident.detected_at,
            Text(&incident.subject),
            kind = Text(&incident.kind),
        );
        if !ips.is_empty() && ips.join(",") != incident.subject {
            let _ = write!(
                out,
                "<br><span class=\"muted\">from {}</span>",
                Text(&ips.join(", "))
            );
        }
        let hosts = strings("hosts");
        if !hosts.is_empty() {
            let _ = write!(
                out,
                "<br><span class=\"muted\">seen on {}</span>",
                Text(&hosts.join(", "))
            );
        }
        let _ = write!(out, "</td><td class=\"n\">{}</td><td><ul>", Text(&score));
        for reason in strings("reasons") {
            let _ = write!(out, "<li>{}</li>", Text(&reason));
        }
        out.push_str("</ul></td><td class=\"evidence\">");
        for line in strings("evidence") {
            let _ = write!(out, "<pre>{}</pre>", Text(&line));
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table></section>");
}

fn locks(out: &mut String, locks: &[Lock], csrf: Option<&str>) {
    let _ = write!(
        out,
        "<section id=\"locks\"><h2>Locked accounts ({})</h2>",
        locks.len()
    );
    if locks.is_empty() {
        out.push_str("<p class=\"muted\">None.</p></section>");
        return;
    }
    out.push_str("<table><tr><th>Account</th><th>Since</th><th>Why</th><th></th></tr>");
    for lock in locks {
        let _ = write!(
            out,
            "<tr class=\"lock\"><td class=\"account\">{}</td><td>{}</td><td>{}</td><td>",
            Text(&lock.account),
            lock.since,
            Text(&lock.reason)
        );
        if let Some(csrf) = csrf {
            button(out, "/unlock", "account", &lock.account, csrf, "Unlock");
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table></section>");
}

fn blocks(out: &mut String, blocks: &[Block], now: Timestamp, csrf: Option<&str>) {
    let _ = write!(
        out,
        "<section id=\"blocks\"><h2>Blocked IPs ({})</h2>",
        blocks.len()
    );
    if blocks.is_empty() {
        out.push_str("<p class=\"muted\">None.</p></section>");
        return;
    }
    out.push_str("<table><tr><th>IP</th><th>Since</th><th>Until</th><th>Why</th><th></th></tr>");
    for block in blocks {
        let ip = block.ip.to_string();
        let left = block.until.as_secs().saturating_sub(now.as_secs());
        let expiry = if left > 0 {
            format!("in {}", roughly(left))
        } else {
            "expired".to_string()
        };
        let _ = write!(
            out,
            "<tr class=\"block\"><td class=\"ip\">{}</td><td>{}</td><td>{} <span class=\"muted\">({expiry})</span></td><td>{}</td><td>",
            Text(&ip),
            block.since,
            block.until,
            Text(&block.reason)
        );
        if let Some(csrf) = csrf {
            button(out, "/unblock", "ip", &ip, csrf, "Unblock");
        }
        out.push_str("</td></tr>");
    }
    out.push_str("</table></section>");
}

/// A form with one button that posts `name=value` and the CSRF token.
fn button(out: &mut String, action: &str, name: &str, value: &str, csrf: &str, label: &str) {
    let _ = write!(
        out,
        "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"{name}\" value=\"{}\"><button type=\"submit\">{label}</button></form>",
        Attr(csrf),
        Attr(value)
    );
}

fn senders(out: &mut String, senders: &[Sender], now: Timestamp) {
    out.push_str("<section id=\"senders\"><h2>Top senders now</h2>");
    if senders.is_empty() {
        out.push_str("<p class=\"muted\">No messages lately (watch refreshes this every few seconds).</p></section>");
        return;
    }
    out.push_str(
        "<table><tr><th>Account</th><th>Window</th><th>Sent</th><th>Limit</th><th>Counted by</th></tr>",
    );
    for sender in senders {
        let window = &sender.window;
        let limit = window
            .max
            .map_or_else(|| "none".to_string(), |max| max.to_string());
        let age = roughly(now.as_secs().saturating_sub(sender.updated_at.as_secs()));
        let _ = write!(
            out,
            "<tr class=\"sender\"><td>{}</td><td>{}</td><td class=\"n\">{} {}</td><td class=\"n\">{limit}</td>\
             <td>{} <span class=\"muted\">({age} ago)</span></td></tr>",
            Text(&window.account),
            describe_duration(window.window_secs),
            window.count,
            Text(&window.metric),
            Text(&sender.source),
        );
    }
    out.push_str("</table></section>");
}

/// A span of time in its two largest units, rounded down (`20d 23h`).
fn roughly(secs: i64) -> String {
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let secs = secs.max(0);
    for (i, (unit, name)) in units.iter().enumerate() {
        if secs >= *unit || *unit == 1 {
            let mut text = format!("{}{name}", secs / unit);
            if let Some((next, next_name)) = units.get(i + 1) {
                let rest = (secs % unit) / next;
                if rest > 0 {
                    text.push_str(&format!(" {rest}{next_name}"));
                }
            }
            return text;
        }
    }
    String::new()
}

fn actions(out: &mut String, actions: &[ActionRecord]) {
    out.push_str("<section id=\"actions\"><h2>Recent actions</h2>");
    if actions.is_empty() {
        out.push_str("<p class=\"muted\">None.</p></section>");
        return;
    }
    out.push_str("<table><tr><th>At</th><th>Action</th><th>Target</th><th>Outcome</th></tr>");
    for action in actions {
        let (class, word) = if action.ok {
            ("ok", "ok")
        } else {
            ("failed", "failed")
        };
        let _ = write!(
            out,
            "<tr class=\"action\"><td>{}</td><td>{}</td><td>{}</td><td><span class=\"{class}\">{word}</span>: {}</td></tr>",
            action.at,
            Text(&action.action),
            Text(&action.target),
            Text(&action.outcome),
        );
    }
    out.push_str("</table></section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_two_units() {
        assert_eq!(roughly(1_814_396), "20d 23h");
        assert_eq!(roughly(86_400), "1d");
        assert_eq!(roughly(3_725), "1h 2m");
        assert_eq!(roughly(59), "59s");
        assert_eq!(roughly(0), "0s");
        assert_eq!(roughly(-5), "0s");
    }
}
