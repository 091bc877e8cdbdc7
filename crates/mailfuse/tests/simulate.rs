//! `mailfuse simulate` as a user runs it: the bundled example's hijack and
//! newsletter under each policy, checked against counts made by hand from
//! `examples/kerio/mail.log`; `--limit` mistakes; the JSON shape; a hostile
//! account name in the HTML page.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/run.rs"]
mod run;

#[path = "support/hostile.rs"]
mod hostile;

use std::path::{Path, PathBuf};
use std::process::Output;

use run::mailfuse;
use serde_json::{json, Value};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kerio")
}

fn json_of(output: &Output) -> Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn simulate_json(extra: &[&str]) -> Value {
    let dir = example_dir();
    let mut args = vec!["simulate", dir.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    json_of(&mailfuse(&args))
}

fn policy<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no policy {name:?} in {report:#}"))
}

fn sales(policy: &Value) -> &Value {
    let hijacks = policy["hijacks"].as_array().unwrap();
    assert_eq!(hijacks.len(), 1, "{policy:#}");
    assert_eq!(hijacks[0]["account"], "sales@acme-tools.example");
    &hijacks[0]
}

fn sent(messages: u64, recipients: u64) -> Value {
    json!({ "messages": messages, "recipients": recipients })
}

fn others(policy: &Value) -> Vec<&str> {
    policy["legitimate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account"].as_str().unwrap())
        .collect()
}

/// The hand counts, from `examples/kerio/mail.log` (server clock UTC+01:00,
/// so 02:33:49 in the log is 01:33:49Z):
///
/// - sales' spam: `grep -c 'Recv: .*User: sales@acme-tools.example'` = 2466
///   messages, one recipient each (2466 `Sent:` lines for their queue ids);
/// - 200 messages a day: the first 200 go, the 201st Recv line of sales
///   (`grep 'Recv: .*User: sales@' | sed -n 201p`) is at 02:33:49: tripped
///   at 01:33:49Z, 2466 − 200 = 2266 held back;
/// - BlockCracking: the failures of sales' queue ids
///   (`grep -n -F -f sales-queue-ids | grep 'Result: failed'`), the 101st
///   within the hour is line 3397 at 02:30:10: locked at 01:30:10Z; sales'
///   Recv lines above it (`head -3396 | grep -c 'Recv: .*User: sales@'`) =
///   168 let out, 2466 − 168 = 2298 held back;
/// - the newsletter: marketing's recipients, each counted when a line first
///   names it (the Recv line's `To:` or a `Sent:` line's `Recipient:`),
///   listed with awk; on 04/Nov all 801 are after 10:00 and all external
///   but none: the 501st external one is first named at 10:04:45 (09:04:45Z)
///   (505 were named before it, 5 of them on 02–03/Nov) and 301 are named
///   from then to the end of that day (the UTC day ends
///   at 01:00 local, after marketing's last mail of the 4th at 14:57), so
///   the 500-external-recipients-an-hour policy locks marketing at
///   09:04:45Z and holds back 301 recipients.
#[test]
fn example_shows_the_sales_hijack_per_policy_against_hand_counts() {
    let report = simulate_json(&[]);
    let hijacks = report["hijacks"].as_array().unwrap();
    assert_eq!(hijacks.len(), 1);
    assert_eq!(hijacks[0]["account"], "sales@acme-tools.example");
    assert_eq!(hijacks[0]["ips"], json!(["173.16.65.213"]));
    assert_eq!(hijacks[0]["sent"], sent(2466, 2466));

    let per_day = sales(policy(&report, "200 messages a day"));
    assert_eq!(per_day["before_trip"], sent(200, 200));
    assert_eq!(per_day["let_out"], sent(200, 200));
    assert_eq!(per_day["held_back"], sent(2266, 2266));
    assert_eq!(per_day["tripped_at"], "2026-11-05T01:33:49Z");
    assert_eq!(per_day["locked_at"], Value::Null);

    let block_cracking = sales(policy(&report, "Exim BlockCracking"));
    assert_eq!(block_cracking["locked_at"], "2026-11-05T01:30:10Z");
    assert_eq!(block_cracking["let_out"], sent(168, 168));
    assert_eq!(block_cracking["held_back"], sent(2298, 2298));

    // The others stop it too, each letting out less than went out.
    for name in [
        "mailfuse defaults",
        "100 messages an hour",
        "500 external recipients an hour",
    ] {
        let outcome = sales(policy(&report, name));
        let out = outcome["let_out"]["recipients"].as_u64().unwrap();
        let held = outcome["held_back"]["recipients"].as_u64().unwrap();
        assert!(
            out > 0 && held > 0 && out + held == 2466,
            "{name}: {outcome}"
        );
    }
    // An hourly cap of 100 lets out exactly 100 before it trips.
    let hourly = sales(policy(&report, "100 messages an hour"));
    assert_eq!(hourly["before_trip"], sent(100, 100));
}

#[test]
fn example_shows_the_newsletter_deferred_by_the_tight_policies_only() {
    let report = simulate_json(&[]);
    let microsoft = policy(&report, "500 external recipients an hour");
    assert_eq!(others(microsoft), ["marketing@acme-tools.example"]);
    let marketing = &microsoft["legitimate"][0];
    assert_eq!(marketing["locked_at"], "2026-11-04T09:04:45Z");
    assert_eq!(marketing["held_back"]["recipients"], 301);
    // Before the lock: those 500 and the 5 of 02–03/Nov.
    assert_eq!(marketing["before_trip"]["recipients"], 505);

    // 50 recipients a minute defers the newsletter (ten per message, a
    // message every few seconds).
    let defaults = policy(&report, "mailfuse defaults");
    assert_eq!(others(defaults), ["marketing@acme-tools.example"]);
    assert!(
        defaults["legitimate"][0]["held_back"]["recipients"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(defaults["legitimate"][0]["locked_at"], Value::Null);

    for loose in [
        "100 messages an hour",
        "200 messages a day",
        "Exim BlockCracking",
    ] {
        assert!(others(policy(&report, loose)).is_empty(), "{loose}");
    }
}

#[test]
fn limit_flags_and_the_configuration_are_replayed_first() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        "[limits]\nallow = [\"marketing@acme-tools.example\"]\n\n[[limits.default]]\nwindow = \"1h\"\nrecipients = 5\n",
    )
    .unwrap();
    let report = simulate_json(&[
        "-c",
        config.to_str().unwrap(),
        "--limit",
        "messages:200/1d",
        "--limit",
        "failed-recipients:100/1h",
    ]);
    let names: Vec<&str> = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names[..4],
        [
            "your configuration",
            "messages:200/1d",
            "failed-recipients:100/1h",
            "mailfuse defaults"
        ]
    );
    // The flags say what the references say (same limits, same counts).
    assert_eq!(
        sales(policy(&report, "messages:200/1d")),
        sales(policy(&report, "200 messages a day"))
    );
    let flag = policy(&report, "failed-recipients:100/1h");
    assert_eq!(flag["on_over"], "lock");
    assert_eq!(sales(flag), sales(policy(&report, "Exim BlockCracking")));
    // The configuration's allow-list spares the newsletter; its tight
    // hourly limit holds back the others (ordinary users send up to 9
    // recipients an hour: `scan`'s max/h column).
    let own = policy(&report, "your configuration");
    assert!(!others(own).contains(&"marketing@acme-tools.example"));
    assert!(!others(own).is_empty());
    assert_eq!(own["limits"][0], "5 recipients per 1h");
    assert_eq!(own["approximation"], false);
    assert_eq!(policy(&report, "Exim BlockCracking")["approximation"], true);
}

#[test]
fn json_has_the_documented_shape() {
    let report = simulate_json(&[]);
    for key in [
        "first_event",
        "last_event",
        "hijacks",
        "policies",
        "caveats",
        "inputs",
        "time_zone",
    ] {
        assert!(report.get(key).is_some(), "no {key}: {report:#}");
    }
    let policy = &report["policies"][0];
    for key in [
        "name",
        "source",
        "approximation",
        "limits",
        "recipients",
        "on_over",
        "hijacks",
        "legitimate",
    ] {
        assert!(policy.get(key).is_some(), "policy has no {key}");
    }
    let outcome = sales(policy);
    for key in [
        "account",
        "before_trip",
        "let_out",
        "held_back",
        "tripped_at",
        "locked_at",
    ] {
        assert!(outcome.get(key).is_some(), "outcome has no {key}");
    }
    assert!(report["caveats"].as_array().unwrap().len() >= 3);
}

#[test]
fn text_report_is_a_table_per_policy_with_the_caveats() {
    let output = mailfuse(&["simulate", example_dir().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("HIJACKS FOUND (1)"), "{text}");
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("200 messages a day "))
        .unwrap();
    assert!(
        row.contains("200 / 200")
            && row.contains("2,266 / 2,266")
            && row.contains("2026-11-05T01:33:49Z"),
        "{row}"
    );
    assert!(text.contains("POLICY Exim BlockCracking (approximation)"));
    assert!(text.contains("other    marketing@acme-tools.example"));
    assert!(text.contains("WHAT A REPLAY OF LOGS CANNOT KNOW"));
}

#[test]
fn a_wrong_limit_is_refused_with_what_to_write() {
    let dir = example_dir();
    for (limit, expected) in [
        ("100/1h", "KIND:MAX/WINDOW"),
        (
            "mails:100/1h",
            "messages, recipients, external-recipients or failed-recipients",
        ),
        ("messages:100/1y", "not a duration"),
        (
            "recipients:5/1h,external-recipients:5/1h",
            "give each its own --limit",
        ),
    ] {
        let output = mailfuse(&["simulate", dir.to_str().unwrap(), "--limit", limit]);
        assert_eq!(output.status.code(), Some(2), "{limit}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{limit}: {stderr}");
        assert!(output.stdout.is_empty());
    }
    let missing = mailfuse(&["simulate", "/nonexistent/mail.log"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn hostile_account_names_are_text_in_the_html_page() {
    let dir = tempfile::tempdir().unwrap();
    hostile::hostile_logs(dir.path());
    let output = mailfuse(&["simulate", dir.path().to_str().unwrap(), "--format", "html"]);
    assert_eq!(output.status.code(), Some(0));
    let page = String::from_utf8(output.stdout).unwrap();
    // The hijacked account is reported…
    assert!(
        page.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;@acme.example"),
        "{page}"
    );
    // …as text only, and the chart is drawn.
    hostile::assert_no_raw_payload(&page);
    assert!(page.contains("<figure class=\"chart\" id=\"chart-policies\">"));
    assert!(page.contains("default-src 'none'"));
}

/// A labelled Postfix + Dovecot + Roundcube week (`mailfuse-loggen
/// labelled --form postfix --seed 7`): each hijack's spam, as labelled, is
/// what simulate counts from the hijack's IPs, every policy accounts for
/// all of it, and external recipients (named only by Postfix's delivery
/// lines) are counted: the external-recipients policy holds spam back.
#[test]
fn a_postfix_week_counts_each_labelled_hijack_and_its_external_recipients() {
    use mailfuse_loggen::labelled::labels::Class;
    use mailfuse_loggen::labelled::{generate, Form};
    let dir = tempfile::tempdir().unwrap();
    let labels = generate(Form::Postfix, 7, dir.path()).unwrap();
    let mut args: Vec<String> = vec!["simulate".into(), "--format".into(), "json".into()];
    args.extend(labels.scan_options.iter().cloned());
    args.extend(
        labels
            .files
            .iter()
            .map(|f| dir.path().join(f).to_string_lossy().into_owned()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = json_of(&mailfuse(&args));
    let hijacks = report["hijacks"].as_array().unwrap();
    let labelled: Vec<_> = labels
        .scenarios
        .iter()
        .filter(|s| s.class == Class::Hijack)
        .collect();
    assert_eq!(hijacks.len(), labelled.len(), "{report:#}");
    for scenario in &labelled {
        let hijack = hijacks
            .iter()
            .find(|h| h["account"] == scenario.accounts[0].as_str())
            .unwrap_or_else(|| panic!("{} not found", scenario.accounts[0]));
        assert_eq!(hijack["sent"]["messages"], scenario.messages, "{hijack}");
    }
    for policy in report["policies"].as_array().unwrap() {
        for (outcome, hijack) in policy["hijacks"].as_array().unwrap().iter().zip(hijacks) {
            for count in ["messages", "recipients"] {
                let of = |field: &str| outcome[field][count].as_u64().unwrap();
                assert_eq!(
                    of("let_out") + of("held_back"),
                    hijack["sent"][count].as_u64().unwrap(),
                    "{}: {outcome}",
                    policy["name"]
                );
            }
        }
    }
    let external = policy(&report, "500 external recipients an hour");
    let held: u64 = external["hijacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["held_back"]["recipients"].as_u64().unwrap())
        .sum();
    assert!(held > 0, "{external:#}");
}
