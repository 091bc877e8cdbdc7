//! UTC instants and the civil-date arithmetic the parsers need on hot paths.

use std::cell::Cell;
use std::fmt;

use serde::Deserialize as _;

/// A UTC instant, in whole seconds since the Unix epoch.
///
/// Log lines carry second resolution at best, so seconds are all we keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The instant of a civil date and time read as UTC.
    ///
    /// Returns `None` for out-of-range fields (month 13, hour 25, …); the day
    /// is checked against the month's length, leap years included.
    pub fn from_civil(year: i32, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || min > 59 || sec > 60 {
            return None;
        }
        let days = days_from_civil(year, month, day);
        Some(Timestamp(
            days * 86_400 + i64::from(hour) * 3_600 + i64::from(min) * 60 + i64::from(sec),
        ))
    }

    /// Seconds since the Unix epoch.
    pub fn as_secs(self) -> i64 {
        self.0
    }

    /// This instant shifted by `secs` seconds (negative moves back).
    pub fn plus(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs))
    }

    /// The civil date and time of this instant in UTC:
    /// `(year, month, day, hour, minute, second)`.
    pub fn to_civil(self) -> (i32, u8, u8, u8, u8, u8) {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (
            y,
            m,
            d,
            (secs / 3_600) as u8,
            (secs % 3_600 / 60) as u8,
            (secs % 60) as u8,
        )
    }
}

/// RFC 3339 in UTC, e.g. `2012-08-03T12:03:27Z`.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = self.rfc_3339() {
            return f.write_str(&text);
        }
        let (y, mo, d, h, mi, s) = self.to_civil();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

impl Timestamp {
    /// What [`Display`](fmt::Display) writes, for years 0 to 9999, put
    /// together digit by digit: reports write thousands of times, and the
    /// formatting machinery costs some 800 instructions a time (a dozen
    /// pieces, each escaped again by a JSON writer). `None` for other years.
    fn rfc_3339(self) -> Option<Rfc3339> {
        let (year, month, day, hour, minute, second) = self.to_civil();
        let year = u16::try_from(year).ok().filter(|year| *year <= 9999)?;
        let mut text = *b"0000-00-00T00:00:00Z";
        let fields = [
            year / 100,
            year % 100,
            month.into(),
            day.into(),
            hour.into(),
            minute.into(),
            second.into(),
        ];
        // Each field's two digits, at 0, 2, 5, 8, 11, 14 and 17.
        let starts = [0, 2, 5, 8, 11, 14, 17];
        for (start, value) in starts.into_iter().zip(fields) {
            if let Some([tens, units]) = text.get_mut(start..start + 2) {
                // Both below 10: the casts are lossless.
                *tens = b'0' + (value / 10 % 10) as u8;
                *units = b'0' + (value % 10) as u8;
            }
        }
        Some(Rfc3339(text))
    }
}

/// A time as RFC 3339 text: twenty ASCII bytes.
struct Rfc3339([u8; 20]);

impl std::ops::Deref for Rfc3339 {
    type Target = str;

    fn deref(&self) -> &str {
        // Digits and separators only: always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

thread_local! {
    static RELATIVE_TO: Cell<Option<i64>> = const { Cell::new(None) };
}

/// Runs `f` with every [`Timestamp`] written or read in a binary format
/// as its distance from `base`: a packed entry's times are mostly its last
/// few hours, so relative to when it was last seen they are small numbers
/// (a byte or two, where seconds since 1970 take five), and alike from one
/// day to the next, which its table's compression dictionary then keeps
/// matching. The caller keeps `base` beside the bytes, to read them back
/// with the same one. Put back as it was after `f`, even if `f` panics.
pub fn relative_to<R>(base: Timestamp, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<i64>);
    impl Drop for Reset {
        fn drop(&mut self) {
            RELATIVE_TO.with(|cell| cell.set(self.0));
        }
    }
    let _reset = Reset(RELATIVE_TO.with(|cell| cell.replace(Some(base.0))));
    f()
}

/// The base [`relative_to`] set, if any: what is counted in time's units
/// rather than held as a [`Timestamp`] (a window's bucket numbers) is
/// written relative to it too.
pub fn relative_base() -> Option<Timestamp> {
    RELATIVE_TO.with(Cell::get).map(Timestamp)
}

/// RFC 3339 text for people (JSON, TOML); whole seconds in binary formats
/// (the saved state), where text would be most of an entry's bytes, or
/// their distance from a base (see [`relative_to`]). Wrapping arithmetic
/// reads every value back exactly, whatever the base.
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            match self.rfc_3339() {
                Some(text) => s.serialize_str(&text),
                None => s.collect_str(self),
            }
        } else {
            let base = relative_base().map_or(0, |base| base.0);
            s.serialize_i64(self.0.wrapping_sub(base))
        }
    }
}

/// Reads the form [`Display`](fmt::Display) writes: `2012-08-03T12:03:27Z`.
impl std::str::FromStr for Timestamp {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bytes = text.as_bytes();
        let shaped = bytes.len() == 20
            && [
                (4, b'-'),
                (7, b'-'),
                (10, b'T'),
                (13, b':'),
                (16, b':'),
                (19, b'Z'),
            ]
            .iter()
            .all(|&(i, c)| bytes.get(i) == Some(&c));
        let field = |range: std::ops::Range<usize>| {
            let digits = bytes.get(range)?;
            digits.iter().try_fold(0u32, |acc, &b| {
                b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
            })
        };
        let parsed = shaped
            .then(|| {
                let year = i32::try_from(field(0..4)?).ok()?;
                let [mo, d, h, mi, s] = [5..7, 8..10, 11..13, 14..16, 17..19]
                    .map(|r| field(r).and_then(|v| u8::try_from(v).ok()));
                Timestamp::from_civil(year, mo?, d?, h?, mi?, s?)
            })
            .flatten();
        parsed.ok_or_else(|| format!("not a UTC time like 2026-11-23T10:51:00Z: {text:?}"))
    }
}

/// Reads either form [`Serialize`](serde::Serialize) writes, whatever the
/// format: states saved before seconds were binary hold the text.
impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl serde::de::Visitor<'_> for Either {
            type Value = Timestamp;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a UTC time like 2026-11-23T10:51:00Z or seconds since 1970")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Timestamp, E> {
                text.parse().map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<Timestamp, E> {
                let base = relative_base().map_or(0, |base| base.0);
                Ok(Timestamp(secs.wrapping_add(base)))
            }

            fn visit_u64<E: serde::de::Error>(self, secs: u64) -> Result<Timestamp, E> {
                i64::try_from(secs)
                    .map_err(|_| E::custom(format!("seconds out of range: {secs}")))
                    .and_then(|secs| self.visit_i64(secs))
            }
        }
        if d.is_human_readable() {
            d.deserialize_str(Either)
        } else {
            d.deserialize_any(Either)
        }
    }
}

/// Seconds in a duration written as a whole number and one unit: `90s`,
/// `15m`, `12h`, `21d`, `2w` (configuration files: windows, block times).
/// Zero, signs, spaces and overflow are refused.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("not a duration like 90s, 15m, 12h, 21d or 2w: {text:?}");
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at_checked(digits).ok_or_else(invalid)?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(invalid()),
    };
    number
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .filter(|&secs| secs > 0)
        .ok_or_else(invalid)
}

/// What a duration in a configuration file may be read into, so one
/// deserializer ([`deserialize_duration`]) serves every setting.
pub trait FromDuration: Sized {
    /// Whether `250ms` is meaningful (a timeout), not only whole seconds.
    const MILLISECONDS: bool = false;
    /// `duration` as this type; `None` when it does not fit (the
    /// deserializer then says `duration out of range`). Only a type with
    /// [`MILLISECONDS`](FromDuration::MILLISECONDS) is ever given a
    /// fraction of a second.
    fn from_duration(duration: std::time::Duration) -> Option<Self>;
}

impl FromDuration for i64 {
    fn from_duration(duration: std::time::Duration) -> Option<Self> {
        i64::try_from(duration.as_secs()).ok()
    }
}

impl FromDuration for u64 {
    fn from_duration(duration: std::time::Duration) -> Option<Self> {
        Some(duration.as_secs())
    }
}

impl FromDuration for std::time::Duration {
    const MILLISECONDS: bool = true;
    fn from_duration(duration: std::time::Duration) -> Option<Self> {
        Some(duration)
    }
}

/// Serde's `deserialize_with` for every duration of the configuration:
/// `"90s"`, `"15m"`, `"12h"`, `"21d"`, `"2w"` (spaces around allowed), and
/// `"250ms"` where the target takes milliseconds. Zero is refused: no
/// window, timeout or block time means anything at zero.
pub fn deserialize_duration<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromDuration,
{
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    let text = text.trim();
    let millis = T::MILLISECONDS
        .then(|| text.strip_suffix("ms")?.parse::<u64>().ok())
        .flatten()
        .filter(|&n| n > 0)
        .map(std::time::Duration::from_millis);
    let duration = match millis {
        Some(duration) => duration,
        None => {
            let secs = parse_duration(text).map_err(serde::de::Error::custom)?;
            std::time::Duration::from_secs(secs.unsigned_abs())
        }
    };
    T::from_duration(duration)
        .ok_or_else(|| serde::de::Error::custom(format!("duration out of range: {text:?}")))
}

/// Units from the largest, for [`describe_duration`] and [`duration_words`].
const UNITS: [(i128, &str, &str); 5] = [
    (7 * 86_400, "w", "week"),
    (86_400, "d", "day"),
    (3600, "h", "hour"),
    (60, "m", "minute"),
    (1, "s", "second"),
];

/// `secs` in the largest unit it is a whole number of (seconds otherwise):
/// the count and the unit's entry.
fn whole_units(secs: impl Into<i128>) -> (i128, &'static str, &'static str) {
    let secs = secs.into();
    UNITS
        .iter()
        .find(|(unit, _, _)| secs >= *unit && secs % unit == 0)
        .map_or((secs, "s", "second"), |&(unit, short, long)| {
            (secs / unit, short, long)
        })
}

/// A duration as the configuration writes it: `21d`, `90m`, `1h`, `90s`.
/// Takes signed or unsigned seconds (block times, windows).
pub fn describe_duration(secs: impl Into<i128>) -> String {
    let (n, short, _) = whole_units(secs);
    format!("{n}{short}")
}

/// A duration in words, for sentences: `1 minute`, `90 seconds`, `2 hours`.
pub fn duration_words(secs: impl Into<i128>) -> String {
    let (n, _, long) = whole_units(secs);
    let plural = if n == 1 { "" } else { "s" };
    format!("{n} {long}{plural}")
}

/// Whether `year` is a leap year in the proleptic Gregorian calendar.
pub fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` (1–12) of `year`.
pub fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

/// The month number (1–12) of an English three-letter month name, any case.
pub fn month_from_abbrev(name: &[u8]) -> Option<u8> {
    let [a, b, c] = name else { return None };
    let key = [
        a.to_ascii_lowercase(),
        b.to_ascii_lowercase(),
        c.to_ascii_lowercase(),
    ];
    let month = match &key {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    };
    Some(month)
}

/// Parses exactly `N` ASCII digits at the start of `bytes`.
pub fn parse_digits<const N: usize>(bytes: &[u8]) -> Option<u32> {
    let digits = bytes.get(..N)?;
    digits.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digit-by-digit form is the formatting machinery's, in every year
    /// it covers and at its edges (years 0 and 9999, where it gives way),
    /// in `Display` and in a JSON report.
    #[test]
    fn times_are_written_as_the_format_string_writes_them() {
        let year_0 = -62_167_219_200_i64;
        let year_10000 = 253_402_300_800_i64;
        let mut times = vec![i64::MIN, i64::MAX, 0, -1, year_0 - 1, year_0];
        times.extend([year_10000 - 1, year_10000]);
        // xorshift64: times all over the calendar and near both edges.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let spread = (state >> 8) as i64 % 200_000_000 - 100_000_000;
            times.push(match state % 4 {
                0 => state as i64,
                1 => (state >> 8) as i64 % 4_000_000_000,
                2 => year_0 + spread,
                _ => year_10000 + spread,
            });
        }
        for secs in times {
            let at = Timestamp(secs);
            let (y, mo, d, h, mi, s) = at.to_civil();
            let formatted = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
            assert_eq!(at.to_string(), formatted, "{secs}");
            assert_eq!(
                serde_json::to_string(&at).unwrap(),
                format!("\"{formatted}\""),
                "{secs}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("21d"), Ok(21 * 86_400));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("2w"), Ok(14 * 86_400));
        for bad in [
            "",
            "d",
            "5",
            "5y",
            "-5m",
            "+5m",
            " 5m",
            "5 m",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(bound = "T: FromDuration")]
    struct Durations<T> {
        #[serde(deserialize_with = "deserialize_duration")]
        d: T,
    }

    fn read<T: FromDuration>(text: &str) -> Result<T, String> {
        let json = format!("{{\"d\": {}}}", serde_json::json!(text));
        serde_json::from_str::<Durations<T>>(&json)
            .map(|d| d.d)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn one_deserializer_reads_seconds_and_milliseconds_where_they_make_sense() {
        use std::time::Duration;
        assert_eq!(read::<i64>(" 2w "), Ok(14 * 86_400));
        assert_eq!(read::<u64>("90s"), Ok(90));
        assert_eq!(read::<Duration>("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(read::<Duration>("10m"), Ok(Duration::from_secs(600)));
        assert!(read::<i64>("250ms").unwrap_err().contains("not a duration"));
        for bad in ["0s", "0ms", "1y", "-1h", "1.5h", ""] {
            assert!(read::<Duration>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_are_described_in_their_largest_whole_unit() {
        assert_eq!(describe_duration(21 * 86_400), "3w");
        assert_eq!(describe_duration(5400), "90m");
        assert_eq!(describe_duration(3600), "1h");
        assert_eq!(describe_duration(90), "90s");
        assert_eq!(describe_duration(0), "0s");
        assert_eq!(duration_words(60), "1 minute");
        assert_eq!(duration_words(90), "90 seconds");
        assert_eq!(duration_words(7200), "2 hours");
        assert_eq!(duration_words(86_400), "1 day");
        assert_eq!(duration_words(36 * 3600), "36 hours");
        assert_eq!(duration_words(14 * 86_400), "2 weeks");
    }

    #[test]
    fn display_and_parse_round_trip() {
        for secs in [0, 1_763_895_060, -86_400, 4_102_444_799] {
            let t = Timestamp(secs);
            assert_eq!(t.to_string().parse::<Timestamp>(), Ok(t));
        }
        for bad in [
            "",
            "2026-11-23 10:51:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-23T10:51:00",
            "2026-11-23T10:51:0xZ",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&Timestamp(60)).unwrap();
        assert_eq!(
            serde_json::from_str::<Timestamp>(&json).unwrap(),
            Timestamp(60)
        );
    }

    #[test]
    fn binary_formats_hold_seconds_and_read_the_old_text() {
        let t = Timestamp(1_763_895_060);
        let bytes = rmp_serde::to_vec(&t).unwrap();
        assert_eq!(bytes.len(), 5, "an i64 that fits 32 bits: {bytes:?}");
        assert_eq!(rmp_serde::from_slice::<Timestamp>(&bytes).unwrap(), t);
        let old = rmp_serde::to_vec(&t.to_string()).unwrap();
        assert_eq!(rmp_serde::from_slice::<Timestamp>(&old).unwrap(), t);
        let bad = rmp_serde::to_vec("yesterday").unwrap();
        assert!(rmp_serde::from_slice::<Timestamp>(&bad).is_err());
        assert!(
            serde_json::from_str::<Timestamp>("60").is_err(),
            "JSON keeps the text"
        );
    }

    #[test]
    fn civil_round_trip_across_eras_and_leap_days() {
        for days in [
            -800_000i64,
            -1,
            0,
            1,
            11_016,
            15_555,
            19_793,
            20_000,
            2_932_896,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn kerio_queue_id_instant_matches_published_example() {
        // kerio.md: 65ee8b47 = 2024-03-11 04:40:39 UTC.
        let t = Timestamp::from_civil(2024, 3, 11, 4, 40, 39).unwrap();
        assert_eq!(t.0, 0x65ee8b47);
        assert_eq!(t.to_string(), "2024-03-11T04:40:39Z");
    }

    #[test]
    fn rejects_impossible_dates() {
        assert!(Timestamp::from_civil(2023, 2, 29, 0, 0, 0).is_none());
        assert!(Timestamp::from_civil(2024, 13, 1, 0, 0, 0).is_none());
        assert!(Timestamp::from_civil(2024, 4, 31, 0, 0, 0).is_none());
        assert!(Timestamp::from_civil(2024, 4, 30, 24, 0, 0).is_none());
        assert!(Timestamp::from_civil(2000, 2, 29, 23, 59, 59).is_some());
    }

    #[test]
    fn month_names_any_case() {
        assert_eq!(month_from_abbrev(b"Aug"), Some(8));
        assert_eq!(month_from_abbrev(b"DEC"), Some(12));
        assert_eq!(month_from_abbrev(b"Augu"), None);
        assert_eq!(month_from_abbrev(b"Xyz"), None);
    }

    #[test]
    fn digits_must_all_be_digits() {
        assert_eq!(parse_digits::<4>(b"2012/"), Some(2012));
        assert_eq!(parse_digits::<2>(b"0x"), None);
        assert_eq!(parse_digits::<2>(b"1"), None);
    }

    #[test]
    fn times_relative_to_a_base_are_small_and_read_back_exactly() {
        let base = Timestamp(1_793_733_876);
        let write = |t: Timestamp| relative_to(base, || rmp_serde::to_vec(&t).unwrap());
        let read = |bytes: &[u8]| -> Timestamp {
            relative_to(base, || rmp_serde::from_slice(bytes).unwrap())
        };
        assert_eq!(write(base), rmp_serde::to_vec(&0i64).unwrap(), "one byte");
        assert_eq!(write(base.plus(-3_600)).len(), 3);
        for t in [
            base,
            base.plus(-86_400),
            Timestamp(0),
            Timestamp(i64::MIN),
            Timestamp(i64::MAX),
        ] {
            assert_eq!(read(&write(t)), t, "{t:?}");
        }
        // Outside, absolute seconds, as before; the base does not leak.
        let absolute = rmp_serde::to_vec(&base).unwrap();
        assert_eq!(rmp_serde::from_slice::<i64>(&absolute).unwrap(), base.0);
        assert_eq!(relative_base(), None);
    }
}
