//! The optional GeoIP/ASN evidence, on databases the tests build
//! themselves (`support/mmdb.rs`): lookups and each account's history.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailfuse_core::Timestamp;
use mailfuse_detect::geo::{points, GeoHistory, Place};
use mailfuse_detect::{GeoConfig, GeoError, GeoLookup};
use support::mmdb;

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// Monday 2026-11-02 00:00 UTC.
const START: i64 = 1_793_577_600;

const PRAGUE_OFFICE: &str = "198.51.100.10";
const BRNO_HOME: &str = "192.0.2.20";
const BERLIN: &str = "192.0.2.200";
const LAGOS: &str = "203.0.113.9";

fn at(secs: i64) -> Timestamp {
    Timestamp(START + secs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

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
