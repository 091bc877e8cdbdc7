//! GeoIP databases as an admin gives them: `scan --geoip-country/--geoip-asn`,
//! `[detect.geoip]` in the configuration, and the clear error for a file
//! that is not there. The databases are built by the tests (the detector's
//! test writer), never downloaded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

#[path = "support/run.rs"]
mod run;

#[path = "../../detect/tests/support/mmdb.rs"]
mod mmdb;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Output;

use run::mailfuse;

use serde_json::Value;

/// A Kerio log of l.kral working three days from the Prague office, a
/// Prague login on the fourth morning and, an hour later, forged mail in
/// his name from Lagos.
fn write_kerio_logs(dir: &Path) {
    let account = "l.kral@acme-tools.example";
    let mut audit = String::new();
    let mut mail = String::new();
    let mut queue = 0x31a00;
    let mut recv = |mail: &mut String, stamp: &str, ip: &str, from: &str, to: &str| {
        queue += 1;
        writeln!(
            mail,
            "[{stamp}] Recv: Queue-ID: 6ae83272-{queue:08x}, Service: SMTP, From: <{from}>, To: <{to}>, Size: 3000, Sender-Host: {ip}, User: {account}, SSL: yes, Subject: Hello, Msg-Id: <{queue}@acme-tools.example>"
        )
        .unwrap();
    };
    for day in 2..5 {
        writeln!(
            audit,
            "[0{day}/Nov/2026 07:32:40] IMAP: User {account} authenticated from IP address 198.51.100.10"
        )
        .unwrap();
        for hour in 8..17 {
            let stamp = format!("0{day}/Nov/2026 {hour:02}:10:00");
            recv(
                &mut mail,
                &stamp,
                "198.51.100.10",
                account,
                "partner@partner.example",
            );
        }
    }
    writeln!(
        audit,
        "[05/Nov/2026 09:00:00] IMAP: User {account} authenticated from IP address 198.51.100.10"
    )
    .unwrap();
    for i in 0..30 {
        let stamp = format!("05/Nov/2026 10:{i:02}:00");
        let to = format!("victim{i}@aol.example");
        recv(
            &mut mail,
            &stamp,
            "203.0.113.9",
            "billing@bank-secure.example",
            &to,
        );
    }
    std::fs::write(dir.join("audit.log"), audit).unwrap();
    std::fs::write(dir.join("mail.log"), mail).unwrap();
}

fn write_databases(dir: &Path) {
    std::fs::write(dir.join("GeoLite2-City.mmdb"), mmdb::city_database()).unwrap();
    std::fs::write(dir.join("GeoLite2-ASN.mmdb"), mmdb::asn_database()).unwrap();
}

fn hijack_reasons(output: &Output) -> (u64, String) {
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let hijack = report["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "compromised_account")
        .expect("the hijack is found");
    let reasons: Vec<&str> = hijack["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (hijack["score"].as_u64().unwrap(), reasons.join("\n"))
}

#[test]
fn scan_with_geoip_databases_names_the_new_country_and_the_impossible_travel() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    write_kerio_logs(&logs);
    write_databases(dir.path());
    let logs = logs.to_str().unwrap();
    let scan = |extra: &[&str]| {
        let mut args = vec!["scan", "--format", "json", "--timezone", "UTC", logs];
        args.extend_from_slice(extra);
        mailfuse(&args)
    };

    let (score_without, reasons) = hijack_reasons(&scan(&[]));
    assert_eq!(score_without, 55, "{reasons}");
    assert!(!reasons.contains("Nigeria"), "{reasons}");

    let city = dir.path().join("GeoLite2-City.mmdb");
    let asn = dir.path().join("GeoLite2-ASN.mmdb");
    let with_flags = scan(&[
        "--geoip-country",
        city.to_str().unwrap(),
        "--geoip-asn",
        asn.to_str().unwrap(),
    ]);
    let (score, reasons) = hijack_reasons(&with_flags);
    assert_eq!(score, 100, "{reasons}");
    assert!(
        reasons
            .contains("203.0.113.9 is in Nigeria, a country this account never used (before: CZ)"),
        "{reasons}"
    );
    assert!(
        reasons.contains("impossible travel: Prague → Lagos, 4,9"),
        "{reasons}"
    );

    // The same databases named in the configuration file.
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[detect.geoip]\ncountry_database = {:?}\nasn_database = {:?}\n",
            city.to_str().unwrap(),
            asn.to_str().unwrap()
        ),
    )
    .unwrap();
    let (score, from_file) = hijack_reasons(&scan(&["-c", config.to_str().unwrap()]));
    assert_eq!((score, from_file), (100, reasons));
}

#[test]
fn a_missing_database_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("GeoLite2-Country.mmdb");
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [\"/var/log/mail.log\"]\n\n[detect.geoip]\ncountry_database = {:?}\n",
            missing.to_str().unwrap()
        ),
    )
    .unwrap();
    let check = mailfuse(&["check-config", "-c", config.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("detect.geoip.country_database: cannot read")
            && stderr.contains("download GeoLite2-Country.mmdb"),
        "{stderr}"
    );

    let logs = dir.path().join("mail.log");
    std::fs::write(&logs, "").unwrap();
    let scan = mailfuse(&[
        "scan",
        "--geoip-asn",
        missing.to_str().unwrap(),
        logs.to_str().unwrap(),
    ]);
    assert_eq!(scan.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&scan.stderr);
    assert!(
        stderr.contains("cannot read") && stderr.contains("download GeoLite2-ASN.mmdb"),
        "{stderr}"
    );
}
