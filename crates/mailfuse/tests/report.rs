//! `mailfuse scan --format html` and `--format csv` as a user runs them: the
//! bundled example, a log full of markup and terminal escapes, and the
//! commands that must refuse these formats.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/run.rs"]
mod run;

#[path = "support/browser.rs"]
mod browser;

#[path = "support/hostile.rs"]
mod hostile;

use std::fs;
use std::path::{Path, PathBuf};

use run::mailfuse;

use browser::{screenshot_path, Browser};
use hostile::hostile_logs;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kerio")
}

/// Runs `scan --format html` on `input` and returns the page.
fn html_report(input: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let output = mailfuse(&[
        "scan",
        "--format",
        "html",
        "-o",
        page.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "incidents found; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty(), "the report went to the file");
    fs::read_to_string(page).unwrap()
}

/// The `<figure>` of the chart `id`.
fn chart<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("<figure class=\"chart\" id=\"chart-{id}\">"))
        .unwrap_or_else(|| panic!("chart {id} missing"));
    let end = page[start..].find("</figure>").unwrap();
    &page[start..start + end]
}

#[test]
fn example_html_report_shows_the_incident_and_draws_the_spike() {
    let page = html_report(&example_dir());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    // Self-contained: nothing fetched, no script.
    for outside in ["<script", "<link", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(outside), "{outside} in the page");
    }
    assert!(page.contains("default-src 'none'"), "CSP forbids scripts");
    // The incident with its reasons and evidence.
    assert!(page.contains("Compromised account: sales@acme-tools.example"));
    assert!(page.contains("173.16.65.213 failed 30 logins before it sent"));
    assert!(page.contains("<pre>[05/Nov/2026 02:13:00] Recv: Queue-ID: 6aebd81c-00031e07"));
    assert!(page.contains("Password guessing: network 185.220.101.0/24"));
    // The per-account table and the inputs.
    assert!(page.contains("<tr class=\"bad\"><td class=\"t\">sales@acme-tools.example</td><td class=\"t\">yes</td><td>2466</td>"));
    assert!(page.contains("mail.log"));
    // Three charts, each titled and described, with bars drawn.
    assert_eq!(page.matches("<svg ").count(), 3);
    for id in ["traffic", "ips", "guessing"] {
        let figure = chart(&page, id);
        assert!(figure.contains(&format!("aria-labelledby=\"{id}-title {id}-desc\"")));
        assert!(figure.contains(&format!("<title id=\"{id}-title\">")));
        assert!(
            figure.contains("<path class=\"bars\" d=\"M"),
            "{id}: no bars"
        );
        assert!(figure.contains("time (UTC"), "{id}: axis label");
        assert!(
            figure.contains("11-05 00:00"),
            "{id}: real times on the axis"
        );
    }
    // The hijacked account comes first, and its spike is the chart's top.
    let traffic = chart(&page, "traffic");
    let first_label = traffic.split("<text class=\"label\"").nth(1).unwrap();
    assert!(first_label
        .contains(">sales@acme-tools.example — peak 567 messages at 2026-11-05T04:00:00Z<"));
    assert!(traffic.contains("top = 567"));
    assert!(traffic.contains("more accounts not shown."));
    assert!(
        traffic.contains("<polyline class=\"line\""),
        "failed recipients line"
    );
    let guessing = chart(&page, "guessing");
    assert!(guessing.contains(">173.16.65.213 — peak"));
    assert!(guessing.contains(">network 185.220.101.0/24 — peak"));
    // Small: bucketed per hour, capped panels.
    assert!(page.len() < 200_000, "{} bytes", page.len());
}

#[test]
fn log_text_cannot_inject_markup_into_the_html_report() {
    let dir = tempfile::tempdir().unwrap();
    hostile_logs(dir.path());
    let page = html_report(dir.path());
    // The payloads were read: the incident and the guesser are there…
    assert!(page.contains(
        "Compromised account: &quot;&gt;&lt;img src=x onerror=alert(1)&gt;@acme.example"
    ));
    assert!(page.contains("Subject: &lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31mred"));
    assert!(page.contains("user &lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31m0"));
    assert!(page.contains("&quot;&gt;&lt;img src=x onerror=alert(2)&gt;.log"));
    // …as text only.
    hostile::assert_no_raw_payload(&page);
    // The SVG labels (account names) are escaped too.
    assert!(chart(&page, "traffic")
        .contains(">&quot;&gt;&lt;img src=x onerror=alert(1)&gt;@acme.example — peak 40 messages"));
}

#[test]
fn csv_neutralises_formulas_and_quotes_fields() {
    let dir = tempfile::tempdir().unwrap();
    hostile_logs(dir.path());
    let output = mailfuse(&["scan", "--format", "csv", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let csv = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(
        rows[1].starts_with("\"\"\"><img src=x onerror=alert(1)>@acme.example\",yes,40,40,40,40,")
    );
    assert!(rows[2].starts_with("\"'=hyperlink(\"\"http://evil\"\")@acme.example\",no,3,"));
    assert!(!csv.contains('\x1b'));
}

#[test]
fn example_csv_is_the_account_table() {
    let output = mailfuse(&["scan", "--format", "csv", example_dir().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let csv = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(rows[0], "account,compromised,messages,recipients,external_recipients,failed_recipients,foreign_from_messages,sending_ips,new_ips,services,peak_per_minute,peak_per_hour,first_seen,last_seen");
    assert_eq!(rows[1], "sales@acme-tools.example,yes,2466,2466,2466,1494,2466,173.16.65.213,173.16.65.213,SMTP,14,571,2026-11-04T21:26:54Z,2026-11-05T05:39:55Z");
    assert_eq!(rows.len(), 20, "header and 19 accounts");
    assert!(rows.iter().all(|r| r.split(',').count() == 14), "{csv}");
}

#[test]
fn html_and_csv_are_only_for_scan() {
    let example = example_dir();
    for format in ["html", "csv"] {
        let trace = mailfuse(&[
            "trace",
            "--format",
            format,
            "6aebd81c-00031e07",
            example.to_str().unwrap(),
        ]);
        let status = mailfuse(&["status", "--format", format, "-c", "/nonexistent.toml"]);
        for output in [trace, status] {
            assert_eq!(output.status.code(), Some(2));
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(&format!("invalid value '{format}' for '--format <FORMAT>'"))
                    && stderr.contains("[possible values: text, json]"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn json_is_unchanged_by_the_charts() {
    let output = mailfuse(&["scan", "--format", "json", example_dir().to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report.get("hourly").is_none());
}

/// Writes the HTML report of `input` into `dir` and returns its path.
fn report_file(input: &Path, dir: &Path) -> PathBuf {
    let path = dir.join("report.html");
    fs::write(&path, html_report(input)).unwrap();
    path
}

#[test]
fn chromium_draws_the_report_charts_and_lists_the_incident() {
    let dir = tempfile::tempdir().unwrap();
    let report = report_file(&example_dir(), dir.path());
    let browser = Browser::start();
    browser.open_file(&report);
    for id in ["traffic", "ips", "guessing"] {
        // The panel's box, and the bars' drawn area (getBBox: what was
        // really laid out, not what the markup says).
        let drawn = browser.execute(&format!(
            "const svg = document.querySelector('#chart-{id} svg');\
             const box = svg.getBoundingClientRect();\
             let area = 0, bars = 0;\
             for (const bar of svg.querySelectorAll('path.bars')) {{\
               const b = bar.getBBox(); area += b.width * b.height; bars += 1;\
             }}\
             return [box.width, box.height, bars, area];"
        ));
        let numbers: Vec<f64> = drawn
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_f64().unwrap())
            .collect();
        assert!(
            numbers[0] > 100.0 && numbers[1] > 50.0 && numbers[2] >= 1.0 && numbers[3] > 10.0,
            "chart {id} not drawn: {drawn}"
        );
    }
    let incidents = browser.texts("section.incident h3");
    assert!(
        incidents
            .iter()
            .any(|title| title.contains("sales@acme-tools.example")),
        "{incidents:?}"
    );
    browser.screenshot(&screenshot_path("report.png"));
    browser.execute("document.getElementById('charts').scrollIntoView(); return 0;");
    browser.screenshot(&screenshot_path("report-charts.png"));
}

#[test]
fn chromium_shows_hostile_log_text_as_text_and_runs_none_of_it() {
    let logs = tempfile::tempdir().unwrap();
    hostile_logs(logs.path());
    let dir = tempfile::tempdir().unwrap();
    let report = report_file(logs.path(), dir.path());
    let browser = Browser::start();
    browser.open_file(&report);
    // An alert() that ran would hold the page: WebDriver refuses the next
    // command. None did, nothing was added to the page, and the payloads
    // show as the text they are.
    let state = browser.execute(
        "return [typeof window.__xss, document.querySelectorAll('script, img').length, document.body.innerText];",
    );
    let state = state.as_array().unwrap();
    assert_eq!(state[0], "undefined");
    assert_eq!(state[1], 0, "an element was injected");
    let text = state[2].as_str().unwrap();
    assert!(
        text.contains("Subject: <script>alert(1)</script>\\x1b[31mred"),
        "{text}"
    );
    assert!(text.contains("\"><img src=x onerror=alert(1)>@acme.example"));
    browser.screenshot(&screenshot_path("report-hostile.png"));
}
