//! Optional GeoIP/ASN evidence: where a login or a message came from, read
//! from MaxMind-format databases the admin provides (GeoLite2 or GeoIP2
//! Country or City, and ASN).
//!
//! A hijacked account is usually used from somewhere its owner never was: a
//! country or a network (ASN) the account never used, or a place its last
//! login could not have reached in the time between (impossible travel).
//! [`GeoLookup`] answers where an IP is; each account's [`GeoHistory`]
//! remembers, compactly, where it was seen and judges each new place
//! against that ([`GeoEvidence`]). Without a database nothing is looked up
//! and nothing changes.
//!
//! This crate reads no file: [`GeoConfig::open`] takes the binary's reader.
//! Lookups happen on this machine only; nothing leaves it.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailfuse_core::safety::protection_of;
use mailfuse_core::Timestamp;
use maxminddb::Reader;
use serde::{Deserialize, Serialize};

/// Points a stream's geo evidence adds to its score.
pub mod points {
    /// The IP is in a country the account never used.
    pub const NEW_COUNTRY: u32 = 15;
    /// The IP is in a network (ASN) the account never used; not added on
    /// top of [`NEW_COUNTRY`] (a new country is nearly always a new network).
    pub const NEW_ASN: u32 = 10;
    /// The account's previous located login or message was too far away to
    /// have travelled from in the time between.
    pub const IMPOSSIBLE_TRAVEL: u32 = 30;
}

/// Fastest plausible travel between two logins: an airliner's cruise.
pub const MAX_PLAUSIBLE_KMH: f64 = 900.0;
/// Shortest distance taken as travel at all: GeoIP places an IP within tens
/// to hundreds of kilometres, so nearer jumps are noise.
pub const MIN_TRAVEL_KM: f64 = 500.0;
/// Countries remembered per account (the least recently seen makes room).
const MAX_COUNTRIES: usize = 8;
/// Networks remembered per account (the least recently seen makes room).
const MAX_ASNS: usize = 16;
/// IPs whose verdict is remembered per account, and for how long: the
/// verdict on a login carries to the mail sent from its IP afterwards (the
/// login made the IP's country known, so the mail alone would not say it
/// was new).
const MAX_VERDICTS: usize = 4;
const VERDICT_KEPT_SECS: i64 = 24 * 3600;
/// Mean Earth radius.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// `[detect.geoip]`: the databases, both optional. None: no geo evidence.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoConfig {
    /// A GeoLite2/GeoIP2 Country or City database (`.mmdb`): a new country
    /// for an account; a City database also places the IP for impossible
    /// travel. Also accepted as `city_database`.
    #[serde(alias = "city_database")]
    pub country_database: Option<PathBuf>,
    /// A GeoLite2/GeoIP2 ASN database: a new network for an account.
    pub asn_database: Option<PathBuf>,
    /// The databases, once [`GeoConfig::open`] read them; shared by every
    /// detector built from this configuration, never part of its state.
    #[serde(skip)]
    pub lookup: Option<Arc<GeoLookup>>,
}

impl GeoConfig {
    /// Opens the configured databases into [`GeoConfig::lookup`], each file
    /// read by `read` (the binary's `std::fs::read`). Every problem is
    /// returned, so one run reports both databases.
    pub fn open(
        &mut self,
        read: impl FnMut(&Path) -> io::Result<Vec<u8>>,
    ) -> Result<(), Vec<GeoError>> {
        self.lookup = GeoLookup::open(
            self.country_database.as_deref(),
            self.asn_database.as_deref(),
            read,
        )?
        .map(Arc::new);
        Ok(())
    }
}

/// Which of the two databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    /// A Country or City database.
    Country,
    /// An ASN database.
    Asn,
}

impl DatabaseKind {
    /// The configuration key that names it.
    pub fn key(self) -> &'static str {
        match self {
            DatabaseKind::Country => "detect.geoip.country_database",
            DatabaseKind::Asn => "detect.geoip.asn_database",
        }
    }

    /// What the admin should do about a wrong file.
    fn advice(self) -> &'static str {
        match self {
            DatabaseKind::Country => {
                "download GeoLite2-Country.mmdb (or GeoLite2-City.mmdb, which also places logins for impossible travel) from MaxMind (a free account) and set [detect.geoip] country_database = \"/path/to/GeoLite2-Country.mmdb\" (scan: --geoip-country), or leave it out"
            }
            DatabaseKind::Asn => {
                "download GeoLite2-ASN.mmdb from MaxMind (a free account) and set [detect.geoip] asn_database = \"/path/to/GeoLite2-ASN.mmdb\" (scan: --geoip-asn), or leave it out"
            }
        }
    }

    /// Whether a database of `database_type` (its metadata) serves here;
    /// only a database obviously of the other kind is refused, so
    /// compatible ones (DB-IP's lite databases) are taken too.
    fn accepts(self, database_type: &str) -> bool {
        let database_type = database_type.to_ascii_uppercase();
        let of_networks = ["ASN", "ISP"]
            .iter()
            .any(|word| database_type.contains(word));
        match self {
            DatabaseKind::Country => !of_networks,
            DatabaseKind::Asn => of_networks,
        }
    }
}

impl fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatabaseKind::Country => "Country or City",
            DatabaseKind::Asn => "ASN",
        })
    }
}

/// A GeoIP database that cannot be used: a configuration error, reported at
/// start.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file cannot be read (missing, no permission).
    #[error("cannot read {}: {source}; {}", path.display(), kind.advice())]
    Unreadable {
        /// Which database.
        kind: DatabaseKind,
        /// The configured file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not a MaxMind database (truncated, another format).
    #[error("{} is not a MaxMind database ({reason}); {}", path.display(), kind.advice())]
    Invalid {
        /// Which database.
        kind: DatabaseKind,
        /// The configured file.
        path: PathBuf,
        /// What the reader found wrong.
        reason: String,
    },
    /// A MaxMind database of the other kind (the ASN one given as the
    /// country database, say).
    #[error("{} is a {database_type} database, not a {kind} one; {}", path.display(), kind.advice())]
    WrongKind {
        /// Which database it was given as.
        kind: DatabaseKind,
        /// The configured file.
        path: PathBuf,
        /// What its metadata says it is.
        database_type: String,
    },
}

impl GeoError {
    /// The configuration key of the database at fault.
    pub fn key(&self) -> &'static str {
        match self {
            GeoError::Unreadable { kind, .. }
            | GeoError::Invalid { kind, .. }
            | GeoError::WrongKind { kind, .. } => kind.key(),
        }
    }
}

/// A two-letter ISO 3166-1 country code, upper case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// The code in `text` (`CZ`, `cz`), if it is two ASCII letters.
    pub fn parse(text: &str) -> Option<Self> {
        match text.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Some(CountryCode([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ])),
            _ => None,
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Two ASCII letters by construction; a stored state that says
        // otherwise reads as "??" rather than failing.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Coordinates of an IP, from a City database.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Location {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// Kilometres around the point the IP is likely within (MaxMind's
    /// `accuracy_radius`), 0 when not given.
    pub accuracy_km: u16,
}

/// Where an IP is, as far as the databases say; empty for private,
/// loopback and other addresses that are nowhere.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Place<'db> {
    /// Country of the IP (else of its registration).
    pub country: Option<CountryCode>,
    /// The country's English name.
    pub country_name: Option<&'db str>,
    /// The city's English name (City databases).
    pub city: Option<&'db str>,
    /// Coordinates (City databases).
    pub location: Option<Location>,
    /// Autonomous system number (ASN database).
    pub asn: Option<u32>,
    /// The autonomous system's organisation.
    pub asn_organisation: Option<&'db str>,
}

impl Place<'_> {
    /// The place in words: its city, else its country.
    fn name(&self) -> Option<String> {
        self.city
            .or(self.country_name)
            .map(str::to_string)
            .or_else(|| self.country.map(|c| c.to_string()))
    }
}

/// The fields of a Country or City record the detector uses (the rest is
/// skipped, not decoded).
#[derive(Deserialize)]
struct CountryRecord<'a> {
    #[serde(borrow, default)]
    country: Option<RecordCountry<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<RecordCountry<'a>>,
    #[serde(borrow, default)]
    city: Option<RecordNamed<'a>>,
    #[serde(default)]
    location: Option<RecordLocation>,
}

#[derive(Deserialize)]
struct RecordCountry<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Option<RecordNames<'a>>,
}

#[derive(Deserialize)]
struct RecordNamed<'a> {
    #[serde(borrow, default)]
    names: Option<RecordNames<'a>>,
}

#[derive(Deserialize)]
struct RecordNames<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

#[derive(Deserialize)]
struct RecordLocation {
    #[serde(default)]
    latitude: Option<f64>,
    #[serde(default)]
    longitude: Option<f64>,
    #[serde(default)]
    accuracy_radius: Option<u16>,
}

#[derive(Deserialize)]
struct AsnRecord<'a> {
    #[serde(default)]
    autonomous_system_number: Option<u32>,
    #[serde(borrow, default)]
    autonomous_system_organization: Option<&'a str>,
}

/// The opened databases: where an IP is.
pub struct GeoLookup {
    country: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
}

impl fmt::Debug for GeoLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind =
            |r: &Option<Reader<Vec<u8>>>| r.as_ref().map(|r| r.metadata().database_type.clone());
        f.debug_struct("GeoLookup")
            .field("country", &kind(&self.country))
            .field("asn", &kind(&self.asn))
            .finish()
    }
}

impl GeoLookup {
    /// The lookup over the databases at `country` and `asn`, each read by
    /// `read`; `None` when neither is given. Every database that cannot be
    /// used is an error.
    pub fn open(
        country: Option<&Path>,
        asn: Option<&Path>,
        mut read: impl FnMut(&Path) -> io::Result<Vec<u8>>,
    ) -> Result<Option<Self>, Vec<GeoError>> {
        let mut errors = Vec::new();
        let mut open = |kind, path: Option<&Path>| {
            let opened = path
                .map(|path| open_database(kind, path, &mut read))
                .transpose();
            opened.unwrap_or_else(|e| {
                errors.push(e);
                None
            })
        };
        let country = open(DatabaseKind::Country, country);
        let asn = open(DatabaseKind::Asn, asn);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok((country.is_some() || asn.is_some()).then_some(GeoLookup { country, asn }))
    }

    /// Where `ip` is. Addresses that are nowhere (private, loopback,
    /// link-local, carrier-grade NAT, unspecified) and addresses a database
    /// lacks give an empty place; so does a record the reader cannot decode
    /// (a damaged file: better no evidence than a stopped detector).
    pub fn lookup(&self, ip: IpAddr) -> Place<'_> {
        let ip = ip.to_canonical();
        let mut place = Place::default();
        if protection_of(ip).is_some() {
            return place;
        }
        if let Some(record) = self
            .country
            .as_ref()
            .and_then(|db| record::<CountryRecord>(db, ip))
        {
            let country = record.country.or(record.registered_country);
            if let Some(country) = country {
                place.country = country.iso_code.and_then(CountryCode::parse);
                place.country_name = country.names.and_then(|n| n.en);
            }
            place.city = record.city.and_then(|c| c.names).and_then(|n| n.en);
            place.location = record.location.and_then(|l| {
                let (latitude, longitude) = (l.latitude?, l.longitude?);
                let valid =
                    (-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude);
                valid.then_some(Location {
                    latitude,
                    longitude,
                    accuracy_km: l.accuracy_radius.unwrap_or(0),
                })
            });
        }
        if let Some(record) = self.asn.as_ref().and_then(|db| record::<AsnRecord>(db, ip)) {
            place.asn = record.autonomous_system_number;
            place.asn_organisation = record.autonomous_system_organization;
        }
        place
    }

    /// Looks `ip` up and notes it in the account's `history`; what was
    /// unusual about it, if anything.
    pub fn observe(
        &self,
        history: &mut GeoHistory,
        ip: IpAddr,
        at: Timestamp,
    ) -> Option<GeoEvidence> {
        let evidence = history.observe(ip, &self.lookup(ip), at);
        (!evidence.is_empty()).then_some(evidence)
    }
}

fn open_database(
    kind: DatabaseKind,
    path: &Path,
    read: &mut impl FnMut(&Path) -> io::Result<Vec<u8>>,
) -> Result<Reader<Vec<u8>>, GeoError> {
    let bytes = read(path).map_err(|source| GeoError::Unreadable {
        kind,
        path: path.to_path_buf(),
        source,
    })?;
    let reader = Reader::from_source(bytes).map_err(|e| GeoError::Invalid {
        kind,
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let database_type = &reader.metadata().database_type;
    if !kind.accepts(database_type) {
        return Err(GeoError::WrongKind {
            kind,
            path: path.to_path_buf(),
            database_type: database_type.clone(),
        });
    }
    Ok(reader)
}

/// `ip`'s record in `db`, if it has one that decodes.
fn record<'db, T: Deserialize<'db>>(db: &'db Reader<Vec<u8>>, ip: IpAddr) -> Option<T> {
    if ip.is_ipv6() && db.metadata().ip_version == 4 {
        return None;
    }
    db.lookup(ip).ok()?.decode().ok().flatten()
}

/// What a place said about an account, judged against where the account was
/// seen before. Empty when nothing was unusual.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GeoEvidence {
    /// A country the account was not seen in before.
    pub new_country: Option<NewCountry>,
    /// A network the account was not seen in before.
    pub new_asn: Option<NewAsn>,
    /// Too far from the account's previous located login or message for
    /// the time between.
    pub impossible_travel: Option<ImpossibleTravel>,
}

/// A country new for an account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewCountry {
    /// Its code (`NG`).
    pub country: String,
    /// Its name (`Nigeria`), else its code.
    pub name: String,
    /// The codes of the countries the account was seen in before.
    pub before: Vec<String>,
}

/// A network (autonomous system) new for an account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewAsn {
    /// Its number.
    pub asn: u32,
    /// Its organisation, when the database names it.
    pub organisation: Option<String>,
    /// The networks the account was seen in before.
    pub before: Vec<u32>,
}

/// Two consecutive located logins or messages too far apart for the time
/// between them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImpossibleTravel {
    /// The earlier place (city, else country).
    pub from: String,
    /// Its country code, if known.
    pub from_country: Option<String>,
    /// The later place.
    pub to: String,
    /// Its country code, if known.
    pub to_country: Option<String>,
    /// Great-circle distance between the two, in kilometres.
    pub km: f64,
    /// Hours between the two.
    pub hours: f64,
    /// The speed that would have taken (at least a minute's travel).
    pub kmh: f64,
}

impl GeoEvidence {
    /// Whether nothing was unusual.
    pub fn is_empty(&self) -> bool {
        self.new_country.is_none() && self.new_asn.is_none() && self.impossible_travel.is_none()
    }

    /// Points for a stream's score (see [`points`]).
    pub fn points(&self) -> u32 {
        let novelty = if self.new_country.is_some() {
            points::NEW_COUNTRY
        } else if self.new_asn.is_some() {
            points::NEW_ASN
        } else {
            0
        };
        let travel = if self.impossible_travel.is_some() {
            points::IMPOSSIBLE_TRAVEL
        } else {
            0
        };
        novelty + travel
    }

    /// The evidence in plain words, for `ip`'s stream (a new network is
    /// named only when it counted: not beside a new country).
    pub fn reasons(&self, ip: IpAddr) -> Vec<String> {
        let mut reasons = Vec::new();
        if let Some(new) = &self.new_country {
            reasons.push(format!(
                "{ip} is in {}, a country this account never used (before: {})",
                new.name,
                new.before.join(", ")
            ));
        } else if let Some(new) = &self.new_asn {
            let before: Vec<String> = new.before.iter().map(|asn| format!("AS{asn}")).collect();
            reasons.push(format!(
                "{ip} is in AS{}{}, a network this account never used (before: {})",
                new.asn,
                new.organisation
                    .as_deref()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default(),
                before.join(", ")
            ));
        }
        if let Some(travel) = &self.impossible_travel {
            reasons.push(format!(
                "impossible travel: {} → {}, {} km in {} ({} km/h)",
                travel.from,
                travel.to,
                thousands(travel.km),
                hours_in_words(travel.hours),
                thousands(travel.kmh)
            ));
        }
        reasons
    }
}

/// Where one account was seen: a few countries and networks, its last
/// located login or message, and the recent verdicts on its unusual IPs.
/// Small and bounded, kept in `watch`'s snapshot.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GeoHistory {
    /// Countries seen, the most recently seen last.
    countries: Vec<CountryCode>,
    /// Networks seen, the most recently seen last.
    asns: Vec<u32>,
    /// The newest located login or message.
    last_located: Option<Located>,
    /// The verdict on each unusual IP when it was first seen, with when.
    verdicts: Vec<(IpAddr, Timestamp, GeoEvidence)>,
}

/// A located login or message.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Located {
    at: Timestamp,
    latitude: f64,
    longitude: f64,
    accuracy_km: u16,
    /// City, else country, in words.
    name: String,
    country: Option<CountryCode>,
}

impl GeoHistory {
    /// Notes that the account was at `place` (the IP `ip`) at `at`, and
    /// tells what was unusual: a country or network the account was not
    /// seen in before (the first place an account is seen in is not new),
    /// and travel from its previous located login faster than an airliner.
    /// An IP judged unusual in the last day keeps its first verdict (the
    /// login before the mail made its country known).
    pub fn observe(&mut self, ip: IpAddr, place: &Place<'_>, at: Timestamp) -> GeoEvidence {
        self.verdicts
            .retain(|(_, since, _)| (at.as_secs() - since.as_secs()).abs() <= VERDICT_KEPT_SECS);
        let earlier = self
            .verdicts
            .iter()
            .find(|(seen, _, _)| *seen == ip)
            .map(|(_, _, verdict)| verdict.clone());
        let mut evidence = GeoEvidence {
            new_country: self.note_country(place),
            new_asn: self.note_asn(place),
            impossible_travel: self.note_location(place, at),
        };
        match earlier {
            Some(verdict) => evidence = verdict,
            None if !evidence.is_empty() => {
                if self.verdicts.len() >= MAX_VERDICTS {
                    self.verdicts.remove(0);
                }
                self.verdicts.push((ip, at, evidence.clone()));
            }
            None => {}
        }
        evidence
    }

    fn note_country(&mut self, place: &Place<'_>) -> Option<NewCountry> {
        let country = place.country?;
        let before = &self.countries;
        let new = (!before.is_empty() && !before.contains(&country)).then(|| NewCountry {
            country: country.to_string(),
            name: place
                .country_name
                .map_or_else(|| country.to_string(), str::to_string),
            before: before.iter().map(CountryCode::to_string).collect(),
        });
        note_recent(&mut self.countries, country, MAX_COUNTRIES);
        new
    }

    fn note_asn(&mut self, place: &Place<'_>) -> Option<NewAsn> {
        let asn = place.asn?;
        let before = &self.asns;
        let new = (!before.is_empty() && !before.contains(&asn)).then(|| NewAsn {
            asn,
            organisation: place.asn_organisation.map(str::to_string),
            before: before.clone(),
        });
        note_recent(&mut self.asns, asn, MAX_ASNS);
        new
    }

    fn note_location(&mut self, place: &Place<'_>, at: Timestamp) -> Option<ImpossibleTravel> {
        let location = place.location?;
        let travel = self
            .last_located
            .as_ref()
            .and_then(|last| impossible_travel(last, place, location, at));
        // Lines merged from several files may come a little out of order:
        // the newest place stays the reference.
        if self.last_located.as_ref().is_none_or(|last| last.at <= at) {
            self.last_located = Some(Located {
                at,
                latitude: location.latitude,
                longitude: location.longitude,
                accuracy_km: location.accuracy_km,
                name: place.name().unwrap_or_else(|| "?".into()),
                country: place.country,
            });
        }
        travel
    }
}

/// Moves `item` to the end of `recent` (the most recent), adding it if new
/// and dropping the least recent past `max`.
fn note_recent<T: PartialEq>(recent: &mut Vec<T>, item: T, max: usize) {
    if let Some(i) = recent.iter().position(|known| *known == item) {
        recent.remove(i);
    } else if recent.len() >= max {
        recent.remove(0);
    }
    recent.push(item);
}

/// The travel from `last` to `location` at `at`, if no airliner could have
/// made it. The two places' accuracy radii are taken off the distance: only
/// a jump that is far even between the nearest points the IPs may be at
/// counts.
fn impossible_travel(
    last: &Located,
    place: &Place<'_>,
    location: Location,
    at: Timestamp,
) -> Option<ImpossibleTravel> {
    let km = great_circle_km(
        (last.latitude, last.longitude),
        (location.latitude, location.longitude),
    );
    let surely_apart_km = km - f64::from(last.accuracy_km) - f64::from(location.accuracy_km);
    let hours = (at.as_secs() - last.at.as_secs()).abs() as f64 / 3600.0;
    // A minute at least, so two lines of the same second have a speed.
    let travel_hours = hours.max(1.0 / 60.0);
    let impossible =
        surely_apart_km >= MIN_TRAVEL_KM && surely_apart_km / travel_hours > MAX_PLAUSIBLE_KMH;
    impossible.then(|| ImpossibleTravel {
        from: last.name.clone(),
        from_country: last.country.map(|c| c.to_string()),
        to: place.name().unwrap_or_else(|| "?".into()),
        to_country: place.country.map(|c| c.to_string()),
        km,
        hours,
        kmh: km / travel_hours,
    })
}

/// Great-circle distance in kilometres between two (latitude, longitude)
/// points in degrees (haversine).
pub fn great_circle_km(from: (f64, f64), to: (f64, f64)) -> f64 {
    let (lat1, lon1) = (from.0.to_radians(), from.1.to_radians());
    let (lat2, lon2) = (to.0.to_radians(), to.1.to_radians());
    let a = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// `n` rounded, with thousands separated: `4,893`.
fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `hours` as a reader says it: `40 min`, `2 h`, `1.5 h`.
fn hours_in_words(hours: f64) -> String {
    if hours < 1.0 {
        format!("{:.0} min", hours * 60.0)
    } else if (hours - hours.round()).abs() < 0.05 {
        format!("{:.0} h", hours)
    } else {
        format!("{hours:.1} h")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_great_circles() {
        let prague = (50.08, 14.42);
        let lagos = (6.45, 3.40);
        let km = great_circle_km(prague, lagos);
        assert!((4_900.0..5_000.0).contains(&km), "{km}");
        assert!(great_circle_km(prague, prague) < 1e-9);
        let antipodes = great_circle_km((0.0, 0.0), (0.0, 180.0));
        assert!((antipodes - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1.0);
    }

    #[test]
    fn numbers_read_as_words() {
        assert_eq!(thousands(4_893.4), "4,893");
        assert_eq!(thousands(999.6), "1,000");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(hours_in_words(2.0), "2 h");
        assert_eq!(hours_in_words(1.5), "1.5 h");
        assert_eq!(hours_in_words(0.5), "30 min");
    }

    #[test]
    fn country_codes_are_two_letters() {
        assert_eq!(
            CountryCode::parse("cz").map(|c| c.to_string()),
            Some("CZ".into())
        );
        assert_eq!(CountryCode::parse("CZE"), None);
        assert_eq!(CountryCode::parse("1Z"), None);
        assert_eq!(CountryCode::parse(""), None);
    }

    #[test]
    fn only_a_database_of_the_other_kind_is_refused() {
        assert!(DatabaseKind::Country.accepts("GeoLite2-Country"));
        assert!(DatabaseKind::Country.accepts("GeoIP2-City"));
        assert!(DatabaseKind::Country.accepts("DBIP-Country-Lite"));
        assert!(!DatabaseKind::Country.accepts("GeoLite2-ASN"));
        assert!(DatabaseKind::Asn.accepts("GeoLite2-ASN"));
        assert!(DatabaseKind::Asn.accepts("GeoIP2-ISP"));
        assert!(!DatabaseKind::Asn.accepts("GeoLite2-City"));
    }
}
