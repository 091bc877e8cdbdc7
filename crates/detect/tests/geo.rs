//! The optional GeoIP/ASN evidence, on databases the tests build
//! themselves (`support/mmdb.rs`): lookups, each account's history, and the
//! detector's judgement with and without a database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailfuse_detect::geo::{points, GeoHistory, Place};
use mailfuse_detect::{DetectConfig, Findings, GeoConfig, GeoError, GeoLookup, IncidentKind};
use support::feed::{at, ip, Feed, DAY};
use support::mmdb;

const HOUR: i64 = 3600;

const PRAGUE_OFFICE: &str = "198.51.100.10";
const BRNO_HOME: &str = "192.0.2.20";
const BERLIN: &str = "192.0.2.200";
const LAGOS: &str = "203.0.113.9";

/// Reads the tests' databases by their names, as the binary reads files.
fn read_test_files(path: &Path) -> io::Result<Vec<u8>> {
    match path.to_str() {
        Some("city.mmdb") => Ok(mmdb::city_database()),
        Some("asn.mmdb") => Ok(mmdb::asn_database()),
        Some("garbage.mmdb") => Ok(b"this is not a database".to_vec()),
        _ => Err(io::Error::new(io::ErrorKind::NotFound, "no such file")),
    }
}

fn geo_config(country: Option<&str>, asn: Option<&str>) -> Result<GeoConfig, Vec<GeoError>> {
    let mut config = GeoConfig {
        country_database: country.map(PathBuf::from),
        asn_database: asn.map(PathBuf::from),
        ..GeoConfig::default()
    };
    config.open(read_test_files)?;
    Ok(config)
}

fn both_databases() -> Arc<GeoLookup> {
    geo_config(Some("city.mmdb"), Some("asn.mmdb"))
        .unwrap()
        .lookup
        .expect("databases configured")
}

#[test]
fn lookups_place_known_ips_and_nothing_else() {
    let geo = both_databases();
    let prague = geo.lookup(ip(PRAGUE_OFFICE));
    assert_eq!(prague.country.map(|c| c.to_string()).as_deref(), Some("CZ"));
    assert_eq!(prague.country_name, Some("Czechia"));
    assert_eq!(prague.city, Some("Prague"));
    let location = prague.location.expect("a City database places it");
    assert_eq!((location.latitude, location.longitude), (50.08, 14.42));
    assert_eq!(location.accuracy_km, 20);
    assert_eq!(prague.asn, Some(64_500));
    assert_eq!(prague.asn_organisation, Some("Prague Office Net"));

    let mapped = geo.lookup(ip("::ffff:203.0.113.77"));
    assert_eq!(mapped.country.map(|c| c.to_string()).as_deref(), Some("NG"));

    let berlin = geo.lookup(ip(BERLIN));
    assert_eq!(berlin.country_name, Some("Germany"));
    assert_eq!(
        (berlin.city, berlin.location),
        (None, None),
        "a Country record has no place"
    );
    assert_eq!(berlin.asn, Some(64_501));

    for nowhere in [
        "1.1.1.1",
        "10.1.2.3",
        "127.0.0.1",
        "0.0.0.0",
        "100.64.0.1",
        "2001:db8::1",
        "::1",
    ] {
        assert_eq!(geo.lookup(ip(nowhere)), Place::default(), "{nowhere}");
    }
}

#[test]
fn private_addresses_are_nowhere_even_if_a_database_maps_them() {
    let bytes = mmdb::Builder::new("GeoLite2-City")
        .insert(
            "10.0.0.0/8",
            &mmdb::city("CZ", "Czechia", "Prague", (50.08, 14.42), 20),
        )
        .build();
    let geo = GeoLookup::open(Some(Path::new("private.mmdb")), None, |_| Ok(bytes.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(geo.lookup(ip("10.1.2.3")), Place::default());
}

#[test]
fn databases_that_cannot_be_used_are_clear_configuration_errors() {
    assert!(
        geo_config(None, None).unwrap().lookup.is_none(),
        "no database, no lookup"
    );

    let errors = geo_config(Some("/var/lib/GeoIP/GeoLite2-Country.mmdb"), None).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key(), "detect.geoip.country_database");
    let message = errors[0].to_string();
    for expected in [
        "cannot read /var/lib/GeoIP/GeoLite2-Country.mmdb",
        "download GeoLite2-Country.mmdb",
        "country_database =",
    ] {
        assert!(message.contains(expected), "{expected:?} in {message}");
    }

    let errors = geo_config(Some("garbage.mmdb"), Some("city.mmdb")).unwrap_err();
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "both reported: {messages:?}");
    assert!(
        matches!(errors[0], GeoError::Invalid { .. }),
        "{messages:?}"
    );
    assert!(
        messages[0].contains("garbage.mmdb is not a MaxMind database"),
        "{messages:?}"
    );
    assert!(
        matches!(errors[1], GeoError::WrongKind { .. }),
        "{messages:?}"
    );
    assert_eq!(errors[1].key(), "detect.geoip.asn_database");
    assert!(
        messages[1].contains("city.mmdb is a GeoLite2-City database, not a ASN one")
            && messages[1].contains("download GeoLite2-ASN.mmdb"),
        "{messages:?}"
    );

    let errors = geo_config(Some("asn.mmdb"), None).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .contains("a GeoLite2-ASN database, not a Country or City one"),
        "{}",
        errors[0]
    );
}

#[test]
fn a_corrupt_record_gives_no_place_rather_than_a_panic() {
    let mut bytes = mmdb::city_database();
    // Break every data byte between the tree's separator and the metadata:
    // the file still opens, its records no longer decode.
    let separator = bytes.windows(16).position(|w| w == [0; 16]).unwrap();
    let metadata = bytes
        .windows(14)
        .rposition(|w| w == b"\xAB\xCD\xEFMaxMind.com")
        .unwrap();
    for byte in &mut bytes[separator + 16..metadata] {
        *byte = 0xFF;
    }
    let geo = GeoLookup::open(Some(Path::new("corrupt.mmdb")), None, |_| Ok(bytes.clone()))
        .expect("the file's frame is sound")
        .expect("a database");
    assert_eq!(geo.lookup(ip(PRAGUE_OFFICE)), Place::default());
    let truncated = mmdb::city_database()[..40].to_vec();
    let errors =
        GeoLookup::open(Some(Path::new("cut.mmdb")), None, |_| Ok(truncated.clone())).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .contains("cut.mmdb is not a MaxMind database"),
        "{}",
        errors[0]
    );
}

/// Observes `ip` at `secs` in `history` with `geo`.
fn observe(
    geo: &GeoLookup,
    history: &mut GeoHistory,
    addr: &str,
    secs: i64,
) -> mailfuse_detect::geo::GeoEvidence {
    history.observe(ip(addr), &geo.lookup(ip(addr)), at(secs))
}

#[test]
fn the_first_place_is_not_new_a_later_country_and_network_are() {
    let geo = both_databases();
    let mut history = GeoHistory::default();
    assert!(
        observe(&geo, &mut history, PRAGUE_OFFICE, 0).is_empty(),
        "first place"
    );
    assert!(observe(&geo, &mut history, PRAGUE_OFFICE, DAY).is_empty());

    let home = observe(&geo, &mut history, BRNO_HOME, 2 * DAY);
    assert!(home.new_country.is_none(), "same country");
    let new_asn = home.new_asn.as_ref().expect("another network");
    assert_eq!(
        (new_asn.asn, new_asn.before.clone()),
        (64_501, vec![64_500])
    );
    assert_eq!(home.points(), points::NEW_ASN);
    assert_eq!(
        home.reasons(ip(BRNO_HOME)),
        vec!["192.0.2.20 is in AS64501 (Czech Home Broadband), a network this account never used (before: AS64500)"]
    );

    let abroad = observe(&geo, &mut history, BERLIN, 3 * DAY);
    let new_country = abroad.new_country.as_ref().expect("a new country");
    assert_eq!(new_country.country, "DE");
    assert_eq!(new_country.before, vec!["CZ"]);
    assert!(abroad.new_asn.is_none(), "AS64501 was seen from Brno");
    assert!(
        abroad.impossible_travel.is_none(),
        "no coordinates, no travel"
    );
    assert_eq!(abroad.points(), points::NEW_COUNTRY);

    assert!(
        observe(&geo, &mut history, BERLIN, 5 * DAY).is_empty(),
        "known since"
    );
}

#[test]
fn a_new_country_and_a_new_network_count_as_the_country_alone() {
    let geo = both_databases();
    let mut history = GeoHistory::default();
    observe(&geo, &mut history, PRAGUE_OFFICE, 0);
    let lagos = observe(&geo, &mut history, LAGOS, 10 * DAY);
    assert!(lagos.new_country.is_some() && lagos.new_asn.is_some());
    assert!(lagos.impossible_travel.is_none(), "ten days is time enough");
    assert_eq!(lagos.points(), points::NEW_COUNTRY);
    assert_eq!(
        lagos.reasons(ip(LAGOS)),
        vec!["203.0.113.9 is in Nigeria, a country this account never used (before: CZ)"]
    );
}

#[test]
fn travel_faster_than_an_airliner_is_impossible() {
    let geo = both_databases();
    let mut history = GeoHistory::default();
    observe(&geo, &mut history, PRAGUE_OFFICE, 9 * HOUR);
    let lagos = observe(&geo, &mut history, LAGOS, 10 * HOUR);
    let travel = lagos
        .impossible_travel
        .as_ref()
        .expect("4,900 km in an hour");
    assert_eq!(
        (travel.from.as_str(), travel.to.as_str()),
        ("Prague", "Lagos")
    );
    assert_eq!(
        (travel.from_country.as_deref(), travel.to_country.as_deref()),
        (Some("CZ"), Some("NG"))
    );
    assert!((4_900.0..5_000.0).contains(&travel.km), "{}", travel.km);
    assert_eq!(travel.hours, 1.0);
    assert_eq!(
        lagos.points(),
        points::NEW_COUNTRY + points::IMPOSSIBLE_TRAVEL
    );
    let reasons = lagos.reasons(ip(LAGOS));
    assert!(
        reasons[1].starts_with("impossible travel: Prague → Lagos, 4,9")
            && reasons[1].contains(" km in 1 h ("),
        "{reasons:?}"
    );

    // Back in Prague eleven hours later: a long flight, not impossible.
    let back = observe(&geo, &mut history, PRAGUE_OFFICE, 21 * HOUR);
    assert!(back.is_empty(), "{back:?}");
}

#[test]
fn short_jumps_are_geoip_noise_not_travel() {
    let geo = both_databases();
    let mut history = GeoHistory::default();
    observe(&geo, &mut history, PRAGUE_OFFICE, 0);
    // Prague → Brno, 185 km, within the same minute.
    let brno = observe(&geo, &mut history, BRNO_HOME, 30);
    assert!(brno.impossible_travel.is_none(), "{brno:?}");
}

#[test]
fn a_login_verdict_carries_to_the_mail_its_ip_sends_next() {
    let geo = both_databases();
    let mut history = GeoHistory::default();
    observe(&geo, &mut history, PRAGUE_OFFICE, 9 * HOUR);
    let login = observe(&geo, &mut history, LAGOS, 10 * HOUR);
    assert!(login.new_country.is_some() && login.impossible_travel.is_some());
    let mail = observe(&geo, &mut history, "203.0.113.10", 10 * HOUR + 60);
    assert!(
        mail.impossible_travel.is_none() && mail.new_country.is_none(),
        "another IP, known now"
    );
    let same = observe(&geo, &mut history, LAGOS, 10 * HOUR + 120);
    assert_eq!(same, login, "the IP's first verdict");
    let next_week = observe(&geo, &mut history, LAGOS, 8 * DAY);
    assert!(next_week.is_empty(), "a verdict is kept for a day");
}

/// A feed into a detector with `geo`'s databases, if any.
fn feed(geo: Option<GeoConfig>) -> Feed {
    Feed::with_config(DetectConfig {
        geoip: geo.unwrap_or_default(),
        ..DetectConfig::default()
    })
}

const NOVAK: &str = "j.novak@acme.example";

/// Three office days in Prague with IMAP logins, a Prague login on the
/// fourth morning, and an hour later forged mail from Lagos (after a login
/// from there first, if `attacker_logs_in`).
fn story(geo: Option<GeoConfig>, attacker_logs_in: bool, restart: bool) -> Findings {
    let mut feed = feed(geo);
    for day in 0..3 {
        feed.login(day * DAY + 8 * HOUR, PRAGUE_OFFICE, NOVAK, "IMAP");
        for hour in 8..17 {
            let t = day * DAY + hour * HOUR;
            feed.send(
                t,
                NOVAK,
                PRAGUE_OFFICE,
                NOVAK,
                &[("partner@partner.example", false)],
            );
        }
    }
    feed.login(3 * DAY + 9 * HOUR, PRAGUE_OFFICE, NOVAK, "IMAP");
    if restart {
        feed.restart();
    }
    if attacker_logs_in {
        feed.login(3 * DAY + 9 * HOUR + 50 * 60, LAGOS, NOVAK, "IMAP");
    }
    for i in 0..40 {
        let rcpt = format!("victim{i}@aol.example");
        feed.send(
            3 * DAY + 10 * HOUR + i * 30,
            NOVAK,
            LAGOS,
            "billing@bank-secure.example",
            &[(&rcpt, false)],
        );
    }
    feed.detector.findings()
}

fn hijack(findings: &Findings) -> &mailfuse_detect::Incident {
    findings
        .incidents
        .iter()
        .find(|i| i.kind == IncidentKind::CompromisedAccount)
        .expect("the hijack is found")
}

#[test]
fn mail_from_nigeria_an_hour_after_a_prague_login_names_the_country_and_the_travel() {
    let without = story(None, false, false);
    let before = hijack(&without);
    assert_eq!(
        before.score, 55,
        "new IP + forged From: {:?}",
        before.reasons
    );
    let reasons = before.reasons.join("\n");
    assert!(
        !reasons.contains("Nigeria") && !reasons.contains("travel"),
        "{reasons}"
    );

    let geo = geo_config(Some("city.mmdb"), Some("asn.mmdb")).unwrap();
    for (attacker_logs_in, restart) in [(false, false), (true, false), (false, true)] {
        let with = story(Some(geo.clone()), attacker_logs_in, restart);
        let incident = hijack(&with);
        assert_eq!(incident.ips, vec![ip(LAGOS)]);
        assert!(incident.score > before.score);
        assert_eq!(incident.score, 100, "55 + 15 + 30");
        let reasons = incident.reasons.join("\n");
        assert!(
            reasons.contains(
                "203.0.113.9 is in Nigeria, a country this account never used (before: CZ)"
            ),
            "login first: {attacker_logs_in}, restart: {restart}\n{reasons}"
        );
        assert!(
            reasons.contains("impossible travel: Prague → Lagos, 4,9"),
            "login first: {attacker_logs_in}, restart: {restart}\n{reasons}"
        );
        assert!(
            !reasons.contains("a network this account never used"),
            "the country says it"
        );
        assert_eq!(
            (incident.messages, incident.recipients, incident.first_seen),
            (before.messages, before.recipients, before.first_seen)
        );
    }
}

#[test]
fn a_stream_without_other_signals_trips_on_geo_evidence_it_would_not_without() {
    let quiet = |geo: Option<GeoConfig>| {
        let mut feed = feed(geo);
        for day in 0..3 {
            feed.send(
                day * DAY + 9 * HOUR,
                NOVAK,
                PRAGUE_OFFICE,
                NOVAK,
                &[("partner@partner.example", false)],
            );
        }
        feed.login(3 * DAY + 9 * HOUR, PRAGUE_OFFICE, NOVAK, "IMAP");
        for i in 0..25 {
            let rcpt = format!("friend{i}@gmail.example");
            feed.send(
                3 * DAY + 10 * HOUR + i * 60,
                NOVAK,
                LAGOS,
                NOVAK,
                &[(&rcpt, false)],
            );
        }
        feed.detector.findings()
    };
    assert!(
        quiet(None).incidents.is_empty(),
        "a new IP alone is not enough"
    );
    let geo = geo_config(Some("city.mmdb"), None).unwrap();
    let findings = quiet(Some(geo));
    assert_eq!(hijack(&findings).score, 70, "25 + 15 + 30");
}

#[test]
fn a_database_that_knows_none_of_the_ips_changes_nothing() {
    let elsewhere = mmdb::Builder::new("GeoLite2-City")
        .insert(
            "233.252.0.0/24",
            &mmdb::city("AQ", "Antarctica", "McMurdo", (-77.85, 166.67), 100),
        )
        .build();
    let mut geo = GeoConfig {
        country_database: Some("elsewhere.mmdb".into()),
        ..GeoConfig::default()
    };
    geo.open(|_| Ok(elsewhere.clone())).unwrap();
    for attacker_logs_in in [false, true] {
        let without = story(None, attacker_logs_in, false);
        let with = story(Some(geo.clone()), attacker_logs_in, false);
        assert_eq!(
            format!("{:?}", with.incidents),
            format!("{:?}", without.incidents)
        );
        assert_eq!(
            format!("{:?}", with.accounts),
            format!("{:?}", without.accounts)
        );
        assert_eq!(with.stats, without.stats);
    }
}
